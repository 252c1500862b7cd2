"""The local demo end to end with real local Kubernetes clusters: reachability and node checks really run."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
import yaml
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

from console.local_mode import run_demo
from localazure import LocalAzure
from localazure.kube import available_versions
from tests.paths import REPO

pytestmark = [pytest.mark.cluster, pytest.mark.slow]


def two_region_spec(tmp_path: Path) -> Path:
    """fleet.yaml cut to two regions (one per update group) so two real control planes fit a small machine."""
    document = yaml.safe_load((REPO / "fleet.yaml").read_text())
    document.update(name="e2efleet", resource_group="rg-e2efleet", suffix="e2e001")
    document["regions"] = document["regions"][:2]
    path = tmp_path / "fleet.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def test_demo_runs_the_lifecycle_on_real_local_clusters(prefect_server, tmp_path, monkeypatch):
    if not available_versions():
        pytest.skip("no local Kubernetes binaries: localazure.kube.available_versions() is empty (run make tools)")
    monkeypatch.delenv("FLEETFLOW_TIME_SCALE", raising=False)
    state_dir = tmp_path / "local-azure"
    try:
        assert run_demo(state_dir, fleet=str(two_region_spec(tmp_path)), keep=False) == 0
        local = LocalAzure(state_dir)
        assert local.knobs()["clusters"] == "local"
        assert local.status()["resource_groups"] == []  # teardown left nothing
    finally:
        LocalAzure(state_dir).stop()

    async def checks() -> list[dict[str, str]]:
        async with get_client() as client:
            found = await client.read_artifacts(
                artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["validate-e2efleet"])))
            latest = max(found, key=lambda artifact: artifact.created)
            return json.loads(latest.data) if isinstance(latest.data, str) else latest.data

    rows = asyncio.run(checks())
    by_check: dict[str, list[str]] = {}
    for row in rows:
        by_check.setdefault(row["check"], []).append(row["result"])
    # With real clusters nothing is skipped: every cluster answered, its nodes are Ready, its version matches.
    assert by_check["reachable"] == ["passed", "passed"]
    assert by_check["nodes Ready"] == ["passed", "passed"]
    assert by_check["API server version"] == ["passed", "passed"]
    assert all(result == "passed" for results in by_check.values() for result in results)
