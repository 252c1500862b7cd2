"""registries: create (long-running, Azure-AsyncOperation), update, get, list, delete (Location),
checkNameAvailability, and the admin user's credentials."""

from __future__ import annotations

import re
import secrets
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response

from localazure.arm import tracked
from localazure.arm.auth import get_caller
from localazure.arm.common import (
    RESOURCES,
    get_group,
    normalize_location,
    read_json_object,
    require_group_writable,
    require_subscription,
)
from localazure.arm.context import Emulator, get_emulator
from localazure.arm.envelope import (
    accepted,
    accepted_write,
    check_etag,
    check_name_request,
    finish_delete,
    load,
    location_of,
    mark_modified,
    name_holder,
    new_etag,
    properties_of,
    set_provisioning_state,
    succeed_provisioning,
    system_data,
    tags_of,
)
from localazure.arm.errors import ArmError, another_operation_in_progress, invalid_parameter
from localazure.arm.ids import utc_now
from localazure.arm.providers import ResourceProvider
from localazure.arm.rbac import Principal
from localazure.arm.sealed import sealer_of
from localazure.arm.store import Record

NAMESPACE = "Microsoft.ContainerRegistry"
REGISTRY_TYPE = f"{NAMESPACE}/registries"
# azure-mgmt-containerregistry 15.x speaks 2025-11-01; the earlier GA versions share the registry shape; the
# Azure CLI 2.91 vendors 2026-09-01-preview (Azure must have served it, since az sends it).
API_VERSIONS = frozenset({"2026-09-01-preview", "2025-11-01", "2025-04-01", "2023-07-01", "2022-12-01",
                          "2021-09-01", "2019-05-01"})
SKUS = ("Basic", "Standard", "Premium")
NAME = re.compile(r"^[a-zA-Z0-9]{5,50}$")
NAME_RULE = "Registry names must be 5 to 50 characters long and contain only alphanumeric characters."
PASSWORD_NAMES = ("password", "password2")

REGISTRY_PATH = ("/subscriptions/{subscription_id}/resourceGroups/{group}/providers/Microsoft.ContainerRegistry"
                 "/registries/{name}")

router = APIRouter()


def _default_properties() -> dict[str, Any]:
    return {
        "adminUserEnabled": False,
        "networkRuleSet": {"defaultAction": "Allow", "ipRules": []},
        "policies": {
            "quarantinePolicy": {"status": "disabled"},
            "trustPolicy": {"type": "Notary", "status": "disabled"},
            "retentionPolicy": {"days": 7, "lastUpdatedTime": utc_now(), "status": "disabled"},
            "exportPolicy": {"status": "enabled"},
            "azureADAuthenticationAsArmPolicy": {"status": "enabled"},
        },
        "encryption": {"status": "disabled"},
        "status": None,
        "dataEndpointEnabled": False,
        "dataEndpointHostNames": [],
        "privateEndpointConnections": [],
        "publicNetworkAccess": "Enabled",
        "networkRuleBypassOptions": "AzureServices",
        "zoneRedundancy": "Disabled",
        "anonymousPullEnabled": False,
    }


# Properties a client may set (the rest is computed or fixed).
SETTABLE = frozenset({"adminUserEnabled", "networkRuleSet", "policies", "encryption", "dataEndpointEnabled",
                      "publicNetworkAccess", "networkRuleBypassOptions", "zoneRedundancy", "anonymousPullEnabled",
                      "roleAssignmentMode"})


def _sku(value: Any) -> dict[str, str]:
    name = value.get("name") if isinstance(value, dict) else None
    canonical = next((s for s in SKUS if isinstance(name, str) and s.lower() == name.lower()), None)
    if canonical is None:
        raise invalid_parameter("sku.name", f"The sku '{name}' is not valid: use Basic, Standard or Premium.")
    return {"name": canonical, "tier": canonical}


def _merge_properties(current: dict[str, Any], sent: dict[str, Any]) -> None:
    for key, value in sent.items():
        if key not in SETTABLE:
            continue
        if key == "adminUserEnabled" and not isinstance(value, bool):
            raise invalid_parameter("properties.adminUserEnabled", "adminUserEnabled must be true or false.")
        if key == "policies" and isinstance(value, dict):
            policies = current.setdefault("policies", {})
            for policy, settings in value.items():
                if isinstance(settings, dict):
                    policies[policy] = {**policies.get(policy, {}), **settings}
            continue
        current[key] = value


def _check_name(name: str) -> None:
    if not NAME.match(name):
        raise ArmError(400, "InvalidResourceName", f"The registry name '{name}' is invalid. {NAME_RULE}")


def _passwords(emulator: Emulator, record: Record) -> list[str]:
    sealer = sealer_of(emulator)
    rid = record["body"]["id"]
    return [sealer.open(sealed, f"{rid}/{label}") for label, sealed in zip(PASSWORD_NAMES,
                                                                          record["internal"]["passwords"], strict=True)]


def _new_password(emulator: Emulator, registry_id: str, label: str) -> str:
    return sealer_of(emulator).seal(secrets.token_urlsafe(39)[:52], f"{registry_id}/{label}")


@router.put(REGISTRY_PATH)
async def create_registry(
    subscription_id: str, group: str, name: str, request: Request,
    emulator: Emulator = Depends(get_emulator), caller: Principal = Depends(get_caller),
) -> Response:
    """Create (201) or replace (200) a registry; provisioning continues as a long-running operation."""
    require_subscription(emulator, subscription_id)
    _check_name(name)
    registry_id = tracked.authorized(emulator, caller, subscription_id, group, REGISTRY_TYPE, name, "write")
    body = await read_json_object(request)
    location = normalize_location(location_of(body, "registry"))
    sku = _sku(body.get("sku"))
    sent = properties_of(body, required=False)
    tags = tags_of(body.get("tags"))
    with emulator.store.transaction():
        require_group_writable(emulator, group)
        existing = load(emulator, registry_id, REGISTRY_TYPE)
        check_etag(request, existing)
        holder = name_holder(emulator, REGISTRY_TYPE, name)
        if holder is not None and holder["body"]["id"].lower() != registry_id.lower():
            raise ArmError(409, "AlreadyInUse", f"The registry DNS name {name.lower()}.azurecr.io is already in "
                           "use. You can check if the name is already claimed using the checkNameAvailability API.")
        if existing is not None:
            if emulator.operations.active_on(registry_id):
                raise another_operation_in_progress(registry_id, "registry")
            if location != existing["body"]["location"]:
                raise invalid_parameter("location", f"The location of registry '{name}' cannot be changed from "
                                        f"'{existing['body']['location']}'.")
            props = existing["body"]["properties"]
            internal = existing["internal"]
        else:
            props = {"loginServer": f"{name.lower()}.azurecr.io", "creationDate": utc_now(),
                     **_default_properties()}
            internal = {"passwords": [_new_password(emulator, registry_id, label) for label in PASSWORD_NAMES]}
        _merge_properties(props, sent)
        props["provisioningState"] = "Updating" if existing else "Creating"
        stored: dict[str, Any] = {
            "id": registry_id, "name": existing["body"]["name"] if existing else name, "type": REGISTRY_TYPE,
            "location": location, "tags": tags, "sku": sku,
            "systemData": system_data(caller, existing["body"].get("systemData") if existing else None,
                                      service=NAMESPACE),
            "properties": props,
        }
        if isinstance(body.get("identity"), dict):
            stored["identity"] = body["identity"]
        stored["eTag"] = new_etag()
        emulator.store.put(RESOURCES, registry_id, {"body": stored, "internal": internal})
        op = emulator.operations.start(
            kind="acr.update" if existing else "acr.create", namespace=NAMESPACE, location=location,
            resource_id=registry_id, work=lambda run: succeed_provisioning(emulator, registry_id, run),
            on_failure=lambda _error: set_provisioning_state(emulator, registry_id, "Failed"),
        )
    return accepted_write(emulator, request, op, stored, 200 if existing else 201)




tracked.add_reads(router, REGISTRY_TYPE, REGISTRY_PATH, what="registry", plural="Registries")


@router.patch(REGISTRY_PATH)
async def update_registry(
    subscription_id: str, group: str, name: str, request: Request,
    emulator: Emulator = Depends(get_emulator), caller: Principal = Depends(get_caller),
) -> Response:
    """Update sku, tags, identity or properties (answered at once: 200 with the registry)."""
    registry_id = tracked.authorized(emulator, caller, subscription_id, group, REGISTRY_TYPE, name, "write")
    patch = await read_json_object(request)
    sku = _sku(patch["sku"]) if "sku" in patch else None
    tags = tags_of(patch["tags"]) if "tags" in patch else None
    sent = properties_of(patch, required=False)
    with emulator.store.transaction():
        require_group_writable(emulator, group)
        check_etag(request, tracked.require(emulator, registry_id, REGISTRY_TYPE, group))
        if emulator.operations.active_on(registry_id):
            raise another_operation_in_progress(registry_id, "registry")

        def change(record: Record) -> None:
            body = record["body"]
            if sku is not None:
                body["sku"] = sku
            if tags is not None:
                body["tags"] = tags
            if isinstance(patch.get("identity"), dict):
                body["identity"] = patch["identity"]
            _merge_properties(body["properties"], sent)
            mark_modified(body, caller)

        updated = emulator.store.update(RESOURCES, registry_id, change)
    assert updated is not None
    return JSONResponse(updated["body"])


@router.delete(REGISTRY_PATH)
def delete_registry(
    subscription_id: str, group: str, name: str, request: Request,
    emulator: Emulator = Depends(get_emulator), caller: Principal = Depends(get_caller),
) -> Response:
    """Delete a registry: 202 with a Location to poll; 204 when there is none."""
    registry_id = tracked.authorized(emulator, caller, subscription_id, group, REGISTRY_TYPE, name, "delete")
    with emulator.store.transaction():
        get_group(emulator, group)
        record = load(emulator, registry_id, REGISTRY_TYPE)
        if record is None:
            return Response(status_code=204)
        check_etag(request, record)
        set_provisioning_state(emulator, registry_id, "Deleting")
        op = emulator.operations.start(
            kind="acr.delete", namespace=NAMESPACE, location=record["body"]["location"], resource_id=registry_id,
            work=lambda run: finish_delete(emulator, registry_id, run),
            on_failure=lambda _error: set_provisioning_state(emulator, registry_id, "Failed"),
        )
    return accepted(emulator, request, op, async_operation=False)


@router.post("/subscriptions/{subscription_id}/providers/Microsoft.ContainerRegistry/checkNameAvailability")
async def check_name_availability(
    subscription_id: str, request: Request,
    emulator: Emulator = Depends(get_emulator), caller: Principal = Depends(get_caller),
) -> dict[str, Any]:
    """Whether a registry name is valid and free anywhere in local Azure."""
    require_subscription(emulator, subscription_id)
    emulator.rbac.authorize(caller, f"{NAMESPACE}/checkNameAvailability/read", emulator.subscription_path)
    name = check_name_request(await read_json_object(request), REGISTRY_TYPE)
    if not NAME.match(name):
        return {"nameAvailable": False, "reason": "Invalid", "message": NAME_RULE}
    if name_holder(emulator, REGISTRY_TYPE, name) is not None:
        return {"nameAvailable": False, "reason": "AlreadyExists",
                "message": f"The registry {name} is already in use."}
    return {"nameAvailable": True}


def _credentials(emulator: Emulator, record: Record) -> dict[str, Any]:
    if not record["body"]["properties"].get("adminUserEnabled"):
        raise ArmError(400, "AdminUserDisabled", f"The admin user of registry '{record['body']['name']}' is "
                       "disabled. Enable it (adminUserEnabled: true) to list or regenerate its credentials.")
    return {"username": record["body"]["name"],
            "passwords": [{"name": label, "value": value}
                          for label, value in zip(PASSWORD_NAMES, _passwords(emulator, record), strict=True)]}


@router.post(REGISTRY_PATH + "/listCredentials")
def list_credentials(
    subscription_id: str, group: str, name: str,
    emulator: Emulator = Depends(get_emulator), caller: Principal = Depends(get_caller),
) -> dict[str, Any]:
    """The admin user's name and passwords (400 while the admin user is disabled)."""
    return _credentials(emulator, tracked.read(emulator, caller, subscription_id, group, REGISTRY_TYPE, name,
                                               "listCredentials/action"))


@router.post(REGISTRY_PATH + "/regenerateCredential")
async def regenerate_credential(
    subscription_id: str, group: str, name: str, request: Request,
    emulator: Emulator = Depends(get_emulator), caller: Principal = Depends(get_caller),
) -> dict[str, Any]:
    """A new value for `password` or `password2`; answers with the credentials."""
    registry_id, label = await tracked.secret_to_regenerate(
        emulator, caller, subscription_id, group, REGISTRY_TYPE, name, request,
        action="regenerateCredential/action", field="name", choices=PASSWORD_NAMES, what="password name")
    with emulator.store.transaction():
        _credentials(emulator, tracked.in_group(emulator, registry_id, REGISTRY_TYPE, group))
        index = PASSWORD_NAMES.index(label)
        sealed = _new_password(emulator, registry_id, label)
        updated = emulator.store.update(RESOURCES, registry_id,
                                        lambda r: r["internal"]["passwords"].__setitem__(index, sealed))
    assert updated is not None
    return _credentials(emulator, updated)


provider = ResourceProvider(
    namespace=NAMESPACE,
    api_versions=API_VERSIONS,
    router=router,
    resource_types=("registries",),
    delete_group_contents=lambda emulator, group_id: tracked.delete_in_group(emulator, group_id, REGISTRY_TYPE),
    on_start=lambda emulator: tracked.fail_transitional(emulator, REGISTRY_TYPE),
)
