"""fleets/autoUpgradeProfiles: which release channel a fleet follows automatically, with which strategy.

Create, replace, read, list and delete, as Azure serves them (writes are long-running operations). Local Azure
records the profile; it does not start update runs by itself when a channel releases a version (there are no
releases here). `generateUpdateRun` (api-version 2025-03-01 and later) generates, as a long-running operation, the
update run the profile would start: the profile's strategy, the channel's target version among the versions AKS
offers, its node image selection. The run is left NotStarted; the operation's result is `{"id": <run id>}`'s
superset, the run itself.
"""

from __future__ import annotations

import copy
import uuid
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
from localazure.providers.aks import aks_of
from localazure.providers.fleet.resources import (
    FLEET_PATH,
    FLEET_TYPE,
    MEMBER_TYPE,
    RUN_TYPE,
    STRATEGY_TYPE,
    accepted,
    accepted_write,
    authorize_child,
    check_etag,
    children,
    delete_child,
    finish_delete,
    finish_write,
    list_children,
    load,
    new_etag,
    properties_of,
    read_child,
    require,
    set_state,
    start_operation,
    system_data,
)
from localazure.providers.fleet.runs import initial_status

router = APIRouter()

PROFILE_TYPE = f"{FLEET_TYPE}/autoUpgradeProfiles"
PROFILE_PATH = FLEET_PATH + "/autoUpgradeProfiles/{profile}"
CHANNELS = ("Stable", "Rapid", "NodeImage", "TargetKubernetesVersion")
NODE_IMAGE_SELECTIONS = ("Latest", "Consistent")


def _choice(value: Any, allowed: tuple[str, ...], prop: str) -> str:
    match = next((a for a in allowed if isinstance(value, str) and value.lower() == a.lower()), None)
    if match is None:
        raise invalid_parameter(prop, f"{prop} {value!r} must be one of {', '.join(allowed)}.")
    return match


def validate_profile(emulator: Emulator, props: dict[str, Any], fleet_id: str) -> dict[str, Any]:
    """The properties a caller may set, checked: channel (required), updateStrategyId (a strategy of this fleet),
    nodeImageSelection, disabled, targetKubernetesVersion and longTermSupport (TargetKubernetesVersion only)."""
    channel = _choice(props.get("channel"), CHANNELS, "properties.channel")
    clean: dict[str, Any] = {"channel": channel}
    strategy_id = props.get("updateStrategyId")
    if strategy_id is not None:
        if not isinstance(strategy_id, str) or load(emulator, strategy_id, STRATEGY_TYPE) is None \
                or not strategy_id.lower().startswith(fleet_id.lower() + "/"):
            raise invalid_parameter("properties.updateStrategyId", f"Update strategy '{strategy_id}' does not exist "
                                    "in this fleet.")
        clean["updateStrategyId"] = strategy_id
    selection = props.get("nodeImageSelection")
    if selection is not None:
        if not isinstance(selection, dict):
            raise invalid_parameter("properties.nodeImageSelection", "nodeImageSelection must be an object.")
        clean["nodeImageSelection"] = {"type": _choice(selection.get("type"), NODE_IMAGE_SELECTIONS,
                                                       "properties.nodeImageSelection.type")}
    disabled = props.get("disabled", False)
    if not isinstance(disabled, bool):
        raise invalid_parameter("properties.disabled", "disabled must be true or false.")
    clean["disabled"] = disabled
    target = props.get("targetKubernetesVersion")
    if channel == "TargetKubernetesVersion":
        if not isinstance(target, str) or not target:
            raise invalid_parameter("properties.targetKubernetesVersion", "targetKubernetesVersion (a minor such as "
                                    "1.37) is required with channel TargetKubernetesVersion.")
        clean["targetKubernetesVersion"] = target
        clean["longTermSupport"] = bool(props.get("longTermSupport", False))
    elif target is not None:
        raise invalid_parameter("properties.targetKubernetesVersion", "targetKubernetesVersion is only allowed with "
                                "channel TargetKubernetesVersion.")
    return clean


@router.put(PROFILE_PATH)
async def create_or_update_profile(
    subscription_id: str, group: str, fleet: str, profile: str, request: Request,
    emulator: Emulator = Depends(get_emulator), caller: Principal = Depends(get_caller),
) -> Response:
    """Create (201) or replace (200) an auto-upgrade profile (long-running operation)."""
    fleet_record, profile_id = authorize_child(emulator, caller, subscription_id, group, fleet, PROFILE_TYPE,
                                               profile, "write", new_name_of="auto-upgrade profile")
    props = properties_of(await read_json_object(request))
    clean = validate_profile(emulator, props, fleet_record["body"]["id"])
    with emulator.store.transaction():
        require_group_writable(emulator, group)
        existing = load(emulator, profile_id, PROFILE_TYPE)
        check_etag(request, existing)
        stored = {
            "id": profile_id,
            "name": profile,
            "type": PROFILE_TYPE,
            "eTag": new_etag(),
            "systemData": system_data(caller, existing["body"]["systemData"] if existing else None),
            "properties": {"provisioningState": "Succeeded" if existing else "Creating", **clean,
                           "autoUpgradeProfileStatus": {"lastTriggerStatus": None, "lastTriggerError": None,
                                                        "lastTriggerUpgradeVersions": None,
                                                        "lastTriggeredAt": None}},
        }
        emulator.store.put(RESOURCES, profile_id, {"body": stored, "internal": {}})
        op = start_operation(emulator, kind="fleet.autoupgrade.write", resource_id=profile_id,
                             location=fleet_record["body"]["location"],
                             work=lambda run: finish_write(emulator, profile_id, run),
                             on_failure=lambda error: set_state(emulator, profile_id, "Failed", error),
                             on_interrupt="Failed")
    return accepted_write(emulator, request, op, stored, 200 if existing else 201)


@router.get(PROFILE_PATH)
def get_profile(
    subscription_id: str, group: str, fleet: str, profile: str,
    emulator: Emulator = Depends(get_emulator), caller: Principal = Depends(get_caller),
) -> dict[str, Any]:
    """An auto-upgrade profile."""
    return read_child(emulator, caller, subscription_id, group, fleet, PROFILE_TYPE, profile)


@router.get(FLEET_PATH + "/autoUpgradeProfiles")
def list_profiles(
    subscription_id: str, group: str, fleet: str,
    emulator: Emulator = Depends(get_emulator), caller: Principal = Depends(get_caller),
) -> dict[str, Any]:
    """Auto-upgrade profiles of a fleet."""
    return list_children(emulator, caller, subscription_id, group, fleet, PROFILE_TYPE)


@router.delete(PROFILE_PATH)
def delete_profile(
    subscription_id: str, group: str, fleet: str, profile: str, request: Request,
    emulator: Emulator = Depends(get_emulator), caller: Principal = Depends(get_caller),
) -> Response:
    """Delete an auto-upgrade profile; 204 if absent."""
    fleet_record, profile_id = authorize_child(emulator, caller, subscription_id, group, fleet, PROFILE_TYPE,
                                               profile, "delete")
    return delete_child(emulator, request, fleet_record, profile_id, PROFILE_TYPE, kind="fleet.autoupgrade.delete",
                        work=lambda run: finish_delete(emulator, profile_id, run))


# ---- generateUpdateRun ----------------------------------------------------------------------------------------


def _minor(version: str) -> tuple[int, int]:
    major, minor = version.lstrip("v").split(".")[:2]
    return int(major), int(minor)


def channel_version(channel: str, available: list[str], target: str | None) -> str:
    """The Kubernetes version a channel upgrades to, among the offered versions (ascending): Rapid the latest patch
    of the latest minor, Stable the latest patch of the minor before it (N-1), TargetKubernetesVersion the latest
    patch of the target minor."""
    minors = sorted({_minor(v) for v in available})
    if not minors:
        raise ArmError(409, "NoKubernetesVersions", "No Kubernetes version is offered to upgrade to.")
    if channel == "Rapid":
        wanted = minors[-1]
    elif channel == "Stable":
        wanted = minors[-2] if len(minors) > 1 else minors[-1]
    else:
        try:
            wanted = _minor(target or "")
        except ValueError as exc:
            raise invalid_parameter("properties.targetKubernetesVersion",
                                    f"targetKubernetesVersion {target!r} is not a minor version such as 1.37.") from exc
        if wanted not in minors:
            offered = ", ".join(f"{a}.{b}" for a, b in minors)
            raise ArmError(400, "InvalidTargetKubernetesVersion", f"Kubernetes {target} is not offered (offered "
                           f"minors: {offered}).")
    return [v for v in available if _minor(v) == wanted][-1]


def _generated_run(emulator: Emulator, fleet_id: str, profile: Record, run_id: str,
                   caller: Principal) -> dict[str, Any]:
    """The update run a profile generates: its strategy (or one stage of every member), its channel's upgrade."""
    props = profile["body"]["properties"]
    channel = props["channel"]
    if channel == "NodeImage":
        cluster_update: dict[str, Any] = {"upgrade": {"type": "NodeImageOnly"}}
    else:
        version = channel_version(channel, aks_of(emulator).available_versions(), props.get("targetKubernetesVersion"))
        cluster_update = {"upgrade": {"type": "Full", "kubernetesVersion": version}}
    if props.get("nodeImageSelection"):
        cluster_update["nodeImageSelection"] = copy.deepcopy(props["nodeImageSelection"])
    strategy: dict[str, Any] | None = None
    strategy_id = props.get("updateStrategyId")
    if strategy_id:
        record = load(emulator, strategy_id, STRATEGY_TYPE)
        if record is None:
            raise ArmError(409, "UpdateStrategyNotFound", f"The profile's update strategy '{strategy_id}' no longer "
                           "exists.")
        strategy = copy.deepcopy(record["body"]["properties"]["strategy"])
    members = [r["body"] for r in children(emulator, fleet_id, MEMBER_TYPE)]
    if not members:
        raise ArmError(400, "NoFleetMembers", "The fleet has no members to update.")
    if strategy is not None:
        grouped = {m["properties"].get("group", "").lower() for m in members if m["properties"].get("group")}
        empty = [g["name"] for stage in strategy["stages"] for g in stage["groups"] if g["name"].lower() not in grouped]
        if empty:
            raise ArmError(400, "InvalidUpdateStrategy", f"Update groups {', '.join(empty)} of the profile's strategy "
                           "have no fleet members.")
    properties: dict[str, Any] = {"provisioningState": "Succeeded", "managedClusterUpdate": cluster_update,
                                  "status": initial_status(strategy, members),
                                  "autoUpgradeProfileId": profile["body"]["id"]}
    if strategy_id:
        properties["updateStrategyId"] = strategy_id
    if strategy is not None:
        properties["strategy"] = strategy
    return {"id": run_id, "name": run_id.rsplit("/", 1)[1], "type": RUN_TYPE, "eTag": new_etag(),
            "systemData": system_data(caller, None), "properties": properties}


@router.post(PROFILE_PATH + "/generateUpdateRun")
def generate_update_run(
    subscription_id: str, group: str, fleet: str, profile: str, request: Request,
    emulator: Emulator = Depends(get_emulator), caller: Principal = Depends(get_caller),
) -> Response:
    """Generate the update run of an auto-upgrade profile: 202, long-running; its result is the run (`id`)."""
    fleet_record, profile_id = authorize_child(emulator, caller, subscription_id, group, fleet, PROFILE_TYPE,
                                               profile, "generateUpdateRun/action")
    fleet_id = fleet_record["body"]["id"]
    run_id = f"{fleet_id}/updateRuns/{profile[:41]}-{uuid.uuid4().hex[:8]}"
    emulator.rbac.authorize(caller, f"{RUN_TYPE}/write", run_id)
    with emulator.store.transaction():
        require_group_writable(emulator, group)
        record = require(emulator, profile_id, PROFILE_TYPE, group)
        run = _generated_run(emulator, fleet_id, record, run_id, caller)

        def work(operation: OperationRun) -> None:
            operation.pace()
            emulator.store.put(RESOURCES, run_id, {"body": run, "internal": {"stopRequested": False}})

        op = start_operation(emulator, kind="fleet.autoupgrade.generate", resource_id=profile_id,
                             location=fleet_record["body"]["location"], work=work, result_resource_id=run_id,
                             on_interrupt="Succeeded")
    return accepted(emulator, request, op)
