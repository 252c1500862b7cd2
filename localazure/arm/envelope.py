"""The Resource Manager envelope every tracked resource shares: eTag, systemData, tags, properties,
If-Match, stored records of one type, readable lists, global names, and long-running answers.

Providers keep their type-specific rules to themselves and build on these.
"""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, Response

from localazure.arm.common import RESOURCES, polling_headers
from localazure.arm.context import Emulator
from localazure.arm.errors import ArmError, invalid_parameter
from localazure.arm.ids import utc_now
from localazure.arm.lro import OperationRun
from localazure.arm.rbac import Principal
from localazure.arm.store import Record


def new_etag() -> str:
    """A fresh entity tag (quoted, as Azure returns them)."""
    return f'"{uuid.uuid4()}"'


def system_data(caller: Principal | None, previous: dict[str, Any] | None = None, *,
                service: str = "Microsoft.ContainerService") -> dict[str, Any]:
    """`systemData` for a write by `caller` (None: the service itself), keeping the creation fields."""
    now = utc_now()
    who = caller.app_id if caller else service
    kind = "Application"  # service principals are the only callers local Azure authenticates
    data = dict(previous or {"createdBy": who, "createdByType": kind, "createdAt": now})
    data.update(lastModifiedBy=who, lastModifiedByType=kind, lastModifiedAt=now)
    return data


def properties_of(body: dict[str, Any], *, required: bool = True) -> dict[str, Any]:
    """The `properties` object of a request body; 400 when it is missing or not an object."""
    props = body.get("properties")
    if props is None and not required:
        return {}
    if not isinstance(props, dict):
        raise invalid_parameter("properties", "The request body must contain a 'properties' object.")
    return props


def tags_of(value: Any) -> dict[str, str]:
    """Validated tags."""
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise invalid_parameter("tags", "Tags must be an object whose values are strings.")
    return dict(value)


def location_of(body: dict[str, Any], what: str) -> str:
    """The required `location` of a create request; 400 naming the resource kind when missing."""
    location = body.get("location")
    if not isinstance(location, str) or not location.strip():
        raise invalid_parameter("location", f"The 'location' property is required for a {what}.")
    return location


def check_etag(request: Request, record: Record | None) -> None:
    """Honour If-Match / If-None-Match as Resource Manager does (412 PreconditionFailed)."""
    if_match = request.headers.get("if-match")
    if_none_match = request.headers.get("if-none-match")
    current = record["body"].get("eTag") if record else None
    if if_match and (record is None or (if_match != "*" and if_match != current)):
        raise ArmError(412, "PreconditionFailed", f"The If-Match condition '{if_match}' does not match the "
                       "resource's current eTag.")
    if if_none_match and record is not None and (if_none_match == "*" or if_none_match == current):
        raise ArmError(412, "PreconditionFailed", "The If-None-Match condition failed: the resource exists.")


def load(emulator: Emulator, resource_id: str, resource_type: str) -> Record | None:
    """The stored record (`body` + `internal`) of a resource of `resource_type`, or None."""
    record = emulator.store.get(RESOURCES, resource_id)
    if record is None or record["body"].get("type", "").lower() != resource_type.lower():
        return None
    return record


def of_type(emulator: Emulator, resource_type: str, prefix: str = "") -> list[Record]:
    """Stored records of one type, optionally only those whose id lies below `prefix`."""
    low_type = resource_type.lower()
    low_prefix = prefix.lower().rstrip("/") + "/" if prefix else ""
    return emulator.store.values(
        RESOURCES,
        lambda r: r["body"].get("type", "").lower() == low_type and r["body"]["id"].lower().startswith(low_prefix),
    )


def only_readable(emulator: Emulator, caller: Principal, action: str,
                  bodies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The resource bodies on which the caller may do `action` (e.g. `<type>/read`): what every list answers."""
    return [body for body in bodies if emulator.rbac.allowed(caller, action, body["id"])]


def readable(emulator: Emulator, caller: Principal, resource_type: str, prefix: str) -> list[dict[str, Any]]:
    """Bodies of one type below `prefix` (a subscription or group id) that the caller may read."""
    return only_readable(emulator, caller, f"{resource_type}/read",
                         [r["body"] for r in of_type(emulator, resource_type, prefix)])


def name_holder(emulator: Emulator, resource_type: str, name: str) -> Record | None:
    """The stored resource of a type whose name is `name` (case-insensitive) anywhere in local Azure:
    for types whose names are globally unique (registries, vaults, storage accounts)."""
    low = name.lower()
    found = emulator.store.values(
        RESOURCES, lambda r: r["body"].get("type", "").lower() == resource_type.lower()
        and str(r["body"].get("name", "")).lower() == low)
    return found[0] if found else None


def mark_modified(body: dict[str, Any], caller: Principal | None) -> None:
    """Give a changed resource body a new eTag and the caller as its last modifier."""
    body["eTag"] = new_etag()
    body["systemData"] = system_data(caller, body.get("systemData"))


def set_provisioning_state(emulator: Emulator, resource_id: str, state: str) -> None:
    """Set `properties.provisioningState` of a stored resource, if it still exists."""
    emulator.store.update(RESOURCES, resource_id, lambda r: r["body"]["properties"].update(provisioningState=state))


def delete_records(emulator: Emulator, resource_id: str) -> None:
    """Remove a resource and everything stored below it."""
    with emulator.store.transaction():
        for key in emulator.store.keys_under(RESOURCES, resource_id):
            emulator.store.delete(RESOURCES, key)


def succeed_provisioning(emulator: Emulator, resource_id: str, run: OperationRun) -> None:
    """Work of a create/update operation that has nothing left to do but succeed, at the operation's pace."""
    run.pace()
    set_provisioning_state(emulator, resource_id, "Succeeded")


def finish_delete(emulator: Emulator, resource_id: str, run: OperationRun) -> None:
    """Work of a delete operation, at its pace: the resource and everything stored below it go."""
    run.pace()
    delete_records(emulator, resource_id)


def accepted_write(emulator: Emulator, request: Request, operation: Record, body: dict[str, Any],
                   status: int, *, async_operation: bool = True) -> Response:
    """201/200 answer of a PUT that continues as a long-running operation."""
    return JSONResponse(body, status_code=status,
                        headers=polling_headers(emulator, request, operation, async_operation=async_operation))


def accepted(emulator: Emulator, request: Request, operation: Record, *, async_operation: bool = True) -> Response:
    """202 answer of a DELETE or POST action that continues as a long-running operation."""
    return Response(status_code=202,
                    headers=polling_headers(emulator, request, operation, async_operation=async_operation))


def check_name_request(body: dict[str, Any], resource_type: str) -> str:
    """The `name` of a checkNameAvailability request whose `type` must be `resource_type`."""
    name = body.get("name")
    if not isinstance(name, str):
        raise invalid_parameter("name", "The 'name' property is required.")
    requested = body.get("type")
    if requested is not None and str(requested).lower() != resource_type.lower():
        raise invalid_parameter("type", f"The 'type' property must be '{resource_type}'.")
    return name
