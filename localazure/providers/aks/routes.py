"""Microsoft.ContainerService routes: managed clusters, agent pools, credentials, versions, upgrade profiles."""

from __future__ import annotations

from typing import Any, cast

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response

from localazure.arm.auth import get_caller
from localazure.arm.common import (
    RESOURCES,
    authorize_in_subscription,
    get_group,
    polling_headers,
    read_json_object,
    require_subscription,
)
from localazure.arm.context import Emulator, get_emulator
from localazure.arm.envelope import check_etag, only_readable, properties_of, tags_of
from localazure.arm.providers import ResourceProvider
from localazure.arm.rbac import Principal
from localazure.providers.aks import model as aksmodel
from localazure.providers.aks.service import NAMESPACE, AksService

# Every managedClusters api-version Azure has published (azure-rest-api-specs, containerservice/aks): GA and preview.
# One body shape answers them all: fields a version does not know are ignored by its clients.
API_VERSIONS = frozenset({
    # GA
    "2017-08-31", "2018-03-31", "2019-02-01", "2019-04-01", "2019-06-01", "2019-08-01", "2019-10-01", "2019-11-01",
    "2020-01-01", "2020-02-01", "2020-03-01", "2020-04-01", "2020-06-01", "2020-07-01", "2020-09-01", "2020-11-01",
    "2020-12-01", "2021-02-01", "2021-03-01", "2021-05-01", "2021-07-01", "2021-08-01", "2021-09-01", "2021-10-01",
    "2022-01-01", "2022-02-01", "2022-03-01", "2022-04-01", "2022-06-01", "2022-07-01", "2022-09-01", "2022-11-01",
    "2023-01-01", "2023-02-01", "2023-03-01", "2023-04-01", "2023-05-01", "2023-06-01", "2023-07-01", "2023-08-01",
    "2023-09-01", "2023-10-01", "2023-11-01", "2024-01-01", "2024-02-01", "2024-05-01", "2024-07-01", "2024-08-01",
    "2024-09-01", "2024-10-01", "2025-01-01", "2025-03-01", "2025-05-01", "2025-07-01", "2025-08-01", "2025-10-01",
    "2026-03-01", "2026-06-01", "2026-08-01",
    # preview
    "2018-08-01-preview", "2021-11-01-preview", "2022-01-02-preview", "2022-02-02-preview", "2022-03-02-preview",
    "2022-04-02-preview", "2022-05-02-preview", "2022-06-02-preview", "2022-07-02-preview", "2022-08-02-preview",
    "2022-08-03-preview", "2022-09-02-preview", "2022-10-02-preview", "2022-11-02-preview", "2023-01-02-preview",
    "2023-02-02-preview", "2023-03-02-preview", "2023-04-02-preview", "2023-05-02-preview", "2023-06-02-preview",
    "2023-07-02-preview", "2023-08-02-preview", "2023-09-02-preview", "2023-10-02-preview", "2023-11-02-preview",
    "2024-01-02-preview", "2024-02-02-preview", "2024-03-02-preview", "2024-04-02-preview", "2024-05-02-preview",
    "2024-06-02-preview", "2024-09-02-preview", "2024-10-02-preview", "2025-01-02-preview", "2025-02-02-preview",
    "2025-03-02-preview", "2025-04-02-preview", "2025-05-02-preview", "2025-06-02-preview", "2025-07-02-preview",
    "2025-08-02-preview", "2025-09-02-preview", "2025-10-02-preview",
})
A = "Microsoft.ContainerService/managedClusters"
GROUP = "/subscriptions/{subscription_id}/resourceGroups/{group}"
CLUSTER = GROUP + "/providers/Microsoft.ContainerService/managedClusters/{name}"

# Key of the AKS service in the emulator's service registry (`Emulator.service`).
SERVICE = "aks"

router = APIRouter()


def _aks(emulator: Emulator) -> AksService:
    return cast(AksService, emulator.service(SERVICE))


def _cluster_scope(emulator: Emulator, subscription_id: str, group: str, name: str, caller: Principal,
                   action: str) -> str:
    cluster_id = authorize_in_subscription(emulator, caller, subscription_id, action,
                                           _aks(emulator).cluster_id(group, name))
    get_group(emulator, group)
    return cluster_id


@router.put(CLUSTER)
async def put_cluster(
    subscription_id: str, group: str, name: str, request: Request,
    emulator: Emulator = Depends(get_emulator), caller: Principal = Depends(get_caller),
) -> Response:
    """Create (201) or update/upgrade (200) a managed cluster; both are long-running."""
    cluster_id = _cluster_scope(emulator, subscription_id, group, name, caller, f"{A}/write")
    check_etag(request, emulator.store.get(RESOURCES, cluster_id))
    body, status, op = _aks(emulator).create_or_update(group, name, await read_json_object(request))
    return JSONResponse(body, status_code=status, headers=polling_headers(emulator, request, op))


@router.get(CLUSTER)
def get_cluster(
    subscription_id: str, group: str, name: str,
    emulator: Emulator = Depends(get_emulator), caller: Principal = Depends(get_caller),
) -> dict[str, Any]:
    """A managed cluster."""
    cluster_id = _cluster_scope(emulator, subscription_id, group, name, caller, f"{A}/read")
    return _aks(emulator).get(cluster_id)


@router.delete(CLUSTER)
def delete_cluster(
    subscription_id: str, group: str, name: str, request: Request,
    emulator: Emulator = Depends(get_emulator), caller: Principal = Depends(get_caller),
) -> Response:
    """Start deleting a cluster: 202 with polling headers; 204 when it does not exist."""
    cluster_id = _cluster_scope(emulator, subscription_id, group, name, caller, f"{A}/delete")
    if not _aks(emulator).exists(cluster_id):
        return Response(status_code=204)
    check_etag(request, emulator.store.get(RESOURCES, cluster_id))
    op = _aks(emulator).delete(cluster_id)
    return Response(status_code=202, headers=polling_headers(emulator, request, op))


@router.patch(CLUSTER)
async def update_cluster_tags(
    subscription_id: str, group: str, name: str, request: Request,
    emulator: Emulator = Depends(get_emulator), caller: Principal = Depends(get_caller),
) -> dict[str, Any]:
    """Replace a cluster's tags (`{"tags": {...}}`); Azure runs it as an operation, local Azure answers 200 at once."""
    cluster_id = _cluster_scope(emulator, subscription_id, group, name, caller, f"{A}/write")
    patch = await read_json_object(request)
    check_etag(request, emulator.store.get(RESOURCES, cluster_id))
    return _aks(emulator).update_tags(cluster_id, tags_of(patch.get("tags")))


@router.get("/subscriptions/{subscription_id}/resourceGroups/{group}/providers/Microsoft.ContainerService/managedClusters")
def list_clusters_in_group(
    subscription_id: str, group: str,
    emulator: Emulator = Depends(get_emulator), caller: Principal = Depends(get_caller),
) -> dict[str, Any]:
    """Clusters of a group."""
    authorize_in_subscription(emulator, caller, subscription_id, f"{A}/read", emulator.group_id(group))
    get_group(emulator, group)
    return {"value": _aks(emulator).list_clusters(group)}


@router.get("/subscriptions/{subscription_id}/providers/Microsoft.ContainerService/managedClusters")
def list_clusters(
    subscription_id: str,
    emulator: Emulator = Depends(get_emulator), caller: Principal = Depends(get_caller),
) -> dict[str, Any]:
    """Clusters of the subscription the caller may read."""
    require_subscription(emulator, subscription_id)
    return {"value": only_readable(emulator, caller, f"{A}/read", _aks(emulator).list_clusters())}


@router.get(CLUSTER + "/agentPools")
def list_agent_pools(
    subscription_id: str, group: str, name: str,
    emulator: Emulator = Depends(get_emulator), caller: Principal = Depends(get_caller),
) -> dict[str, Any]:
    """Agent pools of a cluster."""
    cluster_id = _cluster_scope(emulator, subscription_id, group, name, caller, f"{A}/agentPools/read")
    body = _aks(emulator).get(cluster_id)
    return {"value": [aksmodel.agent_pool_body(body["id"], p) for p in body["properties"]["agentPoolProfiles"]]}


@router.get(CLUSTER + "/agentPools/{pool}")
def get_agent_pool(
    subscription_id: str, group: str, name: str, pool: str,
    emulator: Emulator = Depends(get_emulator), caller: Principal = Depends(get_caller),
) -> dict[str, Any]:
    """One agent pool."""
    cluster_id = _cluster_scope(emulator, subscription_id, group, name, caller, f"{A}/agentPools/read")
    return _aks(emulator).agent_pool(cluster_id, pool)


@router.put(CLUSTER + "/agentPools/{pool}")
async def put_agent_pool(
    subscription_id: str, group: str, name: str, pool: str, request: Request,
    emulator: Emulator = Depends(get_emulator), caller: Principal = Depends(get_caller),
) -> Response:
    """Create (201) or update (200) an agent pool (add, scale, upgrade), as an update of its cluster; long-running.
    Clusters backed by a local Kubernetes cluster refuse adding and scaling (400 OperationNotSupported)."""
    cluster_id = _cluster_scope(emulator, subscription_id, group, name, caller, f"{A}/agentPools/write")
    body = await read_json_object(request)
    properties = properties_of(body)
    status, op = _aks(emulator).put_pool(cluster_id, pool, properties)
    return JSONResponse(_aks(emulator).agent_pool(cluster_id, pool), status_code=status,
                        headers=polling_headers(emulator, request, op))


@router.delete(CLUSTER + "/agentPools/{pool}")
def delete_agent_pool(
    subscription_id: str, group: str, name: str, pool: str, request: Request,
    emulator: Emulator = Depends(get_emulator), caller: Principal = Depends(get_caller),
) -> Response:
    """Delete an agent pool (202, long-running); 204 when it does not exist; the last System pool stays (400)."""
    cluster_id = _cluster_scope(emulator, subscription_id, group, name, caller, f"{A}/agentPools/delete")
    op = _aks(emulator).delete_pool(cluster_id, pool)
    if op is None:
        return Response(status_code=204)
    return Response(status_code=202, headers=polling_headers(emulator, request, op))


@router.post(CLUSTER + "/agentPools/{pool}/upgradeNodeImageVersion")
def upgrade_node_image_version(
    subscription_id: str, group: str, name: str, pool: str, request: Request,
    emulator: Emulator = Depends(get_emulator), caller: Principal = Depends(get_caller),
) -> Response:
    """Roll a pool onto the latest node image: 202 with polling headers."""
    cluster_id = _cluster_scope(emulator, subscription_id, group, name, caller,
                                f"{A}/agentPools/upgradeNodeImageVersion/action")
    op = _aks(emulator).upgrade_node_image(cluster_id, pool)
    body = _aks(emulator).agent_pool(cluster_id, pool)
    return JSONResponse(body, status_code=202, headers=polling_headers(emulator, request, op))


def _upgrade_entries(versions: list[str]) -> list[dict[str, Any]]:
    return [{"kubernetesVersion": v, "isPreview": False} for v in versions]


@router.get(CLUSTER + "/upgradeProfiles/default")
def cluster_upgrade_profile(
    subscription_id: str, group: str, name: str,
    emulator: Emulator = Depends(get_emulator), caller: Principal = Depends(get_caller),
) -> dict[str, Any]:
    """Versions the control plane and each pool may upgrade to."""
    cluster_id = _cluster_scope(emulator, subscription_id, group, name, caller, f"{A}/upgradeProfiles/read")
    body = _aks(emulator).get(cluster_id)
    available = _aks(emulator).available_versions()
    current = body["properties"]["currentKubernetesVersion"]
    return {
        "id": f"{cluster_id}/upgradeProfiles/default", "name": "default",
        "type": "Microsoft.ContainerService/managedClusters/upgradeprofiles",
        "properties": {
            "controlPlaneProfile": {"kubernetesVersion": current, "name": None, "osType": "Linux",
                                    "upgrades": _upgrade_entries(aksmodel.upgrades_from(current, available))},
            "agentPoolProfiles": [
                {"kubernetesVersion": p["currentOrchestratorVersion"], "name": p["name"], "osType": "Linux",
                 "upgrades": _upgrade_entries(
                     aksmodel.upgrades_from(p["currentOrchestratorVersion"], available, ceiling=current))}
                for p in body["properties"]["agentPoolProfiles"]
            ],
        },
    }


@router.get(CLUSTER + "/agentPools/{pool}/upgradeProfiles/default")
def pool_upgrade_profile(
    subscription_id: str, group: str, name: str, pool: str,
    emulator: Emulator = Depends(get_emulator), caller: Principal = Depends(get_caller),
) -> dict[str, Any]:
    """Versions and the latest node image one pool may upgrade to."""
    cluster_id = _cluster_scope(emulator, subscription_id, group, name, caller, f"{A}/agentPools/read")
    body = _aks(emulator).get(cluster_id)
    profile = _aks(emulator).agent_pool(cluster_id, pool)
    version = profile["properties"]["currentOrchestratorVersion"]
    upgrades = aksmodel.upgrades_from(version, _aks(emulator).available_versions(),
                                      ceiling=body["properties"]["currentKubernetesVersion"])
    return {
        "id": f"{profile['id']}/upgradeProfiles/default", "name": "default",
        "type": "Microsoft.ContainerService/managedClusters/agentPools/upgradeProfiles",
        "properties": {"kubernetesVersion": version, "osType": "Linux", "upgrades": _upgrade_entries(upgrades),
                       "latestNodeImageVersion": _aks(emulator).latest_node_image()},
    }


def _credential(emulator: Emulator, subscription_id: str, group: str, name: str, caller: Principal,
                role: str) -> dict[str, Any]:
    # `role` ("Admin" or "User") names both the RBAC action and the credential kind, as Azure does.
    cluster_id = _cluster_scope(emulator, subscription_id, group, name, caller,
                                f"{A}/listCluster{role}Credential/action")
    return _aks(emulator).credential_result(cluster_id, f"cluster{role}")


@router.post(CLUSTER + "/listClusterAdminCredential")
def list_admin_credential(
    subscription_id: str, group: str, name: str,
    emulator: Emulator = Depends(get_emulator), caller: Principal = Depends(get_caller),
) -> dict[str, Any]:
    """Admin kubeconfig of the backing local cluster."""
    return _credential(emulator, subscription_id, group, name, caller, "Admin")


@router.post(CLUSTER + "/listClusterUserCredential")
def list_user_credential(
    subscription_id: str, group: str, name: str,
    emulator: Emulator = Depends(get_emulator), caller: Principal = Depends(get_caller),
) -> dict[str, Any]:
    """User kubeconfig (local clusters have one identity: the same admin certificate)."""
    return _credential(emulator, subscription_id, group, name, caller, "User")


@router.get("/subscriptions/{subscription_id}/providers/Microsoft.ContainerService/locations/{location}/kubernetesVersions")
def kubernetes_versions(
    subscription_id: str, location: str,
    emulator: Emulator = Depends(get_emulator), _caller: Principal = Depends(get_caller),
) -> dict[str, Any]:
    """Versions offered in a location, grouped by minor with their patch upgrades."""
    require_subscription(emulator, subscription_id)
    available = _aks(emulator).available_versions()
    minors: dict[str, dict[str, Any]] = {}
    for version in available:
        entry = minors.setdefault(aksmodel.minor_of(version), {
            "version": aksmodel.minor_of(version), "isPreview": False, "isDefault": False,
            "capabilities": {"supportPlan": ["KubernetesOfficial"]}, "patchVersions": {}})
        entry["patchVersions"][version] = {"upgrades": aksmodel.upgrades_from(version, available)}
    if minors:
        minors[aksmodel.minor_of(available[0])]["isDefault"] = True
    return {"values": list(minors.values())}


def _delete_group_contents(emulator: Emulator, group_id: str) -> None:
    _aks(emulator).delete_group_contents(group_id)


def _on_start(emulator: Emulator) -> None:
    _aks(emulator).recover()


def _on_stop(emulator: Emulator) -> None:
    _aks(emulator).stop_local_clusters()


provider = ResourceProvider(
    namespace=NAMESPACE, api_versions=API_VERSIONS, router=router, resource_types=("managedClusters",),
    delete_group_contents=_delete_group_contents, on_start=_on_start, on_stop=_on_stop,
    services={SERVICE: AksService},
)
