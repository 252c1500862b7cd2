"""A managed cluster backed by a real local Kubernetes cluster, reached with the kubeconfig AKS hands out."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
import yaml

pytestmark = [pytest.mark.emulator, pytest.mark.cluster]

IMAGE_LABEL = "kubernetes.azure.com/node-image-version"


def _built_versions() -> list[str]:
    try:
        from localazure.kube import available_versions
    except ImportError:
        return []
    return available_versions()


@pytest.fixture
def local_clusters(knobs_restored):
    if not _built_versions():
        pytest.skip("no Kubernetes binaries are built yet (localazure.kube.available_versions() is empty); "
                    "run `make tools`")
    knobs_restored.set_knobs(clusters="local")
    return knobs_restored


def _nodes(kubeconfig_text):
    from kubernetes import client, config

    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as fh:
        fh.write(kubeconfig_text)
        fh.flush()
        api = client.CoreV1Api(config.new_client_from_config(config_file=fh.name))
        return api.list_node().items


def test_local_cluster_serves_kubernetes_with_the_admin_kubeconfig_and_rolls_node_images(
    local_clusters, local_azure, azure_clients, fresh_name
):
    cs = azure_clients.containerservice
    azure_clients.resource.resource_groups.create_or_update(fresh_name, {"location": "eastus"})
    version = _built_versions()[0].lstrip("v")
    cluster = cs.managed_clusters.begin_create_or_update(fresh_name, "real", {
        "location": "eastus",
        "properties": {"kubernetesVersion": version, "dnsPrefix": "real",
                       "agentPoolProfiles": [{"name": "nodepool1", "count": 2, "vmSize": "Standard_DS2_v2"}]},
    }).result()
    assert cluster.provisioning_state == "Succeeded"

    credentials = cs.managed_clusters.list_cluster_admin_credentials(fresh_name, "real")
    assert credentials.kubeconfigs[0].name == "clusterAdmin"
    # The wire format is base64; the SDK model decodes it to bytes.
    kubeconfig = credentials.kubeconfigs[0].value.decode()
    assert yaml.safe_load(kubeconfig)["clusters"][0]["cluster"]["server"].startswith("https://127.0.0.1:")
    nodes = _nodes(kubeconfig)
    assert len(nodes) == 2
    assert {n.status.node_info.kubelet_version for n in nodes} == {"v" + version}

    cs.agent_pools.begin_upgrade_node_image_version(fresh_name, "real", "nodepool1").result()
    latest = cs.agent_pools.get(fresh_name, "real", "nodepool1").node_image_version
    assert {n.metadata.labels.get(IMAGE_LABEL) for n in _nodes(kubeconfig)} == {latest}

    home = Path(local_azure.state_dir) / "clusters" / f"{fresh_name}--real"
    assert home.is_dir()
    azure_clients.resource.resource_groups.begin_delete(fresh_name).result()
    assert not home.exists()
