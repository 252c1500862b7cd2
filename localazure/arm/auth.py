"""Entra-compatible token endpoint (client-credentials grant) and bearer-token authentication for Resource Manager."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, Request

from localazure.arm.context import Emulator, get_emulator
from localazure.arm.errors import ArmError, EntraError
from localazure.arm.rbac import Principal
from localazure.arm.tokens import InvalidToken

router = APIRouter()


def _known_tenant(emulator: Emulator, tenant: str) -> str:
    low = tenant.lower()
    if low == emulator.tenant_id.lower() or low in emulator.directory.tenants():
        return low
    raise EntraError(400, "invalid_request", f"AADSTS90002: Tenant '{tenant}' not found. Check to make sure you "
                     "have the correct tenant ID and are signing into the correct cloud.")


@router.get("/{tenant}/v2.0/.well-known/openid-configuration", include_in_schema=False)
def openid_configuration(tenant: str, emulator: Emulator = Depends(get_emulator)) -> dict[str, Any]:
    """OpenID Connect discovery document MSAL reads before its first token request."""
    tid = _known_tenant(emulator, tenant)
    base = emulator.base_url
    return {
        "issuer": emulator.signer.issuer(tid),
        "authorization_endpoint": f"{base}/{tid}/oauth2/v2.0/authorize",
        "token_endpoint": f"{base}/{tid}/oauth2/v2.0/token",
        "device_authorization_endpoint": f"{base}/{tid}/oauth2/v2.0/devicecode",
        "jwks_uri": f"{base}/{tid}/discovery/v2.0/keys",
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "tenant_region_scope": "NA",
        "cloud_instance_name": "fleetflow.local",
        "cloud_graph_host_name": "graph.fleetflow.local",
        "msgraph_host": "graph.fleetflow.local",
    }


@router.get("/{tenant}/discovery/v2.0/keys", include_in_schema=False)
def signing_keys(tenant: str, emulator: Emulator = Depends(get_emulator)) -> dict[str, Any]:
    """JSON Web Key Set with the token-signing key."""
    _known_tenant(emulator, tenant)
    return emulator.signer.jwks()


def _audience_from_scope(scope: str) -> str:
    """The audience of a `<resource>/.default` scope, as Entra ID issues it: the resource with one trailing `/`
    (`https://management.azure.com/.default` and `https://management.core.windows.net//.default`, what az sends,
    give `https://management.azure.com/` and `https://management.core.windows.net/`)."""
    for item in scope.split():
        if item.endswith("/.default"):
            resource = item[: -len("/.default")]
            return resource if resource.endswith("/") else resource + "/"
    raise EntraError(400, "invalid_scope", "AADSTS1002012: The provided value for scope is not valid. "
                     "Client credential flows must have a scope value with /.default suffixed to the resource "
                     "identifier (application ID URI).")


@router.post("/{tenant}/oauth2/v2.0/token", include_in_schema=False)
async def token(tenant: str, request: Request) -> dict[str, Any]:
    """Client-credentials grant: a signed access token for a registered service principal."""
    emulator = get_emulator(request)
    tid = _known_tenant(emulator, tenant)
    form = {k: v[0] for k, v in parse_qs((await request.body()).decode(), keep_blank_values=True).items()}
    grant = form.get("grant_type", "")
    if grant != "client_credentials":
        raise EntraError(400, "unsupported_grant_type", f"AADSTS70003: The app requested an unsupported grant "
                         f"type '{grant}'. The local Azure emulator supports client_credentials only.")
    client_id = form.get("client_id", "")
    secret = form.get("client_secret", "")
    if not secret and request.headers.get("authorization", "").lower().startswith("basic "):
        raise EntraError(400, "invalid_request", "AADSTS900144: client_secret_basic is not supported here; "
                         "send client_id and client_secret in the body.")
    principal = emulator.directory.by_app_id(client_id) if client_id else None
    if principal is None or principal["tenantId"].lower() != tid:
        raise EntraError(400, "unauthorized_client", f"AADSTS700016: Application with identifier '{client_id}' "
                         f"was not found in the directory '{tid}'. This can happen if the application has not "
                         "been installed by the administrator of the tenant.")
    if not secret:
        raise EntraError(401, "invalid_client", "AADSTS7000216: 'client_assertion', 'client_secret' or "
                         "'request' is required for the 'client_credentials' grant type.")
    if not emulator.directory.check_secret(client_id, secret):
        raise EntraError(401, "invalid_client", "AADSTS7000215: Invalid client secret provided. Ensure the "
                         f"secret being sent in the request is the client secret value, not the client secret "
                         f"ID, for a secret added to app '{client_id}'.")
    audience = _audience_from_scope(form.get("scope", ""))
    access_token, lifetime = emulator.signer.issue(
        tenant_id=principal["tenantId"], object_id=principal["objectId"], app_id=client_id, audience=audience
    )
    return {"token_type": "Bearer", "expires_in": lifetime, "ext_expires_in": lifetime, "access_token": access_token}


def _authentication_failed(code: str, message: str) -> ArmError:
    return ArmError(401, code, message)


def get_caller(request: Request) -> Principal:
    """FastAPI dependency: the verified principal behind the bearer token (401 with ARM's codes otherwise)."""
    emulator = get_emulator(request)
    header = request.headers.get("authorization")
    if not header:
        raise _authentication_failed("AuthenticationFailed",
                                     "Authentication failed. The 'Authorization' header is missing.")
    scheme, _, bearer = header.partition(" ")
    if scheme.lower() != "bearer" or not bearer.strip():
        raise _authentication_failed(
            "AuthenticationFailed",
            "Authentication failed. The 'Authorization' header is provided in an invalid format.",
        )
    try:
        claims = emulator.signer.verify(bearer.strip(), emulator.accepted_audiences)
    except InvalidToken as exc:
        code = "ExpiredAuthenticationToken" if "expired" in str(exc) else "InvalidAuthenticationToken"
        raise _authentication_failed(code, str(exc)) from exc
    if claims.tenant_id.lower() != emulator.tenant_id.lower():
        raise _authentication_failed(
            "InvalidAuthenticationTokenTenant",
            f"The access token is from the wrong issuer '{emulator.signer.issuer(claims.tenant_id)}'. It must "
            f"match the tenant '{emulator.signer.issuer(emulator.tenant_id)}' associated with this subscription. "
            f"Please use the authority (URL) '{emulator.base_url}/{emulator.tenant_id}' to get the token.",
        )
    return Principal(object_id=claims.object_id, app_id=claims.app_id, tenant_id=claims.tenant_id)


def require_admin(request: Request) -> Principal:
    """FastAPI dependency for `/_local` admin endpoints: the caller must be the built-in admin."""
    caller = get_caller(request)
    if caller.object_id.lower() != get_emulator(request).admin_object_id.lower():
        raise ArmError(403, "AuthorizationFailed", f"The client '{caller.app_id}' is not the local Azure admin; "
                       "only the admin principal may use /_local endpoints.")
    return caller
