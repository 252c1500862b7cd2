"""AKS managed clusters (ARM-only mode) through azure-mgmt-containerservice against local Azure."""

from __future__ import annotations

import pytest
from azure.core.exceptions import HttpResponseError

pytestmark = pytest.mark.emulator


def _cluster(location="eastus", version=None, count=2, **properties):
    props = {"dnsPrefix": "fleet", "agentPoolProfiles": [{"name": "nodepool1", "count": count,
                                                          "vmSize": "Standard_DS2_v2", "mode": "System"}]}
    if version:
        props["kubernetesVersion"] = version
    props.update(properties)
    return {"location": location, "identity": {"type": "SystemAssigned"}, "properties": props}


@pytest.fixture
def group(azure_clients, fresh_name):
    azure_clients.resource.resource_groups.create_or_update(fresh_name, {"location": "eastus"})
    return fresh_name


def _versions(azure_clients):
    listed = azure_clients.containerservice.managed_clusters.list_kubernetes_versions("eastus")
    return sorted((p for v in listed["values"] for p in v["patchVersions"]),
                  key=lambda s: tuple(int(x) for x in s.split(".")))


def test_create_polls_to_succeeded_and_fills_in_the_aks_computed_fields(azure_clients, group):
    aks = azure_clients.containerservice.managed_clusters
    oldest = _versions(azure_clients)[0]
    poller = aks.begin_create_or_update(group, "aks-east", _cluster(
        version=oldest, networkProfile={"networkPlugin": "azure", "networkPolicy": "calico"}))
    assert poller.status() == "InProgress"
    cluster = poller.result()

    assert cluster.provisioning_state == "Succeeded"
    assert cluster.current_kubernetes_version == oldest
    assert cluster.fqdn.endswith(".hcp.eastus.azmk8s.io")
    assert cluster.node_resource_group == f"MC_{group}_aks-east_eastus"
    assert cluster.identity.principal_id
    assert cluster.power_state.code == "Running"
    pool = cluster.agent_pool_profiles[0]
    assert pool.node_image_version.startswith("AKSUbuntu-")
    assert pool.current_orchestrator_version == oldest
    # Properties the emulator does not interpret round-trip unchanged.
    assert cluster.network_profile.network_policy == "calico"
    assert [c.name for c in aks.list_by_resource_group(group)] == ["aks-east"]
    assert "aks-east" in {c.name for c in aks.list()}
    assert [p.name for p in azure_clients.containerservice.agent_pools.list(group, "aks-east")] == ["nodepool1"]
    assert azure_clients.containerservice.agent_pools.get(group, "aks-east", "nodepool1").count == 2


def test_put_with_newer_version_upgrades_control_plane_and_pools(azure_clients, group):
    aks = azure_clients.containerservice.managed_clusters
    old, new = _versions(azure_clients)[:2]
    cluster = aks.begin_create_or_update(group, "aks-up", _cluster(version=old)).result()
    profile = aks.get_upgrade_profile(group, "aks-up")
    assert new in [u.kubernetes_version for u in profile.control_plane_profile.upgrades]

    cluster.kubernetes_version = new
    for pool in cluster.agent_pool_profiles:
        pool.orchestrator_version = new
    upgraded = aks.begin_create_or_update(group, "aks-up", cluster).result()

    assert upgraded.current_kubernetes_version == new
    assert upgraded.agent_pool_profiles[0].current_orchestrator_version == new
    assert upgraded.agent_pool_profiles[0].node_image_version != cluster.agent_pool_profiles[0].node_image_version


def test_node_image_upgrade_moves_the_pool_to_the_latest_image(azure_clients, group):
    cs = azure_clients.containerservice
    cs.managed_clusters.begin_create_or_update(group, "aks-img", _cluster()).result()
    before = cs.agent_pools.get(group, "aks-img", "nodepool1").node_image_version
    cs.agent_pools.begin_upgrade_node_image_version(group, "aks-img", "nodepool1").result()
    after = cs.agent_pools.get(group, "aks-img", "nodepool1").node_image_version
    assert after != before
    assert after == cs.agent_pools.get_upgrade_profile(group, "aks-img", "nodepool1").latest_node_image_version


def test_write_during_an_operation_is_409_another_operation_in_progress(azure_clients, group, knobs_restored):
    knobs_restored.set_knobs(latency={"aks.create": 3000})  # 3 s at the session's time scale
    aks = azure_clients.containerservice.managed_clusters
    poller = aks.begin_create_or_update(group, "aks-busy", _cluster())
    with pytest.raises(HttpResponseError) as caught:
        aks.begin_delete(group, "aks-busy")
    assert caught.value.status_code == 409
    assert caught.value.error.code == "OperationNotAllowed"
    assert "AnotherOperationInProgress" in str(caught.value)
    assert poller.result().provisioning_state == "Succeeded"


@pytest.mark.parametrize(("body", "prop"), [
    ({"properties": {"agentPoolProfiles": [{"name": "np1"}]}}, "location"),
    (_cluster(version="1.2.3"), "properties.kubernetesVersion"),
    (_cluster(count=0), "properties.agentPoolProfiles[0].count"),
])
def test_invalid_cluster_is_400_invalid_parameter_naming_the_property(azure_clients, group, body, prop):
    with pytest.raises(HttpResponseError) as caught:
        azure_clients.containerservice.managed_clusters.begin_create_or_update(group, "aks-bad", body)
    assert caught.value.status_code == 400
    assert caught.value.error.code == "InvalidParameter"
    assert prop in caught.value.error.message


def test_cluster_in_missing_group_is_404_resource_group_not_found(azure_clients, fresh_name):
    with pytest.raises(HttpResponseError) as caught:
        azure_clients.containerservice.managed_clusters.begin_create_or_update(fresh_name, "aks", _cluster())
    assert caught.value.status_code == 404
    assert caught.value.error.code == "ResourceGroupNotFound"


def test_credentials_of_an_arm_only_cluster_are_refused_with_a_clear_message(azure_clients, group):
    aks = azure_clients.containerservice.managed_clusters
    aks.begin_create_or_update(group, "aks-nokube", _cluster()).result()
    with pytest.raises(HttpResponseError) as caught:
        aks.list_cluster_admin_credentials(group, "aks-nokube")
    assert caught.value.status_code == 400
    assert "ARM-only" in caught.value.error.message


def test_forced_failure_knob_fails_the_create_and_marks_the_cluster_failed(azure_clients, group, knobs_restored):
    knobs_restored.set_knobs(fail=["aks.create:westeurope"])
    aks = azure_clients.containerservice.managed_clusters
    with pytest.raises(HttpResponseError) as caught:
        aks.begin_create_or_update(group, "aks-doomed", _cluster(location="westeurope")).result()
    assert "InjectedFailure" in str(caught.value)
    assert aks.get(group, "aks-doomed").provisioning_state == "Failed"
    # Other locations are unaffected by the rule.
    assert aks.begin_create_or_update(group, "aks-fine", _cluster()).result().provisioning_state == "Succeeded"


def test_delete_polls_until_the_cluster_is_gone(azure_clients, group):
    aks = azure_clients.containerservice.managed_clusters
    aks.begin_create_or_update(group, "aks-del", _cluster()).result()
    aks.begin_delete(group, "aks-del").result()
    assert [c.name for c in aks.list_by_resource_group(group)] == []
    with pytest.raises(HttpResponseError) as caught:
        aks.get(group, "aks-del")
    assert caught.value.status_code == 404
    assert caught.value.error.code == "ResourceNotFound"
