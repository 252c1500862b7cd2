"""Which Azure failures fleetflow retries and which fail at once, on errors shaped as the real SDK raises them."""

from __future__ import annotations

import json

import pytest
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceRequestTimeoutError,
    ServiceResponseError,
    ServiceResponseTimeoutError,
)
from azure.core.pipeline.transport import HttpRequest
from azure.core.rest import HttpResponse
from prefect.states import Failed

from tasks.retry import (
    AzureOperationError,
    FleetflowError,
    ScaledDelays,
    azure_call,
    classify,
    should_retry,
)

RESOURCE = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/aks-1"


class _Response(HttpResponse):
    """A minimal azure-core response carrying a status and a JSON body."""

    def __init__(self, status: int, body: dict, headers: dict | None = None):
        self._status = status
        self._body = json.dumps(body).encode()
        self._headers = headers or {"Content-Type": "application/json"}
        self._request = HttpRequest("PUT", "https://management.azure.com" + RESOURCE)

    @property
    def status_code(self) -> int:
        return self._status

    @property
    def reason(self) -> str:
        return "reason"

    @property
    def headers(self):
        return self._headers

    @property
    def content_type(self) -> str:
        return "application/json"

    @property
    def request(self):
        return self._request

    @property
    def url(self) -> str:
        return self._request.url

    @property
    def content(self) -> bytes:
        return self._body

    def body(self) -> bytes:
        return self._body

    def text(self, encoding: str | None = None) -> str:
        return self._body.decode()

    def read(self) -> bytes:
        return self._body

    def json(self):
        return json.loads(self._body)

    def iter_bytes(self, **kwargs):
        yield self._body

    def iter_raw(self, **kwargs):
        yield self._body

    def raise_for_status(self) -> None:
        return None

    def close(self) -> None:
        return None

    @property
    def is_closed(self) -> bool:
        return True

    @property
    def is_stream_consumed(self) -> bool:
        return True

    @property
    def encoding(self):
        return "utf-8"

    @encoding.setter
    def encoding(self, value):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *args):
        return None


def http_error(status: int, code: str, message: str = "msg", details: list | None = None,
               cls: type[HttpResponseError] = HttpResponseError) -> HttpResponseError:
    error = {"code": code, "message": message}
    if details:
        error["details"] = details
    return cls(response=_Response(status, {"error": error}))


def lro_failure(code: str, message: str = "operation failed") -> HttpResponseError:
    """What azure-core raises when polling finds status Failed: the 200 poll response with the error body."""
    return HttpResponseError(response=_Response(200, {"status": "Failed", "error": {"code": code, "message": message}}))


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (http_error(409, "OperationNotAllowed", "Operation is not allowed because there's an in progress create "
                    "operation", [{"code": "AnotherOperationInProgress", "message": "busy"}]), "in progress"),
        (http_error(409, "AnotherOperationInProgress", "busy"), "in progress"),
        (http_error(429, "TooManyRequests", "throttled"), "transient"),
        (http_error(500, "InternalServerError"), "transient"),
        (http_error(503, "ServiceUnavailable"), "transient"),
        (lro_failure("InternalOperationError"), "long-running"),
        (lro_failure("OperationInterrupted"), "long-running"),
        (ServiceResponseError("Connection reset by peer"), "connection"),
        (ServiceRequestError("Connection refused"), "connection"),
    ],
)
def test_transient_failures_are_retried(error: BaseException, reason: str):
    verdict = classify(error)
    assert verdict.retryable, verdict
    assert reason in verdict.reason


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (http_error(401, "InvalidAuthenticationToken", cls=ClientAuthenticationError), 401),
        (http_error(403, "AuthorizationFailed", "The client does not have authorization"), 403),
        (http_error(400, "InvalidParameter", "The value of parameter agentPoolProfiles[0].count is invalid"), 400),
        (http_error(404, "ResourceGroupNotFound", "Resource group 'rg' could not be found.",
                    cls=ResourceNotFoundError), 404),
        (http_error(404, "ParentResourceNotFound", "fleet not found", cls=ResourceNotFoundError), 404),
        (http_error(409, "OperationNotAllowed", "Changing property 'networkPlugin' is not allowed"), 409),
        (lro_failure("InjectedFailure", "a fail rule matches"), 200),
        (lro_failure("InvalidParameter"), 200),
    ],
)
def test_permanent_failures_fail_at_once(error: BaseException, status: int):
    verdict = classify(error)
    assert not verdict.retryable, verdict
    assert verdict.status == status


TOKEN_ENDPOINT = "https://login.example.test/tenant"


def _identity_error(message: str, cause: BaseException | None = None, endpoint: str | None = TOKEN_ENDPOINT):
    """Shaped as azure-identity raises it (ClientAuthenticationError, no status) and as fleetflow's credential
    annotates it with its token endpoint."""
    try:
        try:
            if cause is not None:
                raise cause
            raise ClientAuthenticationError(f"Authentication failed: {message}")
        except ClientAuthenticationError:
            raise
        except Exception as inner:
            raise ClientAuthenticationError(f"Authentication failed: {inner}") from inner
    except ClientAuthenticationError as error:
        if endpoint:
            error.fleetflow_token_endpoint = endpoint  # type: ignore[attr-defined]
        return error


REFUSED = "HTTPSConnection(host='127.0.0.1', port=8443): Failed to establish a new connection: [Errno 111] " \
          "Connection refused"


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (_identity_error("", ServiceRequestError(REFUSED)), f"connection refused by token endpoint {TOKEN_ENDPOINT}"),
        (_identity_error("", ServiceRequestError(REFUSED), endpoint=None),
         "connection refused by token endpoint 127.0.0.1:8443"),
        (_identity_error("", ServiceResponseError("Connection reset by peer")),
         f"connection reset talking to token endpoint {TOKEN_ENDPOINT}"),
        (_identity_error("", ServiceRequestTimeoutError("Connection to 127.0.0.1 timed out. (connect timeout=1)")),
         f"timed out talking to token endpoint {TOKEN_ENDPOINT}"),
        (ServiceRequestError(REFUSED), "connection refused by Resource Manager 127.0.0.1:8443"),
        (ServiceResponseError("('Connection aborted.', ConnectionResetError(104, 'Connection reset by peer'))"),
         "connection reset talking to Resource Manager"),
        (ServiceResponseTimeoutError("HTTPSConnectionPool(host='127.0.0.1', port=8443): Read timed out."),
         "timed out talking to Resource Manager 127.0.0.1:8443"),
        (ConnectionRefusedError(111, "Connection refused"), "connection refused by Resource Manager"),
    ],
)
def test_connection_failures_to_any_endpoint_are_transient_and_named(error: BaseException, expected: str):
    verdict = classify(error)
    assert verdict.retryable, verdict
    assert verdict.reason == expected


@pytest.mark.parametrize(
    ("message", "what", "code"),
    [
        ("AADSTS7000215: Invalid client secret provided.", "wrong client secret", "AADSTS7000215"),
        ("AADSTS700016: Application with identifier 'x' was not found in the directory 't'.",
         "unknown client id", "AADSTS700016"),
        ("AADSTS7000112: Application 'x'(fleetflow) is disabled.", "service principal disabled", "AADSTS7000112"),
        ("AADSTS7000222: The provided client secret keys for app 'x' are expired.", "client secret expired",
         "AADSTS7000222"),
        ("AADSTS90002: Tenant 't' not found.", "unknown tenant", "AADSTS90002"),
        ("invalid_client", "credentials refused", "AuthenticationFailed"),
    ],
)
def test_token_endpoint_refusals_are_permanent_and_say_which(message: str, what: str, code: str):
    verdict = classify(_identity_error(message))
    assert not verdict.retryable, verdict
    assert verdict.reason.startswith(f"token endpoint {TOKEN_ENDPOINT} refused the credentials: {what}")
    assert verdict.code == code


def test_an_untrusted_certificate_is_permanent_and_points_at_the_ca_bundle():
    error = ServiceRequestError("[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: self-signed certificate "
                                "(_ssl.c:1000) HTTPSConnection(host='127.0.0.1', port=8443)")
    verdict = classify(error)
    assert not verdict.retryable
    assert "CA bundle" in verdict.reason and "127.0.0.1:8443" in verdict.reason


def test_an_answer_mentioning_a_timeout_is_judged_by_its_status():
    verdict = classify(http_error(400, "InvalidParameter", "the drain timed out: connection refused by the pod"))
    assert not verdict.retryable and verdict.status == 400


def test_azure_call_message_says_transient_and_names_the_token_endpoint():
    with pytest.raises(AzureOperationError) as raised, azure_call("read fleet", RESOURCE, "eastus"):
        raise _identity_error("", ServiceRequestError(REFUSED))
    text = str(raised.value)
    assert raised.value.retryable
    assert f"transient, will be retried: connection refused by token endpoint {TOKEN_ENDPOINT}" in text


def test_azure_call_message_says_permanent_and_which_refusal():
    with pytest.raises(AzureOperationError) as raised, azure_call("read fleet", RESOURCE, "eastus"):
        raise _identity_error("AADSTS7000215: Invalid client secret provided.")
    text = str(raised.value)
    assert not raised.value.retryable
    assert f"permanent: token endpoint {TOKEN_ENDPOINT} refused the credentials: wrong client secret" in text


def test_unexpected_exceptions_are_not_retried():
    assert not classify(KeyError("properties")).retryable


def test_azure_call_keeps_context_message_and_cause():
    cause = http_error(400, "InvalidParameter", "The value of parameter properties.kubernetesVersion is invalid.")
    with pytest.raises(AzureOperationError) as raised, azure_call("create AKS cluster", RESOURCE, "westus2"):
        raise cause
    error = raised.value
    assert error.__cause__ is cause
    assert (error.operation, error.resource_id, error.region) == ("create AKS cluster", RESOURCE, "westus2")
    assert (error.status, error.code, error.retryable) == (400, "InvalidParameter", False)
    text = str(error)
    assert RESOURCE in text and "westus2" in text and "properties.kubernetesVersion" in text and "permanent" in text


def test_azure_call_lets_fleetflow_errors_through_unchanged():
    original = FleetflowError("owned by another fleet", operation="reconcile", resource_id=RESOURCE)
    with pytest.raises(FleetflowError) as raised, azure_call("reconcile", RESOURCE):
        raise original
    assert raised.value is original


def test_retry_condition_reads_the_exception_from_the_failed_state():
    transient = AzureOperationError(operation="create", resource_id=RESOURCE, region="eastus", status=503,
                                    code="ServiceUnavailable", azure_message="busy", retryable=True, reason="x")
    permanent = AzureOperationError(operation="create", resource_id=RESOURCE, region="eastus", status=403,
                                    code="AuthorizationFailed", azure_message="no", retryable=False, reason="y")

    class Run:
        name = "ensure-cluster-eastus"

    assert should_retry(None, Run(), Failed(data=transient)) is True  # type: ignore[arg-type]
    assert should_retry(None, Run(), Failed(data=permanent)) is False  # type: ignore[arg-type]


def test_retry_delays_follow_the_time_scale(monkeypatch):
    delays = ScaledDelays([10.0, 30.0])
    monkeypatch.setenv("FLEETFLOW_TIME_SCALE", "0.01")
    assert delays[0] == pytest.approx(0.1) and delays[5 - 4] == pytest.approx(0.3)
    monkeypatch.setenv("FLEETFLOW_TIME_SCALE", "1")
    assert delays[1] == 30.0 and len(delays) == 2


@pytest.mark.parametrize(
    "error",
    [
        # Resource Manager's subscription-level throttling: its code is in no transient list, the status decides.
        http_error(429, "SubscriptionRequestsThrottled", "Number of requests for subscription exceeded the limit"),
        http_error(429, "ResourceCollectionRequestsThrottled", "Number of requests for the collection exceeded"),
        # A bare 429 from a gateway: no error body at all.
        HttpResponseError(response=_Response(429, {})),
    ],
    ids=["SubscriptionRequestsThrottled", "ResourceCollectionRequestsThrottled", "bare-429"],
)
def test_throttling_is_retried_whatever_code_it_carries(error: HttpResponseError):
    verdict = classify(error)
    assert verdict.retryable, verdict
    assert verdict.status == 429
    assert verdict.reason == "transient error persisted through the SDK's retries"
