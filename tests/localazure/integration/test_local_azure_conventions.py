"""Resource Manager's conventions in local Azure: tracing headers, ETag, Retry-After, built-in role ids at every
scope, principalType, provider metadata, subscriptions, tenants, cloud metadata and token audiences."""

from __future__ import annotations

import ssl
import uuid

import httpx
import jwt
import pytest
from azure.core.exceptions import HttpResponseError
from azure.core.rest import HttpRequest

from localazure.arm.app import throttle_delay_headers

pytestmark = pytest.mark.emulator

READER = "acdd72a7-3385-48ef-bd42-f606fba81ae7"
OWNER = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635"
CONTRIBUTOR = "b24988ac-6180-42a0-ab88-20f7382dd24c"
# Azure's published ids of every built-in role local Azure ships.
AZURE_BUILT_IN_IDS = {
    "Owner": OWNER,
    "Contributor": CONTRIBUTOR,
    "Reader": READER,
    "User Access Administrator": "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9",
    "Azure Kubernetes Service Cluster Admin Role": "0ab0b1a8-8aac-4efd-b8c2-3ee1fb270be8",
    "Azure Kubernetes Service Cluster User Role": "4abbcc35-e782-43d8-92c5-2d3f1bd2253f",
    "AcrPull": "7f951dda-4ed3-4680-a7ca-43fe172d538d",
    "AcrPush": "8311e382-0749-4cb8-b61a-304f252e45ec",
    "Key Vault Secrets Officer": "b86a8fe4-44ce-4948-aee5-eccb2c155cd7",
    "Key Vault Secrets User": "4633458b-17de-408a-b874-0445c86b69e6",
    "Storage Blob Data Contributor": "ba92f5b4-2d11-453d-a403-e96b0029c9fe",
}


@pytest.fixture
def arm(local_azure):
    """An httpx client with an admin token for the emulator's Resource Manager endpoint."""
    endpoint = local_azure.endpoint
    token = local_azure.credential().get_token("https://management.azure.com/.default").token
    with httpx.Client(base_url=endpoint.resource_manager_endpoint, verify=ssl.create_default_context(
            cafile=endpoint.ca_bundle),
                      headers={"Authorization": f"Bearer {token}"}, timeout=30) as client:
        yield client


def test_every_response_carries_request_and_correlation_ids_echoing_the_clients(arm, local_azure):
    sub = local_azure.endpoint.subscription_id
    correlation, client_request = str(uuid.uuid4()), str(uuid.uuid4())
    answer = arm.get(f"/subscriptions/{sub}/resourcegroups", params={"api-version": "2025-04-01"},
                     headers={"x-ms-correlation-request-id": correlation, "x-ms-client-request-id": client_request})
    assert answer.status_code == 200
    assert answer.headers["x-ms-correlation-request-id"] == correlation
    assert answer.headers["x-ms-client-request-id"] == client_request
    assert uuid.UUID(answer.headers["x-ms-request-id"])
    refused = arm.get(f"/subscriptions/{sub}/resourcegroups", params={"api-version": "1999-01-01"})
    assert refused.status_code == 400 and uuid.UUID(refused.headers["x-ms-request-id"])
    assert refused.headers["x-ms-correlation-request-id"]


def test_a_body_with_an_etag_comes_with_the_etag_header_and_if_match_is_honoured(local_azure, fresh_name):

    endpoint = local_azure.endpoint
    clients = local_azure.clients()
    clients.resource.resource_groups.create_or_update(fresh_name, {"location": "eastus"})
    fleets = local_azure.clients().fleet
    fleets.fleets.begin_create_or_update(fresh_name, "fleet1", {"location": "eastus"}).result()
    path = (f"/subscriptions/{endpoint.subscription_id}/resourceGroups/{fresh_name}/providers/"
            "Microsoft.ContainerService/fleets/fleet1?api-version=2025-03-01")
    answer = clients.resource.send_request(HttpRequest("GET", path))
    assert answer.headers["ETag"] == answer.json()["eTag"]
    stale = clients.resource.send_request(HttpRequest("PATCH", path, json={"tags": {"a": "b"}},
                                                      headers={"If-Match": '"not-the-etag"'}))
    assert stale.status_code == 412
    assert stale.json()["error"]["code"] == "PreconditionFailed"


def test_retry_after_is_whole_seconds_and_sub_second_delays_keep_retry_after_ms():
    assert throttle_delay_headers(2) == {"Retry-After": "2"}
    assert throttle_delay_headers(1.5) == {"Retry-After": "2", "retry-after-ms": "1500"}
    assert throttle_delay_headers(0.05) == {"retry-after-ms": "50"}


@pytest.mark.parametrize("scope_kind", ["subscription", "group"])
def test_built_in_roles_have_azures_ids_at_every_scope(azure_clients, local_azure, fresh_name, scope_kind):
    sub = f"/subscriptions/{local_azure.endpoint.subscription_id}"
    azure_clients.resource.resource_groups.create_or_update(fresh_name, {"location": "eastus"})
    scope = sub if scope_kind == "subscription" else f"{sub}/resourceGroups/{fresh_name}"
    listed = {r.role_name: r for r in azure_clients.authorization.role_definitions.list(scope)}
    for name, guid in AZURE_BUILT_IN_IDS.items():
        assert listed[name].name == guid
        # Listed at a group, a built-in keeps its subscription-level id, so assignments' roleDefinitionId match.
        assert listed[name].id == f"{sub}/providers/Microsoft.Authorization/roleDefinitions/{guid}"


def test_assignment_with_a_principal_type_the_principal_does_not_have_is_400_unmatched(azure_clients, local_azure):
    sp = local_azure.azure.create_service_principal(f"typed-{uuid.uuid4().hex[:6]}")
    scope = f"/subscriptions/{local_azure.endpoint.subscription_id}"
    role = f"{scope}/providers/Microsoft.Authorization/roleDefinitions/{READER}"
    with pytest.raises(HttpResponseError) as caught:
        azure_clients.authorization.role_assignments.create(
            scope, str(uuid.uuid4()),
            {"role_definition_id": role, "principal_id": sp["objectId"], "principal_type": "User"})
    assert caught.value.status_code == 400
    assert caught.value.error.code == "UnmatchedPrincipalType"
    created = azure_clients.authorization.role_assignments.create(
        scope, str(uuid.uuid4()),
        {"role_definition_id": role, "principal_id": sp["objectId"], "principal_type": "ServicePrincipal"})
    assert created.principal_type == "ServicePrincipal"
    listed = list(azure_clients.authorization.role_assignments.list_for_scope(
        scope, filter=f"principalId eq '{sp['objectId']}'"))
    assert [a.id for a in listed] == [created.id]


def test_token_for_the_classic_scope_with_a_double_slash_is_accepted_by_resource_manager(local_azure):
    clients = local_azure.clients(credential_scopes=["https://management.core.windows.net//.default"])
    token = clients.credential.get_token("https://management.core.windows.net//.default").token
    assert jwt.decode(token, options={"verify_signature": False})["aud"] == "https://management.core.windows.net/"
    client = clients.resource
    assert isinstance(list(client.resource_groups.list()), list)


def test_subscriptions_tenants_and_locations_are_listed_as_az_login_reads_them(arm, local_azure):
    endpoint = local_azure.endpoint
    subs = arm.get("/subscriptions", params={"api-version": "2022-12-01"}).json()["value"]
    assert [s["subscriptionId"] for s in subs] == [endpoint.subscription_id]
    assert subs[0]["tenantId"] == endpoint.tenant_id and subs[0]["state"] == "Enabled"
    one = arm.get(f"/subscriptions/{endpoint.subscription_id}", params={"api-version": "2022-12-01"})
    assert one.json()["displayName"]
    missing = arm.get(f"/subscriptions/{uuid.uuid4()}", params={"api-version": "2022-12-01"})
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "SubscriptionNotFound"
    tenants = arm.get("/tenants", params={"api-version": "2022-12-01"}).json()["value"]
    assert [t["tenantId"] for t in tenants] == [endpoint.tenant_id]
    locations = arm.get(f"/subscriptions/{endpoint.subscription_id}/locations",
                        params={"api-version": "2022-12-01"}).json()["value"]
    assert {"eastus", "westus2", "centralus"} <= {loc["name"] for loc in locations}


def test_a_principal_without_roles_sees_no_subscription(local_azure):
    sp = local_azure.azure.create_service_principal(f"norole-{uuid.uuid4().hex[:6]}")
    clients = local_azure.clients(sp["appId"], sp["password"])
    answer = clients.resource.send_request(HttpRequest("GET", "/subscriptions?api-version=2022-12-01"))
    assert answer.status_code == 200 and answer.json() == {"value": []}


def test_cloud_metadata_names_local_azure_for_every_endpoint(local_azure):
    endpoint = local_azure.endpoint
    base = endpoint.resource_manager_endpoint
    with httpx.Client(verify=ssl.create_default_context(cafile=endpoint.ca_bundle)) as client:
        cloud = client.get(f"{base}metadata/endpoints", params={"api-version": "2022-09-01"}).json()
        clouds = client.get(f"{base}metadata/endpoints", params={"api-version": "2019-05-01"}).json()
        legacy = client.get(f"{base}metadata/endpoints", params={"api-version": "2015-01-01"}).json()
    assert cloud["resourceManager"] == base == clouds[0]["resourceManager"]
    assert cloud["authentication"]["loginEndpoint"] == base
    assert cloud["authentication"]["audiences"][0] == "https://management.core.windows.net/"
    assert legacy["authentication"]["loginEndpoint"] == base


def test_providers_list_types_versions_locations_and_keep_registration_per_subscription(azure_clients):
    providers = azure_clients.resource.providers
    aks = providers.get("Microsoft.ContainerService")
    types = {t.resource_type: t for t in aks.resource_types}
    assert "2026-06-01" in types["fleets"].api_versions and "2022-07-02-preview" in types["fleets"].api_versions
    assert "2026-08-01" in types["managedClusters"].api_versions
    assert "managedClusters/agentPools" in types and "East US" in types["managedClusters"].locations
    assert aks.registration_state == "Registered"
    names = {p.namespace for p in providers.list()}
    assert {"Microsoft.ContainerService", "Microsoft.KeyVault", "Microsoft.Storage", "Microsoft.Authorization",
            "Microsoft.ContainerRegistry", "Microsoft.Resources"} <= names
    assert providers.unregister("Microsoft.KeyVault").registration_state == "Unregistered"
    assert providers.get("Microsoft.KeyVault").registration_state == "Unregistered"
    assert providers.register("Microsoft.KeyVault").registration_state == "Registered"
    with pytest.raises(HttpResponseError) as caught:
        providers.get("Microsoft.Nothing")
    assert caught.value.status_code == 404


@pytest.mark.parametrize("version", ["2022-06-02-preview", "2023-08-15-preview", "2023-10-15", "2024-05-02-preview",
                                     "2025-08-01-preview", "2026-03-02-preview", "2026-06-01"])
def test_every_published_fleet_api_version_is_accepted(arm, local_azure, version):
    sub = local_azure.endpoint.subscription_id
    answer = arm.get(f"/subscriptions/{sub}/providers/Microsoft.ContainerService/fleets",
                     params={"api-version": version})
    assert answer.status_code == 200, answer.text


def test_an_unknown_api_version_names_the_supported_ones(arm, local_azure):
    sub = local_azure.endpoint.subscription_id
    answer = arm.get(f"/subscriptions/{sub}/providers/Microsoft.ContainerService/fleets",
                     params={"api-version": "2022-01-01-preview"})
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["code"] == "InvalidApiVersionParameter"
    assert "2022-06-02-preview" in error["message"] and "2026-06-01" in error["message"]


def test_last_operation_error_has_azures_error_detail_shape():
    from localazure.arm.errors import error_detail

    shaped = error_detail({"code": "OperationInterrupted", "message": "stopped"})
    assert shaped == {"code": "OperationInterrupted", "message": "stopped", "target": None, "details": [],
                      "additionalInfo": []}
    assert error_detail(None) is None
