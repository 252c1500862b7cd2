"""lifecycle: the whole runbook in order — provision, join, validate, (staged upgrade), teardown."""

from __future__ import annotations

from prefect import flow, get_run_logger

from flows.join import join
from flows.provision import provision
from flows.teardown import teardown
from flows.validate import validate


@flow(name="lifecycle", log_prints=False)
def lifecycle(fleet: str = "fleet.yaml", credentials_block: str = "fleetflow-azure", keep: bool = False) -> None:
    """Run provision, join and validate as subflows, then tear everything down unless keep is set."""
    logger = get_run_logger()
    provision(fleet=fleet, credentials_block=credentials_block)
    join(fleet=fleet, credentials_block=credentials_block)
    validate(fleet=fleet, credentials_block=credentials_block)

    # Staged upgrade goes here: after validate (the fleet is known good), before teardown.

    if keep:
        logger.info("keeping the fleet (keep=True); run the teardown flow to remove it")
        return
    teardown(fleet=fleet, credentials_block=credentials_block)
