"""pytest plugin: one local Azure emulator per test session, plus SDK clients for it.

Loaded from tests/conftest.py (`pytest_plugins`). Fixtures:

- `local_azure` (session): a `LocalAzureSession` — emulator in ARM-only cluster mode with a small
  time scale, running in a temporary state directory; `.restart()` stops and starts it again.
- `azure_clients` (function): the admin's clients, built by tasks/clients.py (`EmulatorClients`).
- `fresh_name` (function): a unique, valid resource name prefix for the test.
- `knobs_restored` (function): restores the emulator's knobs after the test changes them.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from functools import cached_property
from pathlib import Path
from typing import Any

import pytest

from blocks.azure import AzureServicePrincipal
from localazure import Endpoint, LocalAzure
from tasks.clients import AzureClients

# Fast but not instant: an AKS create (240 Azure seconds) takes 0.24 s, so pollers really poll.
SESSION_KNOBS: dict[str, Any] = {"clusters": "arm-only", "time_scale": 0.001}


class EmulatorClients(AzureClients):
    """fleetflow's clients (tasks/clients.py) plus the management clients only the emulator's tests need."""

    @cached_property
    def registry(self) -> Any:
        """azure-mgmt-containerregistry: container registries."""
        from azure.mgmt.containerregistry import ContainerRegistryManagementClient

        return self.management_client(ContainerRegistryManagementClient)

    @cached_property
    def storage(self) -> Any:
        """azure-mgmt-storage: storage accounts."""
        from azure.mgmt.storage import StorageManagementClient

        return self.management_client(StorageManagementClient)


def principal_for(endpoint: Endpoint, client_id: str | None = None, client_secret: str | None = None,
                  tenant_id: str | None = None) -> AzureServicePrincipal:
    """A credentials block (unsaved) for an emulator's admin, or for another principal of it."""
    return AzureServicePrincipal(
        tenant_id=tenant_id or endpoint.tenant_id, client_id=client_id or endpoint.client_id,
        client_secret=client_secret or endpoint.client_secret, subscription_id=endpoint.subscription_id,
        authority_host=endpoint.authority_host, resource_manager_endpoint=endpoint.resource_manager_endpoint,
        ca_bundle=Path(endpoint.ca_bundle).read_text(),
    )


def clients_for(endpoint: Endpoint, client_id: str | None = None, client_secret: str | None = None,
                tenant_id: str | None = None, **client_options: Any) -> EmulatorClients:
    """New clients from tasks/clients.py for an emulator's admin (or another principal); keyword options override
    fleetflow's client defaults (`retry_total=0`, `api_version=…`)."""
    return EmulatorClients(principal_for(endpoint, client_id, client_secret, tenant_id), **client_options)


class LocalAzureSession:
    """The session's emulator: endpoint, clients, and restart."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.azure = LocalAzure.start(state_dir, **SESSION_KNOBS)

    @property
    def endpoint(self) -> Endpoint:
        """Current endpoint.json contents."""
        return self.azure.endpoint

    def clients(self, client_id: str | None = None, client_secret: str | None = None, tenant_id: str | None = None,
                **client_options: Any) -> EmulatorClients:
        """New clients for the admin (default) or the given principal; see `clients_for`."""
        return clients_for(self.endpoint, client_id, client_secret, tenant_id, **client_options)

    def credential(self, client_id: str | None = None, client_secret: str | None = None,
                   tenant_id: str | None = None) -> Any:
        """The token credential of the admin (default) or the given principal, as tasks/clients.py builds it."""
        return self.clients(client_id, client_secret, tenant_id).credential

    def restart(self, *, crash: bool = False, **knobs: Any) -> None:
        """Stop (SIGTERM, or SIGKILL with crash=True) and start again on the same state directory."""
        if crash:
            self.azure.kill()
        else:
            self.azure.stop()
        self.azure = LocalAzure.start(self.state_dir, **{**SESSION_KNOBS, **knobs})


@pytest.fixture(scope="session")
def local_azure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalAzureSession]:
    """One emulator for the whole test session (ARM-only clusters, time scale 0.001)."""
    session = LocalAzureSession(tmp_path_factory.mktemp("local-azure"))
    try:
        yield session
    finally:
        session.azure.stop()


@pytest.fixture
def azure_clients(local_azure: LocalAzureSession) -> EmulatorClients:
    """Admin SDK clients for the session emulator."""
    return local_azure.clients()


@pytest.fixture
def fresh_name(request: pytest.FixtureRequest) -> str:
    """A short unique name (letters, digits, dashes) for resources a test creates."""
    return f"t{uuid.uuid4().hex[:8]}"


@pytest.fixture
def knobs_restored(local_azure: LocalAzureSession) -> Iterator[LocalAzure]:
    """Yields the LocalAzure handle; whatever knobs the test sets are put back afterwards."""
    before = local_azure.azure.knobs()
    yield local_azure.azure
    local_azure.azure.set_knobs(**{k: v for k, v in before.items()})
