"""Microsoft.KeyVault: vaults with soft delete, and each vault's secrets data plane at its vaultUri."""

from localazure.arm.providers import ResourceProvider
from localazure.providers.keyvault import vaults
from localazure.providers.keyvault.model import NAMESPACE

provider = ResourceProvider(
    namespace=NAMESPACE,
    api_versions=vaults.API_VERSIONS,
    router=vaults.router,
    resource_types=("vaults", "deletedVaults"),
    delete_group_contents=vaults.delete_group_contents,
    on_start=vaults.on_start,
    on_stop=vaults.on_stop,
)

__all__ = ["provider"]
