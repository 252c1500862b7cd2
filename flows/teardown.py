"""teardown: Git-managed objects, members, clusters, the fleet, the role, the group — only what this fleet owns."""

from __future__ import annotations

from prefect import flow, get_run_logger, unmapped

from flows.common import fleet_task_runner, gather, raise_if_failed, share_write_budget
from tasks.aks import delete_cluster
from tasks.fleet_members import delete_member, owned_fleet_members
from tasks.fleet_source import resolve_fleet_spec
from tasks.fleets import delete_fleet
from tasks.gitops.sync import remove_cluster_objects
from tasks.keyvault import purge_deleted_vault
from tasks.ownership import Outcome
from tasks.rbac import delete_operator_role
from tasks.resource_groups import delete_resource_group


@flow(name="teardown", task_runner=fleet_task_runner(), log_prints=False)
def teardown(fleet: str = "fleet.yaml", credentials_block: str = "fleetflow-azure",
             force: bool = False) -> list[Outcome]:
    """Delete the fleet's resources in dependency order; a re-run after a partial teardown finishes it.

    Every task reads the resource's ownership tags before deleting it. A resource group that still holds
    resources fleetflow does not own is kept (its contents are listed) unless force is set.

    Args:
        fleet: The fleet spec: a YAML path such as fleet.yaml, or block:<name> for a saved fleet-spec block.
        credentials_block: Name of the fleetflow Azure Service Principal block to authenticate with.
        force: Delete the resource group even when it holds resources fleetflow does not own.
    """
    logger = get_run_logger()
    spec = resolve_fleet_spec(fleet)
    share_write_budget(spec, credentials_block)
    outcomes: list[Outcome] = []

    if spec.gitops is not None:
        # First the Git-managed objects: ASO deletes their Azure resources while the clusters still run it.
        removed_objects, failures = gather("remove Git-managed objects", remove_cluster_objects.map(
            unmapped(spec), spec.clusters(), unmapped(credentials_block)))
        raise_if_failed("teardown: remove Git-managed objects", failures, spec.name)
        logger.info("removed %d Git-managed objects", sum(len(rows) for rows in removed_objects))
        # The vault ASO deleted stays soft-deleted, its name reserved, until purged.
        outcomes.append(purge_deleted_vault(spec, credentials_block))

    members = owned_fleet_members(spec, credentials_block)
    removed, failures = gather("remove members", delete_member.map(unmapped(spec), members,
                                                                    unmapped(credentials_block)))
    outcomes += removed
    raise_if_failed("teardown: remove members", failures, spec.name)

    deleted, failures = gather("delete clusters", delete_cluster.map(unmapped(spec), spec.clusters(),
                                                                      unmapped(credentials_block)))
    outcomes += deleted
    raise_if_failed("teardown: delete clusters", failures, spec.resource_group_name)

    outcomes.append(delete_fleet(spec, credentials_block))
    outcomes.append(delete_operator_role(spec, credentials_block))
    outcomes.append(delete_resource_group(spec, credentials_block, force))

    kept = [item for item in outcomes if item["action"] == "kept"]
    for item in kept:
        logger.warning("kept %s %s: %s", item["kind"], item["resource_id"], item["detail"])
    done = [item for item in outcomes if item["action"] == "deleted"]
    logger.info("teardown: deleted %d resource(s), %d already gone, %d kept", len(done),
                sum(1 for item in outcomes if item["action"] == "absent"), len(kept))
    return outcomes
