"""Registration of resource providers (each a FastAPI router plus its api-versions and cleanup hooks)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from fastapi import APIRouter

if TYPE_CHECKING:
    from localazure.arm.context import Emulator


@dataclass
class ResourceProvider:
    """One Resource Manager namespace served by the emulator.

    `delete_group_contents(emulator, group_id)` is called (in a worker thread) when a resource group
    is deleted; it must delete, synchronously, everything of this provider inside the group.
    Providers are cleaned up in reverse registration order, so a provider registered later
    (Fleet, whose members reference clusters) goes before the ones it depends on (AKS).
    `on_start(emulator)` runs once after the state is loaded (re-adopt background work);
    `on_stop(emulator)` when the server shuts down.
    """

    namespace: str
    api_versions: frozenset[str]
    router: APIRouter
    delete_group_contents: Callable[[Emulator, str], None] | None = None
    on_start: Callable[[Emulator], None] | None = None
    on_stop: Callable[[Emulator], None] | None = None
    extra_path_words: tuple[str, ...] = field(default_factory=tuple)


class ProviderRegistry:
    """The providers of one emulator, keyed by lower-cased namespace.

    Several providers may share a namespace (AKS and Fleet are both Microsoft.ContainerService, each
    with its own resource types and api-versions); the namespace then accepts the union of their
    api-versions, and each provider's routes answer for its own resource types.
    """

    def __init__(self) -> None:
        self._providers: dict[str, list[ResourceProvider]] = {}
        self._order: list[ResourceProvider] = []

    def add(self, provider: ResourceProvider) -> None:
        """Register a provider; the same provider object can only be registered once."""
        registered = self._providers.setdefault(provider.namespace.lower(), [])
        if any(existing is provider for existing in registered):
            raise ValueError(f"resource provider {provider.namespace} is already registered")
        registered.append(provider)
        self._order.append(provider)

    def get(self, namespace: str) -> ResourceProvider | None:
        """The provider of a namespace, if registered; shared namespaces answer with the union of api-versions."""
        registered = self._providers.get(namespace.lower())
        if not registered:
            return None
        if len(registered) == 1:
            return registered[0]
        first = registered[0]
        versions = frozenset().union(*(p.api_versions for p in registered))
        return ResourceProvider(namespace=first.namespace, api_versions=versions, router=first.router)

    def all(self) -> list[ResourceProvider]:
        """Providers in registration order."""
        return list(self._order)
