"""plan: validate the fleet spec and show every name fleetflow will create, before touching Azure."""

from __future__ import annotations

from prefect import flow, get_run_logger, task

from tasks.artifacts import publish_table
from tasks.fleet_source import resolve_fleet_spec
from tasks.spec import FleetSpec


@task
def plan_rows(spec: FleetSpec) -> list[dict[str, object]]:
    """One row per region: the resources provision will create there."""
    return [
        {
            "region": cluster.region,
            "cluster": cluster.name,
            "member": cluster.member_name,
            "update group": cluster.update_group,
            "kubernetes": cluster.kubernetes_version,
            "nodes": f"{cluster.node_count} x {cluster.vm_size}",
            "resource group": spec.resource_group_name,
        }
        for cluster in spec.clusters()
    ]


@flow(name="plan", log_prints=False)
def plan(fleet: str = "fleet.yaml") -> list[dict[str, object]]:
    """Validate the fleet spec (a path or `block:<name>`) and publish the resources it describes.

    Args:
        fleet: The fleet spec: a YAML path such as fleet.yaml, or block:<name> for a saved fleet-spec block.
    """
    logger = get_run_logger()
    spec = resolve_fleet_spec(fleet)
    rows = plan_rows(spec)
    publish_table(f"plan-{spec.name}", rows, f"Resources of fleet {spec.name} in {spec.resource_group_name}")
    logger.info("fleet %s: %d regions, stages %s", spec.name, len(rows),
                [stage.name for stage in spec.update_strategy.stages])
    return rows
