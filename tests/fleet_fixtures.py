"""pytest plugin: a provisioned and joined fleet on the session's local Azure, and ways to watch it.

Fixtures: `fleet` (a fresh three-region fleet made by the provision and join flows), `new_fleet` (the same,
not yet provisioned).
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

from blocks.azure import AzureServicePrincipal
from console.local_mode import save_local_blocks
from flows.join import join
from flows.provision import provision
from flows.teardown import teardown
from tasks.clients import load_azure_clients
from tasks.spec import FleetSpec, load_spec
from tests.paths import REPO


class FleetUnderTest:
    """A fleet spec of its own (unique names) with the local blocks saved for it, and ways to observe it in
    Azure: through tasks/clients.py, and the emulator's record of operations through its admin endpoint."""

    def __init__(self, local_azure: Any, spec_path: Path):
        self.local_azure = local_azure
        self.spec_path = spec_path
        self.path = str(spec_path)
        self.spec: FleetSpec = load_spec(spec_path)
        self.clients = load_azure_clients("fleetflow-azure")

    @property
    def group(self) -> str:
        """The fleet's resource group."""
        return self.spec.resource_group_name

    def group_exists(self) -> bool:
        """Whether the fleet's resource group exists."""
        return bool(self.clients.resource.resource_groups.check_existence(self.group))

    def clusters(self) -> dict[str, Any]:
        """Cluster name -> managed cluster, empty once the group is gone."""
        if not self.group_exists():
            return {}
        return {c.name: c for c in self.clients.containerservice.managed_clusters.list_by_resource_group(self.group)}

    def versions(self) -> dict[str, str]:
        """Cluster name -> current Kubernetes version."""
        return {name: c.current_kubernetes_version for name, c in self.clusters().items()}

    def node_images(self) -> dict[str, set[str]]:
        """Cluster name -> node image versions of its pools."""
        clusters = self.clusters()
        return {name: {p.node_image_version for p in c.agent_pool_profiles or []} for name, c in clusters.items()}

    def members(self) -> dict[str, Any]:
        """Member name -> fleet member."""
        return {m.name: m for m in self.clients.fleet.fleet_members.list_by_fleet(self.group, self.spec.name)}

    def group_of(self, group: str) -> list[str]:
        """Cluster names in an update group."""
        return [c.name for c in self.spec.clusters() if c.update_group == group]

    def update_runs(self) -> list[Any]:
        """Every update run of the fleet."""
        return list(self.clients.fleet.update_runs.list_by_fleet(self.group, self.spec.name))

    def operations(self) -> list[dict[str, Any]]:
        """The emulator's record of long-running operations in the fleet's group (every create, update and
        delete it started), oldest first."""
        scope = f"/subscriptions/{self.clients.subscription_id}/resourceGroups/{self.group}"
        return self.local_azure.azure.operations(scope)

    def operator_object_id(self) -> str:
        """Object id of the service operator's principal."""
        block = AzureServicePrincipal.load(self.spec.service_operator.credentials_block)
        return str(block.object_id)

    def operator_assignments(self) -> list[Any]:
        """Every role assignment of the service operator's principal, anywhere in the subscription."""
        principal = self.operator_object_id()
        return [a for a in self.clients.authorization.role_assignments.list_for_subscription()
                if a.principal_id == principal]


def write_spec(tmp_path: Path, name: str, wait_seconds: int | None = 2000) -> Path:
    """fleet.yaml under unique names (`name`, `rg-<name>`); `wait_seconds` replaces the first stage's wait after
    it (long by default, so that a staged upgrade pauses there), None keeps fleet.yaml's."""
    document = yaml.safe_load((REPO / "fleet.yaml").read_text())
    document.update(name=name, resource_group=f"rg-{name}", suffix=name[-6:])
    if wait_seconds is not None:
        document["update_strategy"]["stages"][0]["after_stage_wait_seconds"] = wait_seconds
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


@pytest.fixture
def new_fleet(local_azure, prefect_server, tmp_path, fresh_name) -> Iterator[FleetUnderTest]:
    """A fresh three-region spec with the local blocks saved for it, not yet provisioned; torn down afterwards
    if anything was made."""
    path = write_spec(tmp_path, f"lf{fresh_name}", wait_seconds=None)
    save_local_blocks(local_azure.state_dir, fleet=str(path))
    under_test = FleetUnderTest(local_azure, path)
    yield under_test
    if under_test.group_exists():
        teardown(fleet=under_test.path, force=True, return_state=True)


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
    yield FleetUnderTest(local_azure, spec_path)
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
