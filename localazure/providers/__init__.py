"""Resource providers of local Azure beyond the Resource Manager kernel (`localazure.arm`).

Each package exposes one `provider` (a `localazure.arm.providers.ResourceProvider`) and is registered in
`localazure.arm.app.default_providers()`:

- `localazure.providers.containerregistry`: Microsoft.ContainerRegistry/registries
- `localazure.providers.keyvault`: Microsoft.KeyVault/vaults, deleted vaults, and the secrets data plane
- `localazure.providers.storage`: Microsoft.Storage/storageAccounts
"""
