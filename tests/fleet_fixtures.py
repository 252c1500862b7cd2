"""pytest plugin: a provisioned and joined fleet on the session's local Azure, and ways to watch it.

Fixtures: `fleet` (a fresh three-region fleet made by the provision and join flows).
Helpers: `write_spec`, `paused_run_for`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterState, FlowRunFilterStateType
from prefect.client.schemas.objects import FlowRun, StateType

from console.local_mode import save_local_blocks
from flows.join import join
from flows.provision import provision
from flows.teardown import teardown
from tasks.clients import load_azure_clients
from tasks.spec import FleetSpec, load_spec
from tests.paths import REPO


class FleetUnderTest:
    """A provisioned and joined fleet with its own name, and ways to observe it."""

    def __init__(self, spec_path: Path, spec: FleetSpec):
        self.spec_path = spec_path
        self.spec = spec
        self.clients = load_azure_clients("fleetflow-azure")

    def versions(self) -> dict[str, str]:
        """Cluster name -> current Kubernetes version."""
        clusters = self.clients.containerservice.managed_clusters.list_by_resource_group(self.spec.resource_group_name)
        return {c.name: c.current_kubernetes_version for c in clusters}

    def node_images(self) -> dict[str, set[str]]:
        """Cluster name -> node image versions of its pools."""
        clusters = self.clients.containerservice.managed_clusters.list_by_resource_group(self.spec.resource_group_name)
        return {c.name: {p.node_image_version for p in c.agent_pool_profiles or []} for c in clusters}

    def group_of(self, group: str) -> list[str]:
        """Cluster names in an update group."""
        return [c.name for c in self.spec.clusters() if c.update_group == group]

    def update_runs(self) -> list[Any]:
        """Every update run of the fleet."""
        return list(self.clients.fleet.update_runs.list_by_fleet(self.spec.resource_group_name, self.spec.name))


def write_spec(tmp_path: Path, name: str, wait_seconds: int = 2000) -> Path:
    document = yaml.safe_load((REPO / "fleet.yaml").read_text())
    document.update(name=name, resource_group=f"rg-{name}", suffix=name[-6:])
    document["update_strategy"]["stages"][0]["after_stage_wait_seconds"] = wait_seconds
    path = tmp_path / "fleet.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


@pytest.fixture
def fleet(local_azure, prefect_server, tmp_path, fresh_name) -> Iterator[FleetUnderTest]:
    """A fresh three-region fleet, provisioned and joined through the flows, torn down afterwards.

    The session's emulator and service-operator principal are shared, so the teardown matters: it removes
    this fleet's role assignment, which other tests count.
    """
    spec_path = write_spec(tmp_path, f"up{fresh_name}")
    save_local_blocks(local_azure.state_dir, fleet=str(spec_path))
    assert provision(fleet=str(spec_path), return_state=True).is_completed()
    assert join(fleet=str(spec_path), return_state=True).is_completed()
    yield FleetUnderTest(spec_path, load_spec(spec_path))
    removed = teardown(fleet=str(spec_path), force=True, return_state=True)
    assert removed.is_completed(), removed.message


def paused_run_for(spec_path: Path, timeout: float = 90.0, exclude: frozenset[Any] = frozenset()) -> FlowRun:
    """Wait until a staged-upgrade run of this spec (not one of `exclude`) is paused at a gate."""
    async def find() -> list[FlowRun]:
        async with get_client() as client:
            return await client.read_flow_runs(flow_run_filter=FlowRunFilter(
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.PAUSED]))))

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for run in asyncio.run(find()):
            if run.parameters.get("fleet") == str(spec_path) and run.id not in exclude:
                return run
        time.sleep(0.5)
    raise AssertionError(f"no paused staged-upgrade run for {spec_path} within {timeout}s")
