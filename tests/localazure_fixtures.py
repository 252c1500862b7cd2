"""pytest plugin: one local Azure emulator per test session, plus SDK clients for it.

Loaded from tests/conftest.py (`pytest_plugins`). Fixtures:

- `local_azure` (session): a `LocalAzureSession` — emulator in ARM-only cluster mode with a small
  time scale, running in a temporary state directory; `.restart()` stops and starts it again.
- `azure_clients` (function): admin `ArmClients` (resource, containerservice, authorization).
- `fresh_name` (function): a unique, valid resource name prefix for the test.
- `knobs_restored` (function): restores the emulator's knobs after the test changes them.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from localazure import Endpoint, LocalAzure

# Fast but not instant: an AKS create (240 Azure seconds) takes 0.24 s, so pollers really poll.
SESSION_KNOBS: dict[str, Any] = {"clusters": "arm-only", "time_scale": 0.001}


@dataclass
class ArmClients:
    """Real Azure SDK management clients bound to one principal."""

    resource: Any
    containerservice: Any
    authorization: Any
    credential: Any


class LocalAzureSession:
    """The session's emulator: endpoint, client factories, and restart."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.azure = LocalAzure.start(state_dir, **SESSION_KNOBS)

    @property
    def endpoint(self) -> Endpoint:
        """Current endpoint.json contents."""
        return self.azure.endpoint

    def credential(self, client_id: str | None = None, client_secret: str | None = None,
                   tenant_id: str | None = None) -> Any:
        """ClientSecretCredential for the admin or another principal."""
        return self.endpoint.credential(client_id, client_secret, tenant_id)

    def clients(self, credential: Any = None, **client_kwargs: Any) -> ArmClients:
        """Resource / ContainerService / Authorization clients for a credential (default: admin)."""
        from azure.mgmt.authorization import AuthorizationManagementClient
        from azure.mgmt.containerservice import ContainerServiceClient
        from azure.mgmt.resource.resources import ResourceManagementClient

        endpoint = self.endpoint
        credential = credential or self.credential()
        kwargs = {**endpoint.client_kwargs(), **client_kwargs}
        return ArmClients(
            resource=ResourceManagementClient(credential, endpoint.subscription_id, **kwargs),
            containerservice=ContainerServiceClient(credential, endpoint.subscription_id, **kwargs),
            authorization=AuthorizationManagementClient(credential, endpoint.subscription_id, **kwargs),
            credential=credential,
        )

    def registry_client(self, credential: Any = None) -> Any:
        """azure-mgmt-containerregistry client for a credential (default: admin)."""
        from azure.mgmt.containerregistry import ContainerRegistryManagementClient

        return ContainerRegistryManagementClient(credential or self.credential(), self.endpoint.subscription_id,
                                                 **self.endpoint.client_kwargs())

    def keyvault_client(self, credential: Any = None) -> Any:
        """azure-mgmt-keyvault client for a credential (default: admin)."""
        from azure.mgmt.keyvault import KeyVaultManagementClient

        return KeyVaultManagementClient(credential or self.credential(), self.endpoint.subscription_id,
                                        **self.endpoint.client_kwargs())

    def storage_client(self, credential: Any = None) -> Any:
        """azure-mgmt-storage client for a credential (default: admin)."""
        from azure.mgmt.storage import StorageManagementClient

        return StorageManagementClient(credential or self.credential(), self.endpoint.subscription_id,
                                       **self.endpoint.client_kwargs())

    def secret_client(self, vault_uri: str, credential: Any = None) -> Any:
        """azure-keyvault-secrets SecretClient for a vault's URI; only the CA bundle is passed."""
        from azure.keyvault.secrets import SecretClient

        return SecretClient(vault_uri, credential or self.credential(), connection_verify=self.endpoint.ca_bundle)

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
def azure_clients(local_azure: LocalAzureSession) -> ArmClients:
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
