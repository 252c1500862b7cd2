"""Resource groups through azure-mgmt-resource against local Azure."""

from __future__ import annotations

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

pytestmark = pytest.mark.emulator


def test_group_create_get_exists_list_and_tag_update_round_trip(azure_clients, fresh_name):
    groups = azure_clients.resource.resource_groups
    created = groups.create_or_update(fresh_name, {"location": "East US", "tags": {"owner": "fleetflow"}})
    assert created.location == "eastus"
    assert created.properties.provisioning_state == "Succeeded"
    assert groups.check_existence(fresh_name) is True
    assert groups.check_existence(fresh_name + "-absent") is False
    assert fresh_name in {g.name for g in groups.list()}
    assert [g.name for g in groups.list(filter="tagName eq 'owner' and tagValue eq 'fleetflow'")].count(fresh_name) == 1
    updated = groups.update(fresh_name, {"tags": {"owner": "someone-else"}})
    assert updated.tags == {"owner": "someone-else"}
    assert groups.get(fresh_name).tags == {"owner": "someone-else"}


def test_missing_group_is_404_resource_group_not_found(azure_clients, fresh_name):
    with pytest.raises(ResourceNotFoundError) as caught:
        azure_clients.resource.resource_groups.get(fresh_name)
    assert caught.value.error.code == "ResourceGroupNotFound"


def test_group_without_location_is_400_invalid_parameter_naming_location(azure_clients, fresh_name):
    with pytest.raises(HttpResponseError) as caught:
        azure_clients.resource.resource_groups.create_or_update(fresh_name, {"tags": {}})
    assert caught.value.status_code == 400
    assert caught.value.error.code == "InvalidParameter"
    assert "location" in caught.value.error.message


def test_deleting_a_group_is_a_long_running_operation_that_removes_its_clusters(azure_clients, fresh_name):
    azure_clients.resource.resource_groups.create_or_update(fresh_name, {"location": "westus2"})
    aks = azure_clients.containerservice.managed_clusters
    aks.begin_create_or_update(fresh_name, "inside", {
        "location": "westus2",
        "properties": {"dnsPrefix": "inside", "agentPoolProfiles": [{"name": "system", "count": 1}]},
    }).result()

    poller = azure_clients.resource.resource_groups.begin_delete(fresh_name)
    poller.result()

    assert poller.status() == "Succeeded"
    assert azure_clients.resource.resource_groups.check_existence(fresh_name) is False
    assert "inside" not in {c.name for c in aks.list()}


def test_generic_listing_returns_top_level_resources_by_group_type_and_tag(local_azure, azure_clients, fresh_name):
    """`az resource list` / resources.list*: top-level resources, filtered as ARM filters them."""
    groups = azure_clients.resource.resource_groups
    groups.create_or_update(fresh_name, {"location": "eastus"})
    other = fresh_name + "x"
    groups.create_or_update(other, {"location": "eastus"})
    registries = local_azure.clients().registry
    registry = registries.registries.begin_create(
        fresh_name, f"acr{fresh_name}".replace("-", "")[:40],
        {"location": "eastus", "sku": {"name": "Basic"}, "tags": {"team": "a"}}).result()
    storage = local_azure.clients().storage.storage_accounts.begin_create(
        other, f"st{fresh_name}".replace("-", "")[:24],
        {"location": "eastus", "kind": "StorageV2", "sku": {"name": "Standard_LRS"}, "tags": {"team": "b"}}).result()
    resources = azure_clients.resource.resources

    in_group = list(resources.list_by_resource_group(fresh_name))
    assert [(item.id, item.type, item.tags) for item in in_group] == [
        (registry.id, "Microsoft.ContainerRegistry/registries", {"team": "a"})]
    everywhere = {item.id for item in resources.list()}
    assert {registry.id, storage.id} <= everywhere
    by_type = {item.id for item in resources.list(filter="resourceType eq 'Microsoft.Storage/storageAccounts'")}
    assert storage.id in by_type and registry.id not in by_type
    by_tag = {item.id for item in resources.list(filter="tagName eq 'team' and tagValue eq 'a'")}
    assert registry.id in by_tag and storage.id not in by_tag
    with pytest.raises(ResourceNotFoundError):
        list(resources.list_by_resource_group(fresh_name + "-absent"))
    for group in (fresh_name, other):
        groups.begin_delete(group).result()
