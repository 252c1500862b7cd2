"""The Fleet Manager resource provider: its routes, api-versions and lifecycle hooks."""

from __future__ import annotations

from fastapi import APIRouter

from localazure.arm.common import RESOURCES
from localazure.arm.context import Emulator
from localazure.arm.providers import ResourceProvider
from localazure.providers.fleet import autoupgrade, fleets, gates, members, runs, strategies
from localazure.providers.fleet.engine import engine_of
from localazure.providers.fleet.resources import API_VERSIONS, FLEET_TYPE, NAMESPACE, delete_records


def _delete_group_contents(emulator: Emulator, group_id: str) -> None:
    # Runs in the group stop executing first; then their records go (before AKS deletes the clusters).
    prefix = group_id.lower().rstrip("/") + "/"
    for record in emulator.store.values(RESOURCES, lambda r: r["body"].get("type") == FLEET_TYPE
                                        and r["body"]["id"].lower().startswith(prefix)):
        engine_of(emulator).forget_under(record["body"]["id"])
        delete_records(emulator, record["body"]["id"])


def _on_start(emulator: Emulator) -> None:
    engine_of(emulator).resume_all()


def _on_stop(emulator: Emulator) -> None:
    engine_of(emulator).shutdown()


def build_router() -> APIRouter:
    """One router with every Fleet route."""
    router = APIRouter()
    for module in (fleets, members, strategies, runs, gates, autoupgrade):
        router.include_router(module.router)
    return router


provider = ResourceProvider(
    namespace=NAMESPACE,
    api_versions=API_VERSIONS,
    router=build_router(),
    resource_types=("fleets",),
    delete_group_contents=_delete_group_contents,
    on_start=_on_start,
    on_stop=_on_stop,
)
