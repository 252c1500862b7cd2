"""join: every cluster of the spec a fleet member in its update group; members the spec does not list reported."""

from __future__ import annotations

from prefect import flow, get_run_logger, unmapped

from flows.common import fleet_task_runner, gather, raise_if_failed, share_write_budget
from tasks.fleet_members import delete_member, ensure_member, unlisted_members
from tasks.fleet_source import resolve_fleet_spec
from tasks.ownership import Outcome
from tasks.status import publish_fleet_status


@flow(name="join", task_runner=fleet_task_runner(), log_prints=False)
def join(fleet: str = "fleet.yaml", credentials_block: str = "fleetflow-azure",
         remove_unlisted: bool = False) -> list[Outcome]:
    """Join each cluster as a member in its update group; remove members not in the spec only if asked to.

    Args:
        fleet: The fleet spec: a YAML path such as fleet.yaml, or block:<name> for a saved fleet-spec block.
        credentials_block: Name of the fleetflow Azure Service Principal block to authenticate with.
        remove_unlisted: Remove fleet members the spec no longer lists (they are only reported otherwise).
    """
    logger = get_run_logger()
    spec = resolve_fleet_spec(fleet)
    share_write_budget(spec, credentials_block)
    clusters = spec.clusters()
    futures = ensure_member.map(unmapped(spec), clusters, unmapped(credentials_block))
    outcomes, failures = gather("join", futures)

    extra = unlisted_members(spec, credentials_block)
    if extra and remove_unlisted:
        logger.warning("removing %d member(s) the spec does not list: %s", len(extra), extra)
        removed, removal_failures = gather("remove unlisted member", delete_member.map(
            unmapped(spec), extra, unmapped(credentials_block)))
        outcomes += removed
        failures += removal_failures
    elif extra:
        logger.warning("fleet %s has %d member(s) the spec does not list: %s; kept (run join with "
                       "remove_unlisted=True to remove them)", spec.name, len(extra), extra)

    publish_fleet_status(spec, credentials_block, "join")
    raise_if_failed("join", failures, spec.name)
    changed = [item for item in outcomes if item["action"] != "unchanged"]
    logger.info("join: %s", f"{len(changed)} member change(s)" if changed else
                "changed nothing: every cluster is a member in its update group")
    return outcomes
