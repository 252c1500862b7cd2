"""What every Fleet resource type shares: ids, names, parents and children, LRO answers.

The generic envelope (eTag, systemData, tags, If-Match, LRO answers) lives in `localazure.arm.envelope`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from localazure.arm.common import RESOURCES, get_group, require_subscription
from localazure.arm.context import Emulator
from localazure.arm.envelope import (  # noqa: F401 - the generic envelope, re-exported for the Fleet modules
    accepted,
    accepted_write,
    check_etag,
    delete_records,
    finish_delete,
    load,
    mark_modified,
    new_etag,
    properties_of,
    system_data,
    tags_of,
)
from localazure.arm.errors import ArmError, error_detail, not_found
from localazure.arm.lro import OperationRun
from localazure.arm.rbac import Principal
from localazure.arm.store import Record
from localazure.arm.tracked import add_get

NAMESPACE = "Microsoft.ContainerService"
# Every Fleet api-version Azure has published, from the first preview on (azure-rest-api-specs, containerservice/
# fleet); 2026-06-01 is azure-mgmt-containerservicefleet 4.x's. Each az fleet extension release vendors one of them.
GA_API_VERSIONS = frozenset({"2023-10-15", "2024-04-01", "2025-03-01", "2026-06-01"})
PREVIEW_API_VERSIONS = frozenset({
    "2022-06-02-preview", "2022-07-02-preview", "2022-09-02-preview", "2023-03-15-preview", "2023-06-15-preview",
    "2023-08-15-preview", "2024-02-02-preview", "2024-05-02-preview", "2025-04-01-preview", "2025-08-01-preview",
    "2026-02-01-preview", "2026-03-02-preview",
})
API_VERSIONS = GA_API_VERSIONS | PREVIEW_API_VERSIONS

FLEET_TYPE = f"{NAMESPACE}/fleets"
MEMBER_TYPE = f"{FLEET_TYPE}/members"
STRATEGY_TYPE = f"{FLEET_TYPE}/updateStrategies"
RUN_TYPE = f"{FLEET_TYPE}/updateRuns"
GATE_TYPE = f"{FLEET_TYPE}/gates"
CLUSTER_TYPE = f"{NAMESPACE}/managedClusters"

FLEET_PATH = ("/subscriptions/{subscription_id}/resourceGroups/{group}/providers/Microsoft.ContainerService"
              "/fleets/{fleet}")

# Fleet names are DNS labels; child names are shorter (Azure caps members, runs and strategies at 50).
FLEET_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
CHILD_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,48}[a-z0-9])?$")


def action(resource_type: str, verb: str) -> str:
    """RBAC action of a Fleet type, e.g. `Microsoft.ContainerService/fleets/members/write`."""
    return f"{resource_type}/{verb}"


def fleet_resource_id(emulator: Emulator, group: str, fleet: str) -> str:
    """Id of a fleet."""
    return f"{emulator.group_id(group)}/providers/{NAMESPACE}/fleets/{fleet}"


def check_name(name: str, pattern: re.Pattern[str], what: str) -> None:
    """400 InvalidResourceName unless `name` matches the type's naming rule."""
    if not pattern.match(name):
        raise ArmError(400, "InvalidResourceName", f"The {what} name '{name}' is invalid: use lowercase letters, "
                       "digits and '-', starting and ending with a letter or digit "
                       f"(at most {63 if pattern is FLEET_NAME else 50} characters).")


def require(emulator: Emulator, resource_id: str, resource_type: str, group: str) -> Record:
    """The stored record, or 404 ResourceNotFound naming the type and name."""
    record = load(emulator, resource_id, resource_type)
    if record is None:
        short = resource_type.split("/", 1)[1]
        raise not_found(f"{NAMESPACE}/{short}", resource_id.rsplit("/", 1)[-1], group)
    return record


def require_fleet(emulator: Emulator, subscription_id: str, group: str, fleet: str) -> Record:
    """Subscription, group and fleet must exist (the parent of every child resource)."""
    require_subscription(emulator, subscription_id)
    get_group(emulator, group)
    return require(emulator, fleet_resource_id(emulator, group, fleet), FLEET_TYPE, group)


def children(emulator: Emulator, parent_id: str, resource_type: str) -> list[Record]:
    """Stored records of one child type directly below `parent_id`."""
    prefix = parent_id.lower().rstrip("/") + "/"
    depth = parent_id.rstrip("/").count("/") + 2
    return emulator.store.values(
        RESOURCES,
        lambda r: r["body"]["id"].lower().startswith(prefix)
        and r["body"]["id"].count("/") == depth
        and r["body"].get("type", "").lower() == resource_type.lower(),
    )


def start_operation(
    emulator: Emulator,
    *,
    kind: str,
    resource_id: str,
    location: str,
    work: Callable[[OperationRun], None],
    on_failure: Callable[[dict[str, Any]], None] | None = None,
    result_resource_id: str | None = None,
    on_interrupt: str | None = None,
) -> Record:
    """Start a Microsoft.ContainerService long-running operation on a Fleet resource.

    Cut off by an emulator stop, the operation ends Failed and so does the resource it was changing
    (`on_interrupt`, or Failed when the resource was left Creating/Updating/Joining/Leaving/Deleting).
    """
    return emulator.operations.start(
        kind=kind, namespace=NAMESPACE, location=location, resource_id=resource_id, work=work,
        on_failure=on_failure, result_resource_id=result_resource_id, on_interrupt=on_interrupt,
    )


def operation_status_id(emulator: Emulator, operation: Record) -> str:
    """The operation-status resource id shown as `status.lastOperationId` / `operationId`."""
    return emulator.operations.status_path(operation)


def set_state(emulator: Emulator, resource_id: str, state: str, error: dict[str, Any] | None = None) -> None:
    """Set `provisioningState` (and `status.lastOperationError`) of a stored resource, if it still exists."""

    def change(record: Record) -> None:
        props = record["body"]["properties"]
        props["provisioningState"] = state
        if "status" in props and isinstance(props["status"], dict) and "lastOperationId" in props["status"]:
            props["status"]["lastOperationError"] = error_detail(error)

    emulator.store.update(RESOURCES, resource_id, change)


def child_id(fleet_record: Record, resource_type: str, name: str) -> str:
    """Id of the child resource `name` of type `resource_type` (e.g. a member) below a stored fleet."""
    return f"{fleet_record['body']['id']}/{resource_type.rsplit('/', 1)[1]}/{name}"


def authorize_child(emulator: Emulator, caller: Principal, subscription_id: str, group: str, fleet: str,
                    resource_type: str, name: str, verb: str, *, new_name_of: str | None = None) -> tuple[Record, str]:
    """The parent fleet's record and the child's id, once the fleet exists and the caller may `verb` the child.

    With `new_name_of` (a create, naming the kind of resource in the error), the name must also follow the
    child naming rule; it is checked after the fleet and before the caller's rights, so errors keep that order.
    """
    fleet_record = require_fleet(emulator, subscription_id, group, fleet)
    if new_name_of is not None:
        check_name(name, CHILD_NAME, new_name_of)
    resource_id = child_id(fleet_record, resource_type, name)
    emulator.rbac.authorize(caller, action(resource_type, verb), resource_id)
    return fleet_record, resource_id


def read_child(emulator: Emulator, caller: Principal, subscription_id: str, group: str, fleet: str,
               resource_type: str, name: str) -> dict[str, Any]:
    """Body of one child resource of a fleet for a caller who may read it; 404 when it does not exist."""
    _, resource_id = authorize_child(emulator, caller, subscription_id, group, fleet, resource_type, name, "read")
    body: dict[str, Any] = require(emulator, resource_id, resource_type, group)["body"]
    return body


def list_children(emulator: Emulator, caller: Principal, subscription_id: str, group: str, fleet: str,
                  resource_type: str) -> dict[str, Any]:
    """List answer of one child type of a fleet, for a caller who may read that type on the fleet."""
    fleet_id = require_fleet(emulator, subscription_id, group, fleet)["body"]["id"]
    emulator.rbac.authorize(caller, action(resource_type, "read"), fleet_id)
    return {"value": [r["body"] for r in children(emulator, fleet_id, resource_type)]}


def finish_write(emulator: Emulator, resource_id: str, run: OperationRun) -> None:
    """Work of a create/update operation that has nothing left to do but succeed."""
    run.pace()
    set_state(emulator, resource_id, "Succeeded")


def delete_child(emulator: Emulator, request: Request, fleet_record: Record, resource_id: str,
                 resource_type: str, *, kind: str, work: Callable[[OperationRun], None],
                 refuse: Callable[[Record], None] | None = None, deleting_state: str | None = None,
                 on_failure: Callable[[dict[str, Any]], None] | None = None) -> Response:
    """204 when the child is absent; else check its eTag, let `refuse` raise, and start the delete (202)."""
    with emulator.store.transaction():
        record = load(emulator, resource_id, resource_type)
        if record is None:
            return Response(status_code=204)
        check_etag(request, record)
        if refuse is not None:
            refuse(record)
        if deleting_state is not None:
            set_state(emulator, resource_id, deleting_state)
        op = start_operation(emulator, kind=kind, resource_id=resource_id, location=fleet_record["body"]["location"],
                             work=work, on_failure=on_failure)
    return accepted(emulator, request, op)


def add_child_reads(router: APIRouter, resource_type: str, item_param: str, *, what: str, plural: str,
                    with_list: bool = True) -> None:
    """GET one child resource of a fleet (`.../fleets/{fleet}/<children>/{item_param}`) and, with `with_list`,
    GET the list of them, through the kernel's shared GET route."""
    collection = f"{FLEET_PATH}/{resource_type.rsplit('/', 1)[1]}"
    add_get(router, f"{collection}/{{{item_param}}}",
            lambda emulator, caller, path: read_child(emulator, caller, path["subscription_id"], path["group"],
                                                      path["fleet"], resource_type, path[item_param]),
            f"A {what}.")
    if not with_list:
        return
    add_get(router, collection,
            lambda emulator, caller, path: list_children(emulator, caller, path["subscription_id"], path["group"],
                                                         path["fleet"], resource_type),
            f"{plural} of a fleet.")
