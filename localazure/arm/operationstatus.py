"""Operation-status (Azure-AsyncOperation) and operation-result (Location) endpoints for every provider."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response

from localazure.arm.auth import get_caller
from localazure.arm.common import RESOURCES, api_version, base_url, require_subscription
from localazure.arm.context import Emulator, get_emulator
from localazure.arm.errors import ArmError
from localazure.arm.rbac import Principal
from localazure.arm.store import Record

router = APIRouter()


def _operation(emulator: Emulator, subscription_id: str, name: str) -> Record:
    require_subscription(emulator, subscription_id)
    record = emulator.operations.get(name)
    if record is None:
        raise ArmError(404, "OperationNotFound", f"The operation '{name}' was not found.")
    return record


@router.get("/subscriptions/{subscription_id}/providers/{namespace}/locations/{location}/operations/{name}")
def operation_status(
    subscription_id: str, namespace: str, location: str, name: str, request: Request,
    emulator: Emulator = Depends(get_emulator), _caller: Principal = Depends(get_caller),
) -> Response:
    """Status of a long-running operation (what Azure-AsyncOperation points to)."""
    record = _operation(emulator, subscription_id, name)
    headers = emulator.operations.delay_headers(record) if record["status"] == "InProgress" else {}
    return JSONResponse(emulator.operations.status_body(record), headers=headers)


def _operation_result(emulator: Emulator, record: Record, request: Request) -> Response:
    if record["status"] == "InProgress":
        return Response(status_code=202, headers=emulator.operations.headers(
            record, base_url(request), api_version(request), async_operation=False))
    if record["status"] != "Succeeded":
        error = record["error"] or {"code": "OperationFailed", "message": "The operation failed."}
        status = record.get("httpStatus") or 500
        # 5xx would make the SDK retry a result that will never change; report terminal failures as 4xx.
        return JSONResponse({"error": error}, status_code=status if status < 500 else 409)
    result_id = record.get("resultResourceId")
    if result_id:
        resource: dict[str, Any] | None = emulator.store.get(RESOURCES, result_id)
        if resource is not None:
            return JSONResponse(resource["body"])
    return Response(status_code=204)


@router.get("/subscriptions/{subscription_id}/providers/{namespace}/locations/{location}/operationresults/{name}")
def operation_result(
    subscription_id: str, namespace: str, location: str, name: str, request: Request,
    emulator: Emulator = Depends(get_emulator), _caller: Principal = Depends(get_caller),
) -> Response:
    """Result of a long-running operation (what Location points to): 202 while running."""
    return _operation_result(emulator, _operation(emulator, subscription_id, name), request)


@router.get("/subscriptions/{subscription_id}/operationresults/{name}")
def subscription_operation_result(
    subscription_id: str, name: str, request: Request,
    emulator: Emulator = Depends(get_emulator), _caller: Principal = Depends(get_caller),
) -> Response:
    """Subscription-level operation result (resource group deletion)."""
    return _operation_result(emulator, _operation(emulator, subscription_id, name), request)
