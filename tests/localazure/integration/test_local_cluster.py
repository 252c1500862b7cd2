"""Real local clusters: etcd, the control plane (apiserver, controller-manager, scheduler) and kwok processes.

Three clusters are started together once for the module; each later test uses one of them so the file
stays within a few minutes on two cores.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import re
import signal
import ssl
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.utils import parse_quantity

from localazure.kube import DrainTimeoutError, LocalCluster, LocalClusterError, NodePool, available_versions
from localazure.kube.launch import DISABLED_CONTROLLERS
from localazure.kube.processes import ProcessRecord, is_alive, port_is_free
from localazure.kube.tools import Toolchain, ToolsMissingError, tools_dir

pytestmark = pytest.mark.cluster

NEW_IMAGE = "AKSUbuntu-2204gen2containerd-202611.20.0"


def _skip_reason() -> str | None:
    versions = available_versions()
    if not versions:
        return "Kubernetes binaries are not built; run `make tools`"
    try:
        Toolchain.for_version(versions[0])
    except ToolsMissingError as error:
        return f"{error}"
    return None


if (_reason := _skip_reason()) is not None:
    pytest.skip(_reason, allow_module_level=True)


@pytest.fixture(scope="module")
def clusters(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, LocalCluster]]:
    """Three clusters on the oldest built version, created in parallel (timed for one test)."""
    root = tmp_path_factory.mktemp("clusters")
    version = available_versions()[0]
    specs = {
        "roll": [NodePool("nodepool1", 2, "Standard_DS2_v2")],
        "upgrade": [NodePool("system", 1, "Standard_D2s_v3"), NodePool("user", 1, "Standard_D4s_v3")],
        "blocked": [NodePool("nodepool1", 1, "Standard_DS2_v2")],
    }
    with concurrent.futures.ThreadPoolExecutor(len(specs)) as pool:
        futures = {
            name: pool.submit(LocalCluster.create, name, version, pools, "eastus", root / name)
            for name, pools in specs.items()
        }
        created = {}
        errors = []
        for name, future in futures.items():
            try:
                created[name] = future.result()
            except Exception as error:  # collect all so none is leaked
                errors.append(error)
    try:
        if errors:
            raise errors[0]
        yield created
    finally:
        for cluster in created.values():
            cluster.delete()


def _apps(cluster: LocalCluster) -> Any:
    return k8s.AppsV1Api(cluster.api_client())


def _core(cluster: LocalCluster) -> Any:
    return k8s.CoreV1Api(cluster.api_client())


def _deployment(name: str, replicas: int) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [{"name": "app", "image": "nginx:1.27", "resources": {"requests": {"cpu": "100m"}}}]
                },
            },
        },
    }


def _wait_available(cluster: LocalCluster, name: str, replicas: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        status = _apps(cluster).read_namespaced_deployment_status(name, "default").status
        if (status.available_replicas or 0) >= replicas and (status.ready_replicas or 0) >= replicas:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"deployment {name} not available after {timeout}s: {status}")
        time.sleep(0.2)


def _ready_pods(cluster: LocalCluster, app: str) -> list[Any]:
    pods = _core(cluster).list_namespaced_pod("default", label_selector=f"app={app}").items
    return [
        pod
        for pod in pods
        if pod.metadata.deletion_timestamp is None
        and any(c.type == "Ready" and c.status == "True" for c in (pod.status.conditions or []))
    ]


def _recorded_processes(cluster: LocalCluster) -> list[ProcessRecord]:
    state = json.loads((cluster.home / "cluster.json").read_text())
    return [ProcessRecord.from_json(record) for record in state["processes"].values()]


def _version_of(cluster: LocalCluster) -> str:
    # Read /version through a plain TLS client verifying the kubeconfig's CA: proves the serving certificate.
    context = ssl.create_default_context(cafile=str(cluster.home / "pki" / "ca.crt"))
    with urllib.request.urlopen(f"{cluster.server}/version", context=context, timeout=5) as response:
        return str(json.load(response)["gitVersion"])


def test_three_clusters_start_in_parallel_with_ready_aks_like_nodes(clusters: dict[str, LocalCluster]) -> None:
    real = clusters
    assert len(real) == 3
    all_ports = [port for cluster in real.values() for port in cluster.ports]
    assert len(all_ports) == len(set(all_ports)), "clusters share a port"
    for cluster in real.values():
        assert cluster.is_running()
        nodes = _core(cluster).list_node().items
        expected = sum(pool.count for pool in cluster.node_pools)
        assert len(nodes) == expected
        for node in nodes:
            labels = node.metadata.labels
            assert node.metadata.name.startswith(f"aks-{labels['kubernetes.azure.com/agentpool']}-")
            assert labels["topology.kubernetes.io/region"] == "eastus"
            assert labels["kubernetes.io/os"] == "linux"
            assert any(c.type == "Ready" and c.status == "True" for c in node.status.conditions)
    upgrade_nodes = {
        n.metadata.labels["node.kubernetes.io/instance-type"]: n for n in _core(real["upgrade"]).list_node().items
    }
    assert upgrade_nodes["Standard_D4s_v3"].status.capacity["cpu"] == "4"
    assert parse_quantity(upgrade_nodes["Standard_D2s_v3"].status.capacity["memory"]) == 8 * 1024**3


def test_admin_kubeconfig_authenticates_as_cluster_admin(clusters: dict[str, LocalCluster]) -> None:
    cluster = clusters["roll"]
    api_client = k8s_config.new_client_from_config_dict(yaml.safe_load(cluster.kubeconfig()))
    review = k8s.AuthorizationV1Api(api_client).create_self_subject_access_review(
        {"spec": {"resourceAttributes": {"verb": "*", "resource": "*", "group": "*"}}}
    )
    assert review.status.allowed


def test_two_replica_deployment_becomes_available_on_kwok_nodes(clusters: dict[str, LocalCluster]) -> None:
    cluster = clusters["roll"]
    _apps(cluster).create_namespaced_deployment("default", _deployment("web", 2))
    _wait_available(cluster, "web", 2)
    pods = _ready_pods(cluster, "web")
    assert len(pods) == 2
    assert all(pod.status.phase == "Running" and pod.spec.node_name for pod in pods)


def test_control_plane_upgrade_keeps_objects_and_changes_reported_version(clusters: dict[str, LocalCluster]) -> None:
    cluster = clusters["upgrade"]
    if not cluster.allowed_upgrades():
        pytest.skip(f"only {available_versions()} built; the upgrade needs the next minor")
    target = cluster.allowed_upgrades()[-1]
    before = _version_of(cluster)
    _core(cluster).create_namespaced_config_map("default", {"metadata": {"name": "keep-me"}, "data": {"k": "v"}})
    cluster.upgrade_control_plane(target)
    assert before != target
    assert _version_of(cluster) == target == cluster.version
    assert _core(cluster).read_namespaced_config_map("keep-me", "default").data == {"k": "v"}
    # The upgraded controller-manager and scheduler work: a new Deployment still becomes Available.
    _apps(cluster).create_namespaced_deployment("default", _deployment("after-upgrade", 1))
    _wait_available(cluster, "after-upgrade", 1)
    assert LocalCluster.load(cluster.home).version == target


def test_node_pool_follows_the_control_plane_with_surge_and_a_repeat_is_a_no_op(
    clusters: dict[str, LocalCluster],
) -> None:
    cluster = clusters["upgrade"]
    if cluster.version == available_versions()[0]:
        pytest.skip("needs the control-plane upgrade of the previous test")
    with pytest.raises(ValueError, match="newer than the control plane"):
        cluster.upgrade_node_image("user", NEW_IMAGE, kubernetes_version="v1.99.0")
    before = {n.metadata.name for n in _core(cluster).list_node(label_selector="agentpool=user").items}
    cluster.upgrade_node_image("user", NEW_IMAGE, max_surge=2, kubernetes_version=cluster.version)
    nodes = _core(cluster).list_node(label_selector="agentpool=user").items
    assert len(nodes) == 1 and nodes[0].metadata.name not in before
    assert nodes[0].status.node_info.kubelet_version == cluster.version
    assert nodes[0].metadata.labels["kubernetes.azure.com/node-image-version"] == NEW_IMAGE
    system = _core(cluster).list_node(label_selector="agentpool=system").items
    assert system[0].status.node_info.kubelet_version == available_versions()[0], "other pool was touched"
    cluster.upgrade_node_image("user", NEW_IMAGE, kubernetes_version=cluster.version)
    again = _core(cluster).list_node(label_selector="agentpool=user").items
    assert [n.metadata.name for n in again] == [nodes[0].metadata.name], "a repeated roll replaced nodes"


def test_stop_start_keeps_objects_and_load_adopts_the_running_cluster(clusters: dict[str, LocalCluster]) -> None:
    cluster = clusters["upgrade"]
    _core(cluster).create_namespaced_config_map("default", {"metadata": {"name": "survives-stop"}})
    records = _recorded_processes(cluster)
    # Built binaries run apiserver, controller-manager and scheduler as one process beside etcd and kwok.
    assert set(cluster.pids) == {"etcd", "control-plane", "kwok"}
    assert all(is_alive(r) for r in records)
    cluster.stop()
    assert not any(is_alive(r) for r in records)
    assert not cluster.is_running()
    cluster.start()
    assert _core(cluster).read_namespaced_config_map("survives-stop", "default").metadata.name == "survives-stop"
    adopted = LocalCluster.load(cluster.home)
    assert adopted.pids == cluster.pids, "load() restarted a cluster that was running"
    assert adopted.is_running()


def test_node_image_roll_never_drops_ready_replicas_below_pdb_min_available(clusters: dict[str, LocalCluster]) -> None:
    cluster = clusters["roll"]
    _apps(cluster).create_namespaced_deployment("default", _deployment("guarded", 3))
    _wait_available(cluster, "guarded", 3)
    k8s.PolicyV1Api(cluster.api_client()).create_namespaced_pod_disruption_budget(
        "default",
        {"metadata": {"name": "guarded"}, "spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": "guarded"}}}},
    )
    old_nodes = {n.metadata.name for n in _core(cluster).list_node().items}
    observed: list[int] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            observed.append(len(_ready_pods(cluster, "guarded")))
            time.sleep(0.05)

    watcher = threading.Thread(target=watch, daemon=True)
    events: list[str] = []
    watcher.start()
    started = time.monotonic()
    try:
        cluster.upgrade_node_image("nodepool1", NEW_IMAGE, max_surge=1, drain_timeout=60, on_event=events.append)
    finally:
        stop.set()
        watcher.join()
    elapsed = time.monotonic() - started
    assert len(observed) > 20, f"watcher saw too little of a {elapsed:.1f}s roll"
    assert min(observed) >= 2, f"ready replicas dropped to {min(observed)} (minAvailable 2) during the roll"
    assert any(e.startswith("evicted pod default/guarded-") for e in events)
    new_nodes = _core(cluster).list_node().items
    assert len(new_nodes) == 2, "pool size changed by the roll"
    assert not {n.metadata.name for n in new_nodes} & old_nodes
    assert {n.metadata.labels["kubernetes.azure.com/node-image-version"] for n in new_nodes} == {NEW_IMAGE}
    _wait_available(cluster, "guarded", 3)
    assert {p.spec.node_name for p in _ready_pods(cluster, "guarded")} <= {n.metadata.name for n in new_nodes}
    assert cluster.node_pools[0].node_image_version == NEW_IMAGE


def test_unsatisfiable_pdb_fails_the_roll_with_an_error_naming_it_and_the_node(
    clusters: dict[str, LocalCluster],
) -> None:
    cluster = clusters["blocked"]
    _apps(cluster).create_namespaced_deployment("default", _deployment("single", 1))
    _wait_available(cluster, "single", 1)
    k8s.PolicyV1Api(cluster.api_client()).create_namespaced_pod_disruption_budget(
        "default",
        {
            "metadata": {"name": "no-disruption"},
            "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "single"}}},
        },
    )
    old_node = _core(cluster).list_node().items[0].metadata.name
    time.sleep(1.0)  # let the disruption controller compute disruptionsAllowed=0
    with pytest.raises(DrainTimeoutError) as failure:
        cluster.upgrade_node_image("nodepool1", NEW_IMAGE, drain_timeout=4)
    assert "default/no-disruption" in str(failure.value)
    assert old_node in str(failure.value)
    assert failure.value.blocking_pdbs == ["default/no-disruption"]
    assert len(_ready_pods(cluster, "single")) == 1, "the protected pod was evicted"
    assert _core(cluster).read_node(old_node).spec.unschedulable in (None, False), "failed drain left node cordoned"


def test_delete_leaves_no_process_port_or_data_behind(clusters: dict[str, LocalCluster]) -> None:
    cluster = clusters["blocked"]
    records = _recorded_processes(cluster)
    # Built binaries run apiserver, controller-manager and scheduler as one process beside etcd and kwok.
    assert set(cluster.pids) == {"etcd", "control-plane", "kwok"}
    assert all(is_alive(r) for r in records)
    ports = cluster.ports
    cluster.delete()
    assert not any(is_alive(r) for r in records)
    assert not cluster.home.exists()
    deadline = time.monotonic() + 5
    while not all(port_is_free(p) for p in ports) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert all(port_is_free(p) for p in ports)


def test_cluster_outlives_its_creator_and_load_restarts_it_after_a_host_restart(tmp_path: Path) -> None:
    home = tmp_path / "adopted"
    creator = (
        "import sys; from pathlib import Path; from kubernetes import client;"
        "from localazure.kube import LocalCluster, NodePool;"
        f"c = LocalCluster.create('adopted', None, [NodePool('nodepool1', 1)], 'eastus', Path({str(home)!r}));"
        "client.CoreV1Api(c.api_client()).create_namespaced_config_map('default', {'metadata': {'name': 'kept'}})"
    )
    subprocess.run([sys.executable, "-c", creator], check=True, timeout=120)
    cluster = LocalCluster.load(home)
    try:
        created_records = _recorded_processes(cluster)
        assert all(is_alive(r) for r in created_records), "components died with the process that created them"
        assert cluster.is_running()
        # A host restart kills every component without a graceful stop; load() must bring the cluster back.
        for record in created_records:
            os.kill(record.pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while any(is_alive(r) for r in created_records) and time.monotonic() < deadline:
            time.sleep(0.05)
        restarted = LocalCluster.load(home)
        assert restarted.is_running()
        assert set(restarted.pids.values()).isdisjoint(r.pid for r in created_records)
        assert _core(restarted).read_namespaced_config_map("kept", "default").metadata.name == "kept"
    finally:
        if (home / "cluster.json").exists():
            LocalCluster.load(home).delete()
    assert not home.exists()


@pytest.mark.parametrize("version", available_versions())
def test_disabled_controllers_are_known_to_every_built_controller_manager(version: str) -> None:
    binary = Toolchain.for_version(version).kube
    help_text = subprocess.run(
        [str(binary), "kube-controller-manager", "--help"], capture_output=True, text=True, timeout=60
    ).stdout
    listed = help_text.split("All controllers:", 1)[1].split("Disabled-by-default", 1)[0]
    known = set(re.split(r"[,\s]+", listed.strip()))
    assert "deployment-controller" in known
    unknown = [name for name in DISABLED_CONTROLLERS if name not in known]
    assert not unknown, f"kube-controller-manager {version} would reject --controllers with {unknown}"


def test_failed_control_plane_upgrade_rolls_back_to_the_serving_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A tools directory with the real oldest version and a "next minor" whose binary cannot start.
    real_tools, tools = tools_dir(), tmp_path / "tools"
    old = available_versions()[0]
    major, minor, _ = (int(part) for part in old.lstrip("v").split("."))
    broken = f"v{major}.{minor + 1}.99"
    tools.mkdir()
    for entry in real_tools.iterdir():
        if entry.name.startswith(("etcd-", "kwok-")) or entry.name == f"kube-{old}":
            (tools / entry.name).symlink_to(entry)
    (tools / f"kube-{broken}").mkdir()
    (tools / f"kube-{broken}" / "kube").write_text("#!/bin/sh\necho 'broken build' >&2\nexit 1\n")
    (tools / f"kube-{broken}" / "kube").chmod(0o755)
    monkeypatch.setenv("FLEETFLOW_TOOLS", str(tools))

    cluster = LocalCluster.create("rollback", old, [NodePool("nodepool1", 1)], "eastus", tmp_path / "rollback")
    try:
        _core(cluster).create_namespaced_config_map("default", {"metadata": {"name": "kept"}})
        with pytest.raises(LocalClusterError, match=rf"from {old} to {broken} failed and was rolled back"):
            cluster.upgrade_control_plane(broken)
        assert cluster.version == old
        assert _version_of(cluster) == old
        assert cluster.is_running()
        assert _core(cluster).read_namespaced_config_map("kept", "default").metadata.name == "kept"
    finally:
        cluster.delete()
