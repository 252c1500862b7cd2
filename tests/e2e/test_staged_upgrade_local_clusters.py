"""staged-upgrade on real local Kubernetes clusters: prod's API servers change version only after approval."""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client as kube

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
from tests.fleet_fixtures import paused_run_for

REPO = Path(__file__).resolve().parents[2]
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
