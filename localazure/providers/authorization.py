"""Microsoft.Authorization: built-in role definitions and role assignments at any scope."""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response

from localazure.arm.auth import get_caller
from localazure.arm.common import RESOURCES, read_json_object, require_subscription
from localazure.arm.context import Emulator, get_emulator
from localazure.arm.errors import ArmError, group_not_found, invalid_parameter
from localazure.arm.ids import is_at_or_below, parse_id
from localazure.arm.providers import ResourceProvider
from localazure.arm.rbac import BUILT_IN_ROLES, PRINCIPAL_TYPES, Principal, role_definition_body

NAMESPACE = "Microsoft.Authorization"
# Every api-version of role assignments and role definitions Azure has published (one shape answers them all;
# versions before 2018-09-01-preview did not know principalType, and their clients ignore it).
API_VERSIONS = frozenset({"2015-07-01", "2017-10-01-preview", "2018-01-01-preview", "2018-07-01-preview",
                          "2018-09-01-preview", "2020-03-01-preview", "2020-04-01-preview", "2020-08-01-preview",
                          "2020-10-01-preview", "2021-03-01-preview", "2022-01-01-preview", "2022-04-01",
                          "2022-05-01-preview"})
ACTION_ASSIGNMENT_READ = "Microsoft.Authorization/roleAssignments/read"
ACTION_ASSIGNMENT_WRITE = "Microsoft.Authorization/roleAssignments/write"
ACTION_ASSIGNMENT_DELETE = "Microsoft.Authorization/roleAssignments/delete"

router = APIRouter()


def _scope(raw: str) -> str:
    return "/" + raw.strip("/") if raw.strip("/") else "/"


def _check_scope_exists(emulator: Emulator, scope: str) -> None:
    if scope == "/":
        return
    parsed = parse_id(scope)
    require_subscription(emulator, parsed.subscription_id)
    if parsed.group and emulator.store.get(RESOURCES, emulator.group_id(parsed.group)) is None:
        raise group_not_found(parsed.group)
    if parsed.namespace and emulator.store.get(RESOURCES, scope) is None:
        raise ArmError(404, "ResourceNotFound", f"The Resource '{parsed.full_type}/{parsed.name}' under resource "
                       f"group '{parsed.group}' was not found.")


# ---- role definitions ---------------------------------------------------------------------------


def _get_role_definition(scope: str, role_id: str) -> dict[str, Any]:
    role = BUILT_IN_ROLES.get(role_id.lower())
    if role is None:
        raise ArmError(404, "RoleDefinitionDoesNotExist", f"The specified role definition with ID '{role_id}' "
                       "does not exist.")
    return role_definition_body(role, scope)


@router.get("/providers/Microsoft.Authorization/roleDefinitions/{role_id}")
def get_tenant_role_definition(role_id: str, _caller: Principal = Depends(get_caller)) -> dict[str, Any]:
    """A built-in role definition by GUID at the root scope."""
    return _get_role_definition("/", role_id)


@router.get("/{scope:path}/providers/Microsoft.Authorization/roleDefinitions/{role_id}")
def get_role_definition(scope: str, role_id: str, _caller: Principal = Depends(get_caller)) -> dict[str, Any]:
    """A built-in role definition by GUID, as seen at a scope."""
    return _get_role_definition(_scope(scope), role_id)


_ROLE_NAME_FILTER = re.compile(r"^\s*roleName\s+eq\s+'([^']*)'\s*$", re.IGNORECASE)
_ROLE_TYPE_FILTER = re.compile(r"^\s*type\s+eq\s+'([^']*)'\s*$", re.IGNORECASE)


@router.get("/{scope:path}/providers/Microsoft.Authorization/roleDefinitions")
def list_role_definitions(scope: str, request: Request, _caller: Principal = Depends(get_caller)) -> dict[str, Any]:
    """Built-in role definitions; `$filter=roleName eq '...'` or `type eq 'BuiltInRole'`."""
    full_scope = _scope(scope)
    roles = list(BUILT_IN_ROLES.values())
    odata_filter = request.query_params.get("$filter")
    if odata_filter:
        by_name = _ROLE_NAME_FILTER.match(odata_filter)
        by_type = _ROLE_TYPE_FILTER.match(odata_filter)
        if by_name:
            roles = [r for r in roles if r.name.lower() == by_name.group(1).lower()]
        elif by_type:
            roles = roles if by_type.group(1).lower() == "builtinrole" else []
        else:
            raise ArmError(400, "InvalidFilter", f"Unsupported $filter '{odata_filter}'.")
    return {"value": [role_definition_body(r, full_scope) for r in roles]}


# ---- role assignments ---------------------------------------------------------------------------


def _assignment_id(scope: str, name: str) -> str:
    return f"{scope.rstrip('/')}/providers/Microsoft.Authorization/roleAssignments/{name}"


@router.put("/{scope:path}/providers/Microsoft.Authorization/roleAssignments/{name}")
async def create_role_assignment(
    scope: str, name: str, request: Request,
    emulator: Emulator = Depends(get_emulator), caller: Principal = Depends(get_caller),
) -> Response:
    """Create a role assignment (201); the identical one again answers 200."""
    full_scope = _scope(scope)
    emulator.rbac.authorize(caller, ACTION_ASSIGNMENT_WRITE, full_scope)
    _check_scope_exists(emulator, full_scope)
    body = await read_json_object(request)
    props = body.get("properties")
    if not isinstance(props, dict):
        raise invalid_parameter("properties", "The 'properties' object is required.")
    role_definition_id = props.get("roleDefinitionId")
    principal_id = props.get("principalId")
    if not isinstance(role_definition_id, str) or not role_definition_id:
        raise invalid_parameter("properties.roleDefinitionId", "roleDefinitionId is required.")
    if not isinstance(principal_id, str) or not principal_id:
        raise invalid_parameter("properties.principalId", "principalId is required.")
    principal = emulator.directory.by_object_id(principal_id)
    if principal is None or principal["tenantId"].lower() != emulator.tenant_id.lower():
        raise ArmError(400, "PrincipalNotFound", f"Principal {principal_id.replace('-', '')} does not exist in the "
                       f"directory {emulator.tenant_id}. Check that you have the correct principal ID.")
    principal_type = props.get("principalType")
    if principal_type is not None and principal_type not in PRINCIPAL_TYPES:
        raise invalid_parameter("properties.principalType", f"principalType must be one of "
                                f"{', '.join(PRINCIPAL_TYPES)}.")
    if principal_type is not None and principal_type != "ServicePrincipal":
        # Every principal of local Azure's directory is a service principal (apps and managed identities).
        raise ArmError(400, "UnmatchedPrincipalType", f"The PrincipalId '{principal_id.replace('-', '')}' has type "
                       f"'ServicePrincipal' , which is different from specified PrincipalType '{principal_type}'.")
    assignment, created = emulator.rbac.assign(
        full_scope, name, role_definition_id, principal_id,
        principal_type="ServicePrincipal",
        created_by=caller.object_id, description=props.get("description"),
    )
    return JSONResponse(assignment, status_code=201 if created else 200)


@router.get("/{scope:path}/providers/Microsoft.Authorization/roleAssignments/{name}")
def get_role_assignment(
    scope: str, name: str,
    emulator: Emulator = Depends(get_emulator), caller: Principal = Depends(get_caller),
) -> dict[str, Any]:
    """One role assignment."""
    full_scope = _scope(scope)
    emulator.rbac.authorize(caller, ACTION_ASSIGNMENT_READ, full_scope)
    assignment = emulator.rbac.get(_assignment_id(full_scope, name))
    if assignment is None:
        raise ArmError(404, "RoleAssignmentNotFound", f"The role assignment '{name}' is not found.")
    return assignment


@router.delete("/{scope:path}/providers/Microsoft.Authorization/roleAssignments/{name}")
def delete_role_assignment(
    scope: str, name: str,
    emulator: Emulator = Depends(get_emulator), caller: Principal = Depends(get_caller),
) -> Response:
    """Delete a role assignment: 200 with its body, 204 when there was none."""
    full_scope = _scope(scope)
    emulator.rbac.authorize(caller, ACTION_ASSIGNMENT_DELETE, full_scope)
    removed = emulator.rbac.remove(_assignment_id(full_scope, name))
    return JSONResponse(removed) if removed is not None else Response(status_code=204)


_CLAUSES = {
    "atScope": re.compile(r"^atScope\(\)$", re.IGNORECASE),
    "principalId": re.compile(r"^principalId\s+eq\s+'([^']+)'$", re.IGNORECASE),
    "assignedTo": re.compile(r"^assignedTo\('([^']+)'\)$", re.IGNORECASE),
}


def _parse_assignment_filter(text: str) -> tuple[bool, str | None]:
    at_scope = False
    principal: str | None = None
    for clause in re.split(r"\s+and\s+", text.strip(), flags=re.IGNORECASE):
        clause = clause.strip()
        if _CLAUSES["atScope"].match(clause):
            at_scope = True
            continue
        match = _CLAUSES["principalId"].match(clause) or _CLAUSES["assignedTo"].match(clause)
        if not match:
            raise ArmError(400, "UnsupportedQuery", f"The filter '{text}' is not supported. Supported filters "
                           "are either 'atScope()' or 'principalId eq '{value}' or assignedTo('{value}')'.")
        principal = match.group(1).lower()
    return at_scope, principal


@router.get("/{scope:path}/providers/Microsoft.Authorization/roleAssignments")
def list_role_assignments(
    scope: str, request: Request,
    emulator: Emulator = Depends(get_emulator), caller: Principal = Depends(get_caller),
) -> dict[str, Any]:
    """Assignments at, above and below a scope (`atScope()`: at or above only), filtered by principal."""
    full_scope = _scope(scope)
    if full_scope != "/":
        require_subscription(emulator, parse_id(full_scope).subscription_id)
    odata_filter = request.query_params.get("$filter")
    at_scope, principal = _parse_assignment_filter(odata_filter) if odata_filter else (False, None)
    result = []
    for assignment in emulator.rbac.assignments():
        props = assignment["properties"]
        above = is_at_or_below(full_scope, props["scope"])
        below = is_at_or_below(props["scope"], full_scope)
        if not (above or (below and not at_scope)):
            continue
        if principal and props["principalId"].lower() != principal:
            continue
        visible = (props["principalId"].lower() == caller.object_id.lower()
                   or emulator.rbac.allowed(caller, ACTION_ASSIGNMENT_READ, props["scope"]))
        if visible:
            result.append(assignment)
    return {"value": result}


provider = ResourceProvider(namespace=NAMESPACE, api_versions=API_VERSIONS, router=router)
