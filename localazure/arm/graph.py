"""The few Microsoft Graph reads the Azure CLI makes around role assignments, answered from local Azure's
principal directory: `az role assignment create --assignee <appId or objectId>` resolves the assignee
(`servicePrincipals?$filter=servicePrincipalNames/any(...)`, `directoryObjects/getByIds`), and `list` names each
principal. Local Azure's cloud metadata names itself as the Graph endpoint, so these stay on loopback.
Users and groups do not exist here (every principal is a service principal).
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response

from localazure.arm.auth import get_caller
from localazure.arm.context import Emulator, get_emulator
from localazure.arm.rbac import Principal

router = APIRouter()

_SPN_FILTER = re.compile(r"^\s*servicePrincipalNames/any\(\w+:\s*\w+\s+eq\s+'([^']+)'\)\s*$", re.IGNORECASE)
_APP_ID_FILTER = re.compile(r"^\s*appId\s+eq\s+'([^']+)'\s*$", re.IGNORECASE)
_DISPLAY_NAME_FILTER = re.compile(r"^\s*displayName\s+eq\s+'([^']+)'\s*$", re.IGNORECASE)


def service_principal(record: dict[str, Any]) -> dict[str, Any]:
    """A directory record as Graph's servicePrincipal."""
    return {
        "@odata.type": "#microsoft.graph.servicePrincipal",
        "id": record["objectId"],
        "appId": record["appId"],
        "displayName": record["displayName"],
        "appOwnerOrganizationId": record["tenantId"],
        "servicePrincipalNames": [record["appId"]],
        "servicePrincipalType": "ManagedIdentity" if record.get("managedIdentity") else "Application",
        "accountEnabled": True,
        "createdDateTime": record.get("createdDateTime"),
    }


def _not_found(what: str) -> Response:
    return JSONResponse({"error": {"code": "Request_ResourceNotFound", "message": f"Resource '{what}' does not "
                                   "exist or one of its queried reference-property objects are not present."}},
                        status_code=404)


@router.get("/v1.0/servicePrincipals", include_in_schema=False)
def list_service_principals(request: Request, emulator: Emulator = Depends(get_emulator),
                            _caller: Principal = Depends(get_caller)) -> dict[str, Any]:
    """Service principals, by `servicePrincipalNames/any(c:c eq '<appId>')`, `appId eq` or `displayName eq`."""
    records = [r for r in emulator.directory.all() if r["tenantId"].lower() == emulator.tenant_id.lower()]
    odata_filter = request.query_params.get("$filter")
    if odata_filter:
        by_name = _SPN_FILTER.match(odata_filter) or _APP_ID_FILTER.match(odata_filter)
        by_display = _DISPLAY_NAME_FILTER.match(odata_filter)
        if by_name:
            records = [r for r in records if r["appId"].lower() == by_name.group(1).lower()]
        elif by_display:
            records = [r for r in records if r["displayName"] == by_display.group(1)]
        else:
            records = []
    return {"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#servicePrincipals",
            "value": [service_principal(r) for r in records]}


@router.get("/v1.0/servicePrincipals/{object_id}", include_in_schema=False)
def get_service_principal(object_id: str, emulator: Emulator = Depends(get_emulator),
                          _caller: Principal = Depends(get_caller)) -> Response:
    """One service principal by object id."""
    record = emulator.directory.by_object_id(object_id)
    return JSONResponse(service_principal(record)) if record else _not_found(object_id)


@router.get("/v1.0/users", include_in_schema=False)
def list_users(_caller: Principal = Depends(get_caller)) -> dict[str, Any]:
    """Local Azure has no users."""
    return {"value": []}


@router.post("/v1.0/directoryObjects/getByIds", include_in_schema=False)
async def get_by_ids(request: Request, emulator: Emulator = Depends(get_emulator),
                     _caller: Principal = Depends(get_caller)) -> dict[str, Any]:
    """Directory objects (service principals) by object id; unknown ids are left out, as Graph does."""
    body = await request.json()
    ids = body.get("ids", []) if isinstance(body, dict) else []
    found = [emulator.directory.by_object_id(str(i)) for i in ids]
    return {"value": [service_principal(r) for r in found if r is not None]}
