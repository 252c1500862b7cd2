"""Registration of resource providers (each a FastAPI router plus its api-versions and cleanup hooks)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter

# Hooks receive the emulator (localazure.arm.context.Emulator, which owns the registry below). They are typed
# by what they are called with, not by that class, so that this module and the context need no import of each
# other: each provider annotates its own hooks with the Emulator it uses.
EmulatorHook = Callable[[Any], None]
GroupCleanup = Callable[[Any, str], None]
ServiceFactory = Callable[[Any], Any]


@dataclass
class ResourceProvider:
    """One Resource Manager namespace served by the emulator.

    `delete_group_contents(emulator, group_id)` is called (in a worker thread) when a resource group
    is deleted; it must delete, synchronously, everything of this provider inside the group.
    Providers are cleaned up in reverse registration order, so a provider registered later
    (Fleet, whose members reference clusters) goes before the ones it depends on (AKS).
    `on_start(emulator)` runs once after the state is loaded (re-adopt background work);
    `on_stop(emulator)` when the server shuts down.
    `services` names the in-process services the provider offers (name -> factory taking the emulator);
    the emulator builds each once, on first `emulator.service(name)`, so providers reach each other's
    services without the kernel knowing any of them.

    Several providers may share a namespace (AKS `managedClusters` and Fleet `fleets` are both
    Microsoft.ContainerService): each then lists the top-level `resource_types` it serves, and
    api-versions are checked per type. Paths of types nobody claims (e.g. `locations/.../operations`)
    accept the union of the namespace's versions.
    """

    namespace: str
    api_versions: frozenset[str]
    router: APIRouter
    resource_types: tuple[str, ...] = ()
    delete_group_contents: GroupCleanup | None = None
    on_start: EmulatorHook | None = None
    on_stop: EmulatorHook | None = None
    extra_path_words: tuple[str, ...] = field(default_factory=tuple)
    services: dict[str, ServiceFactory] = field(default_factory=dict)


class ProviderRegistry:
    """The providers of one emulator, keyed by lower-cased namespace.

    Several providers may share a namespace (AKS and Fleet are both Microsoft.ContainerService, each
    with its own resource types and api-versions). A type claimed in `resource_types` is checked
    against its provider's api-versions; other paths of the namespace accept the union.
    """

    def __init__(self) -> None:
        self._providers: dict[str, list[ResourceProvider]] = {}
        self._order: list[ResourceProvider] = []

    def add(self, provider: ResourceProvider) -> None:
        """Register a provider; the same provider object, or a resource type claimed twice, is refused."""
        registered = self._providers.setdefault(provider.namespace.lower(), [])
        if any(existing is provider for existing in registered):
            raise ValueError(f"resource provider {provider.namespace} is already registered")
        mine = {t.lower() for t in provider.resource_types}
        for existing in registered:
            overlap = mine & {t.lower() for t in existing.resource_types}
            if overlap:
                raise ValueError(f"resource types {sorted(overlap)} of {provider.namespace} are already registered")
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

    def accepted_versions(self, namespace: str, resource_type: str | None) -> frozenset[str] | None:
        """api-versions accepted for a path of `namespace` whose top-level type is `resource_type`;
        None when no provider serves the namespace."""
        registered = self._providers.get(namespace.lower())
        if not registered:
            return None
        if resource_type:
            for provider in registered:
                if resource_type.lower() in {t.lower() for t in provider.resource_types}:
                    return provider.api_versions
        return frozenset().union(*(p.api_versions for p in registered))

    def all(self) -> list[ResourceProvider]:
        """Providers in registration order."""
        return list(self._order)
