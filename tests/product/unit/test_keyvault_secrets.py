"""Key Vault secrets written from Prefect Secret blocks, and the purge of a deleted vault, against in-memory Azure
clients: what is written, what each outcome says, and that no error or log line carries a secret value."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from tasks import keyvault
from tasks.retry import FleetflowError
from tasks.spec import FleetSpec
from tests.product.unit.test_retry import _Response

SPEC = FleetSpec.model_validate({
    "name": "demo", "location": "eastus", "suffix": "abc123",
    "regions": [{"name": "eastus", "update_group": "g"}],
    "update_strategy": {"stages": [{"name": "s", "groups": ["g"]}]},
    "gitops": {"repository": ".", "key_vault_secrets": {"db-password": "db-block", "api-key": "api-block"}},
})
VAULT = "/subscriptions/sub/resourceGroups/rg-demo-abc123/providers/Microsoft.KeyVault/vaults/kv-demo-abc123"
URI = "https://kv-demo-abc123.vault.azure.net/"
VALUES = {"db-block": "s3cret-db", "api-block": "s3cret-api"}


class _Logger:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def info(self, message: str, *args: Any) -> None:
        self.lines.append(message % args)

    warning = info


class _Secrets:
    def __init__(self, stored: dict[str, str], fail: Exception | None = None) -> None:
        self.stored, self.fail = stored, fail
        self.writes: list[tuple[str, str, dict[str, str]]] = []

    def get_secret(self, name: str) -> Any:
        if name not in self.stored:
            raise ResourceNotFoundError("SecretNotFound")
        return SimpleNamespace(value=self.stored[name])

    def set_secret(self, name: str, value: str, tags: dict[str, str]) -> Any:
        if self.fail is not None:
            raise self.fail
        self.writes.append((name, value, tags))
        return SimpleNamespace(properties=SimpleNamespace(version=f"v-{name}"))


class _Block:
    def __init__(self, value: Any) -> None:
        self.value = value

    def get(self) -> Any:
        return self.value


@pytest.fixture
def azure(monkeypatch):
    state = SimpleNamespace(vault_uri=URI, object_id="principal-1", stored={"api-key": "s3cret-api"}, fail=None,
                            grants=[], logger=_Logger(), blocks=dict(VALUES), uris=[], gets=[])
    state.secrets = _Secrets(state.stored)

    def get_by_id(resource_id: str, api_version: str) -> Any:
        state.gets.append((resource_id, api_version))
        return SimpleNamespace(properties={"vaultUri": state.vault_uri} if state.vault_uri is not None else None)

    def secret_client(uri: str) -> _Secrets:
        state.uris.append(uri)
        state.secrets.fail = state.fail
        return state.secrets

    clients = SimpleNamespace(subscription_id="sub", principal=SimpleNamespace(object_id=None),
                              resource=SimpleNamespace(resources=SimpleNamespace(get_by_id=get_by_id)),
                              secret_client=secret_client)

    def load(block_name: str) -> _Block:
        if block_name not in state.blocks:
            raise ValueError(f"Unable to find block document named {block_name}")
        return _Block(state.blocks[block_name])

    def load_clients(credentials_block: str) -> Any:
        assert credentials_block == "creds"
        clients.principal.object_id = state.object_id
        return clients

    monkeypatch.setattr(keyvault, "load_azure_clients", load_clients)
    monkeypatch.setattr(keyvault, "get_run_logger", lambda: state.logger)
    monkeypatch.setattr(keyvault, "grant_role", lambda clients, **kwargs: state.grants.append(kwargs))
    monkeypatch.setattr(keyvault.Secret, "load", staticmethod(load))
    return state


def write() -> list[dict[str, Any]]:
    return keyvault.write_key_vault_secrets.fn(SPEC, "creds")  # type: ignore[return-value]


def test_secrets_are_written_from_their_blocks_only_when_changed_after_granting_fleetflow_the_officer_role(azure):
    assert keyvault.vault_id("sub", SPEC) == VAULT
    outcomes = write()
    assert azure.gets == [(VAULT, "2023-07-01")]
    assert azure.grants == [{"scope": VAULT, "principal_id": "principal-1",
                             "role": "b86a8fe4-44ce-4948-aee5-eccb2c155cd7", "region": "eastus",
                             "what": "fleetflow"}]
    assert azure.uris == [URI]
    assert azure.secrets.writes == [("db-password", "s3cret-db", {"fleetflow-source": "db-block"})]
    assert outcomes == [
        {"resource_id": URI + "secrets/api-key", "kind": "key vault secret", "region": None, "action": "unchanged",
         "detail": "from block api-block"},
        {"resource_id": URI + "secrets/db-password", "kind": "key vault secret", "region": None,
         "action": "created", "detail": "from block db-block, version v-db-password"}]
    assert azure.logger.lines == ["key vault secret db-password created from block db-block (version v-db-password)"]


def test_a_changed_value_is_a_new_version_and_no_principal_means_no_grant(azure):
    azure.stored.update({"api-key": "old", "db-password": "s3cret-db"})
    azure.object_id = ""
    outcomes = write()
    assert azure.grants == []
    assert [(o["resource_id"], o["action"], o["detail"]) for o in outcomes] == [
        (URI + "secrets/api-key", "updated", "from block api-block, version v-api-key"),
        (URI + "secrets/db-password", "unchanged", "from block db-block")]


@pytest.mark.parametrize("uri", [None, ""], ids=["no properties", "no uri"])
def test_a_vault_without_its_uri_yet_is_a_retryable_failure(azure, uri):
    azure.vault_uri = uri
    with pytest.raises(FleetflowError) as raised:
        write()
    assert str(raised.value) == f"key vault {VAULT} has no vaultUri yet"
    assert (raised.value.operation, raised.value.resource_id, raised.value.retryable) == (
        "read key vault", VAULT, True)


@pytest.mark.parametrize(("blocks", "message", "block"), [
    ({"db-block": "x"}, "Key Vault secret api-key: Prefect Secret block 'api-block' does not exist; create it "
     "(Blocks > Secret in the UI) or fix gitops.key_vault_secrets", "api-block"),
    ({"api-block": "", "db-block": "x"}, "Key Vault secret api-key: Prefect Secret block 'api-block' holds no text "
     "value", "api-block"),
    ({"api-block": {"a": "b"}, "db-block": "x"}, "Key Vault secret api-key: Prefect Secret block 'api-block' holds "
     "no text value", "api-block"),
], ids=["missing block", "empty value", "not text"])
def test_a_block_that_cannot_give_the_value_is_named_with_the_secret(azure, blocks, message: str, block: str):
    azure.blocks = blocks
    with pytest.raises(FleetflowError) as raised:
        write()
    assert str(raised.value) == message
    assert (raised.value.operation, raised.value.resource_id, raised.value.retryable) == (
        "read secret block", block, False)


def _http_error(status: int, code: str | None) -> HttpResponseError:
    body = {"error": {"code": code, "message": "echo: s3cret-db"}} if code else {}
    return HttpResponseError(response=_Response(status, body))


@pytest.mark.parametrize(("error", "text", "retryable"), [
    (_http_error(403, "Forbidden"), "403 Forbidden", False),
    (_http_error(429, "Throttled"), "429 Throttled", True),
    (_http_error(500, None), "500 reason", True),
    (_http_error(499, "Odd"), "499 Odd", False),
], ids=["forbidden", "throttled", "server error without code", "client error"])
def test_a_failed_write_names_the_secret_and_azures_code_never_the_value(azure, error, text: str, retryable: bool):
    azure.fail = error
    with pytest.raises(FleetflowError) as raised:
        write()
    secret_id = URI + "secrets/db-password"
    assert type(raised.value) is FleetflowError  # passed through azure_call unchanged
    assert str(raised.value) == f"set key vault secret {secret_id} failed: {text}"
    assert (raised.value.operation, raised.value.resource_id, raised.value.retryable) == (
        "set key vault secret", secret_id, retryable)
    assert raised.value.__cause__ is None and raised.value.__suppress_context__  # Azure's echo of the request dropped


class _Vaults:
    def __init__(self, deleted: Any) -> None:
        self.deleted = deleted
        self.calls: list[tuple[str, str, str]] = []

    def get_deleted(self, name: str, location: str) -> Any:
        self.calls.append(("get_deleted", name, location))
        if self.deleted is None:
            raise ResourceNotFoundError("gone")
        return self.deleted

    def begin_purge_deleted(self, name: str, location: str) -> Any:
        self.calls.append(("purge", name, location))
        return SimpleNamespace(result=lambda: None)


@pytest.mark.parametrize(("deleted", "expected", "calls", "logged"), [
    (None, ("absent", ""), ["get_deleted"], []),
    (SimpleNamespace(properties=SimpleNamespace(purge_protection_enabled=True, scheduled_purge_date="2027-03-01")),
     ("kept", "purge protection: Azure purges it when its retention ends"), ["get_deleted"],
     ["key vault kv-demo-abc123 is soft-deleted with purge protection; Azure purges it on 2027-03-01"]),
    (SimpleNamespace(properties=SimpleNamespace(purge_protection_enabled=False)), ("deleted", "purged"),
     ["get_deleted", "purge"], ["purged the soft-deleted key vault kv-demo-abc123"]),
    (SimpleNamespace(properties=None), ("deleted", "purged"), ["get_deleted", "purge"],
     ["purged the soft-deleted key vault kv-demo-abc123"]),
], ids=["never deleted", "purge protection", "purged", "purged without properties"])
def test_a_deleted_vault_is_purged_unless_protected(azure, monkeypatch, deleted, expected, calls, logged):
    vaults = _Vaults(deleted)
    monkeypatch.setattr(keyvault, "load_azure_clients", lambda block: SimpleNamespace(
        subscription_id="sub", keyvault=SimpleNamespace(vaults=vaults)))
    result = keyvault.purge_deleted_vault.fn(SPEC, "creds")
    assert result == {"resource_id": VAULT, "kind": "deleted key vault", "region": None, "action": expected[0],
                      "detail": expected[1]}
    assert vaults.calls == [(name, "kv-demo-abc123", "eastus") for name in calls]
    assert azure.logger.lines == logged
