"""Local Azure tokens and the Resource Manager front door, driven only through azure-identity and azure-mgmt-*."""

from __future__ import annotations

import jwt
import pytest
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError
from azure.core.rest import HttpRequest

pytestmark = pytest.mark.emulator


def test_client_secret_credential_gets_a_signed_token_with_tenant_object_and_app_claims(local_azure):
    endpoint = local_azure.endpoint
    token = local_azure.credential().get_token("https://management.azure.com/.default")

    jwks = jwt.PyJWKClient(f"{endpoint.authority_host}/{endpoint.tenant_id}/discovery/v2.0/keys",
                           ssl_context=__import__("ssl").create_default_context(cafile=endpoint.ca_bundle))
    key = jwks.get_signing_key_from_jwt(token.token)
    claims = jwt.decode(token.token, key.key, algorithms=["RS256"], audience="https://management.azure.com/")
    assert claims["tid"] == endpoint.tenant_id
    assert claims["oid"] == endpoint.object_id
    assert claims["appid"] == endpoint.client_id
    assert claims["exp"] > claims["iat"]


def test_wrong_client_secret_is_refused_with_aadsts7000215(local_azure):
    endpoint = local_azure.endpoint
    credential = local_azure.credential(endpoint.client_id, "not-the-secret")
    with pytest.raises(ClientAuthenticationError) as caught:
        credential.get_token("https://management.azure.com/.default")
    assert "AADSTS7000215" in str(caught.value)
    assert "not-the-secret" not in str(caught.value)


def test_token_from_another_tenant_is_refused_by_resource_manager(local_azure):
    foreign_tenant = "11111111-2222-4333-8444-555555555555"
    sp = local_azure.azure.create_service_principal("foreign-app", tenant_id=foreign_tenant)
    clients = local_azure.clients(sp["appId"], sp["password"], foreign_tenant)
    with pytest.raises(HttpResponseError) as caught:
        list(clients.resource.resource_groups.list())
    assert caught.value.status_code == 401
    assert caught.value.error.code == "InvalidAuthenticationTokenTenant"


def test_request_without_api_version_is_a_400_missing_api_version(azure_clients, local_azure):
    request = HttpRequest("GET", f"/subscriptions/{local_azure.endpoint.subscription_id}/resourcegroups")
    response = azure_clients.resource.send_request(request)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "MissingApiVersionParameter"


def test_unsupported_api_version_is_a_400_listing_the_supported_ones(local_azure):
    client = local_azure.clients(api_version="2001-01-01").resource
    with pytest.raises(HttpResponseError) as caught:
        client.resource_groups.get("anything")
    assert caught.value.status_code == 400
    assert caught.value.error.code == "InvalidApiVersionParameter"
    assert "2025-04-01" in caught.value.error.message


def test_request_without_token_is_401_authentication_failed(azure_clients, local_azure):
    import requests

    endpoint = local_azure.endpoint
    response = requests.get(f"{endpoint.resource_manager_endpoint}subscriptions/{endpoint.subscription_id}"
                            "/resourcegroups?api-version=2025-04-01", verify=endpoint.ca_bundle, timeout=10)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "AuthenticationFailed"
