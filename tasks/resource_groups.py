"""The fleet's resource group: created tagged as owned, deleted only when it holds nothing fleetflow does not own."""

from __future__ import annotations

from typing import Any

from azure.core.exceptions import ResourceNotFoundError
from prefect import get_run_logger

from tasks.clients import load_azure_clients
from tasks.ownership import Outcome, is_owned, outcome, require_owned, tags_missing
from tasks.retry import FleetflowError, azure_call, azure_task, wait_until
from tasks.spec import FleetSpec

KIND = "resource group"


def group_id(subscription_id: str, spec: FleetSpec) -> str:
    """Resource id of the fleet's resource group."""
    return f"/subscriptions/{subscription_id}/resourceGroups/{spec.resource_group_name}"


@azure_task(task_run_name="ensure-resource-group")
def ensure_resource_group(spec: FleetSpec, credentials_block: str) -> Outcome:
    """Create the resource group tagged as owned by the fleet, or confirm the existing one matches the spec."""
    logger = get_run_logger()
    clients = load_azure_clients(credentials_block)
    name = spec.resource_group_name
    resource_id = group_id(clients.subscription_id, spec)
    desired_tags = spec.ownership_tags
    with azure_call("read resource group", resource_id, spec.location):
        try:
            group = clients.resource.resource_groups.get(name)
        except ResourceNotFoundError:
            group = None
    if group is None:
        with azure_call("create resource group", resource_id, spec.location):
            clients.resource.resource_groups.create_or_update(name, {"location": spec.location, "tags": desired_tags})
        logger.info("created resource group %s in %s", name, spec.location)
        return outcome(resource_id, KIND, "created", spec.location)
    require_owned(group.tags, spec, kind=KIND, resource_id=resource_id, operation="reconcile resource group")
    if (group.location or "").replace(" ", "").lower() != spec.location:
        raise FleetflowError(f"reconcile resource group {resource_id}: it is in {group.location}, the spec says "
                             f"{spec.location}; a group cannot move, so change the spec or delete the group",
                             operation="reconcile resource group", resource_id=resource_id, region=spec.location)
    missing = tags_missing(group.tags, desired_tags)
    if missing:
        with azure_call("update resource group tags", resource_id, spec.location):
            clients.resource.resource_groups.create_or_update(
                name, {"location": spec.location, "tags": {**(group.tags or {}), **desired_tags}})
        logger.info("updated tags %s on resource group %s", sorted(missing), name)
        return outcome(resource_id, KIND, "updated", f"tags {sorted(missing)}")
    logger.info("resource group %s unchanged: it matches the spec", name)
    return outcome(resource_id, KIND, "unchanged")


def _group_state(group: Any) -> str | None:
    return group.properties.provisioning_state if group.properties else None


def _typed_resources(spec: FleetSpec, credentials_block: str) -> list[tuple[str, dict[str, str] | None]]:
    """Clusters and fleets in the group, for endpoints that do not serve the generic resource listing."""
    clients = load_azure_clients(credentials_block)
    group = spec.resource_group_name
    found: list[tuple[str, dict[str, str] | None]] = []
    for cluster in clients.containerservice.managed_clusters.list_by_resource_group(group):
        found.append((str(cluster.id), dict(cluster.tags or {})))
    for fleet in clients.fleet.fleets.list_by_resource_group(group):
        found.append((str(fleet.id), dict(fleet.tags or {})))
    return found


def foreign_resources(spec: FleetSpec, credentials_block: str) -> list[str]:
    """Ids of resources in the fleet's group that are not tagged as owned by the fleet (empty if the group is gone)."""
    clients = load_azure_clients(credentials_block)
    resource_id = group_id(clients.subscription_id, spec)
    with azure_call("list resources in resource group", resource_id, spec.location):
        try:
            listed = [(str(item.id), item.tags) for item in
                      clients.resource.resources.list_by_resource_group(spec.resource_group_name)]
        except ResourceNotFoundError as error:
            if getattr(error.error, "code", None) == "ResourceGroupNotFound":
                return []
            # The generic listing is not served (local Azure); list the kinds fleetflow creates instead.
            listed = _typed_resources(spec, credentials_block)
    return sorted(item_id for item_id, tags in listed if not is_owned(tags, spec))


@azure_task(task_run_name="delete-resource-group")
def delete_resource_group(spec: FleetSpec, credentials_block: str, force: bool = False) -> Outcome:
    """Delete the fleet's resource group if this fleet owns it and it holds nothing else (unless force)."""
    logger = get_run_logger()
    clients = load_azure_clients(credentials_block)
    name = spec.resource_group_name
    resource_id = group_id(clients.subscription_id, spec)
    with azure_call("read resource group", resource_id, spec.location):
        try:
            group = clients.resource.resource_groups.get(name)
        except ResourceNotFoundError:
            logger.info("resource group %s is already gone", name)
            return outcome(resource_id, KIND, "absent")
    if not is_owned(group.tags, spec):
        logger.warning("resource group %s is not tagged as owned by fleet %s; kept", name, spec.name)
        return outcome(resource_id, KIND, "kept", "not owned by this fleet")
    others = foreign_resources(spec, credentials_block)
    if others and not force:
        listing = ", ".join(others)
        logger.warning("resource group %s kept: it holds %d resource(s) fleetflow does not own: %s "
                       "(run teardown with force=True to delete them too)", name, len(others), listing)
        return outcome(resource_id, KIND, "kept", f"holds resources fleetflow does not own: {listing}")
    if others:
        logger.warning("force: deleting resource group %s with %d resource(s) fleetflow does not own: %s",
                       name, len(others), ", ".join(others))
    if (_group_state(group) or "").lower() != "deleting":
        with azure_call("delete resource group", resource_id, spec.location):
            clients.resource.resource_groups.begin_delete(name).result()
    else:
        logger.info("resource group %s is already being deleted; waiting", name)

    def observe() -> str | None:
        with azure_call("read resource group", resource_id, spec.location):
            try:
                return _group_state(clients.resource.resource_groups.get(name)) or "Unknown"
            except ResourceNotFoundError:
                return None

    wait_until(observe, lambda state: state is None, what="resource group deletion",
               operation="delete resource group", resource_id=resource_id, region=spec.location)
    logger.info("deleted resource group %s", name)
    return outcome(resource_id, KIND, "deleted", "force" if others else "")
