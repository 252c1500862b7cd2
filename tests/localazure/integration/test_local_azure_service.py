"""The in-process AKS service API other providers (Fleet update runs) drive clusters with."""

from __future__ import annotations

import pytest

from localazure.arm.app import create_app
from localazure.arm.context import Emulator
from localazure.arm.errors import ArmError
from localazure.arm.knobs import Knobs
from localazure.composition import providers
from localazure.providers.aks import aks_of


@pytest.fixture
def emulator(tmp_path):
    emulator = Emulator(tmp_path, Knobs(clusters="arm-only", time_scale=0.0001), "https://127.0.0.1:1")
    create_app(emulator, providers())  # registers the providers
    emulator.store.put("resources", emulator.group_id("rg"), {"body": {
        "id": emulator.group_id("rg"), "name": "rg", "type": "Microsoft.Resources/resourceGroups",
        "location": "eastus", "tags": {}, "properties": {"provisioningState": "Succeeded"}}, "internal": {}})
    return emulator


def _create(emulator, name="c1"):
    body, status, op = aks_of(emulator).create_or_update("rg", name, {
        "location": "eastus",
        "properties": {"kubernetesVersion": "1.36.3", "agentPoolProfiles": [{"name": "nodepool1", "count": 3}]}})
    assert status == 201
    assert aks_of(emulator).wait(op, timeout=10)["status"] == "Succeeded"
    return body["id"]


def test_control_plane_only_upgrade_leaves_pools_on_their_version(emulator):
    cluster_id = _create(emulator)
    op = aks_of(emulator).upgrade_control_plane(cluster_id, "1.37.2")
    assert aks_of(emulator).wait(op, timeout=10)["status"] == "Succeeded"
    cluster = aks_of(emulator).get(cluster_id)
    assert cluster["properties"]["currentKubernetesVersion"] == "1.37.2"
    assert cluster["properties"]["agentPoolProfiles"][0]["currentOrchestratorVersion"] == "1.36.3"


def test_full_upgrade_moves_pools_to_the_version_and_the_latest_image(emulator):
    cluster_id = _create(emulator)
    assert aks_of(emulator).wait(aks_of(emulator).upgrade(cluster_id, "1.37.2"), timeout=10)["status"] == "Succeeded"
    pool = aks_of(emulator).get(cluster_id)["properties"]["agentPoolProfiles"][0]
    assert pool["currentOrchestratorVersion"] == "1.37.2"
    assert pool["nodeImageVersion"] == aks_of(emulator).latest_node_image()


def test_node_image_upgrade_and_busy_cluster_refusal(emulator):
    cluster_id = _create(emulator)
    emulator.knobs.change({"latency": {"aks.nodeimage": 20_000}})  # 2 s at this time scale
    op = aks_of(emulator).upgrade_node_image(cluster_id, "nodepool1")
    with pytest.raises(ArmError) as caught:
        aks_of(emulator).upgrade_control_plane(cluster_id, "1.37.2")
    assert caught.value.status == 409
    assert aks_of(emulator).wait(op, timeout=10)["status"] == "Succeeded"
    pool = aks_of(emulator).agent_pool(cluster_id, "nodepool1")
    assert pool["properties"]["nodeImageVersion"] == aks_of(emulator).latest_node_image()


def test_fail_rule_fails_an_in_process_upgrade_with_the_error_recorded(emulator):
    cluster_id = _create(emulator, "prod-east")
    emulator.knobs.change({"fail": "aks.upgrade:prod-*"})
    final = aks_of(emulator).wait(aks_of(emulator).upgrade(cluster_id, "1.37.2"), timeout=10)
    assert final["status"] == "Failed"
    assert final["error"]["code"] == "InjectedFailure"
    cluster = aks_of(emulator).get(cluster_id)
    assert cluster["properties"]["provisioningState"] == "Failed"
    assert cluster["properties"]["currentKubernetesVersion"] == "1.36.3"
