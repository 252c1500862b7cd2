"""Every verdict classify() gives, whole (retryable, reason, status, code, message), and the messages, delays and
waits built on it: which Azure failures a task retries and what the operator reads about each."""

from __future__ import annotations

import logging
from types import SimpleNamespace
from typing import Any

import pytest
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ServiceRequestError,
    ServiceRequestTimeoutError,
    ServiceResponseError,
    ServiceResponseTimeoutError,
)
from prefect.cache_policies import NO_CACHE
from prefect.states import Completed, Failed

from tasks import retry
from tasks.retry import (
    TASK_RETRIES,
    AzureOperationError,
    Classification,
    FleetflowError,
    ScaledDelays,
    azure_call,
    azure_task,
    classify,
    scaled,
    should_retry,
    time_scale,
    wait_until,
)
from tests.product.unit.test_retry import RESOURCE, TOKEN_ENDPOINT, _identity_error, _Response, http_error, lro_failure

ARM = "https://management.azure.com" + RESOURCE
PERSISTED = "transient error persisted through the SDK's retries"


def status_error(status: int, body: dict[str, Any]) -> HttpResponseError:
    return HttpResponseError(response=_Response(status, body))


def with_url(error: BaseException, url: object) -> BaseException:
    error.response = SimpleNamespace(request=SimpleNamespace(url=url))  # type: ignore[attr-defined]
    return error


def caused(error: BaseException, cause: BaseException) -> BaseException:
    error.__cause__ = cause
    return error


def with_token_endpoint(error: BaseException, endpoint: str = TOKEN_ENDPOINT) -> BaseException:
    error.fleetflow_token_endpoint = endpoint  # type: ignore[attr-defined]
    return error


HTTP_CASES = [
    ("409 OperationNotAllowed saying in progress, any case",
     http_error(409, "OperationNotAllowed", "Operation is not allowed: an operation is In Progress"),
     Classification(True, "another operation is in progress", 409, "OperationNotAllowed",
                    "Operation is not allowed: an operation is In Progress")),
    ("AnotherOperationInProgress among the details",
     http_error(409, "Conflict", "x", [{"code": "AnotherOperationInProgress", "message": "m"}]),
     Classification(True, "another operation is in progress", 409, "Conflict", "x")),
    ("AnotherOperationInProgress on a 400", http_error(400, "AnotherOperationInProgress", "busy"),
     Classification(True, "another operation is in progress", 400, "AnotherOperationInProgress", "busy")),
    ("409 OperationNotAllowed for another reason", http_error(409, "OperationNotAllowed", "nope"),
     Classification(False, "permanent error", 409, "OperationNotAllowed", "nope")),
    ("409 other code saying in progress", http_error(409, "Conflict", "in progress"),
     Classification(False, "permanent error", 409, "Conflict", "in progress")),
    ("400 OperationNotAllowed saying in progress", http_error(400, "OperationNotAllowed", "in progress"),
     Classification(False, "request rejected", 400, "OperationNotAllowed", "in progress")),
    ("401", http_error(401, "InvalidAuthenticationToken", "expired", cls=ClientAuthenticationError),
     Classification(False, "not authorized", 401, "InvalidAuthenticationToken", "expired")),
    ("403 with a transient code", http_error(403, "ServerBusy", "no"),
     Classification(False, "not authorized", 403, "ServerBusy", "no")),
    ("408", http_error(408, "Timeout"), Classification(True, PERSISTED, 408, "Timeout", "msg")),
    ("429", http_error(429, "Throttled"), Classification(True, PERSISTED, 429, "Throttled", "msg")),
    ("500", http_error(500, "Oops"), Classification(True, PERSISTED, 500, "Oops", "msg")),
    ("502", http_error(502, "BadGateway"), Classification(True, PERSISTED, 502, "BadGateway", "msg")),
    ("503", http_error(503, "Down"), Classification(True, PERSISTED, 503, "Down", "msg")),
    ("504", http_error(504, "Slow"), Classification(True, PERSISTED, 504, "Slow", "msg")),
    ("501 is not transient", http_error(501, "NotImplemented"),
     Classification(False, "permanent error", 501, "NotImplemented", "msg")),
    ("long-running operation failed", lro_failure("Boom", "went wrong"),
     Classification(False, "long-running operation failed", 200, "Boom", "went wrong")),
    ("long-running operation failed on a 201 with a transient code",
     status_error(201, {"error": {"code": "OperationPreempted", "message": "m"}}),
     Classification(True, "long-running operation failed with a transient code", 201, "OperationPreempted", "m")),
    ("long-running operation failed on a 299", status_error(299, {"error": {"code": "X", "message": "m"}}),
     Classification(False, "long-running operation failed", 299, "X", "m")),
    ("300 is no operation result", status_error(300, {"error": {"code": "X", "message": "m"}}),
     Classification(False, "permanent error", 300, "X", "m")),
    ("199 is no operation result", status_error(199, {"error": {"code": "X", "message": "m"}}),
     Classification(False, "permanent error", 199, "X", "m")),
    ("transient code on a 409", http_error(409, "ServerBusy"),
     Classification(True, "transient error code", 409, "ServerBusy", "msg")),
    ("transient detail code on a 409", http_error(409, "Conflict", "x", [{"code": "RetryableError"}]),
     Classification(True, "transient error code", 409, "Conflict", "x")),
    ("transient code on a 400 is a rejection", http_error(400, "InternalError"),
     Classification(False, "request rejected", 400, "InternalError", "msg")),
    ("transient code on a 404 is a missing parent", http_error(404, "ResourceGroupBeingDeleted"),
     Classification(False, "not found (a parent resource is missing)", 404, "ResourceGroupBeingDeleted", "msg")),
    ("405", http_error(405, "MethodNotAllowed"),
     Classification(False, "permanent error", 405, "MethodNotAllowed", "msg")),
    ("an answer without a body", status_error(418, {}),
     Classification(False, "permanent error", 418, None, "Operation returned an invalid status 'reason'")),
]


@pytest.mark.parametrize(("error", "verdict"), [case[1:] for case in HTTP_CASES], ids=[c[0] for c in HTTP_CASES])
def test_an_answer_from_resource_manager_is_judged_by_status_and_codes(error: BaseException, verdict: Classification):
    assert classify(error) == verdict


@pytest.mark.parametrize("code", sorted(retry.TRANSIENT_CODES - {"anotheroperationinprogress"}))
def test_each_transient_code_makes_a_failed_long_running_operation_retryable(code: str):
    verdict = classify(lro_failure(code.upper(), "failed"))
    assert verdict == Classification(True, "long-running operation failed with a transient code", 200, code.upper(),
                                     "failed")


def test_the_transient_codes_are_the_documented_ones():
    assert {
        "anotheroperationinprogress", "internalservererror", "internaloperationerror", "internalerror",
        "serviceunavailable", "serverbusy", "gatewaytimeout", "requesttimeout", "operationtimedout",
        "toomanyrequests", "retryableerror", "operationinterrupted", "operationpreempted",
        "resourcegroupbeingdeleted"} == retry.TRANSIENT_CODES
    assert {408, 429, 500, 502, 503, 504} == retry.TRANSIENT_STATUS


CONNECTION_CASES = [
    ("a message saying connection refused", RuntimeError("Connection refused"),
     Classification(True, "connection refused by Resource Manager", message="Connection refused")),
    ("a message saying connection reset", OSError("connection reset by peer"),
     Classification(True, "connection reset talking to Resource Manager", message="connection reset by peer")),
    ("a message saying connection aborted", Exception("Connection aborted."),
     Classification(True, "connection reset talking to Resource Manager", message="Connection aborted.")),
    ("a message saying RemoteDisconnected", Exception("RemoteDisconnected('closed')"),
     Classification(True, "connection reset talking to Resource Manager", message="RemoteDisconnected('closed')")),
    ("a message saying timed out", Exception("read timed out"),
     Classification(True, "timed out talking to Resource Manager", message="read timed out")),
    ("a message saying no connection could be made", Exception("Failed to establish a new connection: no route"),
     Classification(True, "connection failed talking to Resource Manager",
                    message="Failed to establish a new connection: no route")),
    ("TimeoutError", TimeoutError("slow"),
     Classification(True, "timed out talking to Resource Manager", message="slow")),
    ("ServiceRequestTimeoutError", ServiceRequestTimeoutError("slow"),
     Classification(True, "timed out talking to Resource Manager", message="slow")),
    ("ServiceResponseTimeoutError", ServiceResponseTimeoutError("slow"),
     Classification(True, "timed out talking to Resource Manager", message="slow")),
    ("ServiceRequestError saying timeout", ServiceRequestError("Read timeout"),
     Classification(True, "timed out talking to Resource Manager", message="Read timeout")),
    ("ServiceRequestError without a hint", ServiceRequestError("Name or service not known"),
     Classification(True, "connection failed talking to Resource Manager", message="Name or service not known")),
    ("ServiceResponseError without a hint", ServiceResponseError("bad"),
     Classification(True, "connection failed talking to Resource Manager", message="bad")),
    ("ConnectionError", ConnectionError("boom"),
     Classification(True, "connection failed talking to Resource Manager", message="boom")),
    ("refused outranks reset and timed out", ServiceRequestError("timed out, connection reset, then refused"),
     Classification(True, "connection refused by Resource Manager",
                    message="timed out, connection reset, then refused")),
    ("reset outranks timed out", ServiceRequestTimeoutError("timed out after a reset"),
     Classification(True, "connection reset talking to Resource Manager", message="timed out after a reset")),
    ("only the first line is kept", ServiceRequestError("\n  Connection refused\n  at line 2\n"),
     Classification(True, "connection refused by Resource Manager", message="Connection refused")),
    ("an empty message is named by its type", ServiceRequestError(""),
     Classification(True, "connection failed talking to Resource Manager", message="ServiceRequestError")),
    ("the request URL names the endpoint, without its query",
     with_url(ServiceRequestError("Connection refused"), "https://arm.example.test/subscriptions/s?api-version=1"),
     Classification(True, "connection refused by Resource Manager https://arm.example.test/subscriptions/s",
                    message="Connection refused")),
    ("host and port in the message name the endpoint",
     ServiceResponseError("HTTPSConnectionPool(host='arm.example.test', port=443): Connection aborted"),
     Classification(True, "connection reset talking to Resource Manager arm.example.test:443",
                    message="HTTPSConnectionPool(host='arm.example.test', port=443): Connection aborted")),
    ("a URL in the message names the endpoint",
     ServiceRequestError("GET http://arm.example.test:8443/x?y=1 (timed out)"),
     Classification(True, "timed out talking to Resource Manager http://arm.example.test:8443/x?y=1",
                    message="GET http://arm.example.test:8443/x?y=1 (timed out)")),
    ("a URL ending one message of the chain names the endpoint, not the next message",
     caused(ServiceRequestError("GET https://arm.example.test/x"), OSError("Connection refused")),
     Classification(True, "connection refused by Resource Manager https://arm.example.test/x",
                    message="GET https://arm.example.test/x")),
    ("only the first query of a request URL is dropped",
     with_url(ServiceRequestError("Connection refused"), "https://arm.example.test/p?a=1?b=2"),
     Classification(True, "connection refused by Resource Manager https://arm.example.test/p",
                    message="Connection refused")),
    ("a request URL that is not text is ignored",
     with_url(ServiceRequestError("Connection refused (host='h.example.test', port=443)"), 443),  # type: ignore[arg-type]
     Classification(True, "connection refused by Resource Manager h.example.test:443",
                    message="Connection refused (host='h.example.test', port=443)")),
    ("a cause's URL names the endpoint",
     caused(ServiceRequestError("Connection refused"), with_url(ValueError("x"), "https://cause.example.test/p")),
     Classification(True, "connection refused by Resource Manager https://cause.example.test/p",
                    message="Connection refused")),
    ("an endpoint named on the error marks the token endpoint",
     with_token_endpoint(ServiceRequestError("Connection refused"), "https://login.example.test/t"),
     Classification(True, "connection refused by token endpoint https://login.example.test/t",
                    message="Connection refused")),
    ("the named token endpoint wins over a URL",
     with_token_endpoint(with_url(ServiceRequestError("Connection refused"), "https://arm.example.test/")),
     Classification(True, f"connection refused by token endpoint {TOKEN_ENDPOINT}", message="Connection refused")),
    ("an azure-identity error without a status is the token endpoint",
     ClientAuthenticationError("Connection refused"),
     Classification(True, "connection refused by token endpoint", message="Connection refused")),
]


@pytest.mark.parametrize(("error", "verdict"), [case[1:] for case in CONNECTION_CASES],
                         ids=[c[0] for c in CONNECTION_CASES])
def test_a_failed_connection_is_transient_and_named_with_its_endpoint(error: BaseException, verdict: Classification):
    assert classify(error) == verdict


def test_an_answer_anywhere_in_the_chain_means_the_connection_worked():
    error = caused(ServiceRequestError("Connection refused"), http_error(400, "InvalidParameter"))
    assert classify(error) == Classification(False, "unexpected ServiceRequestError", message="Connection refused")


def test_a_chain_that_loops_is_walked_once():
    first, second = ServiceRequestError("a"), ValueError("Connection reset")
    first.__cause__, second.__context__ = second, first
    assert classify(first) == Classification(True, "connection reset talking to Resource Manager", message="a")


@pytest.mark.parametrize(("error", "verdict"), [
    (ServiceRequestError("[SSL: CERTIFICATE_VERIFY_FAILED] Connection refused (host='h', port=1)"),
     Classification(False, "TLS certificate of Resource Manager h:1 not trusted (check the CA bundle)",
                    code="CertificateVerifyFailed",
                    message="[SSL: CERTIFICATE_VERIFY_FAILED] Connection refused (host='h', port=1)")),
    (ServiceRequestError("certificate verify failed: timed out"),
     Classification(False, "TLS certificate of Resource Manager not trusted (check the CA bundle)",
                    code="CertificateVerifyFailed", message="certificate verify failed: timed out")),
    (Exception("Certificate Verify Failed"),
     Classification(False, "TLS certificate of Resource Manager not trusted (check the CA bundle)",
                    code="CertificateVerifyFailed", message="Certificate Verify Failed")),
    (with_token_endpoint(Exception("ssl: certificate_verify_failed")),
     Classification(False, f"TLS certificate of token endpoint {TOKEN_ENDPOINT} not trusted (check the CA bundle)",
                    code="CertificateVerifyFailed", message="ssl: certificate_verify_failed")),
], ids=["refused but untrusted", "timed out but untrusted", "any case", "token endpoint"])
def test_an_untrusted_certificate_is_permanent_whatever_else_the_message_says(error, verdict):
    assert classify(error) == verdict


@pytest.mark.parametrize(("code", "what"), sorted(retry.TOKEN_REFUSALS.items()))
def test_each_token_endpoint_refusal_is_permanent_and_named(code: str, what: str):
    verdict = classify(_identity_error(f"{code}: refused."))
    assert verdict == Classification(False, f"token endpoint {TOKEN_ENDPOINT} refused the credentials: {what}",
                                     code=code, message=f"Authentication failed: {code}: refused.")


def test_the_token_refusals_are_the_documented_ones():
    assert retry.TOKEN_REFUSALS == {
        "AADSTS7000215": "wrong client secret", "AADSTS7000222": "client secret expired",
        "AADSTS7000216": "no client secret sent",
        "AADSTS700016": "unknown client id (no such application in the tenant)",
        "AADSTS7000112": "service principal disabled", "AADSTS700024": "client assertion not valid",
        "AADSTS90002": "unknown tenant", "AADSTS900023": "tenant id is not valid", "AADSTS50034": "unknown account",
        "AADSTS50057": "account disabled", "AADSTS53003": "blocked by conditional access"}


@pytest.mark.parametrize(("error", "verdict"), [
    (_identity_error("whatever", endpoint=None),
     Classification(False, "token endpoint refused the credentials: credentials refused", code="AuthenticationFailed",
                    message="Authentication failed: whatever")),
    (_identity_error("AADSTS12345: new refusal"),
     Classification(False, f"token endpoint {TOKEN_ENDPOINT} refused the credentials: credentials refused",
                    code="AADSTS12345", message="Authentication failed: AADSTS12345: new refusal")),
    (with_token_endpoint(ValueError("AADSTS50057: disabled")),
     Classification(False, f"token endpoint {TOKEN_ENDPOINT} refused the credentials: account disabled",
                    code="AADSTS50057", message="AADSTS50057: disabled")),
], ids=["no code, no endpoint", "unknown code", "not an azure-identity error"])
def test_other_token_refusals_are_permanent_with_the_code_found(error: BaseException, verdict: Classification):
    assert classify(error) == verdict


@pytest.mark.parametrize(("error", "verdict"), [
    (KeyError("properties"), Classification(False, "unexpected KeyError", message="'properties'")),
    (FleetflowError("owned elsewhere", operation="o", resource_id="r"),
     Classification(False, "fleetflow check", message="owned elsewhere")),
    (FleetflowError("still Creating", operation="o", resource_id="r", retryable=True),
     Classification(True, "fleetflow check", message="still Creating")),
    (AzureOperationError(operation="o", resource_id="r", region=None, status=503, code="Busy", azure_message="m",
                         retryable=True, reason="why"), Classification(True, "why", 503, "Busy", "m")),
], ids=["unexpected", "fleetflow check", "retryable fleetflow check", "already classified"])
def test_other_errors_keep_their_own_verdict_or_are_permanent(error: BaseException, verdict: Classification):
    assert classify(error) == verdict


@pytest.mark.parametrize(("region", "status", "code", "retryable", "expected"), [
    ("eastus", 409, "Conflict", True,
     f"create {RESOURCE} in eastus failed (transient, will be retried: why): 409 Conflict: azure says"),
    (None, None, None, False, f"create {RESOURCE} failed (permanent: why): error: azure says"),
    ("", 0, "", False, f"create {RESOURCE} failed (permanent: why): error: azure says"),
])
def test_an_azure_operation_error_says_what_where_whether_retried_why_and_azures_words(
        region, status, code, retryable, expected):
    error = AzureOperationError(operation="create", resource_id=RESOURCE, region=region, status=status, code=code,
                                azure_message="azure says", retryable=retryable, reason="why")
    assert str(error) == expected
    assert (error.operation, error.resource_id, error.region, error.retryable) == ("create", RESOURCE, region,
                                                                                  retryable)
    assert (error.status, error.code, error.azure_message, error.reason) == (status, code, "azure says", "why")


def test_azure_call_turns_a_failure_into_an_error_carrying_the_verdict():
    cause = http_error(503, "ServiceUnavailable", "try later")
    with pytest.raises(AzureOperationError) as raised, azure_call("delete cluster", RESOURCE):
        raise cause
    error = raised.value
    assert (error.region, error.status, error.code, error.azure_message, error.retryable, error.reason) == (
        None, 503, "ServiceUnavailable", "try later", True, PERSISTED)
    assert str(error) == (f"delete cluster {RESOURCE} failed (transient, will be retried: {PERSISTED}): "
                          "503 ServiceUnavailable: try later")


def test_azure_call_passes_when_nothing_fails():
    with azure_call("read", RESOURCE):
        value = 1
    assert value == 1


@pytest.mark.parametrize(("setting", "scale"), [(None, 1.0), ("0.25", 0.25), ("3", 3.0), ("0", 1.0), ("-2", 1.0),
                                                ("fast", 1.0), ("", 1.0)])
def test_the_time_scale_is_the_setting_when_it_is_a_positive_number_else_one(monkeypatch, setting, scale):
    if setting is None:
        monkeypatch.delenv("FLEETFLOW_TIME_SCALE", raising=False)
    else:
        monkeypatch.setenv("FLEETFLOW_TIME_SCALE", setting)
    assert time_scale() == scale
    assert scaled(8.0) == 8.0 * scale


def test_scaled_delays_are_scaled_when_read_by_index_or_slice(monkeypatch):
    monkeypatch.setenv("FLEETFLOW_TIME_SCALE", "0.5")
    delays = ScaledDelays([10.0, 30.0, 90.0])
    assert (delays[0], delays[-1], delays[1:], delays[:]) == (5.0, 45.0, [15.0, 45.0], [5.0, 15.0, 45.0])
    assert list.__getitem__(delays, 0) == 10.0


class _Run:
    name = "ensure-cluster-eastus"


class _Logger:
    def __init__(self) -> None:
        self.records: list[tuple[int, str]] = []

    def warning(self, message: str, *args: Any) -> None:
        self.records.append((logging.WARNING, message % args))

    def error(self, message: str, *args: Any) -> None:
        self.records.append((logging.ERROR, message % args))


@pytest.mark.parametrize(("state", "decision", "logged"), [
    (Failed(data=http_error(503, "ServiceUnavailable")), True,
     [(logging.WARNING, f"ensure-cluster-eastus: retrying after a transient failure ({PERSISTED})")]),
    (Failed(data=http_error(403, "AuthorizationFailed")), False,
     [(logging.ERROR, "ensure-cluster-eastus: not retrying (not authorized)")]),
    (Completed(data="done"), False, []),
], ids=["transient", "permanent", "no exception"])
def test_the_retry_condition_logs_its_decision_with_the_reason(monkeypatch, state, decision: bool, logged):
    import prefect

    logger = _Logger()
    monkeypatch.setattr(prefect, "get_run_logger", lambda: logger)
    assert should_retry(None, _Run(), state) is decision  # type: ignore[arg-type]
    assert logger.records == logged


def test_the_retry_condition_decides_even_without_a_run_logger():
    assert should_retry(None, _Run(), Failed(data=http_error(503, "Busy"))) is True  # type: ignore[arg-type]


class _StateReading:
    """A state whose data is no exception: the exception is read from its result, which may itself fail."""

    def __init__(self, result: Any = None, error: Exception | None = None) -> None:
        self.data, self._result, self._error = None, result, error

    def result(self, raise_on_failure: bool = True) -> Any:
        assert raise_on_failure is False
        if self._error is not None:
            raise self._error
        return self._result


@pytest.mark.parametrize(("state", "decision"), [
    (_StateReading(result=http_error(503, "Busy")), True),
    (_StateReading(result=http_error(400, "Bad")), False),
    (_StateReading(error=ServiceRequestError("Connection refused")), True),
    (_StateReading(error=KeyError("x")), False),
    (_StateReading(result="not an error"), False),
], ids=["transient result", "permanent result", "reading fails transiently", "reading fails", "no error"])
def test_the_retry_condition_judges_the_result_or_the_error_reading_it(state, decision: bool):
    assert should_retry(None, _Run(), state) is decision  # type: ignore[arg-type]


def test_an_azure_task_is_retried_per_classify_never_cached_and_options_win(monkeypatch):
    def work() -> int:
        return 1

    made = azure_task()(work)
    assert made.retries == TASK_RETRIES == 4
    assert made.retry_condition_fn is should_retry
    assert made.retry_jitter_factor == 0.3
    assert made.cache_policy is NO_CACHE
    monkeypatch.setenv("FLEETFLOW_TIME_SCALE", "0.1")
    assert [made.retry_delay_seconds[attempt] for attempt in range(4)] == pytest.approx([1.5, 4.5, 9.0, 18.0])
    assert azure_task(retries=1, name="custom")(work).retries == 1
    assert azure_task(retries=1, name="custom")(work).name == "custom"


def test_wait_until_returns_the_first_state_that_is_done(monkeypatch):
    monkeypatch.setenv("FLEETFLOW_TIME_SCALE", "0.001")
    states = iter(["Creating", "Creating", "Succeeded"])
    sleeps: list[float] = []
    monkeypatch.setattr(retry.time, "sleep", sleeps.append)
    assert wait_until(lambda: next(states), lambda state: state == "Succeeded", what="cluster",
                      operation="create", resource_id=RESOURCE) == "Succeeded"
    assert sleeps == [0.05, 0.05]  # never shorter than 50 ms


def test_wait_until_sleeps_the_scaled_poll_interval(monkeypatch):
    monkeypatch.setenv("FLEETFLOW_TIME_SCALE", "0.5")
    states = iter([None, "Deleted"])
    sleeps: list[float] = []
    monkeypatch.setattr(retry.time, "sleep", sleeps.append)
    assert wait_until(lambda: next(states), lambda state: state == "Deleted", what="x", operation="o",
                      resource_id="r", poll_azure_seconds=4) == "Deleted"
    assert sleeps == [2.0]


def test_wait_until_gives_up_after_the_scaled_timeout_with_a_retryable_error(monkeypatch):
    monkeypatch.setenv("FLEETFLOW_TIME_SCALE", "1")
    clock = iter([1000.0, 1000.0, 1100.5, 1100.6])  # at the deadline it still waits
    monkeypatch.setattr(retry.time, "monotonic", lambda: next(clock))
    monkeypatch.setattr(retry.time, "sleep", lambda seconds: None)
    observed: list[str] = []

    def observe() -> str:
        observed.append("Creating")
        return "Creating"

    with pytest.raises(FleetflowError) as raised:
        wait_until(observe, lambda state: False, what="cluster", operation="create",
                   resource_id=RESOURCE, region="eastus", timeout_azure_seconds=100.5)
    assert len(observed) == 3
    error = raised.value
    assert str(error) == f"create {RESOURCE}: cluster still Creating after 100.5 s"
    assert (error.operation, error.resource_id, error.region, error.retryable) == ("create", RESOURCE, "eastus", True)


def test_wait_until_polls_every_10_azure_seconds_for_an_hour_by_default(monkeypatch):
    monkeypatch.setenv("FLEETFLOW_TIME_SCALE", "1")
    clock = iter([0.0, 3600.0, 3600.5])
    sleeps: list[float] = []
    monkeypatch.setattr(retry.time, "monotonic", lambda: next(clock))
    monkeypatch.setattr(retry.time, "sleep", sleeps.append)
    with pytest.raises(FleetflowError) as raised:
        wait_until(lambda: None, lambda state: False, what="group", operation="delete", resource_id="rg")
    assert str(raised.value) == "delete rg: group still None after 3600 s"
    assert raised.value.region is None
    assert sleeps == [10.0]
