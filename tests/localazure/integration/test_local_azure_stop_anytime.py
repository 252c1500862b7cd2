"""Stopping local Azure at any moment stops every process its clusters started; a crash leaves one set per cluster.

Three real local clusters are kept from an earlier run; local Azure is then started and stopped (or killed)
at several moments of its start-up, while it adopts (restarts) them.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from localazure import LocalAzure
from localazure.cli import cluster_processes, down
from tests.localazure_fixtures import clients_for

pytestmark = [pytest.mark.emulator, pytest.mark.cluster, pytest.mark.slow]
CLUSTERS = ("k1", "k2", "k3")
# etcd, the combined control plane and kwok (three processes for the control plane with older binaries).
PER_CLUSTER = {3, 5}


def _built() -> list[str]:
    try:
        from localazure.kube import available_versions
    except ImportError:
        return []
    return available_versions()


def _processes_naming(home: Path) -> list[tuple[int, str]]:
    """Every process (other than this one) whose command line names the local-mode home."""
    needle = str(home).encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if needle in cmdline and state not in ("Z", "X"):
            found.append((int(entry.name), cmdline.replace(b"\0", b" ").decode(errors="replace")[:200]))
    return found


def _wait(what: str, probe: Any, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


class KeptFleet:
    """A local-mode home holding three kept local clusters, and ways to start, stop and watch local Azure."""

    def __init__(self, home: Path):
        self.home = home
        self.state_dir = home / "local"

    def start(self) -> LocalAzure:
        return LocalAzure.start(self.state_dir, time_scale=0.01)

    def processes(self) -> dict[str, list[tuple[str, int, bool]]]:
        return cluster_processes(self.state_dir / "clusters")

    def all_running_once(self) -> bool:
        """Every cluster runs exactly one full set of processes, each tracked by its cluster's state."""
        found = self.processes()
        return len(found) == len(CLUSTERS) and all(
            len(entries) in PER_CLUSTER and all(tracked for _, _, tracked in entries) for entries in found.values())

    def down(self) -> None:
        assert down(self.state_dir) == 0

    def assert_nothing_left(self, moment: str) -> None:
        left = _processes_naming(self.home)
        assert not left, f"{moment}: processes naming {self.home} are still running: {left}"


@pytest.fixture(scope="module")
def kept(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KeptFleet]:
    if not _built():
        pytest.skip("no Kubernetes binaries are built yet; run `make tools`")
    fleet = KeptFleet(tmp_path_factory.mktemp("stop-anytime") / "home")
    azure = fleet.start()
    try:
        clients = clients_for(azure.endpoint)
        clients.resource.resource_groups.create_or_update("kept", {"location": "eastus"})
        aks = clients.containerservice
        version = _built()[0].lstrip("v")
        pollers = [aks.managed_clusters.begin_create_or_update("kept", name, {
            "location": "eastus", "properties": {
                "kubernetesVersion": version, "dnsPrefix": name,
                "agentPoolProfiles": [{"name": "nodepool1", "count": 1, "vmSize": "Standard_DS2_v2"}]}})
            for name in CLUSTERS]
        for poller in pollers:
            assert poller.result(timeout=900).provisioning_state == "Succeeded"
        assert fleet.all_running_once()
        fleet.down()
        fleet.assert_nothing_left("after the first local down")
        yield fleet
    finally:
        down(fleet.state_dir)


@pytest.mark.parametrize("moment", ["right after up", "1 s after up", "mid-adoption", "adopted"])
def test_local_down_at_any_moment_of_start_up_leaves_no_process(kept: KeptFleet, moment: str):
    kept.start()
    if moment == "1 s after up":
        time.sleep(1)
    elif moment == "mid-adoption":
        _wait("a cluster process to start", kept.processes, timeout=120)
    elif moment == "adopted":
        _wait("all three clusters adopted", kept.all_running_once, timeout=600)
    kept.down()
    kept.assert_nothing_left(moment)


def test_a_stop_before_local_azure_answers_leaves_no_process(kept: KeptFleet):
    # `local down` from another terminal while `local up` is still waiting: endpoint.json does not exist yet.
    kept.state_dir.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen([sys.executable, "-m", "localazure", "serve", "--state-dir", str(kept.state_dir),
                                "--time-scale", "0.01"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    try:
        _wait("serve.pid", lambda: (kept.state_dir / "serve.pid").exists(), timeout=60)
        time.sleep(0.3)
        kept.down()
        assert process.wait(timeout=120) is not None
    finally:
        if process.poll() is None:
            process.kill()
    kept.assert_nothing_left("before local Azure answered")


def test_sigkill_then_up_leaves_exactly_one_set_of_processes_per_cluster(kept: KeptFleet):
    azure = kept.start()
    _wait("all three clusters adopted", kept.all_running_once, timeout=600)
    azure.kill()  # the clusters outlive it
    azure = kept.start()
    _wait("one set of processes per cluster", kept.all_running_once, timeout=600)
    time.sleep(2)
    assert kept.all_running_once(), kept.processes()

    # Killed in the middle of adoption: whatever it had started becomes a stray the next start ends.
    kept.down()
    azure = kept.start()
    _wait("a cluster process to start", kept.processes, timeout=120)
    os.kill(azure.endpoint.pid, signal.SIGKILL)
    _wait("the killed emulator to go", lambda: not azure.is_running(), timeout=30)
    kept.start()
    _wait("one set of processes per cluster after a kill mid-adoption", kept.all_running_once, timeout=600)
    time.sleep(2)
    assert kept.all_running_once(), kept.processes()
    kept.down()
    kept.assert_nothing_left("after the last local down")
