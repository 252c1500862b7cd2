"""Retries in one place: which Azure failures are worth another attempt, and the task decorator that acts on it.

The Azure SDK's own retry policy (RETRY_OPTIONS in tasks/clients.py) already absorbs single 429s (with
Retry-After), 5xx answers and connection resets. What reaches a task is therefore either one of those
after the SDK gave up, a long-running operation that ended Failed, or a permanent refusal. This module
decides between "retry the whole task later" and "fail now with Azure's message", so every task behaves
the same way:

* retried with backoff: another operation in progress on the resource (409 OperationNotAllowed /
  AnotherOperationInProgress), throttling or server errors the SDK could not outlast, connection
  failures, and long-running operations that failed with a transient code;
* failed at once: authentication and authorization (401, 403), bad requests naming a property (400),
  a missing parent (404), and anything else Azure calls permanent.

Waits scale with FLEETFLOW_TIME_SCALE (wall seconds per Azure second, default 1) so that tests and the
local demo against a time-scaled local Azure do not sit through Azure-sized delays.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, ParamSpec, SupportsIndex, TypeVar, overload

from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ServiceRequestError,
    ServiceResponseError,
)
from prefect import Task, task
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import TaskRun
from prefect.states import State

TIME_SCALE_ENV = "FLEETFLOW_TIME_SCALE"

# Task-level attempts after the first; each one follows the SDK's own retries, so a few suffice.
TASK_RETRIES = 4
# Azure seconds before each task retry (scaled by FLEETFLOW_TIME_SCALE); the last one repeats.
TASK_RETRY_DELAYS = (15.0, 45.0, 90.0, 180.0)

TRANSIENT_STATUS = frozenset({408, 429, 500, 502, 503, 504})
# Error codes of failed long-running operations (and of some synchronous answers) that a later attempt
# can get past: server-side faults, throttling, interrupted or pre-empted operations.
TRANSIENT_CODES = frozenset(
    code.lower()
    for code in (
        "AnotherOperationInProgress",
        "InternalServerError",
        "InternalOperationError",
        "InternalError",
        "ServiceUnavailable",
        "ServerBusy",
        "GatewayTimeout",
        "RequestTimeout",
        "OperationTimedOut",
        "TooManyRequests",
        "RetryableError",
        "OperationInterrupted",
        "OperationPreempted",
        "ResourceGroupBeingDeleted",
    )
)


def time_scale() -> float:
    """Wall seconds per Azure second for fleetflow's own waits (FLEETFLOW_TIME_SCALE, default 1)."""
    try:
        value = float(os.environ.get(TIME_SCALE_ENV, "1"))
    except ValueError:
        return 1.0
    return value if value > 0 else 1.0


def scaled(azure_seconds: float) -> float:
    """Wall seconds standing for a wait of `azure_seconds`."""
    return azure_seconds * time_scale()


class FleetflowError(RuntimeError):
    """A fleetflow failure that names what was being done, to which resource, and where."""

    def __init__(self, message: str, *, operation: str, resource_id: str, region: str | None = None,
                 retryable: bool = False):
        self.operation = operation
        self.resource_id = resource_id
        self.region = region
        self.retryable = retryable
        super().__init__(message)


class AzureOperationError(FleetflowError):
    """An Azure call that failed; keeps Azure's status, code and message and the original exception as cause."""

    def __init__(self, *, operation: str, resource_id: str, region: str | None, status: int | None,
                 code: str | None, azure_message: str, retryable: bool, reason: str):
        self.status = status
        self.code = code
        self.azure_message = azure_message
        self.reason = reason
        where = f" in {region}" if region else ""
        kind = "transient, will be retried" if retryable else "permanent"
        status_text = f"{status} " if status else ""
        super().__init__(
            f"{operation} {resource_id}{where} failed ({kind}: {reason}): {status_text}{code or 'error'}: "
            f"{azure_message}",
            operation=operation, resource_id=resource_id, region=region, retryable=retryable,
        )


class OwnershipError(FleetflowError):
    """A resource exists under a name fleetflow wants but is not marked as owned by this fleet."""


@dataclass(frozen=True)
class Classification:
    """What a failure means for the task that hit it."""

    retryable: bool
    reason: str
    status: int | None = None
    code: str | None = None
    message: str = ""


def _error_codes(error: HttpResponseError) -> tuple[str | None, list[str], str]:
    """The top-level code, the detail codes and Azure's message of an HttpResponseError."""
    odata = getattr(error, "error", None)
    code = getattr(odata, "code", None)
    message = getattr(odata, "message", None) or error.message or str(error)
    details = [getattr(detail, "code", None) for detail in (getattr(odata, "details", None) or [])]
    return code, [d for d in details if d], str(message)


def classify(error: BaseException) -> Classification:
    """Decide whether a failed Azure call is worth retrying, and say why."""
    if isinstance(error, AzureOperationError):
        return Classification(error.retryable, error.reason, error.status, error.code, error.azure_message)
    if isinstance(error, FleetflowError):
        return Classification(error.retryable, "fleetflow check", message=str(error))
    if isinstance(error, ClientAuthenticationError) and not isinstance(error.status_code, int):
        # Raised by azure-identity when the token endpoint refuses the credentials.
        return Classification(False, "authentication failed", code="AuthenticationFailed", message=error.message)
    if isinstance(error, HttpResponseError):
        status = error.status_code
        code, detail_codes, message = _error_codes(error)
        codes = {c.lower() for c in (code, *detail_codes) if c}
        in_progress = "anotheroperationinprogress" in codes or (
            status == 409 and (code or "").lower() == "operationnotallowed" and "in progress" in message.lower()
        )
        if in_progress:
            return Classification(True, "another operation is in progress", status, code, message)
        if status in (401, 403):
            return Classification(False, "not authorized", status, code, message)
        if status in TRANSIENT_STATUS:
            return Classification(True, "transient error persisted through the SDK's retries", status, code, message)
        if status is not None and 200 <= status < 300:
            # A long-running operation that ended Failed: the poll answered 200, the error is in the body.
            if codes & TRANSIENT_CODES:
                return Classification(True, "long-running operation failed with a transient code", status, code,
                                      message)
            return Classification(False, "long-running operation failed", status, code, message)
        if codes & TRANSIENT_CODES and status not in (400, 404):
            return Classification(True, "transient error code", status, code, message)
        if status == 404:
            return Classification(False, "not found (a parent resource is missing)", status, code, message)
        if status == 400:
            return Classification(False, "request rejected", status, code, message)
        return Classification(False, "permanent error", status, code, message)
    if isinstance(error, ServiceRequestError | ServiceResponseError | ConnectionError | TimeoutError):
        return Classification(True, "connection failed", message=str(error))
    return Classification(False, f"unexpected {type(error).__name__}", message=str(error))


@contextlib.contextmanager
def azure_call(operation: str, resource_id: str, region: str | None = None) -> Iterator[None]:
    """Run Azure calls, turning any failure into an AzureOperationError with context and the cause kept."""
    try:
        yield
    except FleetflowError:
        raise
    except Exception as error:
        verdict = classify(error)
        raise AzureOperationError(
            operation=operation, resource_id=resource_id, region=region, status=verdict.status, code=verdict.code,
            azure_message=verdict.message, retryable=verdict.retryable, reason=verdict.reason,
        ) from error


def _exception_of(state: State[Any]) -> BaseException | None:
    if isinstance(state.data, BaseException):
        return state.data
    try:
        result = state.result(raise_on_failure=False)
    except Exception as error:  # reading a result can itself fail; then judge that error
        return error
    return result if isinstance(result, BaseException) else None


def should_retry(task: Task[Any, Any], task_run: TaskRun, state: State[Any]) -> bool:
    """Prefect retry_condition_fn: retry only failures classify() calls transient, and log the decision."""
    error = _exception_of(state)
    if error is None:
        return False
    verdict = classify(error)
    with contextlib.suppress(Exception):
        from prefect import get_run_logger

        logger = get_run_logger()
        if verdict.retryable:
            logger.warning("%s: retrying after a transient failure (%s)", task_run.name, verdict.reason)
        else:
            logger.error("%s: not retrying (%s)", task_run.name, verdict.reason)
    return verdict.retryable


class ScaledDelays(list[float]):
    """Retry delays in Azure seconds, scaled through FLEETFLOW_TIME_SCALE each time Prefect reads one.

    A list (Prefect accepts lists of delays) whose items are scaled at read time, so the scale can be set
    after the tasks were imported (tests, the local demo).
    """

    @overload
    def __getitem__(self, index: SupportsIndex) -> float: ...

    @overload
    def __getitem__(self, index: slice) -> list[float]: ...

    def __getitem__(self, index: SupportsIndex | slice) -> float | list[float]:
        if isinstance(index, slice):
            return [scaled(value) for value in super().__getitem__(index)]
        return scaled(super().__getitem__(index))


P = ParamSpec("P")
R = TypeVar("R")


def azure_task(**options: Any) -> Callable[[Callable[P, R]], Task[P, R]]:
    """The decorator of every fleetflow task that talks to Azure: never cached, retried per classify()."""
    defaults: dict[str, Any] = {
        "retries": TASK_RETRIES,
        "retry_delay_seconds": ScaledDelays(TASK_RETRY_DELAYS),
        "retry_jitter_factor": 0.3,
        "retry_condition_fn": should_retry,
        # Reconcile tasks must observe Azure every time; a cached result would hide drift.
        "cache_policy": NO_CACHE,
    }

    def decorate(function: Callable[P, R]) -> Task[P, R]:
        return task(**{**defaults, **options})(function)

    return decorate


def wait_until(
    observe: Callable[[], str | None],
    done: Callable[[str | None], bool],
    *,
    what: str,
    operation: str,
    resource_id: str,
    region: str | None = None,
    timeout_azure_seconds: float = 3600,
    poll_azure_seconds: float = 10,
) -> str | None:
    """Poll `observe` (a provisioning state, None when gone) until `done` says so; a timeout is retryable."""
    deadline = time.monotonic() + scaled(timeout_azure_seconds)
    while True:
        state = observe()
        if done(state):
            return state
        if time.monotonic() > deadline:
            raise FleetflowError(f"{operation} {resource_id}: {what} still {state} after "
                                 f"{timeout_azure_seconds:g} s", operation=operation, resource_id=resource_id,
                                 region=region, retryable=True)
        time.sleep(max(0.05, scaled(poll_azure_seconds)))
