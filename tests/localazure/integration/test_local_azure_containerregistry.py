"""Microsoft.ContainerRegistry/registries through the real azure-mgmt-containerregistry client."""

from __future__ import annotations

import uuid

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

pytestmark = pytest.mark.emulator

CONTRIBUTOR = "b24988ac-6180-42a0-ab88-20f7382dd24c"
ACR_PULL = "7f951dda-4ed3-4680-a7ca-43fe172d538d"
ACR_PUSH = "8311e382-0749-4cb8-b61a-304f252e45ec"


def _group(azure_clients, name):
    return azure_clients.resource.resource_groups.create_or_update(name, {"location": "eastus"})


def _registry_name(fresh_name):
    return "acr" + fresh_name.replace("-", "")


def _registry(sku="Basic", admin=False, **properties):
    return {"location": "eastus", "sku": {"name": sku}, "tags": {"owner": "fleetflow"},
            "properties": {"adminUserEnabled": admin, **properties}}


def test_create_is_long_running_and_get_list_update_delete(local_azure, azure_clients, fresh_name):
    group = _group(azure_clients, fresh_name)
    acr = local_azure.clients().registry
    name = _registry_name(fresh_name) + "Mixed"

    poller = acr.registries.begin_create(fresh_name, name, _registry("Standard"))
    assert poller.polling_method()._initial_response.http_response.status_code == 201
    assert "Azure-AsyncOperation" in poller.polling_method()._initial_response.http_response.headers
    created = poller.result()
    assert created.provisioning_state == "Succeeded"
    assert created.login_server == f"{name.lower()}.azurecr.io"
    assert created.sku.name == "Standard" and created.sku.tier == "Standard"
    assert created.admin_user_enabled is False
    assert created.policies.retention_policy.status == "disabled"
    assert created.id == f"{group.id}/providers/Microsoft.ContainerRegistry/registries/{name}"

    assert acr.registries.get(fresh_name, name).tags == {"owner": "fleetflow"}
    assert [r.name for r in acr.registries.list_by_resource_group(fresh_name)] == [name]
    assert name in {r.name for r in acr.registries.list()}

    updated = acr.registries.begin_update(fresh_name, name, {
        "sku": {"name": "Premium"}, "properties": {"policies": {"retentionPolicy": {"days": 30,
                                                                                   "status": "enabled"}}},
    }).result()
    assert updated.sku.name == "Premium"
    assert updated.policies.retention_policy.days == 30 and updated.policies.retention_policy.status == "enabled"
    assert updated.policies.export_policy.status == "enabled"

    acr.registries.begin_delete(fresh_name, name).result()
    with pytest.raises(ResourceNotFoundError):
        acr.registries.get(fresh_name, name)
    acr.registries.begin_delete(fresh_name, name).result()  # deleting what is gone is fine


def test_name_rules_and_global_uniqueness(local_azure, azure_clients, fresh_name):
    _group(azure_clients, fresh_name)
    _group(azure_clients, fresh_name + "-other")
    acr = local_azure.clients().registry
    name = _registry_name(fresh_name)

    def check(candidate):
        return acr.registries.check_name_availability(
            {"name": candidate, "type": "Microsoft.ContainerRegistry/registries"})

    assert check(name).name_available is True
    assert check("abc").reason == "Invalid"
    assert check("has-dash1").name_available is False
    acr.registries.begin_create(fresh_name, name, _registry()).result()
    taken = check(name.upper())
    assert taken.name_available is False and taken.reason == "AlreadyExists"
    with pytest.raises(HttpResponseError) as caught:
        acr.registries.begin_create(fresh_name + "-other", name, _registry())
    assert caught.value.status_code == 409
    with pytest.raises(HttpResponseError) as caught:
        acr.registries.begin_create(fresh_name, "bad-name", _registry())
    assert caught.value.status_code == 400
    with pytest.raises(HttpResponseError) as caught:
        acr.registries.begin_create(fresh_name, name + "x", _registry(sku="Gold"))
    assert caught.value.status_code == 400


def test_admin_credentials_only_while_the_admin_user_is_enabled(local_azure, azure_clients, fresh_name):
    _group(azure_clients, fresh_name)
    acr = local_azure.clients().registry
    name = _registry_name(fresh_name)
    acr.registries.begin_create(fresh_name, name, _registry()).result()

    with pytest.raises(HttpResponseError) as caught:
        acr.registries.list_credentials(fresh_name, name)
    assert caught.value.status_code == 400

    acr.registries.begin_update(fresh_name, name, {"properties": {"adminUserEnabled": True}}).result()
    credentials = acr.registries.list_credentials(fresh_name, name)
    assert credentials.username == name
    first = {p.name: p.value for p in credentials.passwords}
    assert set(first) == {"password", "password2"} and first["password"] != first["password2"]
    assert acr.registries.list_credentials(fresh_name, name).passwords[0].value == first["password"]

    regenerated = acr.registries.regenerate_credential(fresh_name, name, {"name": "password2"})
    second = {p.name: p.value for p in regenerated.passwords}
    assert second["password"] == first["password"] and second["password2"] != first["password2"]


def test_contributor_on_one_group_cannot_create_in_another_and_acr_roles_exist(
    local_azure, azure_clients, fresh_name
):
    mine = _group(azure_clients, fresh_name + "-a")
    _group(azure_clients, fresh_name + "-b")
    sp = local_azure.azure.create_service_principal(fresh_name)
    azure_clients.authorization.role_assignments.create(mine.id, str(uuid.uuid4()), {
        "role_definition_id": f"{mine.id.split('/resourceGroups')[0]}/providers/Microsoft.Authorization/"
                              f"roleDefinitions/{CONTRIBUTOR}",
        "principal_id": sp["objectId"], "principal_type": "ServicePrincipal"})
    acr = local_azure.clients(sp["appId"], sp["password"]).registry
    name = _registry_name(fresh_name)

    assert acr.registries.begin_create(fresh_name + "-a", name, _registry()).result().provisioning_state == "Succeeded"
    with pytest.raises(HttpResponseError) as caught:
        acr.registries.begin_create(fresh_name + "-b", name + "b", _registry())
    assert caught.value.status_code == 403 and caught.value.error.code == "AuthorizationFailed"
    assert [r.name for r in acr.registries.list()] == [name]

    definitions = azure_clients.authorization.role_definitions
    pull = definitions.get_by_id(f"/providers/Microsoft.Authorization/roleDefinitions/{ACR_PULL}")
    push = definitions.get_by_id(f"/providers/Microsoft.Authorization/roleDefinitions/{ACR_PUSH}")
    assert pull.role_name == "AcrPull"
    assert pull.permissions[0].actions == ["Microsoft.ContainerRegistry/registries/pull/read"]
    assert push.role_name == "AcrPush"
    assert "Microsoft.ContainerRegistry/registries/push/write" in push.permissions[0].actions


def test_registries_go_with_their_group_and_survive_a_restart(local_azure, azure_clients, fresh_name):
    _group(azure_clients, fresh_name)
    _group(azure_clients, fresh_name + "-gone")
    acr = local_azure.clients().registry
    kept, gone = _registry_name(fresh_name), _registry_name(fresh_name) + "gone"
    acr.registries.begin_create(fresh_name, kept, _registry(admin=True)).result()
    acr.registries.begin_create(fresh_name + "-gone", gone, _registry()).result()
    password = acr.registries.list_credentials(fresh_name, kept).passwords[0].value

    azure_clients.resource.resource_groups.begin_delete(fresh_name + "-gone").result()
    assert acr.registries.check_name_availability(
        {"name": gone, "type": "Microsoft.ContainerRegistry/registries"}).name_available is True

    local_azure.restart()
    acr = local_azure.clients().registry
    assert acr.registries.get(fresh_name, kept).login_server == f"{kept}.azurecr.io"
    assert acr.registries.list_credentials(fresh_name, kept).passwords[0].value == password


def test_fail_rules_apply_to_registry_operations(local_azure, azure_clients, fresh_name, knobs_restored):
    _group(azure_clients, fresh_name)
    acr = local_azure.clients().registry
    name = _registry_name(fresh_name)
    knobs_restored.set_knobs(fail=[f"acr.create:{name}"])

    with pytest.raises(HttpResponseError) as caught:
        acr.registries.begin_create(fresh_name, name, _registry()).result()
    assert "InjectedFailure" in str(caught.value)
    assert acr.registries.get(fresh_name, name).provisioning_state == "Failed"
    knobs_restored.set_knobs(fail=[])
    assert acr.registries.begin_create(fresh_name, name, _registry()).result().provisioning_state == "Succeeded"
