"""The real Azure CLI (azure-cli from PyPI, installed by hack/az.sh into a cached virtualenv) against local Azure,
set up by `fleetflow local az` in a config directory of its own: cloud, login, account, groups, AKS, roles,
providers. Everything stays on loopback: the cloud is registered and set before login, telemetry is off."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from localazure import cli as local_cli
from tests.paths import REPO

pytestmark = pytest.mark.emulator



@pytest.fixture(scope="session")
def az_executable() -> str:
    """The cached az (built once by hack/az.sh; about two minutes the first time, instant afterwards)."""
    started = time.monotonic()
    try:
        built = subprocess.run(["bash", str(REPO / "hack" / "az.sh")], capture_output=True, text=True, timeout=1200,
                               check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.skip(f"the cached Azure CLI environment could not be built by hack/az.sh: {exc}")
    if built.returncode != 0:
        pytest.skip(f"the cached Azure CLI environment could not be built by hack/az.sh: {built.stderr[-500:]}")
    path = built.stdout.strip().splitlines()[-1]
    print(f"az ready in {time.monotonic() - started:.1f} s: {path}")
    return path


class Az:
    """Runs az with the environment `fleetflow local az` printed."""

    def __init__(self, executable: str, exports: str) -> None:
        self.executable = executable
        self.env = dict(os.environ)
        for line in exports.splitlines():
            name, _, value = line.removeprefix("export ").partition("=")
            if name != "PATH":
                self.env[name] = value.strip("'")

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([self.executable, *args], env=self.env, capture_output=True, text=True, timeout=300,
                              check=False)
        if check and done.returncode != 0:
            raise AssertionError(f"az {' '.join(args)} failed ({done.returncode}): {done.stderr}")
        return done

    def json(self, *args: str) -> Any:
        return json.loads(self.run(*args, "--output", "json").stdout or "null")


@pytest.fixture(scope="session")
def az(az_executable, local_azure) -> Az:
    return Az(az_executable, local_cli.az(local_azure.state_dir, az_path=az_executable))


def test_local_az_sets_up_its_own_config_dir_with_the_local_cloud_and_admin_login(az, local_azure):
    endpoint = local_azure.endpoint
    config_dir = Path(az.env["AZURE_CONFIG_DIR"])
    assert config_dir == local_azure.state_dir / "az"
    assert "collect_telemetry = false" in (config_dir / "config").read_text()
    clouds = az.json("cloud", "list")
    active = [c for c in clouds if c["isActive"]]
    assert [c["name"] for c in active] == ["fleetflow-local"]
    assert active[0]["endpoints"]["resourceManager"].rstrip("/") == endpoint.resource_manager_endpoint.rstrip("/")
    account = az.json("account", "show")
    assert account["id"] == endpoint.subscription_id and account["tenantId"] == endpoint.tenant_id
    assert account["user"] == {"name": endpoint.client_id, "type": "servicePrincipal"}
    assert [a["id"] for a in az.json("account", "list")] == [endpoint.subscription_id]
    assert endpoint.client_secret not in "".join(p.read_text(errors="ignore") for p in config_dir.glob("*.json")
                                                 if p.name != "service_principal_entries.json")


def test_fleetflow_local_az_is_a_console_command():
    from console.cli import build_parser

    args = build_parser().parse_args(["local", "az"])
    assert args.local_command == "az"


def test_groups_through_az(az, fresh_name):
    created = az.json("group", "create", "--name", fresh_name, "--location", "eastus", "--tags", "owner=az")
    assert created["properties"]["provisioningState"] == "Succeeded" and created["tags"] == {"owner": "az"}
    assert az.json("group", "show", "--name", fresh_name)["location"] == "eastus"
    assert fresh_name in [g["name"] for g in az.json("group", "list")]
    az.run("group", "delete", "--name", fresh_name, "--yes")
    assert az.run("group", "exists", "--name", fresh_name).stdout.strip() == "false"


def test_aks_through_az(az, fresh_name):
    az.run("group", "create", "--name", fresh_name, "--location", "eastus", "--output", "none")
    cluster = az.json("aks", "create", "--resource-group", fresh_name, "--name", "aks1", "--node-count", "2",
                      "--kubernetes-version", "1.36", "--enable-managed-identity", "--generate-ssh-keys",
                      "--network-plugin", "kubenet", "--tags", "fleet=demo")
    assert cluster["provisioningState"] == "Succeeded" and cluster["currentKubernetesVersion"] == "1.36.3"
    assert cluster["identity"]["principalId"]
    shown = az.json("aks", "show", "--resource-group", fresh_name, "--name", "aks1")
    assert shown["agentPoolProfiles"][0]["count"] == 2
    assert "aks1" in [c["name"] for c in az.json("aks", "list", "--resource-group", fresh_name)]
    versions = az.json("aks", "get-versions", "--location", "eastus")
    assert {v["version"] for v in versions["values"]} >= {"1.36", "1.37"}
    upgrades = az.json("aks", "get-upgrades", "--resource-group", fresh_name, "--name", "aks1")
    assert [u["kubernetesVersion"] for u in upgrades["controlPlaneProfile"]["upgrades"]] == ["1.37.2"]
    # The session's clusters are ARM-only: Azure's own error shape, with local Azure's reason.
    credentials = az.run("aks", "get-credentials", "--resource-group", fresh_name, "--name", "aks1", "--file", "-",
                         check=False)
    assert credentials.returncode != 0 and "KubernetesNotAvailable" in credentials.stderr
    shown = az.json("aks", "show", "--resource-group", fresh_name, "--name", "aks1")
    assert shown["networkProfile"]["serviceCidr"] == "10.0.0.0/16" and shown["networkProfile"]["podCidr"]
    added = az.json("aks", "nodepool", "add", "--resource-group", fresh_name, "--cluster-name", "aks1",
                    "--name", "user1", "--node-count", "1")
    assert added["provisioningState"] == "Succeeded" and added["mode"] == "User"
    scaled = az.json("aks", "nodepool", "scale", "--resource-group", fresh_name, "--cluster-name", "aks1",
                     "--name", "user1", "--node-count", "3")
    assert scaled["count"] == 3
    az.run("aks", "nodepool", "delete", "--resource-group", fresh_name, "--cluster-name", "aks1", "--name", "user1")
    pools = az.json("aks", "nodepool", "list", "--resource-group", fresh_name, "--cluster-name", "aks1")
    assert [p["name"] for p in pools] == ["nodepool1"]
    az.json("aks", "update", "--resource-group", fresh_name, "--name", "aks1", "--tags", "fleet=updated")
    az.run("aks", "delete", "--resource-group", fresh_name, "--name", "aks1", "--yes")
    assert az.json("aks", "list", "--resource-group", fresh_name) == []


def test_role_assignments_by_role_name_through_az(az, local_azure, fresh_name):
    group = az.json("group", "create", "--name", fresh_name, "--location", "eastus")
    sp = local_azure.azure.create_service_principal(f"az-{fresh_name}")
    az.run("role", "assignment", "create", "--assignee", sp["appId"], "--role", "Contributor",
           "--scope", group["id"], "--output", "none")
    listed = az.json("role", "assignment", "list", "--scope", group["id"])
    assert [(a["principalId"], a["roleDefinitionName"]) for a in listed] == [(sp["objectId"], "Contributor")]
    mine = az.json("role", "assignment", "list", "--assignee", sp["appId"], "--all")
    assert [a["scope"] for a in mine] == [group["id"]]
    az.run("role", "assignment", "delete", "--assignee", sp["appId"], "--role", "Contributor",
           "--scope", group["id"])
    assert az.json("role", "assignment", "list", "--scope", group["id"]) == []


def test_providers_through_az(az):
    namespaces = {p["namespace"]: p for p in az.json("provider", "list")}
    assert namespaces["Microsoft.ContainerService"]["registrationState"] == "Registered"
    shown = az.json("provider", "show", "--namespace", "Microsoft.ContainerService")
    types = {t["resourceType"] for t in shown["resourceTypes"]}
    assert {"managedClusters", "fleets", "managedClusters/agentPools"} <= types
    az.run("provider", "register", "--namespace", "Microsoft.ContainerService", "--wait")


def test_the_recipes_resource_checks_through_az(az, fresh_name):
    """`az acr show`, `az keyvault show` and `az storage account show/keys list` answer as the recipe reads them."""
    az.run("group", "create", "--name", fresh_name, "--location", "eastus", "--output", "none")
    suffix = fresh_name.replace("-", "")[-10:]
    registry, vault, account = f"acr{suffix}", f"kv{suffix}"[:24], f"st{suffix}"[:24]
    try:
        az.run("acr", "create", "--resource-group", fresh_name, "--name", registry, "--sku", "Basic", "--output",
               "none")
        assert az.run("acr", "show", "--name", registry, "--query", "provisioningState",
                      "--output", "tsv").stdout.strip() == "Succeeded"
        az.run("keyvault", "create", "--resource-group", fresh_name, "--name", vault, "--location", "eastus",
               "--output", "none")
        assert az.run("keyvault", "show", "--name", vault, "--query", "properties.provisioningState",
                      "--output", "tsv").stdout.strip() == "Succeeded"
        az.run("storage", "account", "create", "--resource-group", fresh_name, "--name", account, "--location",
               "eastus", "--sku", "Standard_LRS", "--output", "none")
        shown = az.json("storage", "account", "show", "--name", account, "--resource-group", fresh_name)
        assert shown["provisioningState"] == "Succeeded" and shown["sku"]["name"] == "Standard_LRS"
        keys = az.json("storage", "account", "keys", "list", "--account-name", account, "--resource-group",
                       fresh_name)
        assert [key["keyName"] for key in keys] == ["key1", "key2"]
    finally:
        az.run("group", "delete", "--name", fresh_name, "--yes", check=False)


REGISTRATION_REFUSAL = ("The subscription registration is in 'Unregistered' state. The subscription must be registered "
                        "to use namespace 'Microsoft.ContainerService'. See https://aka.ms/rps-not-found for how to "
                        "register subscriptions.")


def test_unregistered_provider_through_az_rest_and_az_provider_register(az, local_azure, fresh_name):
    """`az rest` sends a request as given (az's own commands register a namespace they meet unregistered): the
    error body is Resource Manager's; `az provider register` makes the same request work."""
    endpoint = local_azure.endpoint
    az.run("group", "create", "--name", fresh_name, "--location", "eastus", "--output", "none")
    url = (f"{endpoint.resource_manager_endpoint.rstrip('/')}/subscriptions/{endpoint.subscription_id}/resourceGroups/"
           f"{fresh_name}/providers/Microsoft.ContainerService/managedClusters/rest?api-version=2025-10-01")
    body = json.dumps({"location": "eastus", "properties": {
        "kubernetesVersion": "1.36", "dnsPrefix": "rest",
        "agentPoolProfiles": [{"name": "nodepool1", "count": 1, "mode": "System"}]}})
    try:
        az.run("provider", "unregister", "--namespace", "Microsoft.ContainerService")
        shown = az.json("provider", "show", "--namespace", "Microsoft.ContainerService")
        assert shown["registrationState"] == "Unregistered"
        refused = az.run("rest", "--method", "put", "--url", url, "--body", body, check=False)
        assert refused.returncode != 0 and "Conflict" in refused.stderr
        error = json.loads(refused.stderr[refused.stderr.index("{"):refused.stderr.rindex("}") + 1])
        assert error == {"error": {"code": "MissingSubscriptionRegistration", "message": REGISTRATION_REFUSAL,
                                   "details": [{"code": "MissingSubscriptionRegistration",
                                                "target": "Microsoft.ContainerService",
                                                "message": REGISTRATION_REFUSAL}]}}
    finally:
        az.run("provider", "register", "--namespace", "Microsoft.ContainerService", "--wait")
    assert az.json("rest", "--method", "put", "--url", url, "--body", body)["name"] == "rest"
    az.run("group", "delete", "--name", fresh_name, "--yes", "--no-wait")


@pytest.mark.cluster
def test_az_aks_get_credentials_then_the_real_kubectl_lists_the_local_clusters_nodes(az, knobs_restored, fresh_name,
                                                                                    tmp_path):
    from localazure.kube import available_versions
    from localazure.kube.tools import tools_dir

    built = available_versions()
    kubectl = [p for p in sorted(tools_dir().glob("kubectl-v*/kubectl")) if os.access(p, os.X_OK)]
    if not built or not kubectl:
        pytest.skip("no Kubernetes binaries or kubectl are built yet (run `make tools`)")
    knobs_restored.set_knobs(clusters="local")
    version = built[0].lstrip("v")
    az.run("group", "create", "--name", fresh_name, "--location", "eastus", "--output", "none")
    try:
        cluster = az.json("aks", "create", "--resource-group", fresh_name, "--name", "real", "--node-count", "2",
                          "--kubernetes-version", version, "--generate-ssh-keys", "--network-plugin", "kubenet")
        assert cluster["provisioningState"] == "Succeeded"
        kubeconfig = tmp_path / "config"
        az.run("aks", "get-credentials", "--resource-group", fresh_name, "--name", "real", "--admin",
               "--file", str(kubeconfig))
        done = subprocess.run([str(kubectl[-1]), "--kubeconfig", str(kubeconfig), "get", "nodes", "--output", "json"],
                              capture_output=True, text=True, timeout=120, check=False)
        assert done.returncode == 0, done.stderr
        nodes = json.loads(done.stdout)["items"]
        assert len(nodes) == 2
        assert {n["status"]["nodeInfo"]["kubeletVersion"] for n in nodes} == {f"v{version}"}
        assert all(n["metadata"]["labels"]["kubernetes.azure.com/agentpool"] == "nodepool1" for n in nodes)
    finally:
        az.run("group", "delete", "--name", fresh_name, "--yes", check=False)
