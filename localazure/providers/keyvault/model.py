"""What the Key Vault management and data planes share: names, stored vaults, soft-deleted vaults,
and the challenge resource its data plane asks tokens for."""

from __future__ import annotations

from urllib.parse import urlparse

from localazure.arm.common import RESOURCES
from localazure.arm.context import Emulator
from localazure.arm.envelope import of_type
from localazure.arm.store import Record

NAMESPACE = "Microsoft.KeyVault"
VAULT_TYPE = f"{NAMESPACE}/vaults"
DELETED_VAULT_TYPE = f"{NAMESPACE}/deletedVaults"
DELETED_VAULTS = "keyvault.deletedVaults"  # store table: soft-deleted vaults (not in any group)
SECRETS = "keyvault.secrets"  # store table: secrets by `<vaultKey>/<name>`, values sealed

def vault_uri(port: int) -> str:
    """The data-plane URL of the vault listening on `port`."""
    return f"https://127.0.0.1:{port}/"


def challenge_resource(uri: str) -> str:
    """The `resource` of the vault's 401 challenge, and so the audience of its tokens: the vault's
    authority without its first label, as `vault.azure.net` is to `<name>.vault.azure.net`.

    SecretClient checks (verify_challenge_resource) that the vault's authority ends with `.` plus the
    resource's; for `127.0.0.1:<port>` that is `https://0.0.1:<port>`. Only this vault accepts it.
    """
    netloc = urlparse(uri).netloc
    return "https://" + netloc.split(".", 1)[1]


def deleted_vault_id(emulator: Emulator, location: str, name: str) -> str:
    """Id of a soft-deleted vault."""
    return f"{emulator.subscription_path}/providers/{NAMESPACE}/locations/{location}/deletedVaults/{name}"


def live_vault_named(emulator: Emulator, name: str) -> Record | None:
    """The vault of that name (case-insensitive) anywhere in local Azure."""
    low = name.lower()
    found = [r for r in of_type(emulator, VAULT_TYPE) if r["body"]["name"].lower() == low]
    return found[0] if found else None


def deleted_vault_named(emulator: Emulator, name: str) -> Record | None:
    """The soft-deleted vault of that name, if any."""
    low = name.lower()
    found = emulator.store.values(DELETED_VAULTS, lambda r: r["body"]["name"].lower() == low)
    return found[0] if found else None


def vault_by_key(emulator: Emulator, vault_key: str) -> Record | None:
    """The live vault whose data plane is `vault_key` (its stable internal key, kept across recovery)."""
    found = emulator.store.values(RESOURCES, lambda r: r["body"].get("type") == VAULT_TYPE
                                  and r.get("internal", {}).get("vaultKey") == vault_key)
    return found[0] if found else None
