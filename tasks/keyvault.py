"""Key Vault secrets from Prefect Secret blocks: written once the vault exists, a new version only on change.

Values travel from the Secret block to the vault's data plane and nowhere else: not in Git, logs,
parameters, artifacts or exceptions (errors name the secret and the block, never the value).
"""

from __future__ import annotations

from typing import Any

from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from prefect import get_run_logger
from prefect.blocks.system import Secret

from tasks.clients import load_azure_clients
from tasks.ownership import Action, Outcome, outcome
from tasks.rbac import KEY_VAULT_SECRETS_OFFICER_ROLE, grant_role
from tasks.resource_groups import group_id
from tasks.retry import FleetflowError, azure_call, azure_task
from tasks.spec import FleetSpec

KIND = "key vault secret"
# Resource Manager api-version used to read the vault's URI through the generic resources client.
VAULT_API_VERSION = "2023-07-01"


def vault_id(subscription_id: str, spec: FleetSpec) -> str:
    """Resource id of the fleet's key vault."""
    return f"{group_id(subscription_id, spec)}/providers/Microsoft.KeyVault/vaults/{spec.key_vault_name}"


def secret_action(current: str | None, value: str) -> Action:
    """What writing `value` means: unchanged when the vault already holds it (no new version), else created when
    the vault has no such secret yet, else updated (a new version)."""
    if current == value:
        return "unchanged"
    return "created" if current is None else "updated"


def _secret_value(block_name: str, secret_name: str) -> str:
    try:
        block: Any = Secret.load(block_name)
    except ValueError as error:
        raise FleetflowError(f"Key Vault secret {secret_name}: Prefect Secret block {block_name!r} does not exist; "
                             "create it (Blocks > Secret in the UI) or fix gitops.key_vault_secrets",
                             operation="read secret block", resource_id=block_name) from error
    value = block.get()
    if not isinstance(value, str) or not value:
        raise FleetflowError(f"Key Vault secret {secret_name}: Prefect Secret block {block_name!r} holds no text "
                             "value", operation="read secret block", resource_id=block_name)
    return value


@azure_task(task_run_name="write-key-vault-secrets")
def write_key_vault_secrets(spec: FleetSpec, credentials_block: str) -> list[Outcome]:
    """Write every secret gitops.key_vault_secrets maps, from its Secret block, into the fleet's vault."""
    assert spec.gitops is not None
    logger = get_run_logger()
    clients = load_azure_clients(credentials_block)
    resource_id = vault_id(clients.subscription_id, spec)
    with azure_call("read key vault", resource_id, spec.location):
        vault = clients.resource.resources.get_by_id(resource_id, api_version=VAULT_API_VERSION)
    vault_uri = str((vault.properties or {}).get("vaultUri") or "")
    if not vault_uri:
        raise FleetflowError(f"key vault {resource_id} has no vaultUri yet", operation="read key vault",
                             resource_id=resource_id, retryable=True)
    principal_id = clients.principal.object_id
    if principal_id:
        grant_role(clients, scope=resource_id, principal_id=principal_id, role=KEY_VAULT_SECRETS_OFFICER_ROLE,
                   region=spec.location, what="fleetflow")
    secrets = clients.secret_client(vault_uri)
    outcomes = []
    for secret_name, block_name in sorted(spec.gitops.key_vault_secrets.items()):
        value = _secret_value(block_name, secret_name)
        secret_id = f"{vault_uri.rstrip('/')}/secrets/{secret_name}"
        with azure_call("read key vault secret", secret_id, spec.location):
            try:
                current: str | None = secrets.get_secret(secret_name).value
            except ResourceNotFoundError:
                current = None
        action = secret_action(current, value)
        if action == "unchanged":
            outcomes.append(outcome(secret_id, KIND, action, f"from block {block_name}"))
            continue
        with azure_call("set key vault secret", secret_id, spec.location):
            try:
                stored = secrets.set_secret(secret_name, value, tags={"fleetflow-source": block_name})
            except HttpResponseError as error:
                # Never echo the request: keep Azure's code and message only.
                raise FleetflowError(f"set key vault secret {secret_id} failed: {error.status_code} "
                                     f"{getattr(error.error, 'code', '') or error.reason}",
                                     operation="set key vault secret", resource_id=secret_id,
                                     retryable=(error.status_code or 0) >= 500 or error.status_code == 429) from None
        version = stored.properties.version
        logger.info("key vault secret %s %s from block %s (version %s)", secret_name, action, block_name, version)
        outcomes.append(outcome(secret_id, KIND, action, f"from block {block_name}, version {version}"))
    return outcomes


@azure_task(task_run_name="purge-deleted-key-vault")
def purge_deleted_vault(spec: FleetSpec, credentials_block: str) -> Outcome:
    """Purge the fleet's key vault once deleted (Azure keeps it soft-deleted and its name reserved otherwise);
    a vault with purge protection is left to expire, and said so."""
    logger = get_run_logger()
    clients = load_azure_clients(credentials_block)
    resource_id = vault_id(clients.subscription_id, spec)
    with azure_call("read deleted key vault", resource_id, spec.location):
        try:
            deleted = clients.keyvault.vaults.get_deleted(spec.key_vault_name, spec.location)
        except ResourceNotFoundError:
            return outcome(resource_id, "deleted key vault", "absent")
    if deleted.properties is not None and deleted.properties.purge_protection_enabled:
        logger.warning("key vault %s is soft-deleted with purge protection; Azure purges it on %s",
                       spec.key_vault_name, deleted.properties.scheduled_purge_date)
        return outcome(resource_id, "deleted key vault", "kept",
                       "purge protection: Azure purges it when its retention ends")
    with azure_call("purge deleted key vault", resource_id, spec.location):
        clients.keyvault.vaults.begin_purge_deleted(spec.key_vault_name, spec.location).result()
    logger.info("purged the soft-deleted key vault %s", spec.key_vault_name)
    return outcome(resource_id, "deleted key vault", "deleted", "purged")
