"""What the tracked resources of these providers share: the path of one resource, reads and lists
with RBAC, cascade deletion with their group, and repair after a restart."""

from __future__ import annotations

from typing import Any

from localazure.arm.common import RESOURCES, authorize_in_subscription, get_group, require_subscription
from localazure.arm.context import Emulator
from localazure.arm.envelope import delete_records, load, of_type, readable
from localazure.arm.errors import not_found
from localazure.arm.rbac import Principal
from localazure.arm.store import Record

TRANSITIONAL = frozenset({"Creating", "Updating", "Deleting", "ResolvingDNS", "RegisteringDns", "Provisioning"})


def resource_id(emulator: Emulator, group: str, resource_type: str, name: str) -> str:
    """Id of a top-level resource `Namespace/type` named `name` in `group`."""
    namespace, short = resource_type.split("/", 1)
    return f"{emulator.group_id(group)}/providers/{namespace}/{short}/{name}"


def require(emulator: Emulator, resource_id: str, resource_type: str, group: str) -> Record:
    """The stored record, or 404 ResourceNotFound naming the type and name."""
    record = load(emulator, resource_id, resource_type)
    if record is None:
        raise not_found(resource_type, resource_id.rsplit("/", 1)[-1], group)
    return record


def authorized(emulator: Emulator, caller: Principal, subscription_id: str, group: str, resource_type: str,
               name: str, verb: str) -> str:
    """The resource's id once the path names this subscription and the caller may `verb` it (`read`,
    `write`, `delete` or `<action>/action`)."""
    return authorize_in_subscription(emulator, caller, subscription_id, f"{resource_type}/{verb}",
                                     resource_id(emulator, group, resource_type, name))


def read(emulator: Emulator, caller: Principal, subscription_id: str, group: str, resource_type: str,
         name: str) -> Record:
    """The record of a resource the caller may read; 404 when it or its group does not exist."""
    rid = authorized(emulator, caller, subscription_id, group, resource_type, name, "read")
    get_group(emulator, group)
    return require(emulator, rid, resource_type, group)


def list_in_group(emulator: Emulator, caller: Principal, subscription_id: str, group: str,
                  resource_type: str) -> dict[str, Any]:
    """List answer: resources of a type in a group that the caller may read."""
    require_subscription(emulator, subscription_id)
    get_group(emulator, group)
    return {"value": readable(emulator, caller, resource_type, emulator.group_id(group))}


def list_in_subscription(emulator: Emulator, caller: Principal, subscription_id: str,
                         resource_type: str) -> dict[str, Any]:
    """List answer: resources of a type in the subscription that the caller may read."""
    require_subscription(emulator, subscription_id)
    return {"value": readable(emulator, caller, resource_type, emulator.subscription_path)}


def delete_in_group(emulator: Emulator, group_id: str, resource_type: str) -> None:
    """Delete every resource of a type in a group (cascade of a group deletion)."""
    for record in of_type(emulator, resource_type, group_id):
        delete_records(emulator, record["body"]["id"])


def fail_transitional(emulator: Emulator, resource_type: str) -> None:
    """After a restart: resources left in a transitional provisioning state by a cut-off operation fail."""
    with emulator.store.transaction():
        for record in of_type(emulator, resource_type):
            if record["body"].get("properties", {}).get("provisioningState") in TRANSITIONAL:
                emulator.store.update(RESOURCES, record["body"]["id"],
                                      lambda r: r["body"]["properties"].update(provisioningState="Failed"))
