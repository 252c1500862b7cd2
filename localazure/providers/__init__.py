"""Resource providers of local Azure, each built on the kernel (`localazure.arm`) and listed, in order, by
the composition root `localazure.composition`:

- `resourcegroups`: Microsoft.Resources/resourceGroups (deleting a group empties it through every provider)
- `authorization`: Microsoft.Authorization role definitions and assignments (the RBAC engine is the kernel's)
- `aks`: Microsoft.ContainerService/managedClusters, backed by real local clusters, and `aks_of(emulator)`
- `containerregistry`: Microsoft.ContainerRegistry/registries
- `keyvault`: Microsoft.KeyVault/vaults, deleted vaults, and the secrets data plane
- `storage`: Microsoft.Storage/storageAccounts
- `fleet`: Microsoft.ContainerService/fleets (members, strategies, update runs, gates); drives AKS

Each exposes one `provider` (a `localazure.arm.providers.ResourceProvider`). Adding one is a module here
and a line in `localazure.composition.providers()`.
"""
