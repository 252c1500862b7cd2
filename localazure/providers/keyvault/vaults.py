"""vaults: create/update (201 + Location), get, patch, list, soft delete, deleted vaults (list, get,
purge), recovery through `createMode: recover`, access-policy updates, checkNameAvailability."""

from __future__ import annotations

import datetime as dt
import re
import uuid
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
    check_name_request,
    delete_records,
    load,
    location_of,
    mark_modified,
    of_type,
    properties_of,
    set_provisioning_state,
    succeed_provisioning,
    system_data,
    tags_of,
)
from localazure.arm.errors import ArmError, another_operation_in_progress, invalid_parameter
from localazure.arm.lro import OperationRun
from localazure.arm.rbac import Principal
from localazure.arm.store import Record
from localazure.providers.keyvault.model import (
    DELETED_VAULT_TYPE,
    DELETED_VAULTS,
    NAMESPACE,
    VAULT_TYPE,
    deleted_vault_id,
    deleted_vault_named,
    live_vault_named,
)
from localazure.providers.keyvault.secrets import forget_vault_secrets, listeners, serve

# azure-mgmt-keyvault 14.x speaks 2026-05-15; the earlier GA versions share the vault shape.
# The Azure CLI 2.91 sends 2026-02-01.
API_VERSIONS = frozenset({"2026-05-15", "2026-02-01", "2025-05-01", "2024-11-01", "2023-07-01", "2023-02-01",
                          "2022-07-01", "2021-10-01"})
NAME = re.compile(r"^[a-zA-Z][a-zA-Z0-9-]{1,22}[a-zA-Z0-9]$")
NAME_RULE = ("Vault names must be 3 to 24 characters long, start with a letter, end with a letter or digit, and "
             "contain only letters, digits and non-consecutive hyphens.")
SKUS = ("standard", "premium")
# Properties computed by the service; everything else is kept as sent.
COMPUTED = frozenset({"vaultUri", "provisioningState", "hsmPoolResourceId", "privateEndpointConnections",
                      "createMode"})

VAULT_PATH = "/subscriptions/{subscription_id}/resourceGroups/{group}/providers/Microsoft.KeyVault/vaults/{name}"
DELETED_PATH = ("/subscriptions/{subscription_id}/providers/Microsoft.KeyVault/locations/{location}"
                "/deletedVaults/{name}")

router = APIRouter()


def _valid_name(name: str) -> bool:
    return bool(NAME.match(name)) and "--" not in name


def _sku(value: Any) -> dict[str, str]:
    name = value.get("name") if isinstance(value, dict) else None
    if not isinstance(name, str) or name.lower() not in SKUS:
        raise invalid_parameter("properties.sku.name", "The sku name must be 'standard' or 'premium'.")
    return {"family": "A", "name": name.lower()}


def _check_properties(emulator: Emulator, props: dict[str, Any], previous: dict[str, Any] | None) -> None:
    tenant = props.get("tenantId")
    if not isinstance(tenant, str) or tenant.lower() != emulator.tenant_id.lower():
        raise ArmError(400, "BadRequest", f"The tenant ID '{tenant}' is not valid: vaults of local Azure belong to "
                       f"its tenant '{emulator.tenant_id}'.")
    if props.get("enableSoftDelete") is False:
        raise ArmError(400, "BadRequest", "The property \"enableSoftDelete\" has been set to false. Enabling the "
                       "'soft delete' functionality is mandatory for all key vaults.")
    days = props.get("softDeleteRetentionInDays", 90)
    if not isinstance(days, int) or not 7 <= days <= 90:
        raise invalid_parameter("properties.softDeleteRetentionInDays", "The retention must be 7 to 90 days.")
    if previous is not None:
        if previous.get("enablePurgeProtection") and props.get("enablePurgeProtection") is False:
            raise ArmError(400, "BadRequest", "The property \"enablePurgeProtection\" cannot be set to false: purge "
                           "protection cannot be turned off once enabled.")
        if days != previous.get("softDeleteRetentionInDays", 90):
            raise invalid_parameter("properties.softDeleteRetentionInDays",
                                    "The soft delete retention of an existing vault cannot be changed.")
    policies = props.get("accessPolicies", [])
    if not isinstance(policies, list) or not all(isinstance(p, dict) and p.get("objectId") and p.get("tenantId")
                                                 for p in policies):
        raise invalid_parameter("properties.accessPolicies", "Each access policy needs tenantId, objectId and "
                                "permissions.")


def _defaults(props: dict[str, Any]) -> dict[str, Any]:
    return {"accessPolicies": [], "enabledForDeployment": False, "enabledForDiskEncryption": False,
            "enabledForTemplateDeployment": False, "enableSoftDelete": True, "softDeleteRetentionInDays": 90,
            "enableRbacAuthorization": False, "publicNetworkAccess": "Enabled", **props}


@router.put(VAULT_PATH)
async def create_or_update_vault(
    subscription_id: str, group: str, name: str, request: Request,
    emulator: Emulator = Depends(get_emulator), caller: Principal = Depends(get_caller),
) -> Response:
    """Create (201, Location to poll), recover (createMode recover) or update (200) a vault."""
    require_subscription(emulator, subscription_id)
    if not _valid_name(name):
        raise ArmError(400, "VaultNameNotValid", f"The vault name '{name}' is invalid. {NAME_RULE}")
    vault_id = tracked.authorized(emulator, caller, subscription_id, group, VAULT_TYPE, name, "write")
    body = await read_json_object(request)
    location = normalize_location(location_of(body, "vault"))
    sent = properties_of(body)
    tags = tags_of(body.get("tags"))
    recover = str(sent.get("createMode", "default")).lower() == "recover"
    with emulator.store.transaction():
        require_group_writable(emulator, group)
        existing = load(emulator, vault_id, VAULT_TYPE)
        holder = live_vault_named(emulator, name)
        if holder is not None and holder["body"]["id"].lower() != vault_id.lower():
            raise ArmError(409, "VaultAlreadyExists", f"The vault name '{name}' is already in use. Vault names are "
                           "globally unique so it is possible that the name is already taken.")
        deleted = deleted_vault_named(emulator, name)
        if existing is not None:
            return _update(emulator, request, caller, existing, sent, tags, location)
        if recover:
            if deleted is None:
                raise ArmError(404, "DeletedVaultNotFound", f"The deleted vault '{name}' was not found, so it cannot "
                               "be recovered.")
            stored, internal = _recovered(emulator, deleted, vault_id, location, tags, caller)
        else:
            if deleted is not None:
                raise ArmError(409, "ConflictError", f"Exist soft deleted vault with the same name '{name}'. Recover "
                               "it (createMode: recover) or purge it first.")
            props = {k: v for k, v in sent.items() if k not in COMPUTED}
            props["sku"] = _sku(props.get("sku"))
            props = _defaults(props)
            _check_properties(emulator, props, None)
            props["provisioningState"] = "RegisteringDns"
            stored = {"id": vault_id, "name": name, "type": VAULT_TYPE, "location": location, "tags": tags,
                      "systemData": system_data(caller, service=NAMESPACE), "properties": props}
            internal = {"vaultKey": str(uuid.uuid4()), "port": 0}
        emulator.store.put(RESOURCES, vault_id, {"body": stored, "internal": internal})
        stored = serve(emulator, vault_id)
        op = emulator.operations.start(
            kind="keyvault.create", namespace=NAMESPACE, location=location, resource_id=vault_id,
            result_resource_id=vault_id, work=lambda run: succeed_provisioning(emulator, vault_id, run),
            on_failure=lambda _error: set_provisioning_state(emulator, vault_id, "Failed"),
        )
    return accepted_write(emulator, request, op, stored, 201, async_operation=False)



def _recovered(emulator: Emulator, deleted: Record, vault_id: str, location: str, tags: dict[str, str],
               caller: Principal) -> tuple[dict[str, Any], dict[str, Any]]:
    previous = deleted["internal"]
    body: dict[str, Any] = dict(previous["vault"])
    if location != body["location"]:
        raise invalid_parameter("location", f"The deleted vault is in '{body['location']}'; recover it there.")
    body.update(id=vault_id, tags=tags or body.get("tags") or {},
                systemData=system_data(caller, body.get("systemData"), service=NAMESPACE))
    body["properties"]["provisioningState"] = "RegisteringDns"
    emulator.store.delete(DELETED_VAULTS, deleted["body"]["id"])
    return body, dict(previous["internal"])


def _update(emulator: Emulator, request: Request, caller: Principal, existing: Record, sent: dict[str, Any],
            tags: dict[str, str], location: str) -> Response:
    vault_id = existing["body"]["id"]
    if emulator.operations.active_on(vault_id):
        raise another_operation_in_progress(vault_id, "vault")
    if location != existing["body"]["location"]:
        raise invalid_parameter("location", f"The location of vault '{existing['body']['name']}' cannot be changed.")
    previous = existing["body"]["properties"]
    props = _defaults({k: v for k, v in sent.items() if k not in COMPUTED})
    props["sku"] = _sku(props.get("sku"))
    _check_properties(emulator, props, previous)
    props.update(vaultUri=previous["vaultUri"], provisioningState="Succeeded")

    def change(record: Record) -> None:
        record["body"].update(tags=tags, properties=props)
        mark_modified(record["body"], caller)

    updated = emulator.store.update(RESOURCES, vault_id, change)
    assert updated is not None
    return JSONResponse(updated["body"], status_code=200)


tracked.add_reads(router, VAULT_TYPE, VAULT_PATH, what="vault", plural="Vaults", lists=False)


@router.patch(VAULT_PATH)
async def patch_vault(
    subscription_id: str, group: str, name: str, request: Request,
    emulator: Emulator = Depends(get_emulator), caller: Principal = Depends(get_caller),
) -> Response:
    """Change tags or some properties of a vault (200)."""
    vault_id = tracked.authorized(emulator, caller, subscription_id, group, VAULT_TYPE, name, "write")
    patch = await read_json_object(request)
    with emulator.store.transaction():
        require_group_writable(emulator, group)
        existing = tracked.require(emulator, vault_id, VAULT_TYPE, group)
        previous = existing["body"]["properties"]
        props = {**previous, **{k: v for k, v in properties_of(patch, required=False).items() if k not in COMPUTED}}
        if "sku" in props:
            props["sku"] = _sku(props["sku"])
        _check_properties(emulator, props, previous)
        tags = tags_of(patch["tags"]) if "tags" in patch else existing["body"].get("tags", {})
        return _update(emulator, request, caller, existing, props, tags, existing["body"]["location"])


@router.put(VAULT_PATH + "/accessPolicies/{operation_kind}")
async def update_access_policies(
    subscription_id: str, group: str, name: str, operation_kind: str, request: Request,
    emulator: Emulator = Depends(get_emulator), caller: Principal = Depends(get_caller),
) -> dict[str, Any]:
    """Add, replace or remove access policies (`add` merges permissions per object id)."""
    vault_id = tracked.authorized(emulator, caller, subscription_id, group, VAULT_TYPE, name,
                                  "accessPolicies/write")
    kind = operation_kind.lower()
    if kind not in ("add", "replace", "remove"):
        raise invalid_parameter("operationKind", "The operation kind must be add, replace or remove.")
    sent = properties_of(await read_json_object(request)).get("accessPolicies") or []
    with emulator.store.transaction():
        require_group_writable(emulator, group)
        tracked.require(emulator, vault_id, VAULT_TYPE, group)

        def change(record: Record) -> None:
            policies: list[dict[str, Any]] = record["body"]["properties"].setdefault("accessPolicies", [])
            for policy in sent:
                match = next((p for p in policies if p["objectId"].lower() == str(policy.get("objectId")).lower()
                              and p["tenantId"].lower() == str(policy.get("tenantId")).lower()), None)
                if kind == "replace" or (kind == "add" and match is None):
                    if match is not None:
                        policies.remove(match)
                    policies.append(policy)
                elif kind == "add" and match is not None:
                    for area, granted in (policy.get("permissions") or {}).items():
                        have = match.setdefault("permissions", {}).setdefault(area, [])
                        have.extend(p for p in granted if p not in have)
                elif kind == "remove" and match is not None:
                    policies.remove(match)
            mark_modified(record["body"], caller)

        updated = emulator.store.update(RESOURCES, vault_id, change)
    assert updated is not None
    return {"id": f"{vault_id}/accessPolicies/{kind}", "name": kind, "type": f"{VAULT_TYPE}/accessPolicies",
            "location": updated["body"]["location"],
            "properties": {"accessPolicies": updated["body"]["properties"]["accessPolicies"]}}


@router.delete(VAULT_PATH)
def delete_vault(
    subscription_id: str, group: str, name: str,
    emulator: Emulator = Depends(get_emulator), caller: Principal = Depends(get_caller),
) -> Response:
    """Soft-delete a vault (200; 204 when absent): its name stays reserved until it is purged."""
    vault_id = tracked.authorized(emulator, caller, subscription_id, group, VAULT_TYPE, name, "delete")
    with emulator.store.transaction():
        get_group(emulator, group)
        record = load(emulator, vault_id, VAULT_TYPE)
        if record is None:
            return Response(status_code=204)
        if emulator.operations.active_on(vault_id):
            raise another_operation_in_progress(vault_id, "vault")
        soft_delete(emulator, record)
    return Response(status_code=200)


def soft_delete(emulator: Emulator, record: Record) -> None:
    """Move a vault to the deleted vaults of its location and stop its data plane."""
    body = record["body"]
    props = body["properties"]
    now = dt.datetime.now(dt.UTC)
    purge_at = now + dt.timedelta(days=int(props.get("softDeleteRetentionInDays", 90)))
    fmt = "%Y-%m-%dT%H:%M:%SZ"
    deleted_id = deleted_vault_id(emulator, body["location"], body["name"])
    deleted_body = {
        "id": deleted_id, "name": body["name"], "type": DELETED_VAULT_TYPE,
        "properties": {"vaultId": body["id"], "location": body["location"], "deletionDate": now.strftime(fmt),
                       "scheduledPurgeDate": purge_at.strftime(fmt), "tags": body.get("tags") or {},
                       "purgeProtectionEnabled": bool(props.get("enablePurgeProtection"))},
    }
    with emulator.store.transaction():
        emulator.store.put(DELETED_VAULTS, deleted_id, {"body": deleted_body,
                                                         "internal": {"vault": body, "internal": record["internal"]}})
        delete_records(emulator, body["id"])
    listeners(emulator).stop(record["internal"]["vaultKey"])


def _readable_deleted(emulator: Emulator, caller: Principal) -> list[dict[str, Any]]:
    return [r["body"] for r in emulator.store.values(DELETED_VAULTS)
            if emulator.rbac.allowed(caller, f"{NAMESPACE}/deletedVaults/read", r["body"]["id"])]


@router.get("/subscriptions/{subscription_id}/providers/Microsoft.KeyVault/deletedVaults")
def list_deleted_vaults(
    subscription_id: str, emulator: Emulator = Depends(get_emulator), caller: Principal = Depends(get_caller),
) -> dict[str, Any]:
    """Soft-deleted vaults of the subscription."""
    require_subscription(emulator, subscription_id)
    return {"value": _readable_deleted(emulator, caller)}


def _deleted(emulator: Emulator, caller: Principal, subscription_id: str, location: str, name: str,
             action: str) -> Record:
    require_subscription(emulator, subscription_id)
    deleted_id = deleted_vault_id(emulator, normalize_location(location), name)
    emulator.rbac.authorize(caller, f"{NAMESPACE}/locations/deletedVaults/{action}", deleted_id)
    record = emulator.store.get(DELETED_VAULTS, deleted_id)
    if record is None:
        raise ArmError(404, "ResourceNotFound", f"The deleted vault '{name}' was not found in location '{location}'.")
    return record


@router.get(DELETED_PATH)
def get_deleted_vault(
    subscription_id: str, location: str, name: str,
    emulator: Emulator = Depends(get_emulator), caller: Principal = Depends(get_caller),
) -> dict[str, Any]:
    """A soft-deleted vault."""
    body: dict[str, Any] = _deleted(emulator, caller, subscription_id, location, name, "read")["body"]
    return body


@router.post(DELETED_PATH + "/purge")
def purge_deleted_vault(
    subscription_id: str, location: str, name: str, request: Request,
    emulator: Emulator = Depends(get_emulator), caller: Principal = Depends(get_caller),
) -> Response:
    """Purge a soft-deleted vault and its secrets for good (202, Location); refused under purge protection."""
    with emulator.store.transaction():
        record = _deleted(emulator, caller, subscription_id, location, name, "purge/action")
        if record["body"]["properties"]["purgeProtectionEnabled"]:
            raise ArmError(409, "ConflictError", f"Vault '{name}' has purge protection enabled and cannot be purged "
                           "before its scheduled purge date "
                           f"{record['body']['properties']['scheduledPurgeDate']}.")
        deleted_id = record["body"]["id"]
        op = emulator.operations.start(
            kind="keyvault.purge", namespace=NAMESPACE, location=record["body"]["properties"]["location"],
            resource_id=deleted_id, work=lambda run: _purge(emulator, record, run),
        )
    return accepted(emulator, request, op, async_operation=False)


def _purge(emulator: Emulator, record: Record, run: OperationRun) -> None:
    run.pace()
    with emulator.store.transaction():
        emulator.store.delete(DELETED_VAULTS, record["body"]["id"])
        forget_vault_secrets(emulator, record["internal"]["internal"]["vaultKey"])


@router.get("/subscriptions/{subscription_id}/resourceGroups/{group}/providers/Microsoft.KeyVault/vaults")
def list_vaults_by_group(
    subscription_id: str, group: str, request: Request,
    emulator: Emulator = Depends(get_emulator), caller: Principal = Depends(get_caller),
) -> dict[str, Any]:
    """Vaults of a group that the caller may read (`$top` honoured)."""
    return _top(request, tracked.list_in_group(emulator, caller, subscription_id, group, VAULT_TYPE))


@router.get("/subscriptions/{subscription_id}/providers/Microsoft.KeyVault/vaults")
def list_vaults(
    subscription_id: str, request: Request,
    emulator: Emulator = Depends(get_emulator), caller: Principal = Depends(get_caller),
) -> dict[str, Any]:
    """Vaults of the subscription that the caller may read (`$top` honoured)."""
    return _top(request, tracked.list_in_subscription(emulator, caller, subscription_id, VAULT_TYPE))


def _top(request: Request, answer: dict[str, Any]) -> dict[str, Any]:
    top = request.query_params.get("$top")
    if top and top.isdigit():
        answer["value"] = answer["value"][: int(top)]
    return answer


@router.post("/subscriptions/{subscription_id}/providers/Microsoft.KeyVault/checkNameAvailability")
async def check_name_availability(
    subscription_id: str, request: Request,
    emulator: Emulator = Depends(get_emulator), caller: Principal = Depends(get_caller),
) -> dict[str, Any]:
    """Whether a vault name is valid and free: not used by a vault, nor kept by a soft-deleted one."""
    require_subscription(emulator, subscription_id)
    emulator.rbac.authorize(caller, f"{NAMESPACE}/checkNameAvailability/read", emulator.subscription_path)
    name = check_name_request(await read_json_object(request), VAULT_TYPE)
    if not _valid_name(name):
        return {"nameAvailable": False, "reason": "AccountNameInvalid", "message": NAME_RULE}
    if live_vault_named(emulator, name) is not None or deleted_vault_named(emulator, name) is not None:
        return {"nameAvailable": False, "reason": "AlreadyExists",
                "message": f"The vault name '{name}' is already in use. Vault names are globally unique so it is "
                           "possible that the name is already taken. If you are sure that the vault name was not "
                           "taken then it is possible that a vault with the same name was recently deleted but not "
                           "purged after being placed in a recoverable state."}
    return {"nameAvailable": True}


def delete_group_contents(emulator: Emulator, group_id: str) -> None:
    """Vaults of a deleted group are soft-deleted, as Azure does."""
    for record in of_type(emulator, VAULT_TYPE, group_id):
        soft_delete(emulator, record)


def on_start(emulator: Emulator) -> None:
    """Repair cut-off creates and serve every vault's data plane again."""
    tracked.fail_transitional(emulator, VAULT_TYPE)
    for record in of_type(emulator, VAULT_TYPE):
        serve(emulator, record["body"]["id"])


def on_stop(emulator: Emulator) -> None:
    """Stop every vault's data plane."""
    listeners(emulator).stop_all()
