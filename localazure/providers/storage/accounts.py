"""storageAccounts: create (202 then polling, as Azure), get, update (PATCH), list, delete,
checkNameAvailability, listKeys and regenerateKey."""

from __future__ import annotations

import base64
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
    check_name_request,
    delete_records,
    load,
    location_of,
    mark_modified,
    name_holder,
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
from localazure.arm.subscriptions import LOCATIONS

NAMESPACE = "Microsoft.Storage"
ACCOUNT_TYPE = f"{NAMESPACE}/storageAccounts"
# azure-mgmt-storage 25.x speaks 2026-09-01; the earlier GA versions share the account shape; the Azure CLI
# 2.91 sends 2025-08-01.
API_VERSIONS = frozenset({"2026-09-01", "2025-08-01", "2025-06-01", "2025-01-01", "2024-01-01", "2023-05-01",
                          "2023-01-01", "2022-09-01", "2021-09-01"})
NAME = re.compile(r"^[a-z0-9]{3,24}$")
KINDS = ("Storage", "StorageV2", "BlobStorage", "FileStorage", "BlockBlobStorage")
SKUS = ("Standard_LRS", "Standard_GRS", "Standard_RAGRS", "Standard_ZRS", "Premium_LRS", "Premium_ZRS",
        "Standard_GZRS", "Standard_RAGZRS")
KEY_NAMES = ("key1", "key2")
SERVICES = ("blob", "queue", "table", "file", "dfs", "web")
# Properties a client may set; the rest (endpoints, states, times) is computed.
COMPUTED = frozenset({"provisioningState", "primaryEndpoints", "primaryLocation", "statusOfPrimary", "creationTime",
                      "keyCreationTime", "secondaryLocation", "statusOfSecondary"})

ACCOUNT_PATH = ("/subscriptions/{subscription_id}/resourceGroups/{group}/providers/Microsoft.Storage"
                "/storageAccounts/{name}")

router = APIRouter()


def _name_rule(name: str) -> str:
    return (f"{name} is not a valid storage account name. Storage account name must be between 3 and 24 characters "
            "in length and use numbers and lower-case letters only.")


def _sku(value: Any) -> dict[str, str]:
    name = value.get("name") if isinstance(value, dict) else None
    if name not in SKUS:
        raise invalid_parameter("sku.name", f"The sku '{name}' is not valid: use one of {', '.join(SKUS)}.")
    return {"name": name, "tier": name.split("_", 1)[0]}


def _kind(value: Any) -> str:
    if value not in KINDS:
        raise invalid_parameter("kind", f"The kind '{value}' is not valid: use one of {', '.join(KINDS)}.")
    return str(value)


def endpoints(emulator: Emulator, name: str) -> dict[str, str]:
    """Loopback, path-style service URLs on the emulator's port (no data plane answers there)."""
    return {service: f"{emulator.base_url}/storage/{name}/{service}/" for service in SERVICES}


def _default_properties(now: str) -> dict[str, Any]:
    enabled = {"keyType": "Account", "enabled": True, "lastEnabledTime": now}
    return {
        "supportsHttpsTrafficOnly": True,
        "minimumTlsVersion": "TLS1_2",
        "allowBlobPublicAccess": False,
        "encryption": {"services": {"blob": dict(enabled), "file": dict(enabled)}, "keySource": "Microsoft.Storage"},
        "networkAcls": {"bypass": "AzureServices", "virtualNetworkRules": [], "ipRules": [], "defaultAction": "Allow"},
    }


def _replication(props: dict[str, Any], sku: dict[str, str], location: str) -> None:
    """Geo-redundant SKUs replicate to the location's paired region, which Azure reports as the secondary."""
    pair = LOCATIONS.get(location, ("", "", ""))[2]
    if sku["name"].endswith(("GRS", "GZRS")) and pair:
        props.update(secondaryLocation=pair, statusOfSecondary="available")
    else:
        props.pop("secondaryLocation", None)
        props.pop("statusOfSecondary", None)


def _keys(emulator: Emulator, record: Record) -> dict[str, Any]:
    sealer = sealer_of(emulator)
    rid = record["body"]["id"]
    created = record["body"]["properties"]["keyCreationTime"]
    return {"keys": [{"keyName": key, "value": sealer.open(record["internal"]["keys"][i], f"{rid}/{key}"),
                      "permissions": "FULL", "creationTime": created[key]}
                     for i, key in enumerate(KEY_NAMES)]}


def _new_key(emulator: Emulator, account_id: str, key: str) -> str:
    return sealer_of(emulator).seal(base64.b64encode(secrets.token_bytes(64)).decode(), f"{account_id}/{key}")


@router.put(ACCOUNT_PATH)
async def create_account(
    subscription_id: str, group: str, name: str, request: Request,
    emulator: Emulator = Depends(get_emulator), caller: Principal = Depends(get_caller),
) -> Response:
    """Create an account (202, then poll the Location) or update an existing one with the same location (200)."""
    require_subscription(emulator, subscription_id)
    if not NAME.match(name):
        raise ArmError(400, "AccountNameInvalid", _name_rule(name))
    account_id = tracked.authorized(emulator, caller, subscription_id, group, ACCOUNT_TYPE, name, "write")
    body = await read_json_object(request)
    location = normalize_location(location_of(body, "storage account"))
    sku, kind = _sku(body.get("sku")), _kind(body.get("kind"))
    sent = {k: v for k, v in properties_of(body, required=False).items() if k not in COMPUTED}
    tags = tags_of(body.get("tags"))
    with emulator.store.transaction():
        require_group_writable(emulator, group)
        holder = name_holder(emulator, ACCOUNT_TYPE, name)
        if holder is not None and holder["body"]["id"].lower() != account_id.lower():
            raise ArmError(409, "StorageAccountAlreadyTaken", f"The storage account named {name} is already taken.")
        existing = load(emulator, account_id, ACCOUNT_TYPE)
        if existing is not None:
            if emulator.operations.active_on(account_id):
                raise another_operation_in_progress(account_id, "storage account")
            if location != existing["body"]["location"]:
                raise ArmError(409, "StorageAccountAlreadyExists", f"The storage account named {name} already "
                               f"exists in location '{existing['body']['location']}'.")

            def change(record: Record) -> None:
                record["body"].update(sku=sku, kind=kind, tags=tags)
                record["body"]["properties"].update(sent)
                _replication(record["body"]["properties"], sku, location)
                mark_modified(record["body"], caller)

            updated = emulator.store.update(RESOURCES, account_id, change)
            assert updated is not None
            return JSONResponse(updated["body"])
        now = utc_now()
        props: dict[str, Any] = {**_default_properties(now), **sent}
        if kind in ("StorageV2", "BlobStorage") and "accessTier" not in props:
            props["accessTier"] = "Hot"
        props.update(provisioningState="Creating", creationTime=now, primaryLocation=location,
                     statusOfPrimary="available", primaryEndpoints=endpoints(emulator, name),
                     keyCreationTime={key: now for key in KEY_NAMES})
        _replication(props, sku, location)
        stored: dict[str, Any] = {
            "id": account_id, "name": name, "type": ACCOUNT_TYPE, "location": location, "tags": tags,
            "sku": sku, "kind": kind, "properties": props,
            "systemData": system_data(caller, service=NAMESPACE),
        }
        if isinstance(body.get("identity"), dict):
            stored["identity"] = body["identity"]
        internal = {"keys": [_new_key(emulator, account_id, key) for key in KEY_NAMES]}
        emulator.store.put(RESOURCES, account_id, {"body": stored, "internal": internal})
        op = emulator.operations.start(
            kind="storage.create", namespace=NAMESPACE, location=location, resource_id=account_id,
            result_resource_id=account_id, work=lambda run: succeed_provisioning(emulator, account_id, run),
            on_failure=lambda _error: set_provisioning_state(emulator, account_id, "Failed"),
        )
    return accepted(emulator, request, op, async_operation=False)



tracked.add_reads(router, ACCOUNT_TYPE, ACCOUNT_PATH, what="storage account", plural="Accounts")


@router.patch(ACCOUNT_PATH)
async def update_account(
    subscription_id: str, group: str, name: str, request: Request,
    emulator: Emulator = Depends(get_emulator), caller: Principal = Depends(get_caller),
) -> dict[str, Any]:
    """Update sku, kind, tags, identity or properties (200 with the account)."""
    account_id = tracked.authorized(emulator, caller, subscription_id, group, ACCOUNT_TYPE, name, "write")
    patch = await read_json_object(request)
    sku = _sku(patch["sku"]) if "sku" in patch else None
    kind = _kind(patch["kind"]) if "kind" in patch else None
    tags = tags_of(patch["tags"]) if "tags" in patch else None
    sent = {k: v for k, v in properties_of(patch, required=False).items() if k not in COMPUTED}
    with emulator.store.transaction():
        require_group_writable(emulator, group)
        tracked.require(emulator, account_id, ACCOUNT_TYPE, group)

        def change(record: Record) -> None:
            body = record["body"]
            for key, value in (("sku", sku), ("kind", kind), ("tags", tags)):
                if value is not None:
                    body[key] = value
            if isinstance(patch.get("identity"), dict):
                body["identity"] = patch["identity"]
            body["properties"].update(sent)
            _replication(body["properties"], body["sku"], body["location"])
            mark_modified(body, caller)

        updated = emulator.store.update(RESOURCES, account_id, change)
    assert updated is not None
    body: dict[str, Any] = updated["body"]
    return body


@router.delete(ACCOUNT_PATH)
def delete_account(
    subscription_id: str, group: str, name: str,
    emulator: Emulator = Depends(get_emulator), caller: Principal = Depends(get_caller),
) -> Response:
    """Delete an account at once (200), or 204 when there is none."""
    account_id = tracked.authorized(emulator, caller, subscription_id, group, ACCOUNT_TYPE, name, "delete")
    with emulator.store.transaction():
        get_group(emulator, group)
        if load(emulator, account_id, ACCOUNT_TYPE) is None:
            return Response(status_code=204)
        if emulator.operations.active_on(account_id):
            raise another_operation_in_progress(account_id, "storage account")
        delete_records(emulator, account_id)
    return Response(status_code=200)


@router.post("/subscriptions/{subscription_id}/providers/Microsoft.Storage/checkNameAvailability")
async def check_name_availability(
    subscription_id: str, request: Request,
    emulator: Emulator = Depends(get_emulator), caller: Principal = Depends(get_caller),
) -> dict[str, Any]:
    """Whether an account name is valid and free anywhere in local Azure."""
    require_subscription(emulator, subscription_id)
    emulator.rbac.authorize(caller, f"{NAMESPACE}/checkNameAvailability/read", emulator.subscription_path)
    name = check_name_request(await read_json_object(request), ACCOUNT_TYPE)
    if not NAME.match(name):
        return {"nameAvailable": False, "reason": "AccountNameInvalid", "message": _name_rule(name)}
    if name_holder(emulator, ACCOUNT_TYPE, name) is not None:
        return {"nameAvailable": False, "reason": "AlreadyExists",
                "message": f"The storage account named {name} is already taken."}
    return {"nameAvailable": True}


@router.post(ACCOUNT_PATH + "/listKeys")
def list_keys(
    subscription_id: str, group: str, name: str,
    emulator: Emulator = Depends(get_emulator), caller: Principal = Depends(get_caller),
) -> dict[str, Any]:
    """The account's two access keys."""
    return _keys(emulator, tracked.read(emulator, caller, subscription_id, group, ACCOUNT_TYPE, name,
                                        "listKeys/action"))


@router.post(ACCOUNT_PATH + "/regenerateKey")
async def regenerate_key(
    subscription_id: str, group: str, name: str, request: Request,
    emulator: Emulator = Depends(get_emulator), caller: Principal = Depends(get_caller),
) -> dict[str, Any]:
    """A new value for key1 or key2; answers with both keys."""
    account_id, key = await tracked.secret_to_regenerate(
        emulator, caller, subscription_id, group, ACCOUNT_TYPE, name, request,
        action="regenerateKey/action", field="keyName", choices=KEY_NAMES, what="key name")
    with emulator.store.transaction():
        tracked.in_group(emulator, account_id, ACCOUNT_TYPE, group)
        sealed, now = _new_key(emulator, account_id, key), utc_now()

        def change(record: Record) -> None:
            record["internal"]["keys"][KEY_NAMES.index(key)] = sealed
            record["body"]["properties"]["keyCreationTime"][key] = now

        updated = emulator.store.update(RESOURCES, account_id, change)
    assert updated is not None
    return _keys(emulator, updated)


provider = ResourceProvider(
    namespace=NAMESPACE,
    api_versions=API_VERSIONS,
    router=router,
    resource_types=("storageAccounts",),
    delete_group_contents=lambda emulator, group_id: tracked.delete_in_group(emulator, group_id, ACCOUNT_TYPE),
    on_start=lambda emulator: tracked.fail_transitional(emulator, ACCOUNT_TYPE),
)
