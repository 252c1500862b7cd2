"""Resource provider registration, through the real Azure SDK clients and the real az CLI.

A namespace the subscription has not registered is refused as Resource Manager refuses it: 409
MissingSubscriptionRegistration naming the namespace and where registering is explained. Registering heals it.
The SDKs register on their own when they meet that error (azure-mgmt-core's ARMAutoResourceProviderRegistrationPolicy,
in every generated client and in az's own clients) — but only when the caller may register at subscription scope.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError
from azure.mgmt.containerservice import ContainerServiceClient

from localazure import LocalAzure
from tests.localazure_fixtures import clients_for

pytestmark = pytest.mark.emulator

NAMESPACE = "Microsoft.ContainerService"
HOW_TO = "See https://aka.ms/rps-not-found for how to register subscriptions."
UNREGISTERED = (f"The subscription registration is in 'Unregistered' state. The subscription must be registered to "
                f"use namespace '{NAMESPACE}'. {HOW_TO}")


def _aks_client(local_azure: Any, app_id: str | None = None, secret: str | None = None) -> ContainerServiceClient:
    return local_azure.clients(app_id, secret).containerservice


class _Warnings(logging.Handler):
    """Collects what azure-mgmt-core's registration policy logs (its logger, whatever the logging setup)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.fixture
def registration_log() -> Iterator[list[str]]:
    logger = logging.getLogger("azure.mgmt.core.policies._base")
    handler = _Warnings()
    logger.addHandler(handler)
    try:
        yield handler.lines
    finally:
        logger.removeHandler(handler)


def _cluster(name: str = "reg") -> dict[str, Any]:
    return {"location": "eastus", "properties": {"kubernetesVersion": "1.36", "dnsPrefix": name,
                                                 "agentPoolProfiles": [{"name": "nodepool1", "count": 1,
                                                                        "mode": "System"}]}}


@pytest.fixture
def registered_again(azure_clients: Any) -> Iterator[None]:
    """Whatever the test unregisters, Microsoft.ContainerService is registered again afterwards."""
    yield
    azure_clients.resource.providers.register(NAMESPACE)


@pytest.fixture
def group_contributor(local_azure: Any, azure_clients: Any, fresh_name: str) -> Iterator[ContainerServiceClient]:
    """AKS client of a principal that is Contributor on a fresh group only (it may not register namespaces)."""
    group = azure_clients.resource.resource_groups.create_or_update(fresh_name, {"location": "eastus"})
    sp = local_azure.azure.create_service_principal(f"reg-{fresh_name}", role="Contributor", scopes=[group.id])
    yield _aks_client(local_azure, sp["appId"], sp["password"])
    azure_clients.resource.resource_groups.begin_delete(fresh_name)


def test_unregistered_namespace_is_refused_with_resource_managers_error_until_registered(
        azure_clients, group_contributor, fresh_name, registered_again, registration_log):
    providers = azure_clients.resource.providers
    assert providers.unregister(NAMESPACE).registration_state == "Unregistered"
    assert providers.get(NAMESPACE).registration_state == "Unregistered"

    # A long-running write: the SDK streams the answer of its first request, so its registration policy cannot read
    # the error and the 409 comes back as Resource Manager sent it.
    with pytest.raises(HttpResponseError) as refused:
        group_contributor.managed_clusters.begin_create_or_update(fresh_name, "reg", _cluster()).result()
    assert refused.value.status_code == 409
    error = refused.value.error
    assert error is not None and error.code == "MissingSubscriptionRegistration"
    assert error.message == UNREGISTERED
    assert [(d.code, d.target, d.message) for d in error.details] == \
        [("MissingSubscriptionRegistration", NAMESPACE, UNREGISTERED)]
    assert registration_log == []
    # Reads are refused too. There the SDK tries to register for the caller (POST .../register: 403 for a group
    # Contributor), then surfaces the refusal.
    with pytest.raises(HttpResponseError) as read:
        list(group_contributor.managed_clusters.list_by_resource_group(fresh_name))
    assert read.value.status_code == 409 and read.value.error.message == UNREGISTERED
    assert registration_log[-1] == "Registration failed. Please register manually."
    # Other namespaces and resource groups are served.
    assert azure_clients.resource.resource_groups.get(fresh_name).name == fresh_name

    assert providers.register(NAMESPACE).registration_state == "Registered"
    cluster = group_contributor.managed_clusters.begin_create_or_update(fresh_name, "reg", _cluster()).result()
    assert cluster.provisioning_state == "Succeeded"


def test_the_sdk_registers_a_namespace_for_a_caller_who_may(local_azure, azure_clients, fresh_name,
                                                           registered_again, monkeypatch, registration_log):
    """Unregistered, the admin's read goes through: the SDK's policy registers the namespace and retries."""
    from azure.mgmt.core.policies import _base as registration_policy

    class _NoWait:
        @staticmethod
        def sleep(_seconds: float) -> None:
            return None

    monkeypatch.setattr(registration_policy, "time", _NoWait)  # it waits 10 s before looking at the state
    azure_clients.resource.resource_groups.create_or_update(fresh_name, {"location": "eastus"})
    azure_clients.resource.providers.unregister(NAMESPACE)
    aks = _aks_client(local_azure)
    assert list(aks.managed_clusters.list_by_resource_group(fresh_name)) == []
    assert registration_log == [f"Resource provider '{NAMESPACE}' used by this operation is not registered. We are "
                                "registering for you.", "Registration succeeded."]
    assert azure_clients.resource.providers.get(NAMESPACE).registration_state == "Registered"
    cluster = aks.managed_clusters.begin_create_or_update(fresh_name, "auto", _cluster("auto")).result()
    assert cluster.provisioning_state == "Succeeded"
    azure_clients.resource.resource_groups.begin_delete(fresh_name).result()


def test_knob_makes_a_namespace_start_not_registered_as_in_a_new_subscription(tmp_path, fresh_name):
    """The knob names namespaces a new subscription has not registered; registering them is recorded and wins.
    An emulator of its own: a registration any other test makes through the API would win over the knob."""
    azure = LocalAzure.start(tmp_path / "new-subscription", clusters="arm-only", time_scale=0.001)
    try:
        admin = clients_for(azure.endpoint)
        group = admin.resource.resource_groups.create_or_update(fresh_name, {"location": "eastus"})
        sp = azure.create_service_principal(f"kv-{fresh_name}", role="Contributor", scopes=[group.id])
        as_contributor = clients_for(azure.endpoint, sp["appId"], sp["password"]).resource
        vault_id = f"{group.id}/providers/Microsoft.KeyVault/vaults/absent"
        azure.set_knobs(unregistered="Microsoft.KeyVault")
        providers = admin.resource.providers
        assert providers.get("Microsoft.KeyVault").registration_state == "NotRegistered"
        with pytest.raises(HttpResponseError) as refused:
            as_contributor.resources.get_by_id(vault_id, api_version="2024-11-01")
        assert refused.value.status_code == 409 and refused.value.error.message == (
            f"The subscription is not registered to use namespace 'Microsoft.KeyVault'. {HOW_TO}")
        providers.register("Microsoft.KeyVault")
        with pytest.raises(HttpResponseError) as absent:
            as_contributor.resources.get_by_id(vault_id, api_version="2024-11-01")
        assert absent.value.status_code == 404
    finally:
        azure.stop()


def test_unauthenticated_requests_are_refused_401_before_registration_is_looked_at(
        local_azure, azure_clients, registered_again):
    import requests

    azure_clients.resource.providers.unregister(NAMESPACE)
    endpoint = local_azure.endpoint
    url = (f"{endpoint.resource_manager_endpoint.rstrip('/')}/subscriptions/{endpoint.subscription_id}/providers/"
           f"{NAMESPACE}/managedClusters?api-version=2025-10-01")
    assert requests.get(url, verify=endpoint.ca_bundle, timeout=30).status_code == 401

