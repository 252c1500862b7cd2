"""fleets/autoUpgradeProfiles: which release channel a fleet follows automatically, with which strategy.

Create, replace, read, list and delete, as Azure serves them (writes are long-running operations). Local Azure
records the profile; it does not start update runs by itself when a channel releases a version (there are no
releases here): `generateUpdateRun` is not served.
"""

from __future__ import annotations

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
    FLEET_TYPE,
    STRATEGY_TYPE,
    accepted_write,
    authorize_child,
    check_etag,
    delete_child,
    finish_delete,
    finish_write,
    list_children,
    load,
    new_etag,
    properties_of,
    read_child,
    set_state,
    start_operation,
    system_data,
)

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
