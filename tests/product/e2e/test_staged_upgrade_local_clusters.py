"""staged-upgrade on real local Kubernetes clusters: prod's API servers change version only after approval."""

from __future__ import annotations

import asyncio
import contextvars
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client as kube
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
from prefect.client.schemas.sorting import ArtifactSort

from console.approvals import answer_pending_approval
from console.local_mode import save_local_blocks
from flows.join import join
from flows.provision import provision
from flows.staged_upgrade import staged_upgrade
from flows.teardown import teardown
from localazure import LocalAzure
from localazure.kube import available_versions
from tasks.aks import admin_kubeconfig
from tasks.clients import kubernetes_api_client, load_azure_clients
from tasks.spec import load_spec
from tasks.update_runs import view_run
from tests.fleet_fixtures import paused_run_for
from tests.paths import REPO

pytestmark = [pytest.mark.cluster, pytest.mark.slow,
              pytest.mark.skipif(len(available_versions()) < 2,
                                 reason="needs two built Kubernetes minors (make tools)")]


@pytest.fixture
def real_fleet(prefect_server, tmp_path: Path) -> Iterator[Path]:
    """A two-region fleet (one cluster per update group) on real local clusters, torn down afterwards."""
    document = yaml.safe_load((REPO / "fleet.yaml").read_text())
    document.update(name="upfleet", resource_group="rg-upfleet", suffix="up0001")
    document["regions"] = document["regions"][:2]
    document["update_strategy"]["stages"][0]["after_stage_wait_seconds"] = 100
    spec_path = tmp_path / "fleet.yaml"
    spec_path.write_text(yaml.safe_dump(document))
    state_dir = tmp_path / "local-azure"
    LocalAzure.start(state_dir, clusters="local", time_scale=0.01)
    try:
        save_local_blocks(state_dir, fleet=str(spec_path))
        assert provision(fleet=str(spec_path), return_state=True).is_completed()
        assert join(fleet=str(spec_path), return_state=True).is_completed()
        yield spec_path
        assert teardown(fleet=str(spec_path), return_state=True).is_completed()
    finally:
        LocalAzure(state_dir).stop()


def api_server_versions(spec_path: Path) -> dict[str, str]:
    """Each cluster's /version gitVersion, asked of its real API server with the admin kubeconfig."""
    spec = load_spec(spec_path)
    clients = load_azure_clients("fleetflow-azure")
    versions = {}
    for cluster in spec.clusters():
        with kubernetes_api_client(admin_kubeconfig(clients, spec, cluster)) as api:
            versions[cluster.update_group] = kube.VersionApi(api).get_code().git_version
    return versions


def test_prod_api_server_changes_version_only_after_the_approval(real_fleet):
    low, high = available_versions()[-2:]
    assert api_server_versions(real_fleet) == {"test-group": low, "prod-group": low}
    outcome: dict[str, Any] = {}
    context = contextvars.copy_context()
    thread = threading.Thread(target=lambda: outcome.update(state=context.run(
        staged_upgrade, fleet=str(real_fleet), upgrade_type="Full", kubernetes_version=high.lstrip("v"),
        poll_seconds=0.5, return_state=True)), daemon=True)
    thread.start()
    paused = paused_run_for(real_fleet, timeout=600)

    assert api_server_versions(real_fleet) == {"test-group": high, "prod-group": low}
    answer_pending_approval(str(paused.id), approve=True, comment="test cluster healthy", approver="ops")
    thread.join(timeout=900)
    assert outcome["state"].is_completed(), outcome["state"]
    assert api_server_versions(real_fleet) == {"test-group": high, "prod-group": high}


def set_upgrade_health(spec_path: Path, **fields: Any) -> None:
    document = yaml.safe_load(spec_path.read_text())
    document["upgrade_health"] = fields
    spec_path.write_text(yaml.safe_dump(document))


def newest_artifact(key: str) -> Any:
    """The data of the newest version of an artifact key."""
    async def read() -> Any:
        async with get_client() as client:
            found = await client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])),
                                                sort=ArtifactSort.CREATED_DESC, limit=1)
            return found[0].data if found else None
    data = asyncio.run(read())
    return json.loads(data) if isinstance(data, str) and data.startswith("[") else data


def test_an_unavailable_deployment_blocks_auto_approval_and_a_green_nightly_run_needs_nobody(real_fleet):
    set_upgrade_health(real_fleet, auto_approve=["NodeImageOnly"], settle_seconds=5)
    spec = load_spec(real_fleet)
    tested = next(cluster for cluster in spec.clusters() if cluster.update_group == "test-group")
    kubeconfig = admin_kubeconfig(load_azure_clients("fleetflow-azure"), spec, tested)
    nightly = {"fleet": str(real_fleet), "upgrade_type": "NodeImageOnly", "node_image_selection": "Consistent",
               "poll_seconds": 0.5}

    # A Deployment pinned to one node of the test cluster: the stage's node-image roll replaces that node, so the
    # stage leaves the Deployment unavailable.
    with kubernetes_api_client(kubeconfig) as api:
        node = kube.CoreV1Api(api).list_node().items[0].metadata.name
        labels = {"app": "pinned"}
        kube.AppsV1Api(api).create_namespaced_deployment("default", {
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "pinned"},
            "spec": {"replicas": 1, "selector": {"matchLabels": labels}, "template": {
                "metadata": {"labels": labels},
                "spec": {"nodeSelector": {"kubernetes.io/hostname": node},
                         "containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10"}]}}}})
        deadline = time.monotonic() + 120
        while (kube.AppsV1Api(api).read_namespaced_deployment("pinned", "default").status.available_replicas or 0) < 1:
            assert time.monotonic() < deadline, "the pinned Deployment never became available before the upgrade"
            time.sleep(0.5)

    outcome: dict[str, Any] = {}
    context = contextvars.copy_context()
    thread = threading.Thread(target=lambda: outcome.update(state=context.run(
        staged_upgrade, **nightly, return_state=True)), daemon=True)
    thread.start()
    paused = paused_run_for(real_fleet, timeout=600)  # the policy did not approve: a human is asked

    report = newest_artifact(f"upgrade-approval-{spec.name}")
    row = f"| {tested.name} | workloads available | Deployment default/pinned | failed | Progressing: 0/1 available |"
    assert row in report, report
    assert "the auto-approve policy for NodeImageOnly did not approve: 1 check(s) failed on stage `stage1`" in report
    health = newest_artifact(f"upgrade-health-{spec.name}")
    assert [(row["cluster"], row["object"]) for row in health if row["result"] == "failed"] == [
        (tested.name, "Deployment default/pinned")], health
    answer_pending_approval(str(paused.id), approve=False, comment="pinned app down on the test cluster",
                            approver="ops")
    thread.join(timeout=300)
    assert outcome["state"].is_failed() and "rejected by ops" in outcome["state"].message

    # Green: with the broken app gone, the nightly run goes through both stages without a human.
    with kubernetes_api_client(kubeconfig) as api:
        kube.AppsV1Api(api).delete_namespaced_deployment("pinned", "default")
    started = time.monotonic()
    state = staged_upgrade(**nightly, approval_timeout_seconds=60, return_state=True)
    assert state.is_completed(), state.message
    print(f"green nightly run: {time.monotonic() - started:.1f}s without a human")
    report = newest_artifact(f"upgrade-approval-{spec.name}")
    assert "approved by the auto-approve policy: upgrade type NodeImageOnly is listed" in report, report
    assert "all checks passed" in report
    runs = load_azure_clients("fleetflow-azure").fleet.update_runs.list_by_fleet(spec.resource_group_name, spec.name)
    assert sorted(view_run(run).state for run in runs) == ["Completed", "Stopped"]
