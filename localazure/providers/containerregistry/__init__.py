"""Microsoft.ContainerRegistry: registries (Resource Manager only; no image registry behind them)."""

from localazure.providers.containerregistry.registries import provider

__all__ = ["provider"]
