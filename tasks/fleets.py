"""The Fleet Manager resource (hubless): reconciled to the spec and deleted only when this fleet owns it."""

from __future__ import annotations

import contextlib
from typing import Any

from azure.core.exceptions import ResourceNotFoundError
from azure.mgmt.containerservicefleet.models import Fleet
from prefect import get_run_logger

from tasks.clients import AzureClients, load_azure_clients
from tasks.ownership import (
    Outcome,
    is_failed,
    is_owned,
    is_terminal,
    outcome,
    require_owned,
    state_text,
    tags_missing,
)
from tasks.retry import azure_call, azure_task, wait_until
from tasks.spec import FleetSpec

KIND = "fleet"


def fleet_id(subscription_id: str, spec: FleetSpec) -> str:
    """Resource id of the fleet."""
    return (f"/subscriptions/{subscription_id}/resourceGroups/{spec.resource_group_name}"
            f"/providers/Microsoft.ContainerService/fleets/{spec.name}")


def read_fleet(clients: AzureClients, spec: FleetSpec) -> Any | None:
    """The fleet as Azure reports it, or None when it does not exist."""
    with azure_call("read fleet", fleet_id(clients.subscription_id, spec), spec.location):
        try:
            return clients.fleet.fleets.get(spec.resource_group_name, spec.name)
        except ResourceNotFoundError:
            return None


def fleet_state(fleet: Any) -> str | None:
    """Provisioning state of a fleet model."""
    return state_text(fleet.properties.provisioning_state) if fleet is not None and fleet.properties else None


def _wait_for_terminal(clients: AzureClients, spec: FleetSpec) -> Any | None:
    resource_id = fleet_id(clients.subscription_id, spec)
    wait_until(lambda: fleet_state(read_fleet(clients, spec)), is_terminal, what="fleet operation",
               operation="wait for fleet", resource_id=resource_id, region=spec.location)
    return read_fleet(clients, spec)


@azure_task(task_run_name="ensure-fleet")
def ensure_fleet(spec: FleetSpec, credentials_block: str) -> Outcome:
    """Create the hubless Fleet Manager, repair a failed one, or confirm the existing one matches the spec."""
    logger = get_run_logger()
    clients = load_azure_clients(credentials_block)
    resource_id = fleet_id(clients.subscription_id, spec)
    fleet = read_fleet(clients, spec)
    if fleet is not None and not is_terminal(fleet_state(fleet)):
        logger.info("fleet %s is %s from an earlier run; waiting for it to finish", spec.name, fleet_state(fleet))
        fleet = _wait_for_terminal(clients, spec)
    desired_tags = spec.ownership_tags
    if fleet is not None:
        require_owned(fleet.tags, spec, kind=KIND, resource_id=resource_id, operation="reconcile fleet")
        missing = tags_missing(fleet.tags, desired_tags)
        if not is_failed(fleet_state(fleet)) and not missing:
            logger.info("fleet %s unchanged: it matches the spec (%s)", spec.name, fleet_state(fleet))
            return outcome(resource_id, KIND, "unchanged", str(fleet_state(fleet)))
        action = "recreated" if is_failed(fleet_state(fleet)) else "updated"
        tags = {**(fleet.tags or {}), **desired_tags}
    else:
        action, tags = "created", desired_tags
    # A hubless fleet: no hubProfile, so no hub cluster is created (updates and gates work without one).
    body = {"location": spec.location, "tags": tags, "properties": {}}
    with azure_call(f"{'create' if action == 'created' else 'update'} fleet", resource_id, spec.location):
        result = clients.fleet.fleets.begin_create_or_update(spec.resource_group_name, spec.name, Fleet(body)).result()
    logger.info("fleet %s %s (%s)", spec.name, action, fleet_state(result))
    return outcome(resource_id, KIND, action, str(fleet_state(result)))  # type: ignore[arg-type]


@azure_task(task_run_name="delete-fleet")
def delete_fleet(spec: FleetSpec, credentials_block: str) -> Outcome:
    """Delete the fleet if this fleet spec owns it; an absent fleet is already done."""
    logger = get_run_logger()
    clients = load_azure_clients(credentials_block)
    resource_id = fleet_id(clients.subscription_id, spec)
    fleet = read_fleet(clients, spec)
    if fleet is None:
        logger.info("fleet %s is already gone", spec.name)
        return outcome(resource_id, KIND, "absent")
    if not is_owned(fleet.tags, spec):
        logger.warning("fleet %s is not tagged as owned by this fleet spec; kept", spec.name)
        return outcome(resource_id, KIND, "kept", "not owned by this fleet")
    if not is_terminal(fleet_state(fleet)) and (fleet_state(fleet) or "").lower() != "deleting":
        fleet = _wait_for_terminal(clients, spec)
    with azure_call("delete fleet", resource_id, spec.location), contextlib.suppress(ResourceNotFoundError):
        clients.fleet.fleets.begin_delete(spec.resource_group_name, spec.name).result()
    logger.info("deleted fleet %s", spec.name)
    return outcome(resource_id, KIND, "deleted")
