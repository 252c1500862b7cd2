"""What AKS fills in (network profile, pools' maxSurge, identities, eTags), tags PATCH, agent pool create/update/
delete in ARM-only mode, and Fleet auto-upgrade profiles, driven by the real SDK clients."""

from __future__ import annotations

import pytest
from azure.core.exceptions import HttpResponseError, ResourceModifiedError

pytestmark = pytest.mark.emulator

CLUSTER = {"location": "eastus", "identity": {"type": "SystemAssigned"},
           "properties": {"dnsPrefix": "d", "agentPoolProfiles": [{"name": "system", "count": 1, "mode": "System"}]}}


@pytest.fixture
def cluster(azure_clients, fresh_name):
    azure_clients.resource.resource_groups.create_or_update(fresh_name, {"location": "eastus"})
    aks = azure_clients.containerservice
    created = aks.managed_clusters.begin_create_or_update(fresh_name, "aks1", CLUSTER).result()
    return fresh_name, created


def test_aks_fills_in_network_pool_and_identity_defaults(cluster):
    _, created = cluster
    network = created.network_profile
    assert network.service_cidr == "10.0.0.0/16" and network.dns_service_ip == "10.0.0.10"
    assert network.network_plugin == "kubenet" and network.pod_cidr == "10.244.0.0/16"
    assert network.ip_families == ["IPv4"] and network.outbound_type == "loadBalancer"
    assert network.load_balancer_profile.managed_outbound_i_ps.count == 1
    assert network.load_balancer_profile.effective_outbound_i_ps[0].id.startswith(
        f"/subscriptions/{created.id.split('/')[2]}/resourceGroups/{created.node_resource_group}/")
    assert created.agent_pool_profiles[0].upgrade_settings.max_surge == "10%"
    assert created.identity.principal_id and created.identity.tenant_id
    kubelet = created.identity_profile["kubeletidentity"]
    assert kubelet.client_id and kubelet.object_id
    assert created.e_tag and created.agent_pool_profiles[0].e_tag


def test_tags_patch_replaces_tags_and_if_match_guards_writes(azure_clients, cluster):
    group, created = cluster
    aks = azure_clients.containerservice.managed_clusters
    tagged = aks.begin_update_tags(group, "aks1", {"tags": {"team": "platform"}}).result()
    assert tagged.tags == {"team": "platform"} and tagged.e_tag != created.e_tag
    with pytest.raises((ResourceModifiedError, HttpResponseError)) as caught:
        aks.begin_delete(group, "aks1", headers={"If-Match": created.e_tag}).result()
    assert caught.value.status_code == 412
    aks.begin_delete(group, "aks1", headers={"If-Match": tagged.e_tag}).result()


def test_agent_pools_are_added_scaled_and_deleted_in_arm_only_mode(azure_clients, cluster):
    group, _ = cluster
    from azure.mgmt.containerservice.models import AgentPool

    pools = azure_clients.containerservice.agent_pools
    added = pools.begin_create_or_update(group, "aks1", "user1", AgentPool(count=2, mode="User")).result()
    assert added.count == 2 and added.provisioning_state == "Succeeded" and added.upgrade_settings.max_surge == "10%"
    added.count = 3
    scaled = pools.begin_create_or_update(group, "aks1", "user1", added).result()
    assert scaled.count == 3
    assert sorted(p.name for p in pools.list(group, "aks1")) == ["system", "user1"]
    pools.begin_delete(group, "aks1", "user1").result()
    assert [p.name for p in pools.list(group, "aks1")] == ["system"]
    with pytest.raises(HttpResponseError) as caught:
        pools.begin_delete(group, "aks1", "system").result()
    assert caught.value.status_code == 400


def test_fleet_auto_upgrade_profiles_are_created_read_listed_and_deleted(local_azure, azure_clients, fresh_name):

    azure_clients.resource.resource_groups.create_or_update(fresh_name, {"location": "eastus"})
    fleet = local_azure.clients().fleet
    fleet.fleets.begin_create_or_update(fresh_name, "fleet1", {"location": "eastus"}).result()
    profile = fleet.auto_upgrade_profiles.begin_create_or_update(
        fresh_name, "fleet1", "stable", {"properties": {"channel": "Stable",
                                                        "nodeImageSelection": {"type": "Latest"}}}).result()
    assert profile.properties.channel == "Stable" and profile.properties.provisioning_state == "Succeeded"
    assert fleet.auto_upgrade_profiles.get(fresh_name, "fleet1", "stable").e_tag == profile.e_tag
    assert [p.name for p in fleet.auto_upgrade_profiles.list_by_fleet(fresh_name, "fleet1")] == ["stable"]
    with pytest.raises(HttpResponseError) as caught:
        fleet.auto_upgrade_profiles.begin_create_or_update(
            fresh_name, "fleet1", "pinned", {"properties": {"channel": "TargetKubernetesVersion"}}).result()
    assert caught.value.status_code == 400
    fleet.auto_upgrade_profiles.begin_delete(fresh_name, "fleet1", "stable").result()
    assert list(fleet.auto_upgrade_profiles.list_by_fleet(fresh_name, "fleet1")) == []
