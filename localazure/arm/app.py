"""The FastAPI application: the kernel's routers, the routers of the providers it is given, and the
Resource Manager front door. Which providers exist is decided by the composition root
(`localazure.composition`), never here.

The front door (an ASGI middleware) does what Resource Manager does before a provider sees a request:
case-insensitive routing of the fixed path words, injected throttling / server errors, and
api-version validation per provider namespace.
"""

from __future__ import annotations

import logging
import re

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from localazure.arm import admin, auth, operationstatus
from localazure.arm.context import Emulator
from localazure.arm.errors import ArmError, EntraError, arm_error_handler, entra_error_handler
from localazure.arm.providers import ResourceProvider

log = logging.getLogger(__name__)

ARM_ROOTS = ("subscriptions", "providers")


# Paths without a `providers` segment (subscriptions, resource groups) belong to this namespace.
RESOURCES_NAMESPACE = "Microsoft.Resources"


def _route_words(routers: list[APIRouter]) -> dict[str, str]:
    words: dict[str, str] = {}
    for router in routers:
        for route in router.routes:
            for part in str(getattr(route, "path", "")).split("/"):
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
    for i in range(len(parts) - 2, -1, -1):
        if parts[i].lower() == "providers":
            return parts[i + 1], parts[i + 2] if i + 2 < len(parts) else None
    return RESOURCES_NAMESPACE, None


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
        if first not in ARM_ROOTS:
            await self.app(scope, receive, send)
            return
        path = canonical_path(path, self.words)
        scope = dict(scope, path=path, raw_path=path.encode())
        rejection = self._reject(scope, path)
        if rejection is not None:
            await rejection(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _reject(self, scope: Scope, path: str) -> Response | None:
        knobs = self.emulator.knobs
        if knobs.roll_throttle():
            seconds = knobs.current.retry_after
            return JSONResponse(
                {"error": {"code": "TooManyRequests", "message": "The request is being throttled (local Azure "
                           "throttle knob). Retry after the interval in the Retry-After header."}},
                status_code=429,
                headers={"Retry-After": f"{seconds:g}", "x-ms-ratelimit-remaining-subscription-reads": "0"},
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
        return None


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
    routers = [admin.router, auth.router, operationstatus.router]
    for provider in providers:
        emulator.providers.add(provider)
        for name, factory in provider.services.items():
            emulator.offer_service(name, factory)
        routers.append(provider.router)
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
