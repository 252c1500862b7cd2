"""Microsoft.Resources: resource groups (deletion is a long-running operation that empties the group)."""

from __future__ import annotations

import logging
import re
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response

from localazure.arm.auth import get_caller
from localazure.arm.common import (
    RESOURCES,
    authorize_in_subscription,
    get_group,
    normalize_location,
    polling_headers,
    read_json_object,
    require_group_writable,
    require_subscription,
)
from localazure.arm.context import Emulator, get_emulator
from localazure.arm.errors import ArmError, invalid_parameter
from localazure.arm.ids import GROUP_NAME
from localazure.arm.lro import OperationRun
from localazure.arm.providers import ResourceProvider
from localazure.arm.rbac import Principal
from localazure.arm.store import Record

log = logging.getLogger(__name__)

NAMESPACE = "Microsoft.Resources"
# Every api-version of Microsoft.Resources resource groups (and resources, providers) Azure has published, plus
# those of subscriptions and tenants (`GET /subscriptions`, `/tenants`), whose paths carry no namespace either.
RESOURCES_API_VERSIONS = frozenset({
    "2015-11-01", "2016-02-01", "2016-07-01", "2016-09-01", "2017-05-10", "2018-02-01", "2018-05-01", "2019-03-01",
    "2019-05-01", "2019-05-10", "2019-07-01", "2019-08-01", "2019-10-01", "2020-06-01", "2020-08-01", "2020-10-01",
    "2021-01-01", "2021-04-01", "2022-09-01", "2023-07-01", "2024-03-01", "2024-07-01", "2024-11-01", "2025-03-01",
    "2025-04-01",
})
SUBSCRIPTIONS_API_VERSIONS = frozenset({"2016-06-01", "2018-06-01", "2019-06-01", "2019-11-01", "2020-01-01",
                                        "2021-01-01", "2022-12-01"})
API_VERSIONS = RESOURCES_API_VERSIONS | SUBSCRIPTIONS_API_VERSIONS
GROUP_TYPE = "Microsoft.Resources/resourceGroups"
ACTION_READ = "Microsoft.Resources/subscriptions/resourceGroups/read"
ACTION_WRITE = "Microsoft.Resources/subscriptions/resourceGroups/write"
ACTION_DELETE = "Microsoft.Resources/subscriptions/resourceGroups/delete"

router = APIRouter()

GROUP_PATH = "/subscriptions/{subscription_id}/resourceGroups/{group}"


def _validate_tags(tags: Any) -> dict[str, str]:
    if tags is None:
        return {}
    if not isinstance(tags, dict) or not all(isinstance(v, str) for v in tags.values()):
        raise invalid_parameter("tags", "Tags must be an object whose values are strings.")
    return dict(tags)


@router.put(GROUP_PATH)
async def create_or_update_group(
    subscription_id: str, group: str, request: Request,
    emulator: Emulator = Depends(get_emulator), caller: Principal = Depends(get_caller),
) -> Response:
    """Create (201) or update (200) a resource group."""
    require_subscription(emulator, subscription_id)
    if not GROUP_NAME.match(group) or group.endswith("."):
        raise ArmError(400, "InvalidResourceGroup", f"The provided resource group name '{group}' has these invalid "
                       "characters or length. Names may be up to 90 letters, digits, '-', '_', '.', '(' or ')'.")
    group_id = emulator.group_id(group)
    emulator.rbac.authorize(caller, ACTION_WRITE, group_id)
    body = await read_json_object(request)
    location = body.get("location")
    if not isinstance(location, str) or not location.strip():
        raise invalid_parameter("location", "The 'location' property is required for a resource group.")
    tags = _validate_tags(body.get("tags"))
    with emulator.store.transaction():
        existing = emulator.store.get(RESOURCES, group_id)
        if existing is not None:
            require_group_writable(emulator, group)
            stored = existing["body"]
            if normalize_location(location) != stored["location"]:
                raise ArmError(400, "InvalidResourceGroupLocation", f"Invalid resource group location "
                               f"'{normalize_location(location)}'. The Resource group already exists in location "
                               f"'{stored['location']}'.")
            stored["tags"] = tags
            if "managedBy" in body:
                stored["managedBy"] = body["managedBy"]
            emulator.store.put(RESOURCES, group_id, existing)
            return JSONResponse(stored, status_code=200)
        stored = {
            "id": group_id,
            "name": group,
            "type": GROUP_TYPE,
            "location": normalize_location(location),
            "managedBy": body.get("managedBy"),
            "tags": tags,
            "properties": {"provisioningState": "Succeeded"},
        }
        emulator.store.put(RESOURCES, group_id, {"body": stored, "internal": {}})
        return JSONResponse(stored, status_code=201)


@router.get(GROUP_PATH)
def get_group_endpoint(
    subscription_id: str, group: str,
    emulator: Emulator = Depends(get_emulator), caller: Principal = Depends(get_caller),
) -> dict[str, Any]:
    """A resource group."""
    authorize_in_subscription(emulator, caller, subscription_id, ACTION_READ, emulator.group_id(group))
    body: dict[str, Any] = get_group(emulator, group)["body"]
    return body


@router.head(GROUP_PATH)
def check_group_exists(
    subscription_id: str, group: str,
    emulator: Emulator = Depends(get_emulator), caller: Principal = Depends(get_caller),
) -> Response:
    """204 when the group exists, 404 when not."""
    group_id = authorize_in_subscription(emulator, caller, subscription_id, ACTION_READ, emulator.group_id(group))
    exists = emulator.store.get(RESOURCES, group_id) is not None
    return Response(status_code=204 if exists else 404)


@router.patch(GROUP_PATH)
async def update_group(
    subscription_id: str, group: str, request: Request,
    emulator: Emulator = Depends(get_emulator), caller: Principal = Depends(get_caller),
) -> dict[str, Any]:
    """Update tags / managedBy of a group."""
    group_id = authorize_in_subscription(emulator, caller, subscription_id, ACTION_WRITE, emulator.group_id(group))
    patch = await read_json_object(request)
    require_group_writable(emulator, group)

    def change(record: Record) -> None:
        if "tags" in patch:
            record["body"]["tags"] = _validate_tags(patch["tags"])
        if "managedBy" in patch:
            record["body"]["managedBy"] = patch["managedBy"]

    updated = emulator.store.update(RESOURCES, group_id, change)
    assert updated is not None
    body: dict[str, Any] = updated["body"]
    return body


_TAG_FILTER = re.compile(r"^\s*tagName\s+eq\s+'([^']*)'(?:\s+and\s+tagValue\s+eq\s+'([^']*)')?\s*$", re.IGNORECASE)


@router.get("/subscriptions/{subscription_id}/resourceGroups")
def list_groups(
    subscription_id: str, request: Request,
    emulator: Emulator = Depends(get_emulator), caller: Principal = Depends(get_caller),
) -> dict[str, Any]:
    """Groups the caller may read; supports `$filter=tagName eq 'k' [and tagValue eq 'v']` and `$top`."""
    require_subscription(emulator, subscription_id)
    groups = [r["body"] for r in emulator.store.values(RESOURCES, lambda r: r["body"].get("type") == GROUP_TYPE)]
    groups = [g for g in groups if emulator.rbac.allowed(caller, ACTION_READ, g["id"])]
    odata_filter = request.query_params.get("$filter")
    if odata_filter:
        match = _TAG_FILTER.match(odata_filter)
        if not match:
            raise ArmError(400, "InvalidFilterInQueryString", f"Unsupported $filter '{odata_filter}'.")
        key, value = match.group(1), match.group(2)
        groups = [g for g in groups if key in (g.get("tags") or {})
                  and (value is None or g["tags"][key] == value)]
    top = request.query_params.get("$top")
    if top:
        groups = groups[: int(top)]
    return {"value": groups}


@router.delete(GROUP_PATH)
def delete_group(
    subscription_id: str, group: str, request: Request,
    emulator: Emulator = Depends(get_emulator), caller: Principal = Depends(get_caller),
) -> Response:
    """Start deleting a group and everything in it: 202 with a Location to poll."""
    group_id = authorize_in_subscription(emulator, caller, subscription_id, ACTION_DELETE, emulator.group_id(group))
    with emulator.store.transaction():
        record = get_group(emulator, group)
        running = emulator.operations.active_on(group_id)
        if record["body"]["properties"]["provisioningState"] == "Deleting" and running:
            # Deleting again joins the deletion in progress, as Resource Manager does.
            return Response(status_code=202, headers=polling_headers(emulator, request, running, async_operation=False))
        emulator.store.update(RESOURCES, group_id,
                              lambda r: r["body"]["properties"].update(provisioningState="Deleting"))
        op = emulator.operations.start(
            kind="group.delete", namespace=NAMESPACE, location=record["body"]["location"], resource_id=group_id,
            work=lambda run: _empty_and_delete_group(emulator, group_id, run),
            on_failure=lambda _error: _restore_group_state(emulator, group_id),
            on_interrupt="Succeeded",  # cut off by a stop: the group stays usable, as after a failed deletion
        )
    return Response(status_code=202, headers=polling_headers(emulator, request, op, async_operation=False))


def _restore_group_state(emulator: Emulator, group_id: str) -> None:
    # A failed deletion leaves the group (and whatever survived in it) usable again.
    emulator.store.update(RESOURCES, group_id, lambda r: r["body"]["properties"].update(provisioningState="Succeeded"))


def _empty_and_delete_group(emulator: Emulator, group_id: str, run: OperationRun) -> None:
    for provider in reversed(emulator.providers.all()):
        if provider.delete_group_contents is not None:
            provider.delete_group_contents(emulator, group_id)
    run.pace()
    with emulator.store.transaction():
        for key in emulator.store.keys_under(RESOURCES, group_id):
            emulator.store.delete(RESOURCES, key)
        emulator.rbac.remove_under(group_id)


provider = ResourceProvider(namespace=NAMESPACE, api_versions=API_VERSIONS, router=router)


# --- generic resource listing (`az resource list`, ResourceManagementClient.resources.list*) ------------

_TOP_LEVEL_ID = re.compile(r"^/subscriptions/[^/]+/resourceGroups/([^/]+)/providers/[^/]+/[^/]+/[^/]+$",
                           re.IGNORECASE)
_FILTER_CLAUSE = re.compile(r"^\s*(resourceType|name|tagName|tagValue)\s+eq\s+'([^']*)'\s*$", re.IGNORECASE)
# The fields GenericResourceExpanded carries in a list (properties only with $expand, which is not served).
_LISTED_FIELDS = ("id", "name", "type", "location", "tags", "sku", "kind", "identity", "managedBy", "plan",
                  "extendedLocation")


def _filtered(resources: list[dict[str, Any]], odata_filter: str | None) -> list[dict[str, Any]]:
    """`$filter` as ARM reads it for resource lists: `resourceType eq`, `name eq`, `tagName eq [and tagValue eq]`,
    joined by `and` (what `az resource list` and `az keyvault show` send)."""
    if not odata_filter:
        return resources
    wanted: dict[str, str] = {}
    for clause in re.split(r"\s+and\s+", odata_filter.strip(), flags=re.IGNORECASE):
        match = _FILTER_CLAUSE.match(clause)
        if not match:
            raise ArmError(400, "InvalidFilterInQueryString", f"Unsupported $filter '{odata_filter}': local Azure "
                           "filters by resourceType, name, or tagName [and tagValue], joined by 'and'.")
        wanted[match.group(1).lower()] = match.group(2)
    if "tagvalue" in wanted and "tagname" not in wanted:
        raise ArmError(400, "InvalidFilterInQueryString", "tagValue needs a tagName in the same $filter.")

    def keep(resource: dict[str, Any]) -> bool:
        tags = resource.get("tags") or {}
        return (("resourcetype" not in wanted or resource["type"].lower() == wanted["resourcetype"].lower())
                and ("name" not in wanted or resource["name"].lower() == wanted["name"].lower())
                and ("tagname" not in wanted or wanted["tagname"] in tags)
                and ("tagvalue" not in wanted or tags.get(wanted["tagname"]) == wanted["tagvalue"]))

    return [resource for resource in resources if keep(resource)]


def _top_level_resources(emulator: Emulator, caller: Principal, group: str | None) -> list[dict[str, Any]]:
    found = []
    for record in emulator.store.values(RESOURCES, lambda r: bool(_TOP_LEVEL_ID.match(r["body"].get("id", "")))):
        body = record["body"]
        match = _TOP_LEVEL_ID.match(body["id"])
        if group is not None and match is not None and match.group(1).lower() != group.lower():
            continue
        if emulator.rbac.allowed(caller, f"{body['type']}/read", body["id"]):
            found.append({key: body[key] for key in _LISTED_FIELDS if key in body})
    return sorted(found, key=lambda item: item["id"].lower())


@router.get("/subscriptions/{subscription_id}/resources")
def list_resources(
    subscription_id: str, request: Request,
    emulator: Emulator = Depends(get_emulator), caller: Principal = Depends(get_caller),
) -> dict[str, Any]:
    """Every top-level resource of the subscription the caller may read; `$filter` by type, name or tag."""
    require_subscription(emulator, subscription_id)
    return {"value": _filtered(_top_level_resources(emulator, caller, None), request.query_params.get("$filter"))}


@router.get(GROUP_PATH + "/resources")
def list_group_resources(
    subscription_id: str, group: str, request: Request,
    emulator: Emulator = Depends(get_emulator), caller: Principal = Depends(get_caller),
) -> dict[str, Any]:
    """Every top-level resource of a group the caller may read (404 for a missing group, as ARM)."""
    require_subscription(emulator, subscription_id)
    get_group(emulator, group)
    return {"value": _filtered(_top_level_resources(emulator, caller, group), request.query_params.get("$filter"))}
