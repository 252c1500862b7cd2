"""Resource Manager and Entra error responses in the shapes the Azure SDK parses."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, Response


class ArmError(Exception):
    """An error answered with Resource Manager's `{"error": {"code", "message"}}` body."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        headers: dict[str, str] | None = None,
        details: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}
        self.details = details or []

    def body(self) -> dict[str, Any]:
        """The JSON error body."""
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details:
            error["details"] = self.details
        return {"error": error}

    def as_error_detail(self) -> dict[str, Any]:
        """The inner `{"code", "message"}` object, as stored on failed operations."""
        return self.body()["error"]


class EntraError(Exception):
    """An error answered with the OAuth2 `{"error", "error_description"}` body of the token endpoint."""

    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(f"{status} {error}: {description}")
        self.status = status
        self.error = error
        self.description = description


def not_found(resource_type: str, name: str, group: str | None = None) -> ArmError:
    """404 ResourceNotFound as Resource Manager words it."""
    where = f" under resource group '{group}'" if group else ""
    return ArmError(
        404,
        "ResourceNotFound",
        f"The Resource '{resource_type}/{name}'{where} was not found. "
        "For more details please go to https://aka.ms/ARMResourceNotFoundFix",
    )


def group_not_found(group: str) -> ArmError:
    """404 ResourceGroupNotFound."""
    return ArmError(404, "ResourceGroupNotFound", f"Resource group '{group}' could not be found.")


def invalid_parameter(prop: str, message: str) -> ArmError:
    """400 InvalidParameter naming the offending property."""
    return ArmError(
        400,
        "InvalidParameter",
        f"The value of parameter {prop} is invalid. {message}",
        details=[{"code": "InvalidParameter", "message": message, "target": prop}],
    )


def another_operation_in_progress(resource_id: str, operation: str) -> ArmError:
    """409 for a write while a long-running operation on the resource has not finished."""
    return ArmError(
        409,
        "OperationNotAllowed",
        f"Operation is not allowed because there's an in progress {operation} operation on "
        f"'{resource_id}'. Please wait for it to finish before starting a new operation.",
        details=[{"code": "AnotherOperationInProgress", "message": f"Another operation ({operation}) is in progress."}],
    )


def error_detail(detail: dict[str, Any] | None) -> dict[str, Any] | None:
    """An error in Azure's ErrorDetail shape (`code`, `message`, `target`, `details`, `additionalInfo`), as
    resources carry it in `lastOperationError`; None stays None."""
    if detail is None:
        return None
    return {"code": detail.get("code"), "message": detail.get("message"), "target": detail.get("target"),
            "details": [error_detail(d) for d in detail.get("details") or []],
            "additionalInfo": list(detail.get("additionalInfo") or [])}


async def arm_error_handler(_request: Request, exc: Exception) -> Response:
    """FastAPI exception handler for ArmError."""
    assert isinstance(exc, ArmError)
    return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)


async def entra_error_handler(_request: Request, exc: Exception) -> Response:
    """FastAPI exception handler for EntraError."""
    assert isinstance(exc, EntraError)
    return JSONResponse(
        {"error": exc.error, "error_description": exc.description, "error_codes": []},
        status_code=exc.status,
    )
