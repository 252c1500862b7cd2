"""The vault data plane for secrets, enough for azure-keyvault-secrets' SecretClient.

Key Vault's challenge-based authentication: a request without a bearer token gets 401 with
`WWW-Authenticate: Bearer authorization="<authority>/<tenant>", resource="<resource>"`; the client then
asks the token endpoint for `<resource>/.default` and repeats the request. Authorization follows the
vault's permission model: access policies (`secrets` permissions of the caller's object id and tenant)
or, with `enableRbacAuthorization`, role assignments granting the `Microsoft.KeyVault/vaults/secrets/*`
data actions. Values are sealed at rest (`localazure.arm.sealed`) and never logged.

Each vault's data plane listens on its own loopback port: `serve(emulator, vault_id)` starts (or keeps) it,
`listeners(emulator)` holds them.
"""

from __future__ import annotations

import datetime as dt
import re
import threading
import time
import uuid
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response

from localazure.arm.common import RESOURCES, read_json_object
from localazure.arm.context import Emulator
from localazure.arm.errors import ArmError, arm_error_handler
from localazure.arm.rbac import Principal
from localazure.arm.sealed import sealer_of
from localazure.arm.store import Record
from localazure.arm.tokens import InvalidToken
from localazure.providers.keyvault.listeners import VaultListeners
from localazure.providers.keyvault.model import SECRETS, challenge_resource, vault_by_key, vault_uri

# azure-keyvault-secrets 4.12 speaks 2026-04-01; the older versions share these shapes.
API_VERSIONS = frozenset({"2026-04-01", "2025-07-01", "7.6", "7.5", "7.4", "7.3", "7.2", "7.1", "7.0"})
SECRET_NAME = re.compile(r"^[0-9a-zA-Z-]{1,127}$")
DATA_ACTION = "Microsoft.KeyVault/vaults/secrets/{}"
# Access-policy permission -> data action, per operation.
PERMISSIONS = {
    "get": "getSecret/action", "list": "readMetadata/action", "set": "setSecret/action", "delete": "delete",
    "recover": "recover/action", "purge": "purge/action", "update": "update/action",
}


class Caller:
    """The vault a request addresses and the principal behind its token."""

    def __init__(self, vault: Record, principal: Principal, request: Request) -> None:
        self.vault = vault
        self.principal = principal
        self.request = request

    @property
    def uri(self) -> str:
        """The vault's URI (with a trailing slash)."""
        return str(self.vault["body"]["properties"]["vaultUri"])

    @property
    def key(self) -> str:
        """The vault's stable internal key."""
        return str(self.vault["internal"]["vaultKey"])


def _emulator(request: Request) -> Emulator:
    emulator: Emulator = request.app.state.emulator
    return emulator


def _challenge(emulator: Emulator, vault: Record, code: str, message: str) -> ArmError:
    uri = vault["body"]["properties"]["vaultUri"]
    header = (f'Bearer authorization="{emulator.base_url}/{vault["body"]["properties"]["tenantId"]}", '
              f'resource="{challenge_resource(uri)}"')
    return ArmError(401, code, message, headers={"WWW-Authenticate": header})


def get_caller(request: Request) -> Caller:
    """FastAPI dependency: the addressed vault and the verified caller; 401 with Key Vault's challenge otherwise."""
    emulator = _emulator(request)
    vault = vault_by_key(emulator, request.app.state.vault_key)
    if vault is None:
        raise ArmError(404, "VaultNotFound", "The vault does not exist (it was deleted).")
    api_version = request.query_params.get("api-version")
    if api_version not in API_VERSIONS:
        raise ArmError(400, "BadParameter", f"The specified version ({api_version}) is not recognized. Consider "
                       f"using the latest supported version ({max(v for v in API_VERSIONS if '-' in v)}).")
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _challenge(emulator, vault, "Unauthorized", "AKV10000: Request is missing a Bearer or PoP token.")
    resource = challenge_resource(vault["body"]["properties"]["vaultUri"])
    try:
        claims = emulator.signer.verify(token.strip(), frozenset({resource, resource + "/"}))
    except InvalidToken as exc:
        raise _challenge(emulator, vault, "Unauthorized", f"AKV10022: {exc}") from exc
    if claims.tenant_id.lower() != str(vault["body"]["properties"]["tenantId"]).lower():
        raise _challenge(emulator, vault, "Unauthorized", "AKV10032: Invalid issuer. The token's tenant is not "
                         "the tenant of this vault.")
    return Caller(vault, Principal(claims.object_id, claims.app_id, claims.tenant_id), request)


def authorize(emulator: Emulator, caller: Caller, permission: str, name: str | None = None) -> None:
    """403 unless the vault's permission model lets the caller do `permission` (get, list, set, ...)."""
    vault = caller.vault["body"]
    props = vault["properties"]
    who = caller.principal
    if props.get("enableRbacAuthorization"):
        scope = vault["id"] + (f"/secrets/{name}" if name else "")
        action = DATA_ACTION.format(PERMISSIONS[permission])
        if emulator.rbac.allowed_data(who, action, scope):
            return
        inner = "ForbiddenByRbac"
        message = (f"Caller is not authorized to perform action on resource. If role assignments were recently "
                   f"changed, please wait several minutes for role assignments to become effective. Caller: "
                   f"appid={who.app_id};oid={who.object_id};iss={emulator.signer.issuer(who.tenant_id)} "
                   f"Action: '{action}' Resource: '{scope.lower()}' Assignment: (not found)")
    else:
        wanted = "set" if permission == "update" else permission
        for policy in props.get("accessPolicies") or []:
            if (str(policy.get("objectId", "")).lower() == who.object_id.lower()
                    and str(policy.get("tenantId", "")).lower() == who.tenant_id.lower()):
                granted = {str(p).lower() for p in (policy.get("permissions") or {}).get("secrets") or []}
                if wanted in granted or "all" in granted:
                    return
        inner = "AccessDenied"
        message = (f"The user, group or application 'appid={who.app_id};oid={who.object_id};"
                   f"iss={emulator.signer.issuer(who.tenant_id)}' does not have secrets {wanted} permission on key "
                   f"vault '{vault['name']};location={vault['location']}'. For help resolving this issue, please see "
                   "https://go.microsoft.com/fwlink/?linkid=2125287")
    raise ArmError(403, "Forbidden", message, details=[{"code": inner, "message": inner}])


# ---- stored secrets ---------------------------------------------------------------------------


def _key(caller: Caller, name: str) -> str:
    return f"{caller.key}/{name}"


def _check_name(name: str) -> None:
    if not SECRET_NAME.match(name):
        raise ArmError(400, "BadParameter", "The request URI contains an invalid name: " + name)


def _not_found(name: str, version: str | None = None) -> ArmError:
    what = f"{name}/{version}" if version else name
    return ArmError(404, "SecretNotFound", f"A secret with (name/id) {what} was not found in this key vault. If you "
                    "recently deleted this secret you may be able to recover it using the correct recovery command. "
                    "For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182")


def _live(emulator: Emulator, caller: Caller, name: str) -> Record:
    record = emulator.store.get(SECRETS, _key(caller, name))
    if record is None or record.get("deleted"):
        raise _not_found(name)
    return record


def _deleted(emulator: Emulator, caller: Caller, name: str) -> Record:
    record = emulator.store.get(SECRETS, _key(caller, name))
    if record is None or not record.get("deleted"):
        raise ArmError(404, "SecretNotFound", f"Deleted Secret not found: {name}")
    return record


def _version_of(record: Record, version: str | None) -> dict[str, Any]:
    versions: list[dict[str, Any]] = record["versions"]
    if not version:
        return versions[-1]
    for item in versions:
        if item["version"] == version.lower():
            return item
    raise _not_found(record["name"], version)


def _attributes(caller: Caller, item: dict[str, Any]) -> dict[str, Any]:
    props = caller.vault["body"]["properties"]
    attributes = {"enabled": item["enabled"], "created": item["created"], "updated": item["updated"],
                  "recoveryLevel": "Recoverable" if props.get("enablePurgeProtection") else "Recoverable+Purgeable",
                  "recoverableDays": props.get("softDeleteRetentionInDays", 90)}
    for key in ("nbf", "exp"):
        if item.get(key) is not None:
            attributes[key] = item[key]
    return attributes


def _item(caller: Caller, record: Record, item: dict[str, Any], *, with_version: bool) -> dict[str, Any]:
    suffix = f"/{item['version']}" if with_version else ""
    body: dict[str, Any] = {"id": f"{caller.uri}secrets/{record['name']}{suffix}",
                            "attributes": _attributes(caller, item)}
    if item.get("contentType") is not None:
        body["contentType"] = item["contentType"]
    if item.get("tags"):
        body["tags"] = item["tags"]
    return body


def _bundle(emulator: Emulator, caller: Caller, record: Record, item: dict[str, Any], *,
            with_value: bool = True) -> dict[str, Any]:
    body = _item(caller, record, item, with_version=True)
    if with_value:
        body["value"] = sealer_of(emulator).open(item["sealed"], f"{caller.key}/{record['name']}/{item['version']}")
    return body


def _deleted_bundle(emulator: Emulator, caller: Caller, record: Record) -> dict[str, Any]:
    body = _bundle(emulator, caller, record, record["versions"][-1], with_value=False)
    body.update(recoveryId=f"{caller.uri}deletedsecrets/{record['name']}", **record["deleted"])
    return body


def _attribute_changes(sent: Any) -> dict[str, Any]:
    if sent is None:
        return {}
    if not isinstance(sent, dict):
        raise ArmError(400, "BadParameter", "attributes must be an object.")
    changes: dict[str, Any] = {}
    if "enabled" in sent:
        changes["enabled"] = bool(sent["enabled"])
    for key in ("nbf", "exp"):
        if key in sent:
            changes[key] = None if sent[key] is None else int(sent[key])
    return changes


# ---- routes -----------------------------------------------------------------------------------

router = APIRouter()


@router.put("/secrets/{name}")
async def set_secret(name: str, request: Request, caller: Caller = Depends(get_caller)) -> dict[str, Any]:
    """A new version of a secret (the secret is created with its first version)."""
    emulator = _emulator(request)
    authorize(emulator, caller, "set", name)
    _check_name(name)
    body = await read_json_object(request)
    value = body.get("value")
    if not isinstance(value, str):
        raise ArmError(400, "BadParameter", "Property 'value' is required and must be a string.")
    now = int(time.time())
    version = uuid.uuid4().hex
    item: dict[str, Any] = {
        "version": version, "sealed": sealer_of(emulator).seal(value, f"{caller.key}/{name}/{version}"),
        "contentType": body.get("contentType"), "tags": body.get("tags") or {}, "enabled": True,
        "created": now, "updated": now, **_attribute_changes(body.get("attributes")),
    }
    with emulator.store.transaction():
        record = emulator.store.get(SECRETS, _key(caller, name))
        if record is not None and record.get("deleted"):
            raise ArmError(409, "Conflict", f"Secret {name} is currently in a deleted but recoverable state, and its "
                           "name cannot be reused; in this state, the secret can only be recovered or purged.")
        if record is None:
            record = {"vaultKey": caller.key, "name": name, "versions": [], "deleted": None}
        record["versions"].append(item)
        emulator.store.put(SECRETS, _key(caller, name), record)
    return _bundle(emulator, caller, record, item)


@router.get("/secrets/{name}/versions")
def list_versions(name: str, request: Request, caller: Caller = Depends(get_caller)) -> dict[str, Any]:
    """Properties of every version of a secret."""
    emulator = _emulator(request)
    authorize(emulator, caller, "list", name)
    record = _live(emulator, caller, name)
    return {"value": [_item(caller, record, item, with_version=True) for item in record["versions"]],
            "nextLink": None}


@router.get("/secrets/{name}/{version}")
@router.get("/secrets/{name}/")
@router.get("/secrets/{name}")
def get_secret(name: str, request: Request, version: str = "", caller: Caller = Depends(get_caller)) -> dict[str, Any]:
    """A secret's value: the latest version, or the one named."""
    emulator = _emulator(request)
    authorize(emulator, caller, "get", name)
    record = _live(emulator, caller, name)
    return _bundle(emulator, caller, record, _version_of(record, version))


@router.patch("/secrets/{name}/{version}")
@router.patch("/secrets/{name}/")
async def update_secret(name: str, request: Request, version: str = "",
                        caller: Caller = Depends(get_caller)) -> dict[str, Any]:
    """Change a version's content type, tags or attributes (never its value)."""
    emulator = _emulator(request)
    authorize(emulator, caller, "update", name)
    body = await read_json_object(request)
    changes = _attribute_changes(body.get("attributes"))
    for key in ("contentType", "tags"):
        if key in body:
            changes[key] = body[key]
    with emulator.store.transaction():
        record = _live(emulator, caller, name)
        item = _version_of(record, version)
        item.update(changes, updated=int(time.time()))
        emulator.store.put(SECRETS, _key(caller, name), record)
    return _bundle(emulator, caller, record, item, with_value=False)


@router.get("/secrets")
def list_secrets(request: Request, caller: Caller = Depends(get_caller)) -> dict[str, Any]:
    """Properties of the latest version of every secret (no values)."""
    emulator = _emulator(request)
    authorize(emulator, caller, "list")
    records = emulator.store.values(SECRETS, lambda r: r["vaultKey"] == caller.key and not r.get("deleted"))
    return {"value": [_item(caller, r, r["versions"][-1], with_version=False) for r in records], "nextLink": None}


@router.delete("/secrets/{name}")
def delete_secret(name: str, request: Request, caller: Caller = Depends(get_caller)) -> dict[str, Any]:
    """Soft-delete a secret with all its versions: recoverable until purged."""
    emulator = _emulator(request)
    authorize(emulator, caller, "delete", name)
    retention = int(caller.vault["body"]["properties"].get("softDeleteRetentionInDays", 90))
    now = dt.datetime.now(dt.UTC)
    with emulator.store.transaction():
        record = _live(emulator, caller, name)
        record["deleted"] = {"deletedDate": int(now.timestamp()),
                             "scheduledPurgeDate": int((now + dt.timedelta(days=retention)).timestamp())}
        emulator.store.put(SECRETS, _key(caller, name), record)
    return _deleted_bundle(emulator, caller, record)


@router.get("/deletedsecrets")
def list_deleted(request: Request, caller: Caller = Depends(get_caller)) -> dict[str, Any]:
    """Soft-deleted secrets of the vault."""
    emulator = _emulator(request)
    authorize(emulator, caller, "list")
    records = emulator.store.values(SECRETS, lambda r: r["vaultKey"] == caller.key and bool(r.get("deleted")))
    value = []
    for record in records:
        item = _item(caller, record, record["versions"][-1], with_version=False)
        item.update(recoveryId=f"{caller.uri}deletedsecrets/{record['name']}", **record["deleted"])
        value.append(item)
    return {"value": value, "nextLink": None}


@router.get("/deletedsecrets/{name}")
def get_deleted(name: str, request: Request, caller: Caller = Depends(get_caller)) -> dict[str, Any]:
    """A soft-deleted secret."""
    emulator = _emulator(request)
    authorize(emulator, caller, "list", name)
    return _deleted_bundle(emulator, caller, _deleted(emulator, caller, name))


@router.post("/deletedsecrets/{name}/recover")
def recover_deleted(name: str, request: Request, caller: Caller = Depends(get_caller)) -> dict[str, Any]:
    """Bring a soft-deleted secret back with all its versions."""
    emulator = _emulator(request)
    authorize(emulator, caller, "recover", name)
    with emulator.store.transaction():
        record = _deleted(emulator, caller, name)
        record["deleted"] = None
        emulator.store.put(SECRETS, _key(caller, name), record)
    return _bundle(emulator, caller, record, record["versions"][-1], with_value=False)


@router.delete("/deletedsecrets/{name}")
def purge_deleted(name: str, request: Request, caller: Caller = Depends(get_caller)) -> Response:
    """Remove a soft-deleted secret for good (refused while the vault has purge protection)."""
    emulator = _emulator(request)
    authorize(emulator, caller, "purge", name)
    if caller.vault["body"]["properties"].get("enablePurgeProtection"):
        raise ArmError(403, "Forbidden", f"Operation \"purge\" is not allowed because purge protection is enabled "
                       f"for this vault. Secret {name} will be purged after its scheduled purge date.")
    with emulator.store.transaction():
        _deleted(emulator, caller, name)
        emulator.store.delete(SECRETS, _key(caller, name))
    return Response(status_code=204)


async def _unknown(_request: Request, exc: Exception) -> Response:
    return JSONResponse({"error": {"code": "BadParameter", "message": "The request URI is not served by this "
                                   "local vault."}}, status_code=getattr(exc, "status_code", 400))


def data_plane_app(emulator: Emulator, vault_key: str) -> FastAPI:
    """The ASGI app one vault's listener serves."""
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None, title="fleetflow local Key Vault")
    app.state.emulator = emulator
    app.state.vault_key = vault_key
    app.add_exception_handler(ArmError, arm_error_handler)
    app.add_exception_handler(404, _unknown)
    app.add_exception_handler(405, _unknown)
    app.include_router(router)
    return app


def forget_vault_secrets(emulator: Emulator, vault_key: str) -> None:
    """Remove every secret of a vault (the vault is purged)."""
    with emulator.store.transaction():
        for key in emulator.store.keys_under(SECRETS, vault_key):
            emulator.store.delete(SECRETS, key)


# One lock for creating the emulator's listeners.
_listeners_lock = threading.Lock()


def listeners(emulator: Emulator) -> VaultListeners:
    """The emulator's vault listeners (created on first use)."""
    with _listeners_lock:
        if "keyvault.listeners" not in emulator.services:
            emulator.services["keyvault.listeners"] = VaultListeners(
                emulator.state_dir / "tls", lambda key: data_plane_app(emulator, key))
        service: VaultListeners = emulator.services["keyvault.listeners"]
        return service


def serve(emulator: Emulator, vault_id: str) -> dict[str, Any]:
    """Start (or keep) the data plane of a stored vault; updates its vaultUri when the port had to change.
    Returns the vault's body."""
    record = emulator.store.get(RESOURCES, vault_id)
    assert record is not None
    internal = record["internal"]
    port = listeners(emulator).ensure(internal["vaultKey"], int(internal.get("port") or 0))
    if port != internal.get("port"):
        def change(stored: Record) -> None:
            stored["internal"]["port"] = port
            stored["body"]["properties"]["vaultUri"] = vault_uri(port)

        record = emulator.store.update(RESOURCES, vault_id, change)
        assert record is not None
    body: dict[str, Any] = record["body"]
    return body
