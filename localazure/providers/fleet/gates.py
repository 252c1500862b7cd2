"""fleets/gates: approval gates the update-run engine creates; an approver PATCHes one to Completed."""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response

from localazure.arm.auth import get_caller
from localazure.arm.common import RESOURCES, read_json_object
from localazure.arm.context import Emulator, get_emulator
from localazure.arm.errors import ArmError, invalid_parameter
from localazure.arm.rbac import Principal
from localazure.arm.store import Record
from localazure.providers.fleet.engine import engine_of
from localazure.providers.fleet.resources import (
    FLEET_PATH,
    GATE_TYPE,
    add_child_reads,
    authorize_child,
    check_etag,
    list_children,
    mark_modified,
    properties_of,
    require,
)

router = APIRouter()

GATE_PATH = FLEET_PATH + "/gates/{gate}"


add_child_reads(router, GATE_TYPE, "gate", what="gate", plural="Gates", with_list=False)

# `$filter` Fleet accepts on gates: `properties/state eq '<state>'`.
STATE_FILTER = re.compile(r"^\s*properties/state\s+eq\s+'([^']*)'\s*$", re.IGNORECASE)


@router.get(FLEET_PATH + "/gates")
def list_gates(
    subscription_id: str, group: str, fleet: str, request: Request,
    emulator: Emulator = Depends(get_emulator), caller: Principal = Depends(get_caller),
) -> dict[str, Any]:
    """Gates of a fleet (of every update run); `$filter=properties/state eq '<state>'` and `$top` honoured."""
    answer = list_children(emulator, caller, subscription_id, group, fleet, GATE_TYPE)
    wanted = request.query_params.get("$filter")
    if wanted:
        match = STATE_FILTER.match(wanted)
        if match is None:
            raise invalid_parameter("$filter", f"The filter '{wanted}' is not supported; use "
                                    "properties/state eq '<state>'.")
        answer["value"] = [gate for gate in answer["value"]
                           if str(gate["properties"].get("state", "")).lower() == match.group(1).lower()]
    top = request.query_params.get("$top")
    if top and top.isdigit():
        answer["value"] = answer["value"][: int(top)]
    return answer


@router.patch(GATE_PATH)
async def update_gate(
    subscription_id: str, group: str, fleet: str, gate: str, request: Request,
    emulator: Emulator = Depends(get_emulator), caller: Principal = Depends(get_caller),
) -> Response:
    """Complete a Pending gate (the only transition a caller may make); completing it again changes nothing."""
    _, gate_id = authorize_child(emulator, caller, subscription_id, group, fleet, GATE_TYPE, gate, "write")
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
                mark_modified(body, caller)

        updated = emulator.store.update(RESOURCES, gate_id, complete)
    assert updated is not None
    engine_of(emulator).wake(updated["body"]["properties"]["target"]["id"])
    return JSONResponse(updated["body"], status_code=200)
