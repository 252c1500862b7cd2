"""Helpers shared by resource providers: subscription/group checks, request bodies, list filtering."""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request

from localazure.arm.context import Emulator
from localazure.arm.errors import ArmError, group_not_found
from localazure.arm.rbac import Principal
from localazure.arm.store import Record

RESOURCES = "resources"


def require_subscription(emulator: Emulator, subscription_id: str) -> None:
    """404 SubscriptionNotFound unless the path names this emulator's subscription."""
    if subscription_id.lower() != emulator.subscription_id.lower():
        raise ArmError(404, "SubscriptionNotFound", f"The subscription '{subscription_id}' could not be found.")


def authorize_in_subscription(emulator: Emulator, caller: Principal, subscription_id: str, action: str,
                              resource_id: str) -> str:
    """`resource_id`, once the path names this subscription (else 404) and the caller may do `action` on it (403)."""
    require_subscription(emulator, subscription_id)
    emulator.rbac.authorize(caller, action, resource_id)
    return resource_id


def get_group(emulator: Emulator, group: str) -> Record:
    """The stored record of a resource group, or 404 ResourceGroupNotFound."""
    record = emulator.store.get(RESOURCES, emulator.group_id(group))
    if record is None:
        raise group_not_found(group)
    return record


def require_group_writable(emulator: Emulator, group: str) -> Record:
    """The group record; 404 if absent, 409 if it is being deleted."""
    record = get_group(emulator, group)
    if record["body"]["properties"]["provisioningState"] == "Deleting":
        raise ArmError(409, "ResourceGroupBeingDeleted", f"The resource group '{record['body']['name']}' is in "
                       "deprovisioning state and cannot perform this operation.")
    return record


def api_version(request: Request) -> str:
    """The request's api-version (already validated by the middleware)."""
    return request.query_params.get("api-version", "")


async def read_json_object(request: Request) -> dict[str, Any]:
    """The request body as a JSON object; 400 InvalidRequestContent otherwise."""
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ArmError(400, "InvalidRequestContent", f"The request content was invalid and could not be "
                       f"deserialized: {exc.msg} at position {exc.pos}.") from exc
    if not isinstance(body, dict):
        raise ArmError(400, "InvalidRequestContent", "The request content must be a JSON object.")
    return body


def base_url(request: Request) -> str:
    """Scheme and authority the client used (for absolute polling URLs)."""
    return str(request.base_url).rstrip("/")


def polling_headers(emulator: Emulator, request: Request, operation: Record, *,
                    async_operation: bool = True) -> dict[str, str]:
    """Headers that point the client at a long-running operation, with the URL and api-version it called."""
    return emulator.operations.headers(operation, base_url(request), api_version(request),
                                       async_operation=async_operation)


def normalize_location(location: str) -> str:
    """`East US` -> `eastus`, as Resource Manager stores locations."""
    return location.replace(" ", "").lower()
