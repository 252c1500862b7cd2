"""Fleet update runs against AKS clusters backed by real local Kubernetes clusters."""

from __future__ import annotations

import tempfile
import time
from typing import Any

import pytest
from azure.mgmt.containerservicefleet import ContainerServiceFleetMgmtClient

pytestmark = [pytest.mark.emulator, pytest.mark.cluster]

IMAGE_LABEL = "kubernetes.azure.com/node-image-version"
GATED = {"stages": [
    {"name": "test", "groups": [{"name": "test-group"}]},
    {"name": "prod", "groups": [{"name": "prod-group"}], "beforeGates": [{"type": "Approval",
                                                                          "displayName": "Approve prod"}]},
]}


def _built_versions() -> list[str]:
    try:
        from localazure.kube import available_versions
    except ImportError:
        return []
    return [v.lstrip("v") for v in available_versions()]


@pytest.fixture
def local_clusters(knobs_restored: Any) -> Any:
    if not _built_versions():
        pytest.skip("no Kubernetes binaries are built (localazure.kube.available_versions() is empty); "
                    "run `make tools`")
    knobs_restored.set_knobs(clusters="local")
    return knobs_restored


@pytest.fixture
def fleet_client(local_azure: Any) -> ContainerServiceFleetMgmtClient:
    return local_azure.clients().fleet


def _kube(azure_clients: Any, group: str, name: str) -> Any:
    """An ApiClient for the real cluster behind a managed cluster, from the kubeconfig AKS hands out."""
    from kubernetes import config

    credentials = azure_clients.containerservice.managed_clusters.list_cluster_admin_credentials(group, name)
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as fh:
        fh.write(credentials.kubeconfigs[0].value.decode())
        fh.flush()
        return config.new_client_from_config(config_file=fh.name)


def _server_version(api: Any) -> str:
    from kubernetes import client

    return str(client.VersionApi(api).get_code().git_version).lstrip("v")


def _nodes(api: Any) -> list[Any]:
    from kubernetes import client

    return list(client.CoreV1Api(api).list_node().items)


def _fleet_of_real_clusters(fleet_client: Any, azure_clients: Any, group: str, members: dict[str, str],
                            version: str) -> None:
    azure_clients.resource.resource_groups.create_or_update(group, {"location": "eastus"})
    fleet_client.fleets.begin_create_or_update(group, "fleet", {"location": "eastus"}).result()
    aks = azure_clients.containerservice.managed_clusters
    pollers = {name: aks.begin_create_or_update(group, name, {"location": "eastus", "properties": {
        "kubernetesVersion": version, "dnsPrefix": name,
        "agentPoolProfiles": [{"name": "nodepool1", "count": 1, "vmSize": "Standard_DS2_v2"}]}})
        for name in members}
    for name, poller in pollers.items():
        cluster = poller.result()
        fleet_client.fleet_members.begin_create(group, "fleet", name, {
            "properties": {"clusterResourceId": cluster.id, "group": members[name]}}).result()


def _run_state(fleet_client: Any, group: str) -> Any:
    return fleet_client.update_runs.get(group, "fleet", "run")


def _wait(what: str, probe: Any, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}")


def test_gated_full_upgrade_moves_real_test_cluster_first_and_prod_only_after_approval(
        local_clusters, fleet_client, azure_clients, fresh_name):
    versions = _built_versions()
    if len(versions) < 2:
        pytest.skip(f"an upgrade needs two built Kubernetes versions, found {versions}")
    old, new = versions[-2], versions[-1]
    group = fresh_name
    _fleet_of_real_clusters(fleet_client, azure_clients, group, {"real-test": "test-group",
                                                                 "real-prod": "prod-group"}, old)
    test_api, prod_api = _kube(azure_clients, group, "real-test"), _kube(azure_clients, group, "real-prod")
    assert (_server_version(test_api), _server_version(prod_api)) == (old, old)

    fleet_client.update_runs.begin_create_or_update(group, "fleet", "run", {"properties": {
        "strategy": GATED, "managedClusterUpdate": {"upgrade": {"type": "Full", "kubernetesVersion": new}}}}).result()
    fleet_client.update_runs.begin_start(group, "fleet", "run").result()

    def gate_pending() -> Any:
        run = _run_state(fleet_client, group)
        assert run.properties.status.status.state in ("Running",), run.properties.status.status
        gate = run.properties.status.stages[1].before_gates[0]
        return gate if gate.status.state == "Pending" and gate.gate_id else None

    gate = _wait("the approval gate", gate_pending, timeout=300)
    # The test cluster really runs the new version (API server and kubelets); prod is untouched.
    assert _server_version(test_api) == new
    assert {n.status.node_info.kubelet_version.lstrip("v") for n in _nodes(test_api)} == {new}
    time.sleep(1.0)
    assert _server_version(prod_api) == old
    assert {n.status.node_info.kubelet_version.lstrip("v") for n in _nodes(prod_api)} == {old}

    fleet_client.gates.begin_update(group, "fleet", gate.gate_id.rsplit("/", 1)[-1],
                                    {"properties": {"state": "Completed"}}).result()
    done = _wait("the run to end", lambda: (r := _run_state(fleet_client, group))
                 and r.properties.status.status.state in ("Completed", "Failed") and r, timeout=300)
    assert done.properties.status.status.state == "Completed", done.properties.status.status.error
    assert _server_version(prod_api) == new
    azure_clients.resource.resource_groups.begin_delete(group).result()


def test_node_image_only_run_replaces_real_nodes_and_keeps_the_kubernetes_version(
        local_clusters, fleet_client, azure_clients, fresh_name):
    version = _built_versions()[0]
    group = fresh_name
    _fleet_of_real_clusters(fleet_client, azure_clients, group, {"real-img": "all"}, version)
    api = _kube(azure_clients, group, "real-img")
    latest = local_clusters.knobs()["node_image_latest"]
    assert {n.metadata.labels.get(IMAGE_LABEL) for n in _nodes(api)} != {latest}

    fleet_client.update_runs.begin_create_or_update(group, "fleet", "run", {"properties": {
        "managedClusterUpdate": {"upgrade": {"type": "NodeImageOnly"}}}}).result()
    fleet_client.update_runs.begin_start(group, "fleet", "run").result()
    done = _wait("the run to end", lambda: (r := _run_state(fleet_client, group))
                 and r.properties.status.status.state in ("Completed", "Failed") and r, timeout=300)
    assert done.properties.status.status.state == "Completed", done.properties.status.status.error
    nodes = _nodes(api)
    assert {n.metadata.labels.get(IMAGE_LABEL) for n in nodes} == {latest}
    assert {n.status.node_info.kubelet_version.lstrip("v") for n in nodes} == {version}
    assert _server_version(api) == version
    azure_clients.resource.resource_groups.begin_delete(group).result()


def _blocking_pdb(api: Any) -> None:
    """One replica guarded by a PodDisruptionBudget that allows no eviction: every drain is refused."""
    from kubernetes import client

    labels = {"app": "guarded"}
    client.AppsV1Api(api).create_namespaced_deployment("default", {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "guarded"},
        "spec": {"replicas": 1, "selector": {"matchLabels": labels}, "template": {
            "metadata": {"labels": labels},
            "spec": {"containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10"}],
                     "tolerations": [{"operator": "Exists"}]}}}})
    client.PolicyV1Api(api).create_namespaced_pod_disruption_budget("default", {
        "apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "guarded"},
        "spec": {"minAvailable": 1, "selector": {"matchLabels": labels}}})


def test_drain_blocked_by_a_pod_disruption_budget_fails_the_member_and_the_run(
        local_clusters, fleet_client, azure_clients, fresh_name):
    version = _built_versions()[0]
    group = fresh_name
    _fleet_of_real_clusters(fleet_client, azure_clients, group, {"real-pdb": "all"}, version)
    api = _kube(azure_clients, group, "real-pdb")
    _blocking_pdb(api)
    images_before = {n.metadata.name: n.metadata.labels.get(IMAGE_LABEL) for n in _nodes(api)}

    fleet_client.update_runs.begin_create_or_update(group, "fleet", "run", {"properties": {
        "managedClusterUpdate": {"upgrade": {"type": "NodeImageOnly"}}}}).result()
    fleet_client.update_runs.begin_start(group, "fleet", "run").result()
    done = _wait("the run to end", lambda: (r := _run_state(fleet_client, group))
                 and r.properties.status.status.state in ("Completed", "Failed") and r, timeout=300)
    assert done.properties.status.status.state == "Failed"
    member = done.properties.status.stages[0].groups[0].members[0]
    assert member.status.state == "Failed"
    assert "guarded" in member.message or "drain" in member.message.lower(), member.message
    # The guarded node was not replaced.
    assert images_before.items() <= {n.metadata.name: n.metadata.labels.get(IMAGE_LABEL)
                                     for n in _nodes(api)}.items()
    azure_clients.resource.resource_groups.begin_delete(group).result()
