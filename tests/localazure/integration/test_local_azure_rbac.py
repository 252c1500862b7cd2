"""Role-based access control: what a service principal may do depends on its role assignments."""

from __future__ import annotations

import uuid

import pytest
from azure.core.exceptions import HttpResponseError

pytestmark = pytest.mark.emulator

OWNER = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635"
CONTRIBUTOR = "b24988ac-6180-42a0-ab88-20f7382dd24c"
READER = "acdd72a7-3385-48ef-bd42-f606fba81ae7"


def _sp_clients(local_azure, name):
    sp = local_azure.azure.create_service_principal(name)
    return sp, local_azure.clients(sp["appId"], sp["password"])


def _assign(azure_clients, scope, role_guid, principal_id):
    sub = scope.split("/")[2]
    return azure_clients.authorization.role_assignments.create(scope, str(uuid.uuid4()), {
        "role_definition_id": f"/subscriptions/{sub}/providers/Microsoft.Authorization/roleDefinitions/{role_guid}",
        "principal_id": principal_id, "principal_type": "ServicePrincipal",
    })


def test_principal_without_role_gets_403_authorization_failed_naming_client_and_scope(local_azure, fresh_name):
    sp, clients = _sp_clients(local_azure, fresh_name)
    with pytest.raises(HttpResponseError) as caught:
        clients.resource.resource_groups.create_or_update(fresh_name, {"location": "eastus"})
    assert caught.value.status_code == 403
    assert caught.value.error.code == "AuthorizationFailed"
    assert sp["appId"] in caught.value.error.message
    assert sp["objectId"] in caught.value.error.message
    assert f"/resourceGroups/{fresh_name}" in caught.value.error.message


def test_contributor_on_a_group_may_create_clusters_there_but_not_in_another_group(
    local_azure, azure_clients, fresh_name
):
    groups = azure_clients.resource.resource_groups
    allowed = groups.create_or_update(fresh_name + "-a", {"location": "eastus"})
    groups.create_or_update(fresh_name + "-b", {"location": "eastus"})
    sp, clients = _sp_clients(local_azure, fresh_name)
    _assign(azure_clients, allowed.id, CONTRIBUTOR, sp["objectId"])
    cluster = {"location": "eastus", "properties": {"dnsPrefix": "x", "agentPoolProfiles": [{"name": "np1"}]}}

    created = clients.containerservice.managed_clusters.begin_create_or_update(
        fresh_name + "-a", "mine", cluster).result()
    assert created.provisioning_state == "Succeeded"
    with pytest.raises(HttpResponseError) as caught:
        clients.containerservice.managed_clusters.begin_create_or_update(fresh_name + "-b", "theirs", cluster)
    assert caught.value.status_code == 403
    assert caught.value.error.code == "AuthorizationFailed"
    # Reads are scoped too: the subscription-wide list shows only the group it may read.
    assert {g.name for g in clients.resource.resource_groups.list()} == {fresh_name + "-a"}


def test_contributor_may_not_create_role_assignments_but_owner_may(local_azure, azure_clients, fresh_name):
    group = azure_clients.resource.resource_groups.create_or_update(fresh_name, {"location": "eastus"})
    contributor, contributor_clients = _sp_clients(local_azure, fresh_name + "-c")
    owner, owner_clients = _sp_clients(local_azure, fresh_name + "-o")
    target, _ = _sp_clients(local_azure, fresh_name + "-t")
    _assign(azure_clients, group.id, CONTRIBUTOR, contributor["objectId"])
    _assign(azure_clients, group.id, OWNER, owner["objectId"])

    with pytest.raises(HttpResponseError) as caught:
        _assign(contributor_clients, group.id, READER, target["objectId"])
    assert caught.value.status_code == 403
    assert "Microsoft.Authorization/roleAssignments/write" in caught.value.error.message
    created = _assign(owner_clients, group.id, READER, target["objectId"])
    assert created.principal_id == target["objectId"]


def test_reader_may_read_but_not_write(local_azure, azure_clients, fresh_name):
    group = azure_clients.resource.resource_groups.create_or_update(fresh_name, {"location": "eastus"})
    sp, clients = _sp_clients(local_azure, fresh_name)
    _assign(azure_clients, group.id, READER, sp["objectId"])
    assert clients.resource.resource_groups.get(fresh_name).name == fresh_name
    with pytest.raises(HttpResponseError) as caught:
        clients.resource.resource_groups.update(fresh_name, {"tags": {"x": "y"}})
    assert caught.value.status_code == 403


def test_role_assignments_list_by_principal_and_at_scope(local_azure, azure_clients, fresh_name):
    group = azure_clients.resource.resource_groups.create_or_update(fresh_name, {"location": "eastus"})
    sp, _ = _sp_clients(local_azure, fresh_name)
    assignment = _assign(azure_clients, group.id, CONTRIBUTOR, sp["objectId"])
    assignments = azure_clients.authorization.role_assignments

    by_principal = list(assignments.list_for_subscription(filter=f"principalId eq '{sp['objectId']}'"))
    assert [a.id for a in by_principal] == [assignment.id]
    assert by_principal[0].scope == group.id
    at_group = {a.id for a in assignments.list_for_resource_group(fresh_name, filter="atScope()")}
    assert assignment.id in at_group
    at_subscription = {a.id for a in assignments.list_for_scope(
        f"/subscriptions/{local_azure.endpoint.subscription_id}", filter="atScope()")}
    assert assignment.id not in at_subscription

    assignments.delete(group.id, assignment.name)
    assert list(assignments.list_for_subscription(filter=f"principalId eq '{sp['objectId']}'")) == []


def test_built_in_role_definitions_are_readable_by_id_and_name(azure_clients, local_azure):
    scope = f"/subscriptions/{local_azure.endpoint.subscription_id}"
    definitions = azure_clients.authorization.role_definitions
    assert definitions.get(scope, OWNER).role_name == "Owner"
    contributor = list(definitions.list(scope, filter="roleName eq 'Contributor'"))
    assert [d.name for d in contributor] == [CONTRIBUTOR]
    assert definitions.get(scope, READER).permissions[0].actions == ["*/read"]


def test_a_grant_on_a_group_does_not_reach_a_group_whose_name_it_prefixes(local_azure, azure_clients, fresh_name):
    # Scopes are compared segment by segment: Contributor on "<name>-app-a" says nothing about "<name>-app-ab".
    groups = azure_clients.resource.resource_groups
    granted = groups.create_or_update(fresh_name + "-app-a", {"location": "eastus"})
    groups.create_or_update(fresh_name + "-app-ab", {"location": "eastus"})
    sp, clients = _sp_clients(local_azure, fresh_name)
    _assign(azure_clients, granted.id, CONTRIBUTOR, sp["objectId"])
    cluster = {"location": "eastus", "properties": {"dnsPrefix": "x", "agentPoolProfiles": [{"name": "np1"}]}}

    assert clients.resource.resource_groups.get(fresh_name + "-app-a").name == fresh_name + "-app-a"
    for attempt in (
        lambda: clients.resource.resource_groups.get(fresh_name + "-app-ab"),
        lambda: clients.resource.resource_groups.update(fresh_name + "-app-ab", {"tags": {"x": "y"}}),
        lambda: clients.containerservice.managed_clusters.begin_create_or_update(fresh_name + "-app-ab", "theirs",
                                                                                  cluster),
    ):
        with pytest.raises(HttpResponseError) as caught:
            attempt()
        assert caught.value.status_code == 403, caught.value
        assert caught.value.error.code == "AuthorizationFailed"
        assert f"/resourceGroups/{fresh_name}-app-ab" in caught.value.error.message
    assert {g.name for g in clients.resource.resource_groups.list()} == {fresh_name + "-app-a"}
