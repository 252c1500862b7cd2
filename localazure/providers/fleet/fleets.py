"""fleets: hubless Fleet Manager resources (create/update and delete are long-running operations)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response

from localazure.arm import tracked
from localazure.arm.auth import get_caller
from localazure.arm.common import (
    RESOURCES,
    authorize_in_subscription,
    get_group,
    normalize_location,
    read_json_object,
    require_group_writable,
    require_subscription,
)
from localazure.arm.context import Emulator, get_emulator
from localazure.arm.errors import another_operation_in_progress, invalid_parameter
from localazure.arm.lro import OperationRun
from localazure.arm.rbac import Principal
from localazure.arm.store import Record
from localazure.providers.fleet.engine import engine_of
from localazure.providers.fleet.resources import (
    FLEET_NAME,
    FLEET_PATH,
    FLEET_TYPE,
    accepted,
    accepted_write,
    action,
    check_etag,
    check_name,
    finish_delete,
    finish_write,
    fleet_resource_id,
    load,
    mark_modified,
    new_etag,
    operation_status_id,
    properties_of,
    require,
    set_state,
    start_operation,
    system_data,
    tags_of,
)

router = APIRouter()


def _check_identity(identity: Any) -> dict[str, Any] | None:
    if identity is None:
        return None
    if not isinstance(identity, dict) or identity.get("type") not in ("None", "SystemAssigned", "UserAssigned",
                                                                        "SystemAssigned, UserAssigned"):
        raise invalid_parameter("identity.type", "identity.type must be None, SystemAssigned, UserAssigned or "
                                "'SystemAssigned, UserAssigned'.")
    return dict(identity)


@router.put(FLEET_PATH)
async def create_or_update_fleet(
    subscription_id: str, group: str, fleet: str, request: Request,
    emulator: Emulator = Depends(get_emulator), caller: Principal = Depends(get_caller),
) -> Response:
    """Create (201) or update (200) a fleet; provisioning continues as a long-running operation."""
    require_subscription(emulator, subscription_id)
    check_name(fleet, FLEET_NAME, "fleet")
    fleet_id = fleet_resource_id(emulator, group, fleet)
    emulator.rbac.authorize(caller, action(FLEET_TYPE, "write"), fleet_id)
    body = await read_json_object(request)
    location = body.get("location")
    if not isinstance(location, str) or not location.strip():
        raise invalid_parameter("location", "The 'location' property is required for a fleet.")
    props = properties_of(body, required=False)
    if props.get("hubProfile") is not None:
        raise invalid_parameter("properties.hubProfile", "Local Azure serves hubless fleets only: omit hubProfile.")
    tags = tags_of(body.get("tags"))
    identity = _check_identity(body.get("identity"))
    with emulator.store.transaction():
        require_group_writable(emulator, group)
        existing = load(emulator, fleet_id, FLEET_TYPE)
        check_etag(request, existing)
        if existing is not None:
            running = emulator.operations.active_on(fleet_id)
            if running is not None and running["resourceId"].lower() == fleet_id.lower():
                raise another_operation_in_progress(fleet_id, running["kind"])
            if normalize_location(location) != existing["body"]["location"]:
                raise invalid_parameter("location", f"The location of fleet '{fleet}' cannot be changed from "
                                        f"'{existing['body']['location']}'.")
        stored: dict[str, Any] = {
            "id": fleet_id,
            "name": fleet,
            "type": FLEET_TYPE,
            "location": normalize_location(location),
            "tags": tags,
            "eTag": new_etag(),
            "systemData": system_data(caller, existing["body"]["systemData"] if existing else None),
            "properties": {
                "provisioningState": "Updating" if existing else "Creating",
                "status": {"lastOperationId": None, "lastOperationError": None},
            },
        }
        if identity is not None:
            stored["identity"] = identity
        emulator.store.put(RESOURCES, fleet_id, {"body": stored, "internal": {}})
        op = start_operation(
            emulator, kind="fleet.update" if existing else "fleet.create", resource_id=fleet_id,
            location=stored["location"], work=lambda run: finish_write(emulator, fleet_id, run),
            on_failure=lambda error: set_state(emulator, fleet_id, "Failed", error),
        )
        stored["properties"]["status"]["lastOperationId"] = operation_status_id(emulator, op)
        emulator.store.update(RESOURCES, fleet_id, lambda r: r["body"]["properties"]["status"].update(
            lastOperationId=stored["properties"]["status"]["lastOperationId"]))
    return accepted_write(emulator, request, op, stored, 200 if existing else 201)


tracked.add_reads(router, FLEET_TYPE, FLEET_PATH, what="fleet", plural="Fleets", item_param="fleet")


@router.patch(FLEET_PATH)
async def update_fleet(
    subscription_id: str, group: str, fleet: str, request: Request,
    emulator: Emulator = Depends(get_emulator), caller: Principal = Depends(get_caller),
) -> Response:
    """Update tags / identity of a fleet (answered at once: 200 with the resource, Succeeded)."""
    fleet_id = authorize_in_subscription(emulator, caller, subscription_id, action(FLEET_TYPE, "write"),
                                         fleet_resource_id(emulator, group, fleet))
    patch = await read_json_object(request)
    with emulator.store.transaction():
        require_group_writable(emulator, group)
        record = require(emulator, fleet_id, FLEET_TYPE, group)
        check_etag(request, record)
        tags = tags_of(patch["tags"]) if "tags" in patch else None
        identity = _check_identity(patch.get("identity"))

        def change(stored: Record) -> None:
            body = stored["body"]
            if tags is not None:
                body["tags"] = tags
            if identity is not None:
                body["identity"] = identity
            mark_modified(body, caller)

        updated = emulator.store.update(RESOURCES, fleet_id, change)
    assert updated is not None
    return JSONResponse(updated["body"], status_code=200)


@router.delete(FLEET_PATH)
def delete_fleet(
    subscription_id: str, group: str, fleet: str, request: Request,
    emulator: Emulator = Depends(get_emulator), caller: Principal = Depends(get_caller),
) -> Response:
    """Delete a fleet with its members, strategies, runs and gates (202, long-running); 204 if absent."""
    fleet_id = authorize_in_subscription(emulator, caller, subscription_id, action(FLEET_TYPE, "delete"),
                                         fleet_resource_id(emulator, group, fleet))
    with emulator.store.transaction():
        get_group(emulator, group)
        record = load(emulator, fleet_id, FLEET_TYPE)
        if record is None:
            return Response(status_code=204)
        check_etag(request, record)
        set_state(emulator, fleet_id, "Deleting")
        op = start_operation(
            emulator, kind="fleet.delete", resource_id=fleet_id, location=record["body"]["location"],
            work=lambda run: _delete_fleet(emulator, fleet_id, run),
            on_failure=lambda error: set_state(emulator, fleet_id, "Failed", error),
        )
    return accepted(emulator, request, op)


def _delete_fleet(emulator: Emulator, fleet_id: str, run: OperationRun) -> None:
    engine_of(emulator).forget_under(fleet_id)
    finish_delete(emulator, fleet_id, run)
