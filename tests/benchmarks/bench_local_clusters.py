"""Benchmark of local clusters: time to ready (API serving, nodes Ready, a pod Running) for 1 and for 3
clusters started together, memory per cluster, control-plane upgrade time and node-image roll time.

    .venv/bin/python tests/benchmarks/bench_local_clusters.py

Goals: 3 clusters ready in <= 20 s, <= 400 MB RSS per cluster. RSS is the sum of the cluster's
processes' VmRSS; PSS (proportional set size, /proc/<pid>/smaps_rollup) is printed beside it because the
control-plane components share one multi-call binary whose file-backed pages RSS counts once per process.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from kubernetes import client as k8s

from localazure.kube import LocalCluster, NodePool, available_versions, processes

GOAL_THREE_CLUSTERS_SECONDS = 20.0
GOAL_RSS_MB = 400.0
NEW_IMAGE = "AKSUbuntu-2204gen2containerd-202611.20.0"


def _pss_bytes(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return 0
    return 0


def _rss_file_bytes(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("RssFile:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return 0
    return 0


def _memory(cluster: LocalCluster) -> tuple[float, float, float, dict[str, float]]:
    """(RSS, file-backed part of RSS, PSS) in MiB summed over the cluster's processes, and RSS per process."""
    per_component = {}
    pss = file_backed = 0
    for name, record in cluster._state.processes.items():
        per_component[name] = processes.rss_bytes(record) / 2**20
        pss += _pss_bytes(record.pid)
        file_backed += _rss_file_bytes(record.pid)
    return sum(per_component.values()), file_backed / 2**20, pss / 2**20, per_component


def _deployment(name: str, replicas: int) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}},
        },
    }


def _wait_pod_running(cluster: LocalCluster, app: str, replicas: int, timeout: float = 120.0) -> None:
    core = k8s.CoreV1Api(cluster.api_client())
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pods = core.list_namespaced_pod("default", label_selector=f"app={app}").items
        running = [
            p
            for p in pods
            if p.status.phase == "Running"
            and p.metadata.deletion_timestamp is None
            and any(c.type == "Ready" and c.status == "True" for c in p.status.conditions or [])
        ]
        if len(running) >= replicas:
            return
        time.sleep(0.1)
    raise TimeoutError(f"{cluster.name}: {replicas} pod(s) of {app} not Running after {timeout}s")


def _create_ready(name: str, version: str, home: Path, pods: int) -> tuple[LocalCluster, float, float]:
    """Create a cluster; return it, seconds to API+nodes Ready, and seconds until a pod runs."""
    started = time.monotonic()
    cluster = LocalCluster.create(name, version, [NodePool("nodepool1", 2, "Standard_DS2_v2")], "eastus", home / name)
    ready = time.monotonic() - started
    k8s.AppsV1Api(cluster.api_client()).create_namespaced_deployment("default", _deployment("bench", pods))
    _wait_pod_running(cluster, "bench", pods)
    return cluster, ready, time.monotonic() - started


def _start_together(count: int, version: str, home: Path) -> tuple[list[LocalCluster], float, float, float]:
    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(count) as pool:
        futures = [pool.submit(_create_ready, f"bench{count}-{i}", version, home, 1) for i in range(count)]
        results = [future.result() for future in futures]
    wall = time.monotonic() - started
    return [r[0] for r in results], max(r[1] for r in results), max(r[2] for r in results), wall


def main() -> None:
    """Run the benchmark and print a report."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--settle", type=float, default=10.0, help="seconds to let memory settle before measuring")
    args = parser.parse_args()
    versions = available_versions()
    if not versions:
        raise SystemExit("no Kubernetes version built; run `make tools`")
    version = versions[0]
    home = Path(tempfile.mkdtemp(prefix="fleetflow-bench-"))
    clusters: list[LocalCluster] = []
    try:
        print(f"versions built: {versions}; benchmarking on {version}")
        one, ready, pod_running, _ = _start_together(1, version, home)
        clusters += one
        print(f"1 cluster : API+nodes Ready {ready:5.1f} s, pod Running {pod_running:5.1f} s")
        for cluster in one:
            cluster.delete()
        clusters.clear()

        three, ready, pod_running, wall = _start_together(3, version, home)
        clusters += three
        print(
            f"3 clusters: API+nodes Ready {ready:5.1f} s, pod Running {pod_running:5.1f} s (wall {wall:.1f} s); "
            f"goal <= {GOAL_THREE_CLUSTERS_SECONDS:.0f} s -> ratio {pod_running / GOAL_THREE_CLUSTERS_SECONDS:.2f}"
        )
        time.sleep(args.settle)
        for cluster in three:
            rss, file_backed, pss, parts = _memory(cluster)
            detail = ", ".join(f"{name} {mb:.0f}" for name, mb in parts.items())
            print(
                f"{cluster.name}: RSS {rss:.0f} MB (goal {GOAL_RSS_MB:.0f} -> ratio {rss / GOAL_RSS_MB:.2f}; "
                f"{file_backed:.0f} MB of it file-backed binary pages), PSS {pss:.0f} MB [RSS {detail}]"
            )

        target = three[0]
        if target.allowed_upgrades():
            new_version = target.allowed_upgrades()[-1]
            started = time.monotonic()
            target.upgrade_control_plane(new_version)
            print(f"control-plane upgrade {version} -> {new_version}: {time.monotonic() - started:.1f} s")
        else:
            print("control-plane upgrade: skipped (only one minor built)")

        roll = three[1]
        k8s.AppsV1Api(roll.api_client()).create_namespaced_deployment("default", _deployment("rolled", 4))
        _wait_pod_running(roll, "rolled", 4)
        k8s.PolicyV1Api(roll.api_client()).create_namespaced_pod_disruption_budget(
            "default",
            {
                "metadata": {"name": "rolled"},
                "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {"app": "rolled"}}},
            },
        )
        nodes = sum(pool.count for pool in roll.node_pools)
        started = time.monotonic()
        roll.upgrade_node_image("nodepool1", NEW_IMAGE, max_surge=1, drain_timeout=120)
        elapsed = time.monotonic() - started
        print(
            f"node-image roll of {nodes} nodes (5 pods, PDB maxUnavailable 1): {elapsed:.1f} s, "
            f"{elapsed / nodes:.1f} s per node"
        )
    finally:
        for cluster in clusters:
            cluster.delete()
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
