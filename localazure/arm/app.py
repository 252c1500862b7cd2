"""The FastAPI application: the kernel's routers, the routers of the providers it is given, and the
Resource Manager front door. Which providers exist is decided by the composition root
(`localazure.composition`), never here.

The front door (an ASGI middleware) does what Resource Manager does before a provider sees a request:
case-insensitive routing of the fixed path words, the subscription's read and write budgets (429 with
Retry-After beyond them, `x-ms-ratelimit-remaining-subscription-reads|writes` on every answer), injected
throttling / server errors, api-version validation per provider namespace, and the subscription's resource
provider registrations (409 MissingSubscriptionRegistration for a namespace it has not registered).
"""

from __future__ import annotations

import json
import logging
import math
import re
import time
import uuid
from typing import Any, Literal

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from localazure.arm import admin, auth, graph, operationstatus, subscriptions
from localazure.arm.context import Emulator
from localazure.arm.errors import ArmError, EntraError, arm_error_handler, entra_error_handler
from localazure.arm.providers import ResourceProvider

log = logging.getLogger(__name__)

ARM_ROOTS = ("subscriptions", "providers", "tenants")


# Paths without a `providers` segment (subscriptions, resource groups) belong to this namespace.
RESOURCES_NAMESPACE = "Microsoft.Resources"


def route_paths(router: Any) -> list[str]:
    """Every path a router serves, including those of routers it includes (FastAPI keeps them nested)."""
    paths: list[str] = []
    for route in router.routes:
        if hasattr(route, "path"):
            paths.append(str(route.path))
        elif hasattr(route, "original_router"):
            paths.extend(route_paths(route.original_router))
    return paths


def _route_words(routers: list[APIRouter]) -> dict[str, str]:
    words: dict[str, str] = {}
    for router in routers:
        for path in route_paths(router):
            for part in path.split("/"):
                if part and not part.startswith("{"):
                    words[part.lower()] = part
    return words


def canonical_path(path: str, words: dict[str, str]) -> str:
    """Give the fixed words of an ARM path (keys, namespaces, types, actions) their route casing; names untouched."""
    parts = path.split("/")
    i = 1
    while i < len(parts):
        canonical = words.get(parts[i].lower())
        if canonical is not None:
            parts[i] = canonical
        if parts[i] == "providers":
            if i + 1 < len(parts):
                parts[i + 1] = words.get(parts[i + 1].lower(), parts[i + 1])
            i += 2
            continue
        i += 2
    return "/".join(parts)


def namespace_of(path: str) -> tuple[str, str | None]:
    """(namespace, top-level type) an ARM path addresses: the words after the last `providers`;
    paths without one belong to Microsoft.Resources."""
    parts = [p for p in path.split("/") if p]
    if len(parts) >= 3 and parts[0].lower() == "subscriptions" and parts[2].lower() == "providers" and (
            len(parts) <= 4 or (len(parts) == 5 and parts[4].lower() in ("register", "unregister"))):
        return RESOURCES_NAMESPACE, "providers"  # provider metadata and registration are Resource Manager's own
    for i in range(len(parts) - 2, -1, -1):
        if parts[i].lower() == "providers":
            return parts[i + 1], parts[i + 2] if i + 2 < len(parts) else None
    return RESOURCES_NAMESPACE, None


def _request_headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}


def tracing_headers(scope: Scope) -> list[tuple[bytes, bytes]]:
    """Resource Manager's tracing headers for one request: a fresh `x-ms-request-id`, the client's
    `x-ms-correlation-request-id` (else a fresh one), `x-ms-routing-request-id`, and the client's
    `x-ms-client-request-id` echoed back."""
    sent = _request_headers(scope)
    request_id = str(uuid.uuid4())
    correlation = sent.get("x-ms-correlation-request-id") or request_id
    routing = f"LOCAL:{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}:{request_id}"
    headers = [(b"x-ms-request-id", request_id.encode()), (b"x-ms-correlation-request-id", correlation.encode()),
               (b"x-ms-routing-request-id", routing.encode())]
    client_request_id = sent.get("x-ms-client-request-id")
    if client_request_id:
        headers.append((b"x-ms-client-request-id", client_request_id.encode("latin-1")))
    return headers


def _etag_of(body: bytes) -> str | None:
    try:
        parsed = json.loads(body)
    except ValueError:
        return None
    if not isinstance(parsed, dict):
        return None
    etag = parsed.get("eTag", parsed.get("etag"))
    return etag if isinstance(etag, str) and etag else None


class _ConventionSender:
    """Wraps `send`: adds the tracing headers to every response and, for a JSON body with an `eTag`
    property (200/201), the `ETag` header Resource Manager sends with it."""

    def __init__(self, send: Send, headers: list[tuple[bytes, bytes]], want_etag: bool) -> None:
        self._send = send
        self._headers = headers
        self._want_etag = want_etag
        self._start: Message | None = None
        self._chunks: list[bytes] = []

    def add_header(self, name: str, value: str) -> None:
        """One more header for the response (before it starts)."""
        self._headers.append((name.encode("latin-1"), value.encode("latin-1")))

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            start = dict(message)
            present = {k.lower() for k, _ in start.get("headers", [])}
            start["headers"] = [*start.get("headers", []), *(h for h in self._headers if h[0] not in present)]
            content_type = dict(start["headers"]).get(b"content-type", b"")
            if self._want_etag and start["status"] in (200, 201) and b"json" in content_type \
                    and b"etag" not in present:
                self._start = start  # hold it until the body shows whether there is an eTag
                return
            await self._send(start)
            return
        if message["type"] == "http.response.body" and self._start is not None:
            self._chunks.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            body = b"".join(self._chunks)
            held, self._start = self._start, None
            etag = _etag_of(body)
            if etag is not None:
                held["headers"] = [*held["headers"], (b"etag", etag.encode("latin-1"))]
            await self._send(held)
            await self._send({"type": "http.response.body", "body": body, "more_body": False})
            return
        await self._send(message)


class FrontDoor:
    """ASGI middleware applying Resource Manager's request pipeline to `/subscriptions...` and `/providers...`."""

    def __init__(self, app: ASGIApp, emulator: Emulator, words: dict[str, str]) -> None:
        self.app = app
        self.emulator = emulator
        self.words = words

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        first = path.split("/", 2)[1].lower() if path.count("/") >= 1 else ""
        send = _ConventionSender(send, tracing_headers(scope), want_etag=first in ARM_ROOTS)
        if first not in ARM_ROOTS:
            await self.app(scope, receive, send)
            return
        path = canonical_path(path, self.words)
        scope = dict(scope, path=path, raw_path=path.encode())
        rejection = self._budget(scope, path, send)
        if rejection is not None:
            await rejection(scope, receive, send)
            return
        rejection = self._reject(scope, path)
        if rejection is not None:
            await rejection(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _budget(self, scope: Scope, path: str, send: _ConventionSender) -> Response | None:
        """Count the request against its subscription's read or write budget (knobs write_budget, read_budget,
        budget_window); a 429 with Retry-After when it is spent, as Resource Manager throttles."""
        parts = path.split("/")
        if len(parts) < 3 or parts[1] != "subscriptions" or not parts[2]:
            return None
        kind: Literal["writes", "reads"] = "reads" if scope.get("method", "GET") in ("GET", "HEAD") else "writes"
        allowed, remaining, wait = self.emulator.knobs.take_budget(kind, parts[2].lower())
        if remaining < 0 and allowed:
            return None  # no budget set
        header = f"x-ms-ratelimit-remaining-subscription-{kind}"
        if allowed:
            send.add_header(header, str(remaining))
            return None
        return JSONResponse(
            {"error": {"code": "SubscriptionRequestsThrottled", "message": f"Number of '{kind[:-1]}' requests for "
                       f"subscription '{parts[2]}' exceeded. Please try again after '{math.ceil(wait)}' seconds "
                       "(local Azure budget knob)."}},
            status_code=429, headers={**throttle_delay_headers(wait), header: "0"},
        )

    def _reject(self, scope: Scope, path: str) -> Response | None:
        knobs = self.emulator.knobs
        if knobs.roll_throttle():
            return JSONResponse(
                {"error": {"code": "TooManyRequests", "message": "The request is being throttled (local Azure "
                           "throttle knob). Retry after the interval in the Retry-After header."}},
                status_code=429,
                headers={**throttle_delay_headers(knobs.current.retry_after),
                         "x-ms-ratelimit-remaining-subscription-reads": "0"},
            )
        if knobs.roll_error():
            return JSONResponse(
                {"error": {"code": "InternalServerError", "message": "Encountered an internal server error "
                           "(local Azure error knob). The request can be retried."}},
                status_code=500,
            )
        query = scope.get("query_string", b"").decode()
        versions = re.findall(r"(?:^|&)api-version=([^&]*)", query)
        namespace, resource_type = namespace_of(path)
        accepted = self.emulator.providers.accepted_versions(namespace, resource_type)
        if accepted is None:
            return JSONResponse(
                {"error": {"code": "NoRegisteredProviderFound", "message": f"No registered resource provider "
                           f"found for namespace '{namespace}' (the local Azure emulator does not serve it)."}},
                status_code=400,
            )
        if not versions or not versions[-1]:
            return JSONResponse(
                {"error": {"code": "MissingApiVersionParameter", "message": "The api-version query parameter "
                           "(?api-version=) is required for all requests."}},
                status_code=400,
            )
        if versions[-1] not in accepted:
            supported = ", ".join(sorted(accepted, reverse=True))
            return JSONResponse(
                {"error": {"code": "InvalidApiVersionParameter", "message": f"The api-version '{versions[-1]}' is "
                           f"invalid. The supported versions for '{namespace}/{resource_type or ''}' are "
                           f"'{supported}'."}},
                status_code=400,
            )
        return self._registration(scope, path, namespace)

    def _registration(self, scope: Scope, path: str, namespace: str) -> Response | None:
        """Resource Manager refuses every request of an authenticated caller to a namespace the subscription has
        not registered (reads too); Microsoft.Resources and registration-free namespaces are always served."""
        parts = path.split("/")
        if namespace.lower() == RESOURCES_NAMESPACE.lower() or len(parts) < 3 or parts[1] != "subscriptions" \
                or parts[2].lower() != self.emulator.subscription_id.lower():
            return None
        refusal = subscriptions.missing_registration(self.emulator, namespace)
        if refusal is None:
            return None
        try:
            auth.get_caller(Request(scope))
        except ArmError:
            return None  # the route answers 401: authentication comes first
        return JSONResponse(refusal.body(), status_code=refusal.status)


def throttle_delay_headers(seconds: float) -> dict[str, str]:
    """The delay of a 429 as Azure sends it: `Retry-After` in whole seconds. A sub-second knob (tests) is sent
    as `retry-after-ms` alone, which azure-core honours; a `Retry-After` would win over it and round it up."""
    if seconds >= 1:
        headers = {"Retry-After": str(math.ceil(seconds))}
        if seconds != math.ceil(seconds):
            headers["retry-after-ms"] = str(round(seconds * 1000))
        return headers
    return {"retry-after-ms": str(max(1, round(seconds * 1000)))}


async def _http_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 404:
        code, message = "InvalidResourceType", "The resource type or path is not served by the local Azure emulator."
    elif exc.status_code == 405:
        code, message = "MethodNotAllowed", "The HTTP method is not supported for this resource."
    else:
        code, message = "BadRequest", str(exc.detail)
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=exc.status_code)


async def _validation_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    return JSONResponse({"error": {"code": "InvalidRequestContent", "message": str(exc.errors())}}, status_code=400)


def create_app(emulator: Emulator, providers: list[ResourceProvider]) -> FastAPI:
    """Build the application for an emulator serving `providers` (in registration order)."""
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None, title="fleetflow local Azure")
    app.state.emulator = emulator
    app.add_exception_handler(ArmError, arm_error_handler)
    app.add_exception_handler(EntraError, entra_error_handler)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    routers = [admin.router, auth.router, operationstatus.router, subscriptions.router, graph.router]
    provider_paths: dict[str, tuple[str, list[str]]] = {}
    for provider in providers:
        emulator.providers.add(provider)
        for name, factory in provider.services.items():
            emulator.offer_service(name, factory)
        routers.append(provider.router)
        if not provider.api_versions:
            continue  # hooks only (local ASO): not a Resource Manager namespace
        _, paths = provider_paths.setdefault(provider.namespace.lower(), (provider.namespace, []))
        paths.extend(route_paths(provider.router))
    app.state.provider_paths = provider_paths
    for router in routers:
        app.include_router(router)
    words = _route_words(routers)
    for provider in emulator.providers.all():
        for word in (provider.namespace, *provider.extra_path_words):
            words[word.lower()] = word
    app.add_middleware(FrontDoor, emulator=emulator, words=words)
    return app


def start_providers(emulator: Emulator) -> None:
    """Run the providers' on_start hooks (after the state is loaded and interrupted operations failed)."""
    for provider in emulator.providers.all():
        if provider.on_start is not None:
            provider.on_start(emulator)


def stop_providers(emulator: Emulator) -> None:
    """Run the providers' on_stop hooks, in reverse order."""
    for provider in reversed(emulator.providers.all()):
        if provider.on_stop is not None:
            try:
                provider.on_stop(emulator)
            except Exception:
                log.exception("on_stop of %s failed", provider.namespace)
