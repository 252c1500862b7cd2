"""Microsoft.ContainerService/managedClusters: managed clusters as long-running operations, optionally
backed by real local clusters (`localazure.kube`).

- `service.py`: `AksService`, the in-process API (create, upgrade, node images, delete, kubeconfigs) that
  the routes and other providers (Fleet update runs, the local ASO controller) call; it never looks at HTTP.
- `routes.py`: the Resource Manager routes and `provider` (api-versions, group cleanup, start/stop hooks).
- `model.py`: managed-cluster JSON: what callers may send and what AKS computes.

Other providers reach the service with `aks_of(emulator)`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from localazure.providers.aks.routes import SERVICE, provider
from localazure.providers.aks.service import AksService

if TYPE_CHECKING:
    from localazure.arm.context import Emulator


def aks_of(emulator: Emulator) -> AksService:
    """The emulator's AKS service (registered by `provider`)."""
    return cast(AksService, emulator.service(SERVICE))


__all__ = ["AksService", "aks_of", "provider"]
