"""validate: the recipe's checks — fleet and members Succeeded, clusters reachable with nodes Ready, versions."""

from __future__ import annotations

from prefect import flow, get_run_logger, unmapped

from flows.common import fleet_task_runner, gather, raise_if_failed, share_write_budget
from tasks.artifacts import publish_table
from tasks.checks import Check, check_cluster, check_fleet
from tasks.fleet_source import resolve_fleet_spec


@flow(name="validate", task_runner=fleet_task_runner(), log_prints=False)
def validate(fleet: str = "fleet.yaml", credentials_block: str = "fleetflow-azure") -> list[Check]:
    """Run every check, publish them as a table artifact, and fail naming each failed check.

    Args:
        fleet: The fleet spec: a YAML path such as fleet.yaml, or block:<name> for a saved fleet-spec block.
        credentials_block: Name of the fleetflow Azure Service Principal block to authenticate with.
    """
    logger = get_run_logger()
    spec = resolve_fleet_spec(fleet)
    share_write_budget(spec, credentials_block)
    futures = [check_fleet.submit(spec, credentials_block),
               *check_cluster.map(unmapped(spec), spec.clusters(), unmapped(credentials_block))]
    results, errors = gather("validate", futures)
    checks: list[Check] = [check for group in results for check in group]
    checks += [Check(check="check ran", target=spec.name, result="failed", detail=error) for error in errors]
    counts = {result: sum(1 for c in checks if c["result"] == result)
              for result in ("passed", "failed", "skipped", "notice")}
    publish_table(f"validate-{spec.name}", list(checks),
                  f"Validation of fleet {spec.name}: {counts['passed']} passed, {counts['failed']} failed, "
                  f"{counts['skipped']} skipped, {counts['notice']} notice(s)")
    for check in checks:
        if check["result"] in ("skipped", "notice"):
            logger.warning("%s %s on %s: %s", "notice:" if check["result"] == "notice" else "skipped",
                           check["check"], check["target"], check["detail"])
    failed = [f"{c['check']} on {c['target']}: {c['detail']}" for c in checks if c["result"] == "failed"]
    if failed:
        raise_if_failed("validate", failed, spec.name)
    logger.info("validate: %d checks passed, %d skipped, %d notice(s)", counts["passed"], counts["skipped"],
                counts["notice"])
    return checks

