"""Retries in one place: which Azure failures are worth another attempt, and the task decorator that acts on it.

The Azure SDK's own retry policy (RETRY_OPTIONS in tasks/clients.py) already absorbs single 429s (with
Retry-After), 5xx answers and connection resets. What reaches a task is therefore either one of those
after the SDK gave up, a long-running operation that ended Failed, or a permanent refusal. This module
decides between "retry the whole task later" and "fail now with Azure's message", so every task behaves
the same way:

* retried with backoff: another operation in progress on the resource (409 OperationNotAllowed /
  AnotherOperationInProgress), throttling or server errors the SDK could not outlast, connections
  refused, reset or timed out -- to the token endpoint as much as to Resource Manager -- and
  long-running operations that failed with a transient code;
* failed at once: the token endpoint refusing the credentials (wrong secret, unknown client, disabled
  principal), an untrusted TLS certificate, authorization (401, 403), bad requests naming a property
  (400), a missing parent (404), and anything else Azure calls permanent.

The decision goes by cause, not by exception class: azure-identity reports a refused connection as a
ClientAuthenticationError, which is neither permanent nor an authentication failure. Reasons name the
endpoint (token endpoint or Resource Manager, with its host).

Waits scale with FLEETFLOW_TIME_SCALE (wall seconds per Azure second, default 1) so that tests and the
local demo against a time-scaled local Azure do not sit through Azure-sized delays.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, ParamSpec, SupportsIndex, TypeVar, overload

from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ServiceRequestError,
    ServiceRequestTimeoutError,
    ServiceResponseError,
    ServiceResponseTimeoutError,
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


# Entra ID (token endpoint) answers that no retry can change, by AADSTS code.
TOKEN_REFUSALS = {
    "AADSTS7000215": "wrong client secret",
    "AADSTS7000222": "client secret expired",
    "AADSTS7000216": "no client secret sent",
    "AADSTS700016": "unknown client id (no such application in the tenant)",
    "AADSTS7000112": "service principal disabled",
    "AADSTS700024": "client assertion not valid",
    "AADSTS90002": "unknown tenant",
    "AADSTS900023": "tenant id is not valid",
    "AADSTS50034": "unknown account",
    "AADSTS50057": "account disabled",
    "AADSTS53003": "blocked by conditional access",
}
_AADSTS = re.compile(r"AADSTS\d+")
_HOST_PORT = re.compile(r"host='([^']+)',\s*port=(\d+)")
_URL = re.compile(r"https?://[^\s'\"()<>]+")
TOKEN_ENDPOINT_ATTRIBUTE = "fleetflow_token_endpoint"


def _chain(error: BaseException) -> Iterator[BaseException]:
    """The error and every exception it was raised from or during (cause/context), each once."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _connection_problem(error: BaseException) -> str | None:
    """'connection refused' / 'connection reset' / 'timed out' / 'connection failed' when a connection
    (not an answer) failed anywhere in the error's chain; None otherwise."""
    if any(isinstance(link, HttpResponseError) and isinstance(link.status_code, int) for link in _chain(error)):
        return None  # an answer came back: its status and code decide
    failed = False
    timed_out = False
    for link in _chain(error):
        if isinstance(link, ServiceRequestTimeoutError | ServiceResponseTimeoutError | TimeoutError):
            timed_out = True
        if isinstance(link, ServiceRequestError | ServiceResponseError | ConnectionError | TimeoutError):
            failed = True
    text = " ".join(str(link) for link in _chain(error)).lower()
    if not failed and not any(marker in text for marker in (
            "connection refused", "connection reset", "failed to establish a new connection", "timed out",
            "remotedisconnected", "connection aborted")):
        return None
    if "certificate verify failed" in text or "certificate_verify_failed" in text:
        return None  # a TLS trust failure is not transient: see _tls_problem
    if "refused" in text:
        return "connection refused"
    if "reset" in text or "aborted" in text or "remotedisconnected" in text:
        return "connection reset"
    if timed_out or "timed out" in text or "timeout" in text:
        return "timed out"
    return "connection failed"


def _endpoint_of(error: BaseException) -> str | None:
    """The endpoint a failed call went to, as far as the error tells."""
    for link in _chain(error):
        named = getattr(link, TOKEN_ENDPOINT_ATTRIBUTE, None)
        if named:
            return str(named)
    for link in _chain(error):
        response = getattr(link, "response", None)
        request = getattr(response, "request", None)
        url = getattr(request, "url", None)
        if isinstance(url, str) and url:
            return url.split("?", 1)[0]
    text = " ".join(str(link) for link in _chain(error))
    host = _HOST_PORT.search(text)
    if host:
        return f"{host.group(1)}:{host.group(2)}"
    url_match = _URL.search(text)
    return url_match.group(0) if url_match else None


def _is_token_failure(error: BaseException) -> bool:
    return any(isinstance(link, ClientAuthenticationError) and not isinstance(link.status_code, int)
               or getattr(link, TOKEN_ENDPOINT_ATTRIBUTE, None) for link in _chain(error))


def classify(error: BaseException) -> Classification:
    """Decide whether a failed Azure call is worth retrying, and say why -- by cause, not exception class.

    A connection that was refused, reset or timed out is transient whichever endpoint it went to (the
    token endpoint or Resource Manager); a token endpoint refusing the credentials (wrong secret,
    unknown client, disabled principal) is permanent; the reason names the endpoint.
    """
    if isinstance(error, AzureOperationError):
        return Classification(error.retryable, error.reason, error.status, error.code, error.azure_message)
    if isinstance(error, FleetflowError):
        return Classification(error.retryable, "fleetflow check", message=str(error))
    token = _is_token_failure(error)
    endpoint = _endpoint_of(error)
    where = ("token endpoint" if token else "Resource Manager") + (f" {endpoint}" if endpoint else "")
    problem = _connection_problem(error)
    if problem is not None:
        return Classification(True, f"{problem} by {where}" if problem == "connection refused"
                              else f"{problem} talking to {where}", message=_first_line(error))
    text = " ".join(str(link) for link in _chain(error))
    if "certificate verify failed" in text.lower() or "certificate_verify_failed" in text.lower():
        return Classification(False, f"TLS certificate of {where} not trusted (check the CA bundle)",
                              code="CertificateVerifyFailed", message=_first_line(error))
    if token:
        # azure-identity raises ClientAuthenticationError without a status when Entra ID refuses the request.
        found = _AADSTS.search(text)
        code = found.group(0) if found else None
        what = TOKEN_REFUSALS.get(code or "", "credentials refused")
        message = error.message if isinstance(error, ClientAuthenticationError) else str(error)
        return Classification(False, f"{where} refused the credentials: {what}", code=code or "AuthenticationFailed",
                              message=message)
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
    return Classification(False, f"unexpected {type(error).__name__}", message=str(error))


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


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
