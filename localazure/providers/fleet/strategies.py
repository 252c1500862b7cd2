"""fleets/updateStrategies: reusable stage/group orderings with waits, concurrency limits and approval gates."""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from localazure.arm.auth import get_caller
from localazure.arm.common import RESOURCES, read_json_object, require_group_writable
from localazure.arm.context import Emulator, get_emulator
from localazure.arm.errors import invalid_parameter
from localazure.arm.rbac import Principal
from localazure.providers.fleet.resources import (
    FLEET_PATH,
    STRATEGY_TYPE,
    accepted_write,
    add_child_reads,
    authorize_child,
    check_etag,
    delete_child,
    finish_delete,
    finish_write,
    load,
    new_etag,
    properties_of,
    set_state,
    start_operation,
    system_data,
)

router = APIRouter()

STRATEGY_PATH = FLEET_PATH + "/updateStrategies/{strategy}"
STAGE_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_]{0,48}[A-Za-z0-9])?$")
MAX_AFTER_STAGE_WAIT = 3600
GATE_TYPES = ("Approval",)
CONCURRENCY = re.compile(r"^(\d+)(%?)$")


def _gates(value: Any, prop: str) -> list[dict[str, Any]] | None:
    if value is None:
        return None
    if not isinstance(value, list):
        raise invalid_parameter(prop, "Gates must be a list of {type, displayName} objects.")
    gates = []
    for index, gate in enumerate(value):
        where = f"{prop}[{index}]"
        if not isinstance(gate, dict):
            raise invalid_parameter(where, "A gate must be an object with 'type' (Approval) and 'displayName'.")
        kind = next((t for t in GATE_TYPES if str(gate.get("type", "")).lower() == t.lower()), None)
        if kind is None:
            raise invalid_parameter(f"{where}.type", f"Gate type {gate.get('type')!r} is not supported; "
                                    f"use one of {', '.join(GATE_TYPES)}.")
        display = gate.get("displayName")
        if display is not None and not isinstance(display, str):
            raise invalid_parameter(f"{where}.displayName", "displayName must be a string.")
        gates.append({"type": kind, **({"displayName": display} if display is not None else {})})
    return gates


def _concurrency(value: Any, prop: str) -> str | None:
    if value is None:
        return None
    match = CONCURRENCY.match(str(value).strip()) if isinstance(value, str) else None
    if match is None or int(match.group(1)) < 1 or (match.group(2) and int(match.group(1)) > 100):
        raise invalid_parameter(prop, f"maxConcurrency {value!r} must be a count such as \"3\" (at least 1) or a "
                                "percentage such as \"25%\" (1 to 100).")
    return str(value).strip()


def concurrency_limit(value: str | None, population: int, default: int) -> int:
    """The whole number of parallel upgrades a maxConcurrency string allows over `population` members."""
    if value is None:
        return max(1, default)
    match = CONCURRENCY.match(value)
    assert match is not None  # validated on write
    number = int(match.group(1))
    limit = population * number // 100 if match.group(2) else number
    return max(1, limit)


def validate_strategy(strategy: Any, prop: str) -> dict[str, Any]:
    """Check an UpdateRunStrategy (stage and group names unique, waits, gates, concurrency); returns a clean copy."""
    if not isinstance(strategy, dict):
        raise invalid_parameter(prop, "The strategy must be an object with a 'stages' list.")
    stages = strategy.get("stages")
    if not isinstance(stages, list) or not stages:
        raise invalid_parameter(f"{prop}.stages", "The strategy needs at least one stage.")
    stage_names: set[str] = set()
    group_names: set[str] = set()
    clean_stages = []
    for s_index, stage in enumerate(stages):
        where = f"{prop}.stages[{s_index}]"
        if not isinstance(stage, dict):
            raise invalid_parameter(where, "A stage must be an object.")
        name = stage.get("name")
        if not isinstance(name, str) or not STAGE_NAME.match(name):
            raise invalid_parameter(f"{where}.name", f"Stage name {name!r} must be 1-50 letters, digits, '-' or '_'.")
        if name.lower() in stage_names:
            raise invalid_parameter(f"{where}.name", f"Stage name '{name}' is used more than once.")
        stage_names.add(name.lower())
        groups = stage.get("groups")
        if not isinstance(groups, list) or not groups:
            raise invalid_parameter(f"{where}.groups", f"Stage '{name}' needs at least one group.")
        clean_groups = []
        for g_index, group in enumerate(groups):
            g_where = f"{where}.groups[{g_index}]"
            if not isinstance(group, dict) or not isinstance(group.get("name"), str) \
                    or not STAGE_NAME.match(group["name"]):
                raise invalid_parameter(f"{g_where}.name", "A group needs a name of 1-50 letters, digits, '-' or '_'.")
            if group["name"].lower() in group_names:
                raise invalid_parameter(f"{g_where}.name", f"Group '{group['name']}' appears more than once in the "
                                        "strategy; a group can be updated in one stage only.")
            group_names.add(group["name"].lower())
            clean_group: dict[str, Any] = {"name": group["name"]}
            for key, value in (("maxConcurrency", _concurrency(group.get("maxConcurrency"),
                                                               f"{g_where}.maxConcurrency")),
                               ("beforeGates", _gates(group.get("beforeGates"), f"{g_where}.beforeGates")),
                               ("afterGates", _gates(group.get("afterGates"), f"{g_where}.afterGates"))):
                if value is not None:
                    clean_group[key] = value
            clean_groups.append(clean_group)
        wait = stage.get("afterStageWaitInSeconds")
        if wait is not None and (not isinstance(wait, int) or isinstance(wait, bool)
                                 or wait < 0 or wait > MAX_AFTER_STAGE_WAIT):
            raise invalid_parameter(f"{where}.afterStageWaitInSeconds", f"afterStageWaitInSeconds {wait!r} must be "
                                    f"a whole number of seconds from 0 to {MAX_AFTER_STAGE_WAIT}.")
        clean_stage: dict[str, Any] = {"name": name, "groups": clean_groups}
        optional: tuple[tuple[str, Any], ...] = (("afterStageWaitInSeconds", wait),
                           ("maxConcurrency", _concurrency(stage.get("maxConcurrency"), f"{where}.maxConcurrency")),
                           ("beforeGates", _gates(stage.get("beforeGates"), f"{where}.beforeGates")),
                           ("afterGates", _gates(stage.get("afterGates"), f"{where}.afterGates")))
        for key, value in optional:
            if value is not None:
                clean_stage[key] = value
        clean_stages.append(clean_stage)
    return {"stages": clean_stages}


@router.put(STRATEGY_PATH)
async def create_or_update_strategy(
    subscription_id: str, group: str, fleet: str, strategy: str, request: Request,
    emulator: Emulator = Depends(get_emulator), caller: Principal = Depends(get_caller),
) -> Response:
    """Create (201) or replace (200) an update strategy (long-running operation)."""
    fleet_record, strategy_id = authorize_child(emulator, caller, subscription_id, group, fleet, STRATEGY_TYPE,
                                                strategy, "write", new_name_of="update strategy")
    body = await read_json_object(request)
    props = properties_of(body)
    clean = validate_strategy(props.get("strategy"), "properties.strategy")
    with emulator.store.transaction():
        require_group_writable(emulator, group)
        existing = load(emulator, strategy_id, STRATEGY_TYPE)
        check_etag(request, existing)
        stored = {
            "id": strategy_id,
            "name": strategy,
            "type": STRATEGY_TYPE,
            "eTag": new_etag(),
            "systemData": system_data(caller, existing["body"]["systemData"] if existing else None),
            "properties": {"provisioningState": "Succeeded" if existing else "Creating", "strategy": clean},
        }
        emulator.store.put(RESOURCES, strategy_id, {"body": stored, "internal": {}})
        op = start_operation(emulator, kind="fleet.strategy.write", resource_id=strategy_id,
                             location=fleet_record["body"]["location"],
                             work=lambda run: finish_write(emulator, strategy_id, run),
                             on_failure=lambda error: set_state(emulator, strategy_id, "Failed", error),
                             on_interrupt="Failed")
    return accepted_write(emulator, request, op, stored, 200 if existing else 201)


add_child_reads(router, STRATEGY_TYPE, "strategy", what="update strategy", plural="Update strategies")


@router.delete(STRATEGY_PATH)
def delete_strategy(
    subscription_id: str, group: str, fleet: str, strategy: str, request: Request,
    emulator: Emulator = Depends(get_emulator), caller: Principal = Depends(get_caller),
) -> Response:
    """Delete an update strategy (runs made from it keep their snapshot); 204 if absent."""
    fleet_record, strategy_id = authorize_child(emulator, caller, subscription_id, group, fleet, STRATEGY_TYPE,
                                                strategy, "delete")
    return delete_child(emulator, request, fleet_record, strategy_id, STRATEGY_TYPE, kind="fleet.strategy.delete",
                        work=lambda run: finish_delete(emulator, strategy_id, run))
