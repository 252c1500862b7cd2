"""lifecycle: the whole runbook in order — provision, join, bootstrap-aso, apply-resources, validate, staged upgrade,
teardown."""

from __future__ import annotations

from prefect import flow, get_run_logger

from flows.apply_resources import apply_resources
from flows.bootstrap_aso import bootstrap_aso
from flows.join import join
from flows.provision import provision
from flows.staged_upgrade import staged_upgrade
from flows.teardown import teardown
from flows.validate import validate
from tasks.fleet_source import resolve_fleet_spec


@flow(name="lifecycle", log_prints=False)
def lifecycle(fleet: str = "fleet.yaml", credentials_block: str = "fleetflow-azure", keep: bool = False,
              upgrade_to: str | None = None, approval_timeout_seconds: int = 3600,
              poll_seconds: float = 5.0) -> None:
    """Provision and join the fleet, bootstrap Azure Service Operator, apply the Git state (when the spec has a gitops
    section) and validate; with `upgrade_to`, upgrade it stage by stage (pausing for an
    approval between stages); then tear everything down unless keep is set.

    Args:
        fleet: The fleet spec: a YAML path such as fleet.yaml, or block:<name> for a saved fleet-spec block.
        credentials_block: Name of the fleetflow Azure Service Principal block to authenticate with.
        keep: Keep the fleet at the end instead of tearing it down.
        upgrade_to: Kubernetes version for a Full staged upgrade after validation; empty skips the upgrade.
        approval_timeout_seconds: How long the upgrade waits for an approval before it stops the update run.
        poll_seconds: How often the upgrade reads the update run.
    """
    logger = get_run_logger()
    provision(fleet=fleet, credentials_block=credentials_block)
    join(fleet=fleet, credentials_block=credentials_block)
    bootstrap_aso(fleet=fleet, credentials_block=credentials_block)
    if resolve_fleet_spec(fleet).gitops is not None:
        apply_resources(fleet=fleet, credentials_block=credentials_block)
    validate(fleet=fleet, credentials_block=credentials_block)

    if upgrade_to:
        staged_upgrade(fleet=fleet, credentials_block=credentials_block, upgrade_type="Full",
                       kubernetes_version=upgrade_to, approval_timeout_seconds=approval_timeout_seconds,
                       poll_seconds=poll_seconds)
        logger.info("fleet upgraded to %s", upgrade_to)

    if keep:
        logger.info("keeping the fleet (keep=True); run the teardown flow to remove it")
        return
    teardown(fleet=fleet, credentials_block=credentials_block)
