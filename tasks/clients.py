"""The one place fleetflow builds Azure credentials and clients, for Azure or any custom endpoint.

Clients are built once per credentials block and process (the Azure SDK guidelines: clients are
long-lived and thread-safe). Kubernetes clients come from kubeconfigs fetched at run time and are
kept in memory; where a tool needs a file, it gets a 0600 temporary file removed after use.
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from functools import cached_property
from pathlib import Path
from typing import Any, TypeVar

import requests
import yaml
from azure.core.pipeline.transport import RequestsTransport
from azure.identity import ClientSecretCredential
from azure.keyvault.secrets import SecretClient
from azure.mgmt.authorization import AuthorizationManagementClient
from azure.mgmt.containerservice import ContainerServiceClient
from azure.mgmt.containerservicefleet import ContainerServiceFleetMgmtClient
from azure.mgmt.keyvault import KeyVaultManagementClient
from azure.mgmt.resource.resources import ResourceManagementClient
from kubernetes import client as kube_client
from kubernetes import config as kube_config
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from blocks.azure import AzureServicePrincipal
from tasks.arm_budget import WriteBudgetPolicy

# Transient failures (429 honouring Retry-After, 5xx, connection resets) are retried here, in the
# SDK's retry policy, so that no task needs a retry loop of its own for them.
# Connections kept open per host: enough for a hundred clusters' tasks calling Resource Manager at once.
HTTP_CONNECTIONS_PER_HOST = 128

RETRY_OPTIONS: dict[str, Any] = {
    "retry_total": 8,
    "retry_backoff_factor": 0.5,
    "retry_backoff_max": 60,
    "retry_connect": 5,
    "retry_read": 5,
    "retry_status": 8,
}

ManagementClient = TypeVar("ManagementClient")

_ca_files_lock = threading.Lock()
_ca_files: dict[str, str] = {}


def _ca_bundle_path(pem: str) -> str:
    """A file holding the PEM (the SDK transports need a path); one per distinct bundle per process."""
    digest = hashlib.sha256(pem.encode()).hexdigest()[:16]
    with _ca_files_lock:
        if digest not in _ca_files:
            directory = Path(tempfile.gettempdir()) / f"fleetflow-ca-{os.getuid()}"
            directory.mkdir(mode=0o700, exist_ok=True)
            path = directory / f"{digest}.pem"
            path.write_text(pem)
            _ca_files[digest] = str(path)
        return _ca_files[digest]


class _NamedCredential(ClientSecretCredential):
    """A ClientSecretCredential whose failures say which token endpoint they came from (tasks/retry.py
    reads it to name the endpoint and to tell a refused connection from refused credentials)."""

    def __init__(self, *args: Any, authority: str, **kwargs: Any) -> None:
        super().__init__(*args, authority=authority, **kwargs)
        self._token_endpoint = authority

    def _named(self, error: Exception) -> None:
        with contextlib.suppress(AttributeError):
            error.fleetflow_token_endpoint = self._token_endpoint  # type: ignore[attr-defined]

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        try:
            return super().get_token(*scopes, **kwargs)
        except Exception as error:
            self._named(error)
            raise

    def get_token_info(self, *scopes: str, options: Any = None) -> Any:
        try:
            return super().get_token_info(*scopes, options=options)
        except Exception as error:
            self._named(error)
            raise


class AzureClients:
    """Credential and management clients for one service principal and endpoint.

    Keyword options (any azure-core client option: `retry_total`, `api_version`, `credential_scopes`, …) override
    fleetflow's defaults for every client built here.
    """

    def __init__(self, principal: AzureServicePrincipal, **client_options: Any):
        self.principal = principal
        self.subscription_id = principal.subscription_id
        self.endpoint = principal.effective_resource_manager_endpoint
        self._client_overrides = client_options

    @cached_property
    def _transport_options(self) -> dict[str, Any]:
        if self.principal.ca_bundle:
            return {"connection_verify": _ca_bundle_path(self.principal.ca_bundle)}
        return {}

    @cached_property
    def credential(self) -> ClientSecretCredential:
        """The service principal's token credential."""
        return _NamedCredential(
            tenant_id=self.principal.tenant_id,
            client_id=self.principal.client_id,
            client_secret=self.principal.client_secret.get_secret_value(),
            authority=self.principal.effective_authority_host,
            # Instance discovery only knows Microsoft's own clouds; a custom authority is trusted as given.
            disable_instance_discovery=not self.principal.is_public_cloud,
            **self._transport_options,
        )

    def _client_options(self) -> dict[str, Any]:
        return {
            "base_url": self.endpoint,
            "credential_scopes": [f"{self.endpoint}/.default"],
            # Every write takes a slot of the subscription's shared write budget first (tasks/arm_budget.py).
            "per_call_policies": [WriteBudgetPolicy(self.subscription_id)],
            **RETRY_OPTIONS,
            "transport": RequestsTransport(session=self._http_session, session_owner=False, **self._transport_options),
            **self._client_overrides,
        }

    @cached_property
    def _http_session(self) -> requests.Session:
        # One connection pool for every management client of this principal, as wide as a fleet's fan-out:
        # requests keeps 10 connections per host by default, so the 11th concurrent task would open (and
        # TLS-handshake) a new connection on every call and throw it away after.
        session = requests.Session()
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=HTTP_CONNECTIONS_PER_HOST,
                              max_retries=Retry(total=False, redirect=False, raise_on_status=False))
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        return session

    def management_client(self, client_type: type[ManagementClient]) -> ManagementClient:
        """A new azure-mgmt-* client of any type for this principal and endpoint, on fleetflow's pipeline (retries,
        the shared write budget, the endpoint's CA bundle); the caller closes it."""
        return client_type(self.credential, self.subscription_id, **self._client_options())  # type: ignore[call-arg]

    @cached_property
    def resource(self) -> ResourceManagementClient:
        """Resource groups and generic resources."""
        return self.management_client(ResourceManagementClient)

    @cached_property
    def containerservice(self) -> ContainerServiceClient:
        """AKS managed clusters and agent pools."""
        return self.management_client(ContainerServiceClient)

    @cached_property
    def fleet(self) -> ContainerServiceFleetMgmtClient:
        """Fleet Manager fleets, members, update strategies, update runs and gates."""
        return self.management_client(ContainerServiceFleetMgmtClient)

    @cached_property
    def keyvault(self) -> KeyVaultManagementClient:
        """Key vaults, including soft-deleted ones."""
        return self.management_client(KeyVaultManagementClient)

    @cached_property
    def authorization(self) -> AuthorizationManagementClient:
        """Role definitions and role assignments."""
        return self.management_client(AuthorizationManagementClient)

    def secret_client(self, vault_url: str) -> SecretClient:
        """A Key Vault secrets client for one vault (its data plane; the vault's challenge names the audience)."""
        with _clients_lock:
            existing = self._secret_clients.get(vault_url)
            if existing is None:
                existing = SecretClient(vault_url, self.credential, **RETRY_OPTIONS, **self._transport_options)
                self._secret_clients[vault_url] = existing
            return existing

    @cached_property
    def _secret_clients(self) -> dict[str, SecretClient]:
        return {}

    def close(self) -> None:
        """Close every client built so far and the credential."""
        for client in self.__dict__.pop("_secret_clients", {}).values():
            client.close()
        for name in ("resource", "containerservice", "fleet", "keyvault", "authorization", "credential"):
            if name in self.__dict__:
                self.__dict__.pop(name).close()
        if "_http_session" in self.__dict__:
            self.__dict__.pop("_http_session").close()


_clients_lock = threading.Lock()
_clients_by_block: dict[str, AzureClients] = {}


def azure_clients(principal: AzureServicePrincipal) -> AzureClients:
    """The process-wide clients for a credentials block (built on first use)."""
    key = hashlib.sha256(
        "|".join(
            [
                principal.tenant_id,
                principal.client_id,
                principal.client_secret.get_secret_value(),
                principal.subscription_id,
                principal.effective_authority_host,
                principal.effective_resource_manager_endpoint,
                principal.ca_bundle or "",
            ]
        ).encode()
    ).hexdigest()
    with _clients_lock:
        if key not in _clients_by_block:
            _clients_by_block[key] = AzureClients(principal)
        return _clients_by_block[key]


# Credentials blocks read in this process, per (flow run, block name): a fleet's tasks run as threads of one flow
# run, and reading the block (an API call, decryption, Prefect's block-type bookkeeping) once per task costs more
# than the Azure call it serves once a fleet has a hundred clusters. Bounded: a worker process lives for many runs.
_RUN_BLOCKS_KEPT = 64
_run_blocks_lock = threading.Lock()
_run_blocks: collections.OrderedDict[tuple[str, str], AzureServicePrincipal] = collections.OrderedDict()
_run_block_locks: dict[tuple[str, str], threading.Lock] = {}


def _flow_run_id() -> str | None:
    from prefect.context import FlowRunContext, TaskRunContext

    task_run = TaskRunContext.get()
    if task_run is not None and task_run.task_run.flow_run_id is not None:
        return str(task_run.task_run.flow_run_id)
    flow_run = FlowRunContext.get()
    if flow_run is not None and flow_run.flow_run is not None:
        return str(flow_run.flow_run.id)
    return None


def load_credentials_block(block_name: str) -> AzureServicePrincipal:
    """A saved credentials block, read once per flow run (every task of the run gets the same one; a secret
    rotated during a run takes effect from the next run). Outside a flow run, read on every call."""
    run_id = _flow_run_id()
    if run_id is None:
        return AzureServicePrincipal.load(block_name)  # type: ignore[return-value]
    key = (run_id, block_name)
    with _run_blocks_lock:
        if key in _run_blocks:
            return _run_blocks[key]
        key_lock = _run_block_locks.setdefault(key, threading.Lock())
    with key_lock:  # one thread reads the block; the run's other tasks wait for it
        with _run_blocks_lock:
            if key in _run_blocks:
                return _run_blocks[key]
        principal: AzureServicePrincipal = AzureServicePrincipal.load(block_name)  # type: ignore[assignment]
        with _run_blocks_lock:
            _run_blocks[key] = principal
            while len(_run_blocks) > _RUN_BLOCKS_KEPT:
                evicted, _ = _run_blocks.popitem(last=False)
                _run_block_locks.pop(evicted, None)
        return principal


def load_azure_clients(block_name: str) -> AzureClients:
    """The clients of a saved credentials block (the block read once per flow run, the clients once per process
    and principal)."""
    return azure_clients(load_credentials_block(block_name))


@contextlib.contextmanager
def kubernetes_api_client(kubeconfig: str) -> Iterator[kube_client.ApiClient]:
    """A Kubernetes API client for a kubeconfig held in memory (YAML text), for the `with` block only.

    The client library needs the CA, client certificate and key as files; they go to a private 0700
    directory that is removed, with the library's cache entries for it, when the block ends.
    """
    directory = tempfile.mkdtemp(prefix="fleetflow-kube-")
    api = kube_config.new_client_from_config_dict(yaml.safe_load(kubeconfig), temp_file_path=directory)
    try:
        yield api
    finally:
        api.close()
        cache = getattr(kube_config, "_temp_files", {})
        for key in [key for key, path in cache.items() if str(path).startswith(directory + os.sep)]:
            cache.pop(key, None)
        shutil.rmtree(directory, ignore_errors=True)


@contextlib.contextmanager
def kubeconfig_file(kubeconfig: str) -> Iterator[str]:
    """A 0600 temporary kubeconfig file for tools that need a path (helm); removed on exit."""
    descriptor, path = tempfile.mkstemp(prefix="fleetflow-kubeconfig-", suffix=".yaml")
    try:
        with os.fdopen(descriptor, "w") as handle:
            handle.write(kubeconfig)
        yield path
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
