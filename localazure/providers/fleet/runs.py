"""fleets/updateRuns: validation, the run's initial status, and the start / stop / skip actions."""

from __future__ import annotations

import copy
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from localazure.arm.auth import get_caller
from localazure.arm.common import RESOURCES, read_json_object, require_group_writable
from localazure.arm.context import Emulator, get_emulator
from localazure.arm.errors import ArmError, invalid_parameter
from localazure.arm.lro import OperationRun
from localazure.arm.rbac import Principal
from localazure.arm.store import Record
from localazure.providers.fleet.engine import ACTIVE, TERMINAL, engine_of, gates_of_run
from localazure.providers.fleet.resources import (
    FLEET_PATH,
    MEMBER_TYPE,
    RUN_TYPE,
    STRATEGY_TYPE,
    accepted,
    accepted_write,
    add_child_reads,
    authorize_child,
    check_etag,
    children,
    delete_child,
    delete_records,
    load,
    new_etag,
    properties_of,
    require,
    start_operation,
    system_data,
)
from localazure.providers.fleet.resources import set_state as set_provisioning_state
from localazure.providers.fleet.strategies import concurrency_limit, validate_strategy

router = APIRouter()

RUN_PATH = FLEET_PATH + "/updateRuns/{run}"
UPGRADE_TYPES = ("Full", "ControlPlaneOnly", "NodeImageOnly")
NODE_IMAGE_TYPES = ("Latest", "Consistent", "Custom")
SKIP_TYPES = ("Member", "Group", "Stage", "AfterStageWait")
DEFAULT_NAME = "default"


def _choice(value: Any, choices: tuple[str, ...], prop: str) -> str:
    chosen = next((c for c in choices if isinstance(value, str) and value.lower() == c.lower()), None)
    if chosen is None:
        raise invalid_parameter(prop, f"{value!r} is not allowed; use one of {', '.join(choices)}.")
    return chosen


def validate_cluster_update(update: Any) -> dict[str, Any]:
    """Check managedClusterUpdate with Azure's rules on kubernetesVersion per upgrade type; returns a clean copy."""
    prop = "properties.managedClusterUpdate"
    if not isinstance(update, dict) or not isinstance(update.get("upgrade"), dict):
        raise invalid_parameter(f"{prop}.upgrade", "managedClusterUpdate.upgrade (type and kubernetesVersion) is "
                                "required.")
    upgrade = update["upgrade"]
    kind = _choice(upgrade.get("type"), UPGRADE_TYPES, f"{prop}.upgrade.type")
    version = upgrade.get("kubernetesVersion")
    version_prop = f"{prop}.upgrade.kubernetesVersion"
    if kind == "NodeImageOnly" and version not in (None, ""):
        raise invalid_parameter(version_prop, "kubernetesVersion must not be set when upgrade type is "
                                "NodeImageOnly (only node images change).")
    if kind != "NodeImageOnly" and (not isinstance(version, str) or not version.strip()):
        raise invalid_parameter(version_prop, f"kubernetesVersion is required when upgrade type is {kind}.")
    clean: dict[str, Any] = {"upgrade": {"type": kind}}
    if kind != "NodeImageOnly":
        clean["upgrade"]["kubernetesVersion"] = str(version).strip().lstrip("v")
    selection = update.get("nodeImageSelection")
    if selection is not None:
        if not isinstance(selection, dict):
            raise invalid_parameter(f"{prop}.nodeImageSelection", "nodeImageSelection must be an object.")
        selection_type = _choice(selection.get("type"), NODE_IMAGE_TYPES, f"{prop}.nodeImageSelection.type")
        custom = selection.get("customNodeImageVersions")
        custom_prop = f"{prop}.nodeImageSelection.customNodeImageVersions"
        if selection_type == "Custom":
            if not isinstance(custom, list) or not custom or not all(
                    isinstance(v, dict) and isinstance(v.get("version"), str) for v in custom):
                raise invalid_parameter(custom_prop, "customNodeImageVersions ([{version}]) is required when the "
                                        "node image selection type is Custom.")
            clean["nodeImageSelection"] = {"type": "Custom",
                                           "customNodeImageVersions": [{"version": v["version"]} for v in custom]}
        else:
            if custom:
                raise invalid_parameter(custom_prop, "customNodeImageVersions must be empty unless the node image "
                                        "selection type is Custom.")
            clean["nodeImageSelection"] = {"type": selection_type}
    return clean


def _not_started() -> dict[str, Any]:
    return {"state": "NotStarted"}


def _gate_statuses(gates: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    return [{"displayName": g.get("displayName"), "gateId": None, "status": _not_started()} for g in gates or []]


def initial_status(strategy: dict[str, Any] | None, members: list[dict[str, Any]]) -> dict[str, Any]:
    """The run status at creation: every stage, group, member, gate and wait NotStarted."""
    groups_of: dict[str, list[dict[str, Any]]] = {}
    stages: list[dict[str, Any]]
    if strategy is None:
        groups_of[DEFAULT_NAME] = members
        stages = [{"name": DEFAULT_NAME, "groups": [{"name": DEFAULT_NAME}]}]
    else:
        for member in members:
            group = member["properties"].get("group")
            if group:
                groups_of.setdefault(group.lower(), []).append(member)
        stages = strategy["stages"]
    stage_statuses = []
    for stage in stages:
        in_stage = sum(len(groups_of.get(g["name"].lower(), [])) for g in stage["groups"])
        stage_limit = concurrency_limit(stage.get("maxConcurrency"), in_stage, in_stage)
        group_statuses = []
        for group in stage["groups"]:
            group_members = groups_of.get(group["name"].lower(), [])
            group_limit = min(concurrency_limit(group.get("maxConcurrency"), len(group_members), 1), stage_limit)
            group_statuses.append({
                "name": group["name"],
                "status": _not_started(),
                "maxConcurrency": max(1, group_limit),
                "members": [{"name": m["name"], "clusterResourceId": m["properties"]["clusterResourceId"],
                             "status": _not_started()} for m in group_members],
                "beforeGates": _gate_statuses(group.get("beforeGates")),
                "afterGates": _gate_statuses(group.get("afterGates")),
            })
        stage_statuses.append({
            "name": stage["name"],
            "status": _not_started(),
            "maxConcurrency": max(1, stage_limit),
            "groups": group_statuses,
            "beforeGates": _gate_statuses(stage.get("beforeGates")),
            "afterGates": _gate_statuses(stage.get("afterGates")),
            "afterStageWaitStatus": {"status": _not_started(),
                                     "waitDurationInSeconds": int(stage.get("afterStageWaitInSeconds") or 0)},
        })
    return {"status": _not_started(), "stages": stage_statuses, "nodeImageSelection": None}


def _members_for(emulator: Emulator, fleet_id: str, strategy: dict[str, Any] | None) -> list[dict[str, Any]]:
    members = [r["body"] for r in children(emulator, fleet_id, MEMBER_TYPE)]
    if strategy is None:
        if not members:
            raise ArmError(400, "NoFleetMembers", "The fleet has no members to update.")
        return members
    groups = {m["properties"].get("group", "").lower() for m in members if m["properties"].get("group")}
    for s_index, stage in enumerate(strategy["stages"]):
        for g_index, group in enumerate(stage["groups"]):
            if group["name"].lower() not in groups:
                raise invalid_parameter(
                    f"properties.strategy.stages[{s_index}].groups[{g_index}].name",
                    f"Update group '{group['name']}' has no fleet members: a group must match the group of at least "
                    "one member.")
    return members


def _resolve_strategy(emulator: Emulator, fleet_id: str, props: dict[str, Any]) -> tuple[dict[str, Any] | None,
                                                                                      str | None]:
    strategy_id = props.get("updateStrategyId")
    inline = props.get("strategy")
    if strategy_id and inline is not None:
        raise invalid_parameter("properties.updateStrategyId", "Set either updateStrategyId or strategy, not both.")
    if strategy_id:
        if not isinstance(strategy_id, str) or not strategy_id.lower().startswith(fleet_id.lower() + "/"):
            raise invalid_parameter("properties.updateStrategyId", f"'{strategy_id}' is not an update strategy of "
                                    "this fleet.")
        record = load(emulator, strategy_id, STRATEGY_TYPE)
        if record is None:
            raise invalid_parameter("properties.updateStrategyId", f"Update strategy '{strategy_id}' does not "
                                    "exist.")
        return copy.deepcopy(record["body"]["properties"]["strategy"]), record["body"]["id"]
    if inline is None:
        return None, None
    return validate_strategy(inline, "properties.strategy"), None


@router.put(RUN_PATH)
async def create_or_update_run(
    subscription_id: str, group: str, fleet: str, run: str, request: Request,
    emulator: Emulator = Depends(get_emulator), caller: Principal = Depends(get_caller),
) -> Response:
    """Create (201) or, until it starts, replace (200) an update run; long-running operation."""
    fleet_record, run_id = authorize_child(emulator, caller, subscription_id, group, fleet, RUN_TYPE, run, "write",
                                           new_name_of="update run")
    fleet_id = fleet_record["body"]["id"]
    props = properties_of(await read_json_object(request))
    cluster_update = validate_cluster_update(props.get("managedClusterUpdate"))
    with emulator.store.transaction():
        require_group_writable(emulator, group)
        existing = load(emulator, run_id, RUN_TYPE)
        check_etag(request, existing)
        if existing is not None and existing["body"]["properties"]["status"]["status"]["state"] != "NotStarted":
            raise ArmError(409, "UpdateRunAlreadyStarted", f"Update run '{run}' has already started; its strategy "
                           "and managedClusterUpdate can only change before it starts.")
        strategy, strategy_id = _resolve_strategy(emulator, fleet_id, props)
        members = _members_for(emulator, fleet_id, strategy)
        properties: dict[str, Any] = {
            "provisioningState": "Succeeded",
            "managedClusterUpdate": cluster_update,
            "status": initial_status(strategy, members),
        }
        if strategy_id:
            properties["updateStrategyId"] = strategy_id
        if strategy is not None:
            properties["strategy"] = strategy
        stored = {
            "id": run_id,
            "name": run,
            "type": RUN_TYPE,
            "eTag": new_etag(),
            "systemData": system_data(caller, existing["body"]["systemData"] if existing else None),
            "properties": properties,
        }
        emulator.store.put(RESOURCES, run_id, {"body": stored, "internal": {"stopRequested": False}})
        op = start_operation(emulator, kind="fleet.updaterun.write", resource_id=run_id,
                             location=fleet_record["body"]["location"], work=lambda r: r.pace(),
                             on_failure=lambda error: set_provisioning_state(emulator, run_id, "Failed", error),
                             on_interrupt="Failed")
    return accepted_write(emulator, request, op, stored, 200 if existing else 201)


def _run_record(emulator: Emulator, subscription_id: str, group: str, fleet: str, run: str,
                caller: Principal, verb: str) -> tuple[Record, Record]:
    fleet_record, run_id = authorize_child(emulator, caller, subscription_id, group, fleet, RUN_TYPE, run, verb)
    return fleet_record, require(emulator, run_id, RUN_TYPE, group)


add_child_reads(router, RUN_TYPE, "run", what="update run with its live status", plural="Update runs")


@router.delete(RUN_PATH)
def delete_run(
    subscription_id: str, group: str, fleet: str, run: str, request: Request,
    emulator: Emulator = Depends(get_emulator), caller: Principal = Depends(get_caller),
) -> Response:
    """Delete an update run that is not running, with its gates (202, long-running); 204 if absent."""
    fleet_record, run_id = authorize_child(emulator, caller, subscription_id, group, fleet, RUN_TYPE, run, "delete")

    def refuse_active(record: Record) -> None:
        state = record["body"]["properties"]["status"]["status"]["state"]
        if state in ACTIVE:
            raise ArmError(409, "UpdateRunInProgress", f"Update run '{run}' is {state}; stop it before deleting it.")

    return delete_child(emulator, request, fleet_record, run_id, RUN_TYPE, kind="fleet.updaterun.delete",
                        work=lambda r: _delete_run(emulator, run_id, r), refuse=refuse_active)


def _delete_run(emulator: Emulator, run_id: str, run: OperationRun) -> None:
    run.pace()
    engine_of(emulator).forget_under(run_id)
    with emulator.store.transaction():
        for gate in gates_of_run(emulator, run_id):
            delete_records(emulator, gate["body"]["id"])
        delete_records(emulator, run_id)


def _action_answer(emulator: Emulator, request: Request, fleet_record: Record, run_id: str, kind: str) -> Response:
    op = start_operation(emulator, kind=kind, resource_id=run_id, location=fleet_record["body"]["location"],
                         work=lambda r: r.pace(), result_resource_id=run_id)
    return accepted(emulator, request, op)


@router.post(RUN_PATH + "/start")
def start_run(
    subscription_id: str, group: str, fleet: str, run: str, request: Request,
    emulator: Emulator = Depends(get_emulator), caller: Principal = Depends(get_caller),
) -> Response:
    """Start (or resume a Stopped) update run; starting a running run changes nothing."""
    fleet_record, record = _run_record(emulator, subscription_id, group, fleet, run, caller, "start/action")
    run_id = record["body"]["id"]
    check_etag(request, record)
    engine = engine_of(emulator)
    with emulator.store.transaction():
        record = require(emulator, run_id, RUN_TYPE, group)
        state = record["body"]["properties"]["status"]["status"]["state"]
        if state == "Stopping":
            raise ArmError(409, "UpdateRunStopping", f"Update run '{run}' is stopping; start it again once it is "
                           "Stopped.")
        if state in TERMINAL:
            raise ArmError(409, "UpdateRunFinished", f"Update run '{run}' has finished ({state}) and cannot be "
                           "started again; create a new update run.")
        if state in ("NotStarted", "Stopped"):
            engine.mark_started(run_id)
    engine.launch(run_id)
    return _action_answer(emulator, request, fleet_record, run_id, "fleet.updaterun.start")


@router.post(RUN_PATH + "/stop")
def stop_run(
    subscription_id: str, group: str, fleet: str, run: str, request: Request,
    emulator: Emulator = Depends(get_emulator), caller: Principal = Depends(get_caller),
) -> Response:
    """Stop a running update run: it becomes Stopping, then Stopped once the member upgrades in flight end."""
    fleet_record, record = _run_record(emulator, subscription_id, group, fleet, run, caller, "stop/action")
    run_id = record["body"]["id"]
    check_etag(request, record)
    with emulator.store.transaction():
        record = require(emulator, run_id, RUN_TYPE, group)
        state = record["body"]["properties"]["status"]["status"]["state"]
        if state in TERMINAL or state == "NotStarted":
            raise ArmError(409, "UpdateRunNotRunning", f"Update run '{run}' is {state}; only a running update run "
                           "can be stopped.")
        if state not in ("Stopping", "Stopped"):
            engine_of(emulator).request_stop(run_id)
    return _action_answer(emulator, request, fleet_record, run_id, "fleet.updaterun.stop")


def _skip_targets(body: dict[str, Any]) -> list[tuple[str, str]]:
    targets = body.get("targets")
    if not isinstance(targets, list) or not targets:
        raise invalid_parameter("targets", "Give at least one skip target ({type, name}).")
    result = []
    for index, target in enumerate(targets):
        if not isinstance(target, dict) or not isinstance(target.get("name"), str) or not target["name"]:
            raise invalid_parameter(f"targets[{index}].name", "Each skip target needs a name.")
        result.append((_choice(target.get("type"), SKIP_TYPES, f"targets[{index}].type"), target["name"]))
    return result


@router.post(RUN_PATH + "/skip")
async def skip_targets(
    subscription_id: str, group: str, fleet: str, run: str, request: Request,
    emulator: Emulator = Depends(get_emulator), caller: Principal = Depends(get_caller),
) -> Response:
    """Skip members, groups, stages or after-stage waits that have not run yet (a Pending gate's target too)."""
    fleet_record, record = _run_record(emulator, subscription_id, group, fleet, run, caller, "skip/action")
    run_id = record["body"]["id"]
    check_etag(request, record)
    targets = _skip_targets(await read_json_object(request))
    with emulator.store.transaction():
        record = require(emulator, run_id, RUN_TYPE, group)
        state = record["body"]["properties"]["status"]["status"]["state"]
        if state in TERMINAL:
            raise ArmError(409, "UpdateRunFinished", f"Update run '{run}' has finished ({state}); nothing can be "
                           "skipped.")
        engine_of(emulator).skip(run_id, targets)
    return _action_answer(emulator, request, fleet_record, run_id, "fleet.updaterun.skip")

