"""bootstrap-aso: cert-manager and Azure Service Operator v2 on every cluster, in parallel, with Helm."""

from __future__ import annotations

from prefect import flow, get_run_logger, unmapped

from flows.common import fleet_task_runner, gather, raise_if_failed, share_write_budget
from tasks.artifacts import publish_table
from tasks.fleet_source import resolve_fleet_spec
from tasks.service_operator import BootstrapRow, bootstrap_cluster


@flow(name="bootstrap-aso", task_runner=fleet_task_runner(), log_prints=False)
def bootstrap_aso(fleet: str = "fleet.yaml", credentials_block: str = "fleetflow-azure") -> list[BootstrapRow]:
    """Install or upgrade cert-manager and Azure Service Operator on every cluster; a re-run changes nothing.

    The operator authenticates with the service-principal block the spec names
    (service_operator.credentials_block); its secret reaches each cluster only as a Kubernetes Secret.

    Args:
        fleet: The fleet spec: a YAML path such as fleet.yaml, or block:<name> for a saved fleet-spec block.
        credentials_block: Name of the fleetflow Azure Service Principal block to authenticate with.
    """
    logger = get_run_logger()
    spec = resolve_fleet_spec(fleet)
    share_write_budget(spec, credentials_block)
    clusters = spec.clusters()
    operator = spec.service_operator
    logger.info("bootstrapping Azure Service Operator %s (cert-manager %s) on %d clusters, crdPattern %s",
                operator.chart.version, operator.cert_manager_chart.version, len(clusters), operator.crd_pattern)
    futures = bootstrap_cluster.map(unmapped(spec), clusters, unmapped(credentials_block))
    rows, failures = gather("bootstrap-aso", futures)
    publish_table(f"bootstrap-aso-{spec.name}", list(rows),
                  f"Azure Service Operator on fleet {spec.name}: {len(rows)} of {len(clusters)} clusters ready")
    raise_if_failed("bootstrap-aso", failures, spec.resource_group_name)
    return list(rows)
