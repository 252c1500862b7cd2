"""Resource Manager over HTTPS for the local ASO controller: a client-credentials token, PUT/GET/DELETE/POST,
long-running operations followed to the end. It is an ordinary client of local Azure: RBAC, throttling,
injected faults and latency apply to it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import httpx

from localazure.aso.settings import Credential, OperatorSettings, is_loopback_url

USER_AGENT = "azure-service-operator/v2.17.0 (fleetflow local mode)"
TERMINAL = {"succeeded", "failed", "canceled"}


class AzureError(Exception):
    """Resource Manager (or the token endpoint) refused a request."""

    def __init__(self, status: int, code: str, message: str, retry_after: float | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.retry_after = retry_after

    @property
    def not_found(self) -> bool:
        """404 of any kind (ResourceNotFound, ResourceGroupNotFound, ...)."""
        return self.status == 404

    @property
    def retryable(self) -> bool:
        """Worth retrying soon without a spec change (ASO's Warning severity) rather than a bad request (Error)."""
        if self.status in (401, 403, 404, 408, 409, 429) or self.status >= 500 or self.status == 0:
            return True
        return self.code in ("AnotherOperationInProgress", "OperationNotAllowed")


def _retry_after(response: httpx.Response) -> float | None:
    millis = response.headers.get("retry-after-ms")
    if millis:
        try:
            return float(millis) / 1000.0
        except ValueError:
            pass
    seconds = response.headers.get("retry-after")
    if seconds:
        try:
            return float(seconds)
        except ValueError:
            return None
    return None


def _error(response: httpx.Response) -> AzureError:
    code, message = f"HTTP{response.status_code}", response.text[:500]
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):
            code = str(error.get("code") or code)
            message = str(error.get("message") or message)
        elif isinstance(error, str):  # Entra ID: {"error": "invalid_client", "error_description": ...}
            code = error
            message = str(body.get("error_description") or message)
    return AzureError(response.status_code, code, message, _retry_after(response))


class ArmClient:
    """One cluster operator's connection to Resource Manager and the authority."""

    def __init__(self, ca_bundle: str, timeout: float = 30.0, poll_timeout: float = 900.0,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self._http = httpx.Client(verify=ca_bundle, timeout=timeout, headers={"User-Agent": USER_AGENT},
                                  trust_env=False)
        self._tokens: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()
        self.poll_timeout = poll_timeout
        self._sleep = sleep

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    # ---- token -----------------------------------------------------------------------------------

    def token(self, settings: OperatorSettings, credential: Credential) -> str:
        """A bearer token for Resource Manager (cached until five minutes before it expires)."""
        key = f"{settings.authority_host}|{settings.audience}|{credential.cache_key}"
        with self._lock:
            cached = self._tokens.get(key)
            if cached and cached[1] > time.time() + 300:
                return cached[0]
        url = f"{settings.authority_host.rstrip('/')}/{credential.tenant_id}/oauth2/v2.0/token"
        self._require_loopback(url)
        try:
            response = self._http.post(url, data={
                "grant_type": "client_credentials", "client_id": credential.client_id,
                "client_secret": credential.client_secret, "scope": settings.audience.rstrip("/") + "/.default",
            })
        except httpx.HTTPError as exc:
            raise AzureError(0, "AuthorityUnreachable", f"cannot reach the authority {url}: {exc}") from exc
        if response.status_code >= 400:
            raise _error(response)
        body = response.json()
        token = str(body["access_token"])
        expires = time.time() + float(body.get("expires_in", 3600))
        with self._lock:
            self._tokens[key] = (token, expires)
        return token

    # ---- requests --------------------------------------------------------------------------------

    @staticmethod
    def _require_loopback(url: str) -> None:
        if not is_loopback_url(url):
            raise AzureError(0, "NonLoopbackEndpoint", f"refusing to dial {url}: local mode talks to loopback only")

    def request(self, settings: OperatorSettings, credential: Credential, method: str, url: str,
                body: Any = None) -> httpx.Response:
        """One authenticated request; AzureError for any status >= 400 or a transport failure."""
        self._require_loopback(url)
        headers = {"Authorization": f"Bearer {self.token(settings, credential)}"}
        try:
            response = self._http.request(method, url, json=body, headers=headers)
        except httpx.HTTPError as exc:
            raise AzureError(0, "ResourceManagerUnreachable", f"{method} {url}: {exc}") from exc
        if response.status_code >= 400:
            raise _error(response)
        return response

    def url(self, settings: OperatorSettings, resource_id: str, api_version: str, action: str = "") -> str:
        """Resource Manager URL of a resource id (and optional action)."""
        base = settings.resource_manager_endpoint.rstrip("/")
        return f"{base}{resource_id}{'/' + action if action else ''}?api-version={api_version}"

    def get(self, settings: OperatorSettings, credential: Credential, resource_id: str,
            api_version: str) -> dict[str, Any]:
        """GET a resource (AzureError 404 when absent)."""
        response = self.request(settings, credential, "GET", self.url(settings, resource_id, api_version))
        result: dict[str, Any] = response.json()
        return result

    def post(self, settings: OperatorSettings, credential: Credential, resource_id: str, api_version: str,
             action: str) -> dict[str, Any]:
        """POST an action (listKeys, ...)."""
        response = self.request(settings, credential, "POST", self.url(settings, resource_id, api_version, action))
        result: dict[str, Any] = response.json() if response.content else {}
        return result

    def put(self, settings: OperatorSettings, credential: Credential, resource_id: str, api_version: str,
            body: dict[str, Any]) -> dict[str, Any]:
        """PUT a resource and follow its long-running operation; returns the resource as GET shows it after."""
        response = self.request(settings, credential, "PUT", self.url(settings, resource_id, api_version), body)
        self._follow(settings, credential, response)
        return self.get(settings, credential, resource_id, api_version)

    def delete(self, settings: OperatorSettings, credential: Credential, resource_id: str,
               api_version: str) -> None:
        """DELETE a resource and follow the operation; an absent resource counts as deleted."""
        try:
            response = self.request(settings, credential, "DELETE", self.url(settings, resource_id, api_version))
        except AzureError as exc:
            if exc.not_found:
                return
            raise
        try:
            self._follow(settings, credential, response)
        except AzureError as exc:
            if not exc.not_found:  # gone while deleting (its group went first): deleted
                raise

    def _follow(self, settings: OperatorSettings, credential: Credential, response: httpx.Response) -> None:
        async_url = response.headers.get("azure-asyncoperation")
        location = response.headers.get("location")
        if response.status_code not in (201, 202) and not async_url:
            return
        if not async_url and not location:
            return
        deadline = time.monotonic() + self.poll_timeout
        delay = _retry_after(response) or 0.2
        while True:
            if time.monotonic() > deadline:
                raise AzureError(0, "OperationTimedOut", "the long-running operation did not finish in time")
            self._sleep(min(max(delay, 0.05), 10.0))
            try:
                poll = self.request(settings, credential, "GET", async_url or location or "")
            except AzureError as exc:
                if exc.status == 429 or exc.status >= 500:
                    delay = exc.retry_after or 1.0
                    continue
                if exc.not_found and not async_url:
                    return  # Location of a delete: the resource is gone
                raise
            delay = _retry_after(poll) or delay
            if async_url:
                status_body = poll.json() if poll.content else {}
                status = str(status_body.get("status", "")).lower()
                if status in TERMINAL:
                    if status != "succeeded":
                        error = status_body.get("error") or {}
                        raise AzureError(200, str(error.get("code") or status.capitalize()),
                                         str(error.get("message") or f"the operation {status}"))
                    return
            elif poll.status_code in (200, 204):
                return
