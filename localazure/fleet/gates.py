"""fleets/gates: approval gates the update-run engine creates; an approver PATCHes one to Completed."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response

from localazure.arm.auth import get_caller
from localazure.arm.common import RESOURCES, read_json_object
from localazure.arm.context import Emulator, get_emulator
from localazure.arm.errors import ArmError, invalid_parameter
from localazure.arm.rbac import Principal
from localazure.arm.store import Record
from localazure.fleet.engine import engine_of
from localazure.fleet.resources import (
    FLEET_PATH,
    GATE_TYPE,
    action,
    check_etag,
    children,
    new_etag,
    properties_of,
    require,
    require_fleet,
    system_data,
)

router = APIRouter()

GATE_PATH = FLEET_PATH + "/gates/{gate}"


@router.get(GATE_PATH)
def get_gate(
    subscription_id: str, group: str, fleet: str, gate: str,
    emulator: Emulator = Depends(get_emulator), caller: Principal = Depends(get_caller),
) -> dict[str, Any]:
    """A gate."""
    fleet_record = require_fleet(emulator, subscription_id, group, fleet)
    gate_id = f"{fleet_record['body']['id']}/gates/{gate}"
    emulator.rbac.authorize(caller, action(GATE_TYPE, "read"), gate_id)
    body: dict[str, Any] = require(emulator, gate_id, GATE_TYPE, group)["body"]
    return body


@router.get(FLEET_PATH + "/gates")
def list_gates(
    subscription_id: str, group: str, fleet: str,
    emulator: Emulator = Depends(get_emulator), caller: Principal = Depends(get_caller),
) -> dict[str, Any]:
    """Gates of a fleet (of every update run)."""
    fleet_record = require_fleet(emulator, subscription_id, group, fleet)
    emulator.rbac.authorize(caller, action(GATE_TYPE, "read"), fleet_record["body"]["id"])
    return {"value": [r["body"] for r in children(emulator, fleet_record["body"]["id"], GATE_TYPE)]}


@router.patch(GATE_PATH)
async def update_gate(
    subscription_id: str, group: str, fleet: str, gate: str, request: Request,
    emulator: Emulator = Depends(get_emulator), caller: Principal = Depends(get_caller),
) -> Response:
    """Complete a Pending gate (the only transition a caller may make); completing it again changes nothing."""
    fleet_record = require_fleet(emulator, subscription_id, group, fleet)
    gate_id = f"{fleet_record['body']['id']}/gates/{gate}"
    emulator.rbac.authorize(caller, action(GATE_TYPE, "write"), gate_id)
    props = properties_of(await read_json_object(request))
    wanted = props.get("state")
    if not isinstance(wanted, str) or wanted.lower() != "completed":
        raise invalid_parameter("properties.state", f"A gate can only be set to Completed (asked: {wanted!r}); "
                                "Pending and Skipped are set by the update run.")
    with emulator.store.transaction():
        record = require(emulator, gate_id, GATE_TYPE, group)
        check_etag(request, record)
        current = record["body"]["properties"]["state"]
        if current == "Skipped":
            raise ArmError(400, "InvalidGateStateTransition", f"Gate '{gate}' was skipped with its update run target "
                           "and cannot be completed.")

        def complete(stored: Record) -> None:
            body = stored["body"]
            if body["properties"]["state"] != "Completed":
                body["properties"]["state"] = "Completed"
                body["eTag"] = new_etag()
                body["systemData"] = system_data(caller, body.get("systemData"))

        updated = emulator.store.update(RESOURCES, gate_id, complete)
    assert updated is not None
    engine_of(emulator).wake(updated["body"]["properties"]["target"]["id"])
    return JSONResponse(updated["body"], status_code=200)
