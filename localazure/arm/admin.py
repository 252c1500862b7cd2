"""Local-only endpoints: health, knobs at run time, and the principal directory (`az ad sp` equivalent)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response

from localazure.arm.auth import require_admin
from localazure.arm.common import read_json_object
from localazure.arm.context import Emulator, get_emulator
from localazure.arm.errors import ArmError
from localazure.arm.rbac import BUILT_IN_ROLES, Principal, new_assignment_name

router = APIRouter()


@router.get("/healthz")
def healthz(emulator: Emulator = Depends(get_emulator)) -> dict[str, Any]:
    """Liveness: answers as soon as the server accepts requests."""
    return {"status": "ok", "tenantId": emulator.tenant_id, "subscriptionId": emulator.subscription_id,
            "clusters": emulator.knobs.current.clusters}


@router.get("/_local/knobs")
def get_knobs(emulator: Emulator = Depends(get_emulator), _admin: Principal = Depends(require_admin)) -> Any:
    """The current knobs."""
    return emulator.knobs.current.to_json()


@router.post("/_local/knobs")
async def set_knobs(
    request: Request, emulator: Emulator = Depends(get_emulator), _admin: Principal = Depends(require_admin),
) -> Any:
    """Change knobs, e.g. `{"throttle_rate": 0.5, "latency": {"aks.create": 10}, "fail": ["aks.create:eastus"]}`."""
    changes = await read_json_object(request)
    try:
        return emulator.knobs.change(changes).to_json()
    except (ValueError, TypeError) as exc:
        raise ArmError(400, "InvalidKnob", str(exc)) from exc


def _role_guid(role: str) -> str:
    low = role.lower()
    for guid, definition in BUILT_IN_ROLES.items():
        if low in (guid, definition.name.lower()):
            return guid
    raise ArmError(400, "RoleDefinitionDoesNotExist", f"There is no built-in role named '{role}'.")


@router.get("/_local/operations")
def list_operations(
    scope: str, emulator: Emulator = Depends(get_emulator), _admin: Principal = Depends(require_admin),
) -> Any:
    """The long-running operations started on resources at or below `scope` (a resource id), oldest first."""
    return {"value": emulator.operations.under(scope)}


@router.post("/_local/principals")
async def create_principal(
    request: Request, emulator: Emulator = Depends(get_emulator), admin: Principal = Depends(require_admin),
) -> Response:
    """Create a service principal with a secret; optional `role` + `scopes` assign it like create-for-rbac."""
    body = await read_json_object(request)
    display_name = str(body.get("displayName") or "").strip()
    if not display_name:
        raise ArmError(400, "InvalidParameter", "displayName is required.")
    tenant_id = str(body.get("tenantId") or emulator.tenant_id)
    role = body.get("role")
    scopes = body.get("scopes") or ([emulator.subscription_path] if role else [])
    guid = _role_guid(str(role)) if role else None
    record, secret = emulator.directory.create_service_principal(display_name, tenant_id)
    for scope in scopes if guid else []:
        emulator.rbac.assign(str(scope), new_assignment_name(),
                             f"/providers/Microsoft.Authorization/roleDefinitions/{guid}",
                             record["objectId"], created_by=admin.object_id)
    return JSONResponse({"appId": record["appId"], "displayName": display_name, "password": secret,
                         "tenant": tenant_id, "objectId": record["objectId"]}, status_code=201)


@router.get("/_local/principals")
def list_principals(emulator: Emulator = Depends(get_emulator), _admin: Principal = Depends(require_admin)) -> Any:
    """All principals (without secrets)."""
    return {"value": emulator.directory.all()}


@router.delete("/_local/principals/{app_id}")
def delete_principal(
    app_id: str, emulator: Emulator = Depends(get_emulator), _admin: Principal = Depends(require_admin),
) -> Response:
    """Remove a principal (its role assignments stay, as in Entra)."""
    if app_id.lower() == emulator.admin_app_id.lower():
        raise ArmError(400, "InvalidParameter", "The built-in admin principal cannot be deleted.")
    return Response(status_code=200 if emulator.directory.delete(app_id) else 204)
