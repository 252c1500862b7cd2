"""Benchmark of Azure Service Operator in local mode: three local clusters with cert-manager and the ASO chart
(Helm, the project's helm binary), then the fleet's four objects (ResourceGroup, Registry, Vault,
StorageAccount) applied on every cluster at once; prints the seconds until all twelve are Ready, and the RSS
of each local cluster (etcd + control plane + kwok) with cert-manager and the ASO CRDs installed.

    .venv/bin/python tests/benchmarks/bench_local_aso.py [--time-scale 0.01]

Goal: RSS <= 450 MB per local cluster.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import os
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

GOAL_RSS_MB = 450.0
REGIONS = ("eastus", "westus2", "centralus")
PATTERN = "resources.azure.com/*;containerregistry.azure.com/*;keyvault.azure.com/*;storage.azure.com/*"
KINDS = {
    "ResourceGroup": ("resources.azure.com", "v1api20200601", "resourcegroups"),
    "Registry": ("containerregistry.azure.com", "v1api20230701", "registries"),
    "Vault": ("keyvault.azure.com", "v1api20230701", "vaults"),
    "StorageAccount": ("storage.azure.com", "v1api20230101", "storageaccounts"),
}


def _helm(kubeconfig: Path) -> Any:
    from pyhelm3 import Client

    from localazure.kube.tools import helm_binary

    return Client(executable=str(helm_binary()), kubeconfig=kubeconfig)


async def _install(kubeconfig: Path, operator: dict[str, Any], subscription: str, mirror: Path) -> None:
    from localazure.aso import CHART_DIR

    helm = _helm(kubeconfig)
    cert_manager = await helm.get_chart(sorted(mirror.glob("cert-manager-*.tgz"))[-1])
    await helm.install_or_upgrade_release("cert-manager", cert_manager, {"crds": {"enabled": True},
                                                                          "startupapicheck": {"enabled": False}},
                                          namespace="cert-manager", create_namespace=True, timeout="5m")
    aso = await helm.get_chart(CHART_DIR)
    await helm.install_or_upgrade_release("aso2", aso, {
        "crdPattern": PATTERN, "createAzureOperatorSecret": False, "azureSubscriptionID": subscription,
        "azureTenantID": operator["tenant"], "azureClientID": operator["appId"]},
        namespace="azureserviceoperator-system", create_namespace=True, timeout="5m")


def _objects(region: str, subscription: str, tenant: str) -> list[dict[str, Any]]:
    suffix = uuid.uuid4().hex[:6]
    group = f"rg-bench-{region}-{suffix}"
    owner = {"name": group}

    def obj(kind: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
        group_name, version, _ = KINDS[kind]
        return {"apiVersion": f"{group_name}/{version}", "kind": kind, "metadata": {"name": name}, "spec": spec}

    return [
        obj("ResourceGroup", group, {"location": region}),
        obj("Registry", f"acrbench{suffix}", {"owner": owner, "location": region, "sku": {"name": "Standard"}}),
        obj("Vault", f"kv-bench-{suffix}", {"owner": owner, "location": region, "properties": {
            "sku": {"family": "A", "name": "standard"}, "tenantId": tenant, "enableRbacAuthorization": True}}),
        obj("StorageAccount", f"stbench{suffix}", {"owner": owner, "location": region, "kind": "StorageV2",
                                                    "sku": {"name": "Standard_LRS"}}),
    ]


def _ready(obj: dict[str, Any]) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (obj.get("status") or {}).get("conditions") or [])


def _rss_mb(home: Path) -> float:
    from localazure.kube import LocalCluster, processes

    cluster = LocalCluster.load(home)
    return sum(processes.rss_bytes(record) for record in cluster._state.processes.values()) / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--time-scale", type=float, default=0.01)
    parser.add_argument("--mirror", type=Path, default=Path(os.environ.get("FLEETFLOW_CHART_MIRROR",
                                                                           "/work/shared/charts")))
    args = parser.parse_args()

    from kubernetes import client, config

    from localazure import LocalAzure
    from tests.localazure_fixtures import clients_for

    state = Path(tempfile.mkdtemp(prefix="bench-aso-"))
    azure = LocalAzure.start(state, clusters="local", time_scale=args.time_scale)
    try:
        endpoint = azure.endpoint
        clients = clients_for(endpoint)
        resources = clients.resource
        aks: Any = clients.containerservice
        resources.resource_groups.create_or_update("bench-clusters", {"location": "eastus"})
        started = time.monotonic()
        pollers = {region: aks.managed_clusters.begin_create_or_update("bench-clusters", f"aks-{region}", {
            "location": region, "properties": {"dnsPrefix": region, "agentPoolProfiles": [
                {"name": "nodepool1", "count": 1, "vmSize": "Standard_DS2_v2"}]}}) for region in REGIONS}
        for poller in pollers.values():
            poller.result()
        print(f"3 local clusters created in {time.monotonic() - started:.1f} s")
        operator = azure.create_service_principal("aso-bench", role="Contributor")
        apis: dict[str, Any] = {}
        kubeconfigs: dict[str, Path] = {}
        for region in REGIONS:
            value = aks.managed_clusters.list_cluster_admin_credentials("bench-clusters",
                                                                        f"aks-{region}").kubeconfigs[0].value
            path = state / f"{region}.kubeconfig"
            path.write_bytes(value)
            path.chmod(0o600)
            kubeconfigs[region] = path
            apis[region] = config.new_client_from_config(config_file=str(path))
        started = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(len(REGIONS)) as pool:
            list(pool.map(lambda r: asyncio.run(_install(kubeconfigs[r], operator, endpoint.subscription_id,
                                                         args.mirror)), REGIONS))
        print(f"cert-manager and ASO installed with Helm on 3 clusters in {time.monotonic() - started:.1f} s")
        settings = {"AZURE_SUBSCRIPTION_ID": endpoint.subscription_id, "AZURE_TENANT_ID": operator["tenant"],
                    "AZURE_CLIENT_ID": operator["appId"], "AZURE_CLIENT_SECRET": operator["password"],
                    "AZURE_RESOURCE_MANAGER_ENDPOINT": endpoint.resource_manager_endpoint,
                    "AZURE_RESOURCE_MANAGER_AUDIENCE": endpoint.resource_manager_endpoint,
                    "AZURE_AUTHORITY_HOST": endpoint.authority_host}
        for region in REGIONS:
            core = client.CoreV1Api(apis[region])
            core.create_namespaced_secret("azureserviceoperator-system", client.V1Secret(
                metadata=client.V1ObjectMeta(name="aso-controller-settings"), string_data=settings))
            core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="fleet")))
        # Wait for the CRDs on every cluster before the clock starts.
        for region in REGIONS:
            ext: Any = client.ApiextensionsV1Api(apis[region])
            deadline = time.monotonic() + 120
            while len([c for c in ext.list_custom_resource_definition().items
                       if c.metadata.name.endswith(".azure.com")]) < 4:
                if time.monotonic() > deadline:
                    raise SystemExit(f"{region}: the ASO CRDs were not installed")
                time.sleep(0.5)
        time.sleep(2)
        applied: list[tuple[str, dict[str, Any]]] = []
        started = time.monotonic()
        for region in REGIONS:
            custom: Any = client.CustomObjectsApi(apis[region])
            for obj in _objects(region, endpoint.subscription_id, operator["tenant"]):
                group, version, plural = KINDS[obj["kind"]]
                custom.create_namespaced_custom_object(group, version, "fleet", plural, obj)
                applied.append((region, obj))
        pending = list(applied)
        while pending:
            if time.monotonic() - started > 600:
                raise SystemExit(f"not Ready after 600 s: {[(r, o['kind']) for r, o in pending]}")
            still = []
            for region, obj in pending:
                group, version, plural = KINDS[obj["kind"]]
                reader: Any = client.CustomObjectsApi(apis[region])
                live = reader.get_namespaced_custom_object(
                    group, version, "fleet", plural, obj["metadata"]["name"])
                if not _ready(live):
                    still.append((region, obj))
            pending = still
            time.sleep(0.2)
        print(f"4 ASO objects on 3 clusters (12) Ready in {time.monotonic() - started:.1f} s "
              f"(time scale {args.time_scale})")
        for region in REGIONS:
            homes = sorted((state / "clusters").glob(f"*aks-{region}*"))
            rss = _rss_mb(homes[0])
            print(f"aks-{region}: RSS {rss:.0f} MB with cert-manager and the ASO CRDs "
                  f"(goal {GOAL_RSS_MB:.0f} -> ratio {rss / GOAL_RSS_MB:.2f})")
        for api in apis.values():
            api.close()
    finally:
        azure.stop()


if __name__ == "__main__":
    main()
