"""State survives emulator restarts; operations cut off by a stop end Failed, never silently Succeeded."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from azure.core.exceptions import HttpResponseError

pytestmark = pytest.mark.emulator

CONTRIBUTOR = "b24988ac-6180-42a0-ab88-20f7382dd24c"


def _cluster(location="eastus"):
    return {"location": location,
            "properties": {"dnsPrefix": "p", "agentPoolProfiles": [{"name": "nodepool1", "count": 1}]}}


def test_groups_clusters_principals_assignments_and_ca_survive_a_restart(local_azure, azure_clients, fresh_name):
    group = azure_clients.resource.resource_groups.create_or_update(fresh_name, {"location": "eastus"})
    azure_clients.containerservice.managed_clusters.begin_create_or_update(fresh_name, "kept", _cluster()).result()
    sp = local_azure.azure.create_service_principal(fresh_name)
    azure_clients.authorization.role_assignments.create(group.id, str(uuid.uuid4()), {
        "role_definition_id": f"/subscriptions/{local_azure.endpoint.subscription_id}/providers/"
                              f"Microsoft.Authorization/roleDefinitions/{CONTRIBUTOR}",
        "principal_id": sp["objectId"]})
    before = local_azure.endpoint
    ca_before = Path(before.ca_bundle).read_bytes()

    local_azure.restart()

    after = local_azure.endpoint
    assert after.pid != before.pid
    assert (after.port, after.tenant_id, after.subscription_id) == (before.port, before.tenant_id,
                                                                     before.subscription_id)
    assert Path(after.ca_bundle).read_bytes() == ca_before
    sp_clients = local_azure.clients(sp["appId"], sp["password"])
    assert sp_clients.resource.resource_groups.get(fresh_name).id == group.id
    kept = sp_clients.containerservice.managed_clusters.get(fresh_name, "kept")
    assert kept.provisioning_state == "Succeeded"


@pytest.mark.parametrize("crash", [False, True], ids=["graceful-stop", "killed"])
def test_cluster_create_cut_off_by_a_restart_ends_failed(local_azure, fresh_name, crash):
    clients = local_azure.clients()
    clients.resource.resource_groups.create_or_update(fresh_name, {"location": "eastus"})
    local_azure.azure.set_knobs(latency={"aks.create": 600_000})  # 10 minutes at the session time scale
    poller = clients.containerservice.managed_clusters.begin_create_or_update(fresh_name, "cut", _cluster())
    token = poller.continuation_token()

    local_azure.restart(crash=crash)  # the restart also puts the session knobs back

    clients = local_azure.clients()
    resumed = clients.containerservice.managed_clusters.begin_create_or_update(
        fresh_name, "cut", None, continuation_token=token)
    with pytest.raises(HttpResponseError) as caught:
        resumed.result()
    assert "interrupted" in str(caught.value)
    cluster = clients.containerservice.managed_clusters.get(fresh_name, "cut")
    assert cluster.provisioning_state == "Failed"
    # A failed cluster can be fixed by PUTting it again, as on Azure.
    retried = clients.containerservice.managed_clusters.begin_create_or_update(fresh_name, "cut", _cluster())
    assert retried.result().provisioning_state == "Succeeded"


def _fleet_client(local_azure):

    return local_azure.clients().fleet


def _fail_message(poller) -> str:
    with pytest.raises(HttpResponseError) as caught:
        poller.result()
    return str(caught.value)


@pytest.mark.parametrize("crash", [False, True], ids=["graceful-stop", "killed"])
def test_fleet_writes_cut_off_by_a_restart_end_failed_and_a_reput_converges(local_azure, fresh_name, crash):
    # Every Fleet resource type is treated as AKS treats clusters: the operation and the resource end Failed
    # with an error the client reads, and a re-PUT converges.
    clients = local_azure.clients()
    clients.resource.resource_groups.create_or_update(fresh_name, {"location": "eastus"})
    fleets = _fleet_client(local_azure)
    cluster = clients.containerservice.managed_clusters.begin_create_or_update(fresh_name, "m1", _cluster()).result()
    joining = clients.containerservice.managed_clusters.begin_create_or_update(fresh_name, "m2", _cluster()).result()
    fleets.fleets.begin_create_or_update(fresh_name, "ready", {"location": "eastus"}).result()
    fleets.fleet_members.begin_create(fresh_name, "ready", "m1", {
        "properties": {"clusterResourceId": cluster.id, "group": "g"}}).result()

    long = 600_000  # 10 minutes at the session time scale: the restart lands mid-operation
    local_azure.azure.set_knobs(latency={"fleet.create": long, "fleet.member.create": long,
                                         "fleet.strategy.write": long, "fleet.updaterun.write": long})
    strategy = {"stages": [{"name": "s", "groups": [{"name": "g"}]}]}
    upgrade = {"upgrade": {"type": "Full", "kubernetesVersion": "1.37.2"}}
    tokens = {
        "fleet": fleets.fleets.begin_create_or_update(fresh_name, "cut", {"location": "eastus"}),
        "member": fleets.fleet_members.begin_create(fresh_name, "ready", "m2", {
            "properties": {"clusterResourceId": joining.id, "group": "g"}}),
        "strategy": fleets.fleet_update_strategies.begin_create_or_update(
            fresh_name, "ready", "st", {"properties": {"strategy": strategy}}),
        "run": fleets.update_runs.begin_create_or_update(fresh_name, "ready", "run", {
            "properties": {"strategy": strategy, "managedClusterUpdate": upgrade}}),
    }
    tokens = {kind: poller.continuation_token() for kind, poller in tokens.items()}

    local_azure.restart(crash=crash)

    fleets = _fleet_client(local_azure)
    resumed = {
        "fleet": fleets.fleets.begin_create_or_update(fresh_name, "cut", None, continuation_token=tokens["fleet"]),
        "member": fleets.fleet_members.begin_create(fresh_name, "ready", "m2", None,
                                                     continuation_token=tokens["member"]),
        "strategy": fleets.fleet_update_strategies.begin_create_or_update(
            fresh_name, "ready", "st", None, continuation_token=tokens["strategy"]),
        "run": fleets.update_runs.begin_create_or_update(fresh_name, "ready", "run", None,
                                                          continuation_token=tokens["run"]),
    }
    for kind, poller in resumed.items():
        assert "interrupted" in _fail_message(poller), kind

    fleet = fleets.fleets.get(fresh_name, "cut")
    member = fleets.fleet_members.get(fresh_name, "ready", "m2")
    assert fleet.provisioning_state == "Failed"
    assert "interrupted" in fleet.status.last_operation_error.message
    assert member.provisioning_state == "Failed"
    assert "interrupted" in member.status.last_operation_error.message
    assert fleets.fleet_update_strategies.get(fresh_name, "ready", "st").provisioning_state == "Failed"
    assert fleets.update_runs.get(fresh_name, "ready", "run").provisioning_state == "Failed"

    # A re-PUT of each converges, as on Azure.
    assert fleets.fleets.begin_create_or_update(fresh_name, "cut", {"location": "eastus"}).result() \
        .provisioning_state == "Succeeded"
    assert fleets.fleet_members.begin_create(fresh_name, "ready", "m2", {
        "properties": {"clusterResourceId": joining.id, "group": "g"}}).result().provisioning_state == "Succeeded"
    assert fleets.fleet_update_strategies.begin_create_or_update(
        fresh_name, "ready", "st", {"properties": {"strategy": strategy}}).result().provisioning_state == "Succeeded"
    assert fleets.update_runs.begin_create_or_update(fresh_name, "ready", "run", {
        "properties": {"strategy": strategy, "managedClusterUpdate": upgrade}}).result() \
        .provisioning_state == "Succeeded"


def test_fleet_and_group_deletes_cut_off_by_a_crash_leave_them_deletable(local_azure, fresh_name):
    clients = local_azure.clients()
    clients.resource.resource_groups.create_or_update(fresh_name, {"location": "eastus"})
    fleets = _fleet_client(local_azure)
    fleets.fleets.begin_create_or_update(fresh_name, "gone", {"location": "eastus"}).result()
    local_azure.azure.set_knobs(latency={"fleet.delete": 600_000})
    fleets.fleets.begin_delete(fresh_name, "gone")
    assert fleets.fleets.get(fresh_name, "gone").provisioning_state == "Deleting"

    local_azure.restart(crash=True)

    fleets = _fleet_client(local_azure)
    assert fleets.fleets.get(fresh_name, "gone").provisioning_state == "Failed"
    fleets.fleets.begin_delete(fresh_name, "gone").result()
    clients = local_azure.clients()
    local_azure.azure.set_knobs(latency={"group.delete": 600_000})
    clients.resource.resource_groups.begin_delete(fresh_name)
    local_azure.restart(crash=True)
    clients = local_azure.clients()
    # A group whose deletion was cut off is usable again (and can be deleted again).
    assert clients.resource.resource_groups.get(fresh_name).properties.provisioning_state == "Succeeded"
    clients.resource.resource_groups.begin_delete(fresh_name).result()
    assert not clients.resource.resource_groups.check_existence(fresh_name)
