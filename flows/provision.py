"""provision: resource group, Fleet Manager, one AKS cluster per region in parallel, the service operator's role."""

from __future__ import annotations

from prefect import flow, get_run_logger, unmapped

from flows.common import fleet_task_runner, gather, raise_if_failed, share_write_budget
from tasks.aks import ensure_cluster
from tasks.fleet_source import resolve_fleet_spec
from tasks.fleets import ensure_fleet
from tasks.ownership import Outcome, summary
from tasks.rbac import ensure_operator_role, service_operator_object_id
from tasks.resource_groups import ensure_resource_group
from tasks.status import publish_fleet_status
from tasks.versions import check_kubernetes_versions


@flow(name="provision", task_runner=fleet_task_runner(), log_prints=False)
def provision(fleet: str = "fleet.yaml", credentials_block: str = "fleetflow-azure") -> list[Outcome]:
    """Create or converge the fleet's Azure resources; safe to re-run at any point (a second run changes nothing).

    Args:
        fleet: The fleet spec: a YAML path such as fleet.yaml, or block:<name> for a saved fleet-spec block.
        credentials_block: Name of the fleetflow Azure Service Principal block to authenticate with.
    """
    logger = get_run_logger()
    spec = resolve_fleet_spec(fleet)
    share_write_budget(spec, credentials_block)
    # Fail before touching Azure if the service operator's principal cannot be granted its role.
    service_operator_object_id(spec)
    clusters = spec.clusters()
    logger.info("provisioning fleet %s: resource group %s, %d regions %s", spec.name, spec.resource_group_name,
                len(clusters), [cluster.region for cluster in clusters])

    # Kubernetes versions AKS does not offer in a region are a spec error: refuse before anything exists.
    check_kubernetes_versions(spec, credentials_block)
    group = ensure_resource_group(spec, credentials_block)
    # Everything else needs only the group, so the fleet, every region's cluster and the role go at once:
    # the run takes as long as the slowest region, not the sum of them.
    fleet_future = ensure_fleet.submit(spec, credentials_block)
    role_future = ensure_operator_role.submit(spec, credentials_block)
    cluster_futures = ensure_cluster.map(unmapped(spec), clusters, unmapped(credentials_block))
    outcomes, failures = gather("provision", [fleet_future, role_future, *cluster_futures])

    publish_fleet_status(spec, credentials_block, "provision")
    raise_if_failed("provision", failures, spec.resource_group_name)
    changed = [item for item in [group, *outcomes] if item["action"] != "unchanged"]
    if changed:
        logger.info("provision changed %d resource(s): %s", len(changed), summary(changed))
    else:
        logger.info("provision changed nothing: every resource already matches the spec")
    return [group, *outcomes]
