"""The composition root of local Azure: every resource provider the emulator serves, in order.

The kernel (`localazure.arm`) knows no provider; `python -m localazure serve` hands it this list. Adding a
provider is one module (or package) exposing a `ResourceProvider` named `provider`, and one line below.

Order matters twice: a resource group's contents are deleted in reverse order (Fleet members go before
the AKS clusters they reference), and start hooks run in order while stop hooks run in reverse (the local
ASO controller, last, stops before the clusters it watches).
"""

from __future__ import annotations

from localazure import aso
from localazure.arm.providers import ResourceProvider
from localazure.providers import aks, authorization, containerregistry, fleet, keyvault, resourcegroups, storage


def providers() -> list[ResourceProvider]:
    """The providers of local Azure, in registration order."""
    return [
        resourcegroups.provider,     # Microsoft.Resources/resourceGroups
        authorization.provider,      # Microsoft.Authorization role definitions and assignments
        aks.provider,                # Microsoft.ContainerService/managedClusters (+ the "aks" service)
        containerregistry.provider,  # Microsoft.ContainerRegistry/registries
        keyvault.provider,           # Microsoft.KeyVault/vaults and the secrets data plane
        storage.provider,            # Microsoft.Storage/storageAccounts
        fleet.provider,              # Microsoft.ContainerService/fleets (drives AKS through aks_of)
        aso.provider,                # local Azure Service Operator: start/stop hooks only, no routes
    ]
