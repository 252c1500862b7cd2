"""Fleet auto-upgrade profiles' generateUpdateRun through azure-mgmt-containerservicefleet (ARM-only clusters)."""

from __future__ import annotations

import time
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError
from azure.mgmt.containerservicefleet import ContainerServiceFleetMgmtClient

pytestmark = pytest.mark.emulator

OLD, NEWEST = "1.36.3", "1.37.2"  # ARM-only versions: 1.35.6, 1.36.3, 1.37.2


def _fleet_client(local_azure: Any, api_version: str | None = None) -> ContainerServiceFleetMgmtClient:
    options: dict[str, Any] = {"api_version": api_version} if api_version else {}
    return local_azure.clients(**options).fleet


@pytest.fixture
def fleet(local_azure: Any, azure_clients: Any, fresh_name: str) -> Any:
    """A fleet with two ARM-only clusters at 1.36.3, members of update groups `test` and `prod`."""
    client = _fleet_client(local_azure)
    azure_clients.resource.resource_groups.create_or_update(fresh_name, {"location": "eastus"})
    client.fleets.begin_create_or_update(fresh_name, "fleet", {"location": "eastus"}).result()
    aks = azure_clients.containerservice.managed_clusters
    pollers = {name: aks.begin_create_or_update(fresh_name, name, {"location": "eastus", "properties": {
        "kubernetesVersion": OLD, "dnsPrefix": name,
        "agentPoolProfiles": [{"name": "nodepool1", "count": 1, "mode": "System"}]}}) for name in ("test", "prod")}
    for name, poller in pollers.items():
        client.fleet_members.begin_create(fresh_name, "fleet", name, {
            "properties": {"clusterResourceId": poller.result().id, "group": name}}).result()
    client.fleet_update_strategies.begin_create_or_update(fresh_name, "fleet", "two-stages", {"properties": {
        "strategy": {"stages": [{"name": "first", "groups": [{"name": "test"}]},
                                {"name": "second", "groups": [{"name": "prod"}]}]}}}).result()
    yield fresh_name
    azure_clients.resource.resource_groups.begin_delete(fresh_name)


def _profile(client: Any, group: str, name: str, properties: dict[str, Any]) -> Any:
    return client.auto_upgrade_profiles.begin_create_or_update(group, "fleet", name,
                                                               {"properties": properties}).result()


def test_generate_update_run_gives_the_run_a_stable_profile_would_start(local_azure, fleet):
    client = _fleet_client(local_azure, api_version="2025-03-01")  # the first version with generateUpdateRun
    strategy_id = client.fleet_update_strategies.get(fleet, "fleet", "two-stages").id
    profile = _profile(client, fleet, "stable", {"channel": "Stable", "updateStrategyId": strategy_id,
                                                 "nodeImageSelection": {"type": "Consistent"}})
    generated = client.auto_upgrade_profile_operations.begin_generate_update_run(fleet, "fleet", "stable").result()
    assert generated.id.lower().startswith(f"{profile.id.rsplit('/autoUpgradeProfiles/', 1)[0]}/updateRuns/".lower())
    run = client.update_runs.get(fleet, "fleet", generated.id.rsplit("/", 1)[1])
    assert run.id == generated.id and run.properties.provisioning_state == "Succeeded"
    assert run.properties.auto_upgrade_profile_id == profile.id
    assert run.properties.update_strategy_id == strategy_id
    update = run.properties.managed_cluster_update
    # Stable: the latest patch of the minor before the newest (1.37 is the newest offered).
    assert (update.upgrade.type, update.upgrade.kubernetes_version) == ("Full", "1.36.3")
    assert update.node_image_selection.type == "Consistent"
    assert run.properties.status.status.state == "NotStarted"
    assert [[g.name for g in s.groups] for s in run.properties.status.stages] == [["test"], ["prod"]]


def test_generated_rapid_run_starts_and_upgrades_every_member_to_the_newest_version(local_azure, azure_clients,
                                                                                     fleet):
    client = _fleet_client(local_azure)
    _profile(client, fleet, "rapid", {"channel": "Rapid"})
    generated = client.auto_upgrade_profile_operations.begin_generate_update_run(fleet, "fleet", "rapid").result()
    name = generated.id.rsplit("/", 1)[1]
    assert client.update_runs.get(fleet, "fleet", name).properties.managed_cluster_update.upgrade.kubernetes_version \
        == NEWEST
    client.update_runs.begin_start(fleet, "fleet", name).result()
    deadline = time.monotonic() + 60
    while client.update_runs.get(fleet, "fleet", name).properties.status.status.state != "Completed":
        assert time.monotonic() < deadline, "the generated run did not complete"
        time.sleep(0.1)
    aks = azure_clients.containerservice.managed_clusters
    assert {aks.get(fleet, n).current_kubernetes_version for n in ("test", "prod")} == {NEWEST}


def test_node_image_and_target_version_channels_and_refusals(local_azure, fleet):
    client = _fleet_client(local_azure)
    _profile(client, fleet, "images", {"channel": "NodeImage"})
    run_id = client.auto_upgrade_profile_operations.begin_generate_update_run(fleet, "fleet", "images").result().id
    upgrade = client.update_runs.get(fleet, "fleet", run_id.rsplit("/", 1)[1]).properties.managed_cluster_update.upgrade
    assert (upgrade.type, upgrade.kubernetes_version) == ("NodeImageOnly", None)

    _profile(client, fleet, "pinned", {"channel": "TargetKubernetesVersion", "targetKubernetesVersion": "1.35"})
    run_id = client.auto_upgrade_profile_operations.begin_generate_update_run(fleet, "fleet", "pinned").result().id
    upgrade = client.update_runs.get(fleet, "fleet", run_id.rsplit("/", 1)[1]).properties.managed_cluster_update.upgrade
    assert upgrade.kubernetes_version == "1.35.6"

    _profile(client, fleet, "unknown", {"channel": "TargetKubernetesVersion", "targetKubernetesVersion": "1.99"})
    with pytest.raises(HttpResponseError) as refused:
        client.auto_upgrade_profile_operations.begin_generate_update_run(fleet, "fleet", "unknown").result()
    assert refused.value.status_code == 400 and "1.99" in refused.value.message
    with pytest.raises(HttpResponseError) as absent:
        client.auto_upgrade_profile_operations.begin_generate_update_run(fleet, "fleet", "absent").result()
    assert absent.value.status_code == 404
