"""Failures are classified by cause against a real token endpoint and Resource Manager (local Azure)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from blocks.azure import AzureServicePrincipal
from tasks.clients import AzureClients
from tasks.retry import AzureOperationError, azure_call

pytestmark = pytest.mark.emulator


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _principal(local_azure, **changes) -> AzureServicePrincipal:
    endpoint = local_azure.endpoint
    fields = dict(tenant_id=endpoint.tenant_id, client_id=endpoint.client_id, client_secret=endpoint.client_secret,
                  subscription_id=endpoint.subscription_id, authority_host=endpoint.authority_host,
                  resource_manager_endpoint=endpoint.resource_manager_endpoint,
                  ca_bundle=Path(endpoint.ca_bundle).read_text())
    fields.update(changes)
    return AzureServicePrincipal(**fields)


def _failure(principal: AzureServicePrincipal) -> AzureOperationError:
    clients = AzureClients(principal)
    try:
        with pytest.raises(AzureOperationError) as raised, azure_call("read resource group", "/rg", "eastus"):
            clients.resource.resource_groups.get("absent-group-for-a-probe")
    finally:
        clients.close()
    return raised.value


def test_a_refused_connection_to_the_token_endpoint_is_transient_and_named(local_azure):
    authority = f"https://127.0.0.1:{_closed_port()}"
    error = _failure(_principal(local_azure, authority_host=authority))
    assert error.retryable
    assert f"connection refused by token endpoint {authority}" in str(error)


def test_a_refused_connection_to_resource_manager_is_transient_and_named(local_azure):
    port = _closed_port()
    error = _failure(_principal(local_azure, resource_manager_endpoint=f"https://127.0.0.1:{port}"))
    assert error.retryable
    assert "connection refused by" in str(error) and f"127.0.0.1:{port}" in str(error)


@pytest.mark.parametrize(("changes", "what"), [
    ({"client_secret": "not-the-secret"}, "wrong client secret"),
    ({"client_id": "00000000-0000-0000-0000-00000000abcd"}, "unknown client id"),
])
def test_refused_credentials_are_permanent_and_say_which(local_azure, changes, what):
    error = _failure(_principal(local_azure, **changes))
    assert not error.retryable
    assert f"permanent: token endpoint {local_azure.endpoint.authority_host}" in str(error)
    assert what in str(error)
