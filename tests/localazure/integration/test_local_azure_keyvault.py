"""Microsoft.KeyVault vaults (azure-mgmt-keyvault) and their secrets (azure-keyvault-secrets SecretClient).

The SecretClient is the default one: only the CA bundle is passed, so challenge-resource verification is on.
"""

from __future__ import annotations

import uuid
from urllib.parse import urlparse

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

pytestmark = pytest.mark.emulator

CONTRIBUTOR = "b24988ac-6180-42a0-ab88-20f7382dd24c"
SECRETS_OFFICER = "b86a8fe4-44ce-4948-aee5-eccb2c155cd7"
SECRETS_USER = "4633458b-17de-408a-b874-0445c86b69e6"


def _group(azure_clients, name):
    return azure_clients.resource.resource_groups.create_or_update(name, {"location": "eastus"})


def _vault_name(fresh_name):
    return "kv-" + fresh_name


def _vault(local_azure, *, object_ids=(), rbac=False, purge_protection=None, create_mode=None):
    tenant = local_azure.endpoint.tenant_id
    properties = {
        "tenantId": tenant, "sku": {"family": "A", "name": "standard"}, "enableRbacAuthorization": rbac,
        "softDeleteRetentionInDays": 7,
        "accessPolicies": [{"tenantId": tenant, "objectId": oid, "permissions": {"secrets": ["all"]}}
                           for oid in object_ids],
    }
    if purge_protection is not None:
        properties["enablePurgeProtection"] = purge_protection
    if create_mode:
        properties["createMode"] = create_mode
    return {"location": "eastus", "tags": {"app": "fleet"}, "properties": properties}


def _assign(azure_clients, scope, role, principal_id):
    subscription = "/".join(scope.split("/")[:3])
    azure_clients.authorization.role_assignments.create(scope, str(uuid.uuid4()), {
        "role_definition_id": f"{subscription}/providers/Microsoft.Authorization/roleDefinitions/{role}",
        "principal_id": principal_id, "principal_type": "ServicePrincipal"})


def _principal(local_azure, name):
    sp = local_azure.azure.create_service_principal(name)
    return sp, local_azure.clients(sp["appId"], sp["password"])


def test_vault_create_is_long_running_with_a_loopback_uri_and_get_list_update(local_azure, azure_clients, fresh_name):
    group = _group(azure_clients, fresh_name)
    kv = local_azure.clients().keyvault
    name = _vault_name(fresh_name)

    poller = kv.vaults.begin_create_or_update(fresh_name, name, _vault(local_azure))
    initial = poller.polling_method()._initial_response.http_response
    assert initial.status_code == 201 and "Location" in initial.headers
    vault = poller.result()
    assert vault.properties.provisioning_state == "Succeeded"
    assert vault.id == f"{group.id}/providers/Microsoft.KeyVault/vaults/{name}"
    uri = urlparse(vault.properties.vault_uri)
    assert uri.scheme == "https" and uri.hostname == "127.0.0.1" and uri.port
    assert vault.properties.enable_soft_delete is True and vault.properties.soft_delete_retention_in_days == 7
    assert vault.properties.tenant_id == local_azure.endpoint.tenant_id

    assert kv.vaults.get(fresh_name, name).tags == {"app": "fleet"}
    assert [v.name for v in kv.vaults.list_by_resource_group(fresh_name)] == [name]
    assert name in {v.name for v in kv.vaults.list_by_subscription()}
    patched = kv.vaults.update(fresh_name, name, {"tags": {"app": "other"},
                                                  "properties": {"enabledForDeployment": True}})
    assert patched.tags == {"app": "other"} and patched.properties.enabled_for_deployment is True
    assert patched.properties.vault_uri == vault.properties.vault_uri

    other_tenant = _vault(local_azure)
    other_tenant["properties"]["tenantId"] = str(uuid.uuid4())
    with pytest.raises(HttpResponseError) as caught:
        kv.vaults.begin_create_or_update(fresh_name, name + "x", other_tenant)
    assert caught.value.status_code == 400


def test_vault_names_are_checked_and_globally_unique(local_azure, azure_clients, fresh_name):
    _group(azure_clients, fresh_name)
    _group(azure_clients, fresh_name + "-b")
    kv = local_azure.clients().keyvault
    name = _vault_name(fresh_name)

    def check(candidate):
        return kv.vaults.check_name_availability({"name": candidate, "type": "Microsoft.KeyVault/vaults"})

    assert check(name).name_available is True
    for bad in ("kv", "1starts-with-digit", "double--hyphen", "x" * 25):
        assert check(bad).name_available is False
    kv.vaults.begin_create_or_update(fresh_name, name, _vault(local_azure)).result()
    assert check(name.upper()).reason == "AlreadyExists"
    with pytest.raises(HttpResponseError) as caught:
        kv.vaults.begin_create_or_update(fresh_name + "-b", name, _vault(local_azure))
    assert caught.value.status_code == 409


def test_secrets_by_access_policy_with_versions_and_a_principal_without_one_gets_403(
    local_azure, azure_clients, fresh_name
):
    _group(azure_clients, fresh_name)
    _, outsider = _principal(local_azure, fresh_name + "-out")
    kv = local_azure.clients().keyvault
    vault = kv.vaults.begin_create_or_update(fresh_name, _vault_name(fresh_name), _vault(
        local_azure, object_ids=[local_azure.endpoint.object_id])).result()
    secrets = local_azure.clients().secret_client(vault.properties.vault_uri)

    first = secrets.set_secret("db-password", "s3cret-1", content_type="text/plain", tags={"env": "test"})
    second = secrets.set_secret("db-password", "s3cret-2")
    assert first.properties.version != second.properties.version
    assert first.id == f"{vault.properties.vault_uri}secrets/db-password/{first.properties.version}"
    assert secrets.get_secret("db-password").value == "s3cret-2"
    old = secrets.get_secret("db-password", first.properties.version)
    assert old.value == "s3cret-1" and old.properties.content_type == "text/plain" and old.properties.tags == {
        "env": "test"}
    assert {p.version for p in secrets.list_properties_of_secret_versions("db-password")} == {
        first.properties.version, second.properties.version}
    assert [p.name for p in secrets.list_properties_of_secrets()] == ["db-password"]
    with pytest.raises(ResourceNotFoundError):
        secrets.get_secret("missing")

    denied = outsider.secret_client(vault.properties.vault_uri)
    with pytest.raises(HttpResponseError) as caught:
        denied.get_secret("db-password")
    assert caught.value.status_code == 403
    assert "s3cret" not in str(caught.value)


def test_rbac_vault_honours_secrets_officer_and_user_roles_only(local_azure, azure_clients, fresh_name):
    _group(azure_clients, fresh_name)
    officer_sp, officer = _principal(local_azure, fresh_name + "-officer")
    user_sp, user = _principal(local_azure, fresh_name + "-user")
    kv = local_azure.clients().keyvault
    vault = kv.vaults.begin_create_or_update(fresh_name, _vault_name(fresh_name), _vault(
        local_azure, object_ids=[local_azure.endpoint.object_id], rbac=True)).result()
    _assign(azure_clients, vault.id, SECRETS_OFFICER, officer_sp["objectId"])
    _assign(azure_clients, vault.id, SECRETS_USER, user_sp["objectId"])
    uri = vault.properties.vault_uri

    officer.secret_client(uri).set_secret("api-key", "value-1")
    assert user.secret_client(uri).get_secret("api-key").value == "value-1"
    with pytest.raises(HttpResponseError) as caught:
        user.secret_client(uri).set_secret("api-key", "value-2")
    assert caught.value.status_code == 403
    # Owner of the subscription has no data actions: with RBAC the access policy no longer counts either.
    with pytest.raises(HttpResponseError) as caught:
        local_azure.clients().secret_client(uri).get_secret("api-key")
    assert caught.value.status_code == 403

    role = azure_clients.authorization.role_definitions.get_by_id(
        f"/providers/Microsoft.Authorization/roleDefinitions/{SECRETS_USER}")
    assert role.role_name == "Key Vault Secrets User"
    assert "Microsoft.KeyVault/vaults/secrets/getSecret/action" in role.permissions[0].data_actions


def test_secret_soft_delete_recover_and_purge(local_azure, azure_clients, fresh_name):
    _group(azure_clients, fresh_name)
    kv = local_azure.clients().keyvault
    vault = kv.vaults.begin_create_or_update(fresh_name, _vault_name(fresh_name), _vault(
        local_azure, object_ids=[local_azure.endpoint.object_id])).result()
    secrets = local_azure.clients().secret_client(vault.properties.vault_uri)
    secrets.set_secret("token", "t-1")

    deleted = secrets.begin_delete_secret("token").result()
    assert deleted.recovery_id.endswith("/deletedsecrets/token") and deleted.scheduled_purge_date
    with pytest.raises(ResourceNotFoundError):
        secrets.get_secret("token")
    assert [d.name for d in secrets.list_deleted_secrets()] == ["token"]
    with pytest.raises(HttpResponseError) as caught:
        secrets.set_secret("token", "t-2")
    assert caught.value.status_code == 409

    secrets.begin_recover_deleted_secret("token").result()
    assert secrets.get_secret("token").value == "t-1"
    secrets.begin_delete_secret("token").result()
    secrets.purge_deleted_secret("token")
    assert list(secrets.list_deleted_secrets()) == []
    assert secrets.set_secret("token", "t-3").value == "t-3"


def test_vault_soft_delete_keeps_the_name_until_recovered_or_purged(local_azure, azure_clients, fresh_name):
    _group(azure_clients, fresh_name)
    kv = local_azure.clients().keyvault
    name = _vault_name(fresh_name)
    admin = [local_azure.endpoint.object_id]
    vault = kv.vaults.begin_create_or_update(fresh_name, name, _vault(local_azure, object_ids=admin)).result()
    local_azure.clients().secret_client(vault.properties.vault_uri).set_secret("kept", "across-recovery")

    kv.vaults.delete(fresh_name, name)
    with pytest.raises(ResourceNotFoundError):
        kv.vaults.get(fresh_name, name)
    deleted = kv.vaults.get_deleted(name, "eastus")
    assert deleted.properties.vault_id == vault.id and deleted.properties.scheduled_purge_date
    assert name in {d.name for d in kv.vaults.list_deleted()}
    assert kv.vaults.check_name_availability({"name": name, "type": "Microsoft.KeyVault/vaults"}).name_available \
        is False
    with pytest.raises(HttpResponseError) as caught:
        kv.vaults.begin_create_or_update(fresh_name, name, _vault(local_azure, object_ids=admin))
    assert caught.value.status_code == 409

    recovered = kv.vaults.begin_create_or_update(fresh_name, name, _vault(
        local_azure, object_ids=admin, create_mode="recover")).result()
    assert recovered.properties.provisioning_state == "Succeeded"
    recovered_secrets = local_azure.clients().secret_client(recovered.properties.vault_uri)
    assert recovered_secrets.get_secret("kept").value == "across-recovery"
    assert name not in {d.name for d in kv.vaults.list_deleted()}

    kv.vaults.delete(fresh_name, name)
    kv.vaults.begin_purge_deleted(name, "eastus").result()
    with pytest.raises(ResourceNotFoundError):
        kv.vaults.get_deleted(name, "eastus")
    assert kv.vaults.check_name_availability({"name": name, "type": "Microsoft.KeyVault/vaults"}).name_available


def test_purge_protection_refuses_purges(local_azure, azure_clients, fresh_name):
    _group(azure_clients, fresh_name)
    kv = local_azure.clients().keyvault
    name = _vault_name(fresh_name)
    vault = kv.vaults.begin_create_or_update(fresh_name, name, _vault(
        local_azure, object_ids=[local_azure.endpoint.object_id], purge_protection=True)).result()
    secrets = local_azure.clients().secret_client(vault.properties.vault_uri)
    secrets.set_secret("pinned", "v")
    secrets.begin_delete_secret("pinned").result()
    with pytest.raises(HttpResponseError) as caught:
        secrets.purge_deleted_secret("pinned")
    assert caught.value.status_code == 403
    with pytest.raises(HttpResponseError) as caught:
        kv.vaults.update(fresh_name, name, {"properties": {"enablePurgeProtection": False}})
    assert caught.value.status_code == 400

    kv.vaults.delete(fresh_name, name)
    with pytest.raises(HttpResponseError) as caught:
        kv.vaults.begin_purge_deleted(name, "eastus").result()
    assert caught.value.status_code == 409
    assert kv.vaults.get_deleted(name, "eastus").properties.purge_protection_enabled is True


def test_contributor_on_one_group_cannot_create_vaults_in_another(local_azure, azure_clients, fresh_name):
    mine = _group(azure_clients, fresh_name + "-a")
    _group(azure_clients, fresh_name + "-b")
    sp, principal_clients = _principal(local_azure, fresh_name)
    _assign(azure_clients, mine.id, CONTRIBUTOR, sp["objectId"])
    kv = principal_clients.keyvault
    name = _vault_name(fresh_name)

    assert kv.vaults.begin_create_or_update(fresh_name + "-a", name, _vault(local_azure)).result().name == name
    with pytest.raises(HttpResponseError) as caught:
        kv.vaults.begin_create_or_update(fresh_name + "-b", name + "b", _vault(local_azure))
    assert caught.value.status_code == 403 and caught.value.error.code == "AuthorizationFailed"
    assert [v.name for v in kv.vaults.list_by_subscription()] == [name]


def test_group_deletion_soft_deletes_vaults_and_vaults_survive_a_restart(local_azure, azure_clients, fresh_name):
    _group(azure_clients, fresh_name)
    _group(azure_clients, fresh_name + "-gone")
    kv = local_azure.clients().keyvault
    admin = [local_azure.endpoint.object_id]
    kept, gone = _vault_name(fresh_name), _vault_name(fresh_name) + "-g"
    vault = kv.vaults.begin_create_or_update(fresh_name, kept, _vault(local_azure, object_ids=admin)).result()
    kv.vaults.begin_create_or_update(fresh_name + "-gone", gone, _vault(local_azure, object_ids=admin)).result()
    local_azure.clients().secret_client(vault.properties.vault_uri).set_secret("persisted", "still-here")

    azure_clients.resource.resource_groups.begin_delete(fresh_name + "-gone").result()
    assert kv.vaults.get_deleted(gone, "eastus").properties.vault_id.endswith(f"/vaults/{gone}")

    local_azure.restart()
    kv = local_azure.clients().keyvault
    after = kv.vaults.get(fresh_name, kept)
    assert after.properties.vault_uri == vault.properties.vault_uri
    assert local_azure.clients().secret_client(after.properties.vault_uri).get_secret("persisted").value == "still-here"
    assert gone in {d.name for d in kv.vaults.list_deleted()}
