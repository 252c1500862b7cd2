"""Microsoft.Storage/storageAccounts through the real azure-mgmt-storage client."""

from __future__ import annotations

import uuid
from urllib.parse import urlparse

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

pytestmark = pytest.mark.emulator

CONTRIBUTOR = "b24988ac-6180-42a0-ab88-20f7382dd24c"
BLOB_DATA_CONTRIBUTOR = "ba92f5b4-2d11-453d-a403-e96b0029c9fe"


def _group(azure_clients, name):
    return azure_clients.resource.resource_groups.create_or_update(name, {"location": "eastus"})


def _account_name(fresh_name):
    return "st" + fresh_name.replace("-", "")


def _account(**properties):
    return {"location": "eastus", "sku": {"name": "Standard_LRS"}, "kind": "StorageV2", "tags": {"app": "fleet"},
            "properties": {"accessTier": "Cool", "minimumTlsVersion": "TLS1_2", "supportsHttpsTrafficOnly": True,
                           "encryption": {"keySource": "Microsoft.Storage",
                                          "services": {"blob": {"enabled": True, "keyType": "Account"}}},
                           **properties}}


def test_create_is_202_then_polling_and_get_list_update_delete(local_azure, azure_clients, fresh_name):
    group = _group(azure_clients, fresh_name)
    storage = local_azure.clients().storage
    name = _account_name(fresh_name)

    poller = storage.storage_accounts.begin_create(fresh_name, name, _account())
    initial = poller.polling_method()._initial_response.http_response
    assert initial.status_code == 202 and "Location" in initial.headers
    created = poller.result()
    assert created.provisioning_state == "Succeeded"
    assert created.id == f"{group.id}/providers/Microsoft.Storage/storageAccounts/{name}"
    assert created.kind == "StorageV2" and created.sku.name == "Standard_LRS" and created.sku.tier == "Standard"
    assert created.access_tier == "Cool"
    assert created.minimum_tls_version == "TLS1_2" and created.enable_https_traffic_only is True
    assert created.encryption.key_source == "Microsoft.Storage"
    endpoints = created.primary_endpoints
    for url in (endpoints.blob, endpoints.queue, endpoints.table, endpoints.file, endpoints.dfs, endpoints.web):
        assert urlparse(url).hostname == "127.0.0.1" and name in url

    assert storage.storage_accounts.get_properties(fresh_name, name).tags == {"app": "fleet"}
    assert [a.name for a in storage.storage_accounts.list_by_resource_group(fresh_name)] == [name]
    assert name in {a.name for a in storage.storage_accounts.list()}

    updated = storage.storage_accounts.update(fresh_name, name, {"tags": {"app": "other"},
                                                                 "properties": {"accessTier": "Hot"}})
    assert updated.tags == {"app": "other"} and updated.access_tier == "Hot"
    assert updated.minimum_tls_version == "TLS1_2"

    storage.storage_accounts.delete(fresh_name, name)
    with pytest.raises(ResourceNotFoundError):
        storage.storage_accounts.get_properties(fresh_name, name)


def test_name_rules_and_global_uniqueness(local_azure, azure_clients, fresh_name):
    _group(azure_clients, fresh_name)
    _group(azure_clients, fresh_name + "-other")
    storage = local_azure.clients().storage
    name = _account_name(fresh_name)

    def check(candidate):
        return storage.storage_accounts.check_name_availability(
            {"name": candidate, "type": "Microsoft.Storage/storageAccounts"})

    assert check(name).name_available is True
    assert check("UPPER").reason == "AccountNameInvalid"
    assert check("ab").reason == "AccountNameInvalid"
    storage.storage_accounts.begin_create(fresh_name, name, _account()).result()
    assert check(name).reason == "AlreadyExists"
    with pytest.raises(HttpResponseError) as caught:
        storage.storage_accounts.begin_create(fresh_name + "-other", name, _account())
    assert caught.value.status_code == 409 and caught.value.error.code == "StorageAccountAlreadyTaken"
    with pytest.raises(HttpResponseError) as caught:
        storage.storage_accounts.begin_create(fresh_name, "Bad-Name", _account())
    assert caught.value.status_code == 400


def test_keys_list_and_regenerate(local_azure, azure_clients, fresh_name):
    _group(azure_clients, fresh_name)
    storage = local_azure.clients().storage
    name = _account_name(fresh_name)
    storage.storage_accounts.begin_create(fresh_name, name, _account()).result()

    keys = {k.key_name: k.value for k in storage.storage_accounts.list_keys(fresh_name, name)["keys"]}
    assert set(keys) == {"key1", "key2"} and keys["key1"] != keys["key2"] and len(keys["key1"]) == 88
    regenerated = storage.storage_accounts.regenerate_key(fresh_name, name, {"keyName": "key1"})
    after = {k.key_name: k.value for k in regenerated["keys"]}
    assert after["key1"] != keys["key1"] and after["key2"] == keys["key2"]
    assert {k.key_name: k.value for k in storage.storage_accounts.list_keys(fresh_name, name)["keys"]} == after


def test_contributor_on_one_group_only_and_the_blob_data_role(local_azure, azure_clients, fresh_name):
    mine = _group(azure_clients, fresh_name + "-a")
    _group(azure_clients, fresh_name + "-b")
    sp = local_azure.azure.create_service_principal(fresh_name)
    subscription = mine.id.split("/resourceGroups")[0]
    azure_clients.authorization.role_assignments.create(mine.id, str(uuid.uuid4()), {
        "role_definition_id": f"{subscription}/providers/Microsoft.Authorization/roleDefinitions/{CONTRIBUTOR}",
        "principal_id": sp["objectId"], "principal_type": "ServicePrincipal"})
    storage = local_azure.clients(sp["appId"], sp["password"]).storage
    name = _account_name(fresh_name)

    assert storage.storage_accounts.begin_create(fresh_name + "-a", name, _account()).result().name == name
    assert storage.storage_accounts.list_keys(fresh_name + "-a", name)["keys"]
    with pytest.raises(HttpResponseError) as caught:
        storage.storage_accounts.begin_create(fresh_name + "-b", name + "b", _account())
    assert caught.value.status_code == 403 and caught.value.error.code == "AuthorizationFailed"

    role = azure_clients.authorization.role_definitions.get_by_id(
        f"/providers/Microsoft.Authorization/roleDefinitions/{BLOB_DATA_CONTRIBUTOR}")
    assert role.role_name == "Storage Blob Data Contributor"
    assert "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read" in role.permissions[0].data_actions


def test_accounts_go_with_their_group_and_survive_a_restart(local_azure, azure_clients, fresh_name):
    _group(azure_clients, fresh_name)
    _group(azure_clients, fresh_name + "-gone")
    storage = local_azure.clients().storage
    kept, gone = _account_name(fresh_name), _account_name(fresh_name) + "x"
    storage.storage_accounts.begin_create(fresh_name, kept, _account()).result()
    storage.storage_accounts.begin_create(fresh_name + "-gone", gone, _account()).result()
    key = storage.storage_accounts.list_keys(fresh_name, kept)["keys"][0].value

    azure_clients.resource.resource_groups.begin_delete(fresh_name + "-gone").result()
    assert storage.storage_accounts.check_name_availability(
        {"name": gone, "type": "Microsoft.Storage/storageAccounts"}).name_available is True

    local_azure.restart()
    storage = local_azure.clients().storage
    assert storage.storage_accounts.get_properties(fresh_name, kept).access_tier == "Cool"
    assert storage.storage_accounts.list_keys(fresh_name, kept)["keys"][0].value == key
