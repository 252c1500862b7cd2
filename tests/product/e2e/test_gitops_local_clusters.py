"""bootstrap-aso and apply-resources on real local clusters, through a Prefect server, against local Azure.

One fleet of three real clusters is provisioned for the module; the tests then follow the GitOps life of
that fleet in order: bootstrap, first apply, a new commit, a pruned file, drift, a bad manifest, Key
Vault secrets, and a teardown that leaves nothing in local Azure.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from dulwich import porcelain
from kubernetes import client as kube
from prefect.blocks.system import Secret
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey, LogFilter

from blocks.azure import AzureServicePrincipal
from console.local_mode import save_local_blocks
from flows.apply_resources import apply_resources
from flows.bootstrap_aso import bootstrap_aso
from flows.drift_check import drift_check
from flows.join import join
from flows.provision import provision
from flows.teardown import teardown
from localazure import LocalAzure
from localazure.chartmirror import CHART_MIRROR_ENV, build_local_chart_mirror
from localazure.kube import available_versions
from tasks.aks import admin_kubeconfig
from tasks.clients import kubernetes_api_client, load_azure_clients
from tasks.helm import release_values
from tasks.service_operator import ASO_RELEASE, SETTINGS_SECRET
from tasks.spec import FleetSpec, load_spec
from tests.paths import REPO

pytestmark = [pytest.mark.cluster, pytest.mark.slow,
              pytest.mark.skipif(not available_versions(), reason="needs the Kubernetes binaries (make tools)")]


@dataclass
class GitFleet:
    """The module's fleet: its spec file, its Git repository, and ways to look at it."""

    spec_path: Path
    repo: Path
    state_dir: Path

    @property
    def spec(self) -> FleetSpec:
        return load_spec(self.spec_path)

    def commit(self, message: str, write: dict[str, str] | None = None, remove: list[str] | None = None) -> str:
        for name, text in (write or {}).items():
            (self.repo / name).parent.mkdir(parents=True, exist_ok=True)
            (self.repo / name).write_text(text)
        if write:
            porcelain.add(str(self.repo), [str(self.repo / name) for name in write])
        if remove:
            porcelain.remove(str(self.repo), [str(self.repo / name) for name in remove])
        return porcelain.commit(str(self.repo), message.encode(), author=b"ops <ops@example.com>",
                                committer=b"ops <ops@example.com>").decode()

    def api(self, region: str) -> Any:
        spec = self.spec
        return kubernetes_api_client(admin_kubeconfig(load_azure_clients("fleetflow-azure"), spec,
                                                      spec.cluster(region)))

    def azure_resources(self) -> dict[str, Any]:
        clients = load_azure_clients("fleetflow-azure")
        return {item.name: item for item in clients.resource.resources.list_by_resource_group(
            self.spec.resource_group_name)}


def _latest_artifact(key: str) -> Any:
    async def read() -> Any:
        async with get_client() as client:
            found = await client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])))
            latest = max(found, key=lambda artifact: artifact.created)
            return json.loads(latest.data) if isinstance(latest.data, str) and latest.type == "table" else latest.data

    return asyncio.run(read())


@pytest.fixture(scope="module")
def git_fleet(prefect_server: None, chart_mirror: Path, tmp_path_factory: pytest.TempPathFactory,
              ) -> Iterator[GitFleet]:
    """Three real clusters provisioned and joined, with a Git repository holding the project's gitops/ tree."""
    root = tmp_path_factory.mktemp("gitfleet")
    repo = root / "repo"
    shutil.copytree(REPO / "gitops", repo / "gitops")
    porcelain.init(str(repo))
    fleet = GitFleet(root / "fleet.yaml", repo, root / "local-azure")
    fleet.commit("the fleet's resources", {str(path.relative_to(repo)): path.read_text()
                                           for path in (repo / "gitops").rglob("*.yaml")})
    document = yaml.safe_load((REPO / "fleet.yaml").read_text())
    document.update(name="gitfleet", resource_group="rg-gitfleet", suffix="git001")
    document["gitops"] = {"repository": str(repo), "ref": porcelain.active_branch(str(repo)).decode(),
                          "path": "gitops", "fleet_cluster_region": "eastus",
                          "key_vault_secrets": {"app-db-password": "gitfleet-db-password"},
                          "health_timeout_seconds": 180}
    fleet.spec_path.write_text(yaml.safe_dump(document))
    LocalAzure.start(fleet.state_dir, clusters="local", time_scale=0.01)
    mirror = build_local_chart_mirror(fleet.state_dir / "charts", str(chart_mirror))
    patcher = pytest.MonkeyPatch()
    patcher.setenv(CHART_MIRROR_ENV, str(mirror))
    patcher.setenv("FLEETFLOW_TIME_SCALE", "0.01")  # task retries wait local Azure's seconds
    try:
        save_local_blocks(fleet.state_dir, fleet=str(fleet.spec_path))
        Secret(value="first-password-value").save("gitfleet-db-password", overwrite=True)
        assert provision(fleet=str(fleet.spec_path), return_state=True).is_completed()
        assert join(fleet=str(fleet.spec_path), return_state=True).is_completed()
        yield fleet
    finally:
        patcher.undo()
        LocalAzure(fleet.state_dir).stop()


def test_bootstrap_installs_cert_manager_and_aso_everywhere_and_a_rerun_changes_nothing(git_fleet: GitFleet) -> None:
    state = bootstrap_aso(fleet=str(git_fleet.spec_path), return_state=True)
    assert state.is_completed(), state.message
    rows = state.result()
    assert len(rows) == 3 and all("installed" in row["service_operator"] for row in rows)
    assert all(int(row["crds_established"]) >= 4 for row in rows)
    for region in ("eastus", "westus2", "centralus"):
        with git_fleet.api(region) as api:
            crds = {crd.spec.names.kind for crd in kube.ApiextensionsV1Api(api).list_custom_resource_definition().items}
            assert {"ResourceGroup", "Registry", "Vault", "StorageAccount", "Certificate", "Issuer"} <= crds
            settings = kube.CoreV1Api(api).read_namespaced_secret(SETTINGS_SECRET, "azureserviceoperator-system")
            assert "AZURE_CLIENT_SECRET" in (settings.data or {})

    again = bootstrap_aso(fleet=str(git_fleet.spec_path), return_state=True).result()
    assert [row["changed"] for row in again] == ["nothing"] * 3


def test_the_operator_secret_is_in_no_helm_value_log_or_artifact(git_fleet: GitFleet) -> None:
    operator: AzureServicePrincipal = AzureServicePrincipal.load("fleetflow-aso")  # type: ignore[assignment]
    secret = operator.client_secret.get_secret_value()
    spec = git_fleet.spec
    kubeconfig = admin_kubeconfig(load_azure_clients("fleetflow-azure"), spec, spec.cluster("westus2"))
    values = release_values(kubeconfig, release=ASO_RELEASE, namespace="azureserviceoperator-system")
    assert values is not None and values["createAzureOperatorSecret"] is False
    assert secret not in json.dumps(values)
    assert secret not in json.dumps(_latest_artifact("bootstrap-aso-gitfleet"))


def test_a_changed_crd_pattern_upgrades_only_the_operator(git_fleet: GitFleet) -> None:
    document = yaml.safe_load(git_fleet.spec_path.read_text())
    original = document.setdefault("service_operator", {}).get("crd_pattern")
    document["service_operator"]["crd_pattern"] = ("resources.azure.com/*;containerregistry.azure.com/*;"
                                                   "keyvault.azure.com/*;storage.azure.com/*")
    git_fleet.spec_path.write_text(yaml.safe_dump(document))
    try:
        rows = bootstrap_aso(fleet=str(git_fleet.spec_path), return_state=True).result()
        assert all(row["changed"] == "azure-service-operator upgraded" for row in rows), rows
    finally:
        document["service_operator"]["crd_pattern"] = original
        if original is None:
            del document["service_operator"]["crd_pattern"]
        git_fleet.spec_path.write_text(yaml.safe_dump(document))


def test_a_rotated_operator_secret_is_rolled_out_by_a_rerun(git_fleet: GitFleet) -> None:
    import base64

    from pydantic import SecretStr

    # Converge first (the previous test left the releases at another crdPattern).
    assert bootstrap_aso(fleet=str(git_fleet.spec_path), return_state=True).is_completed()
    block: AzureServicePrincipal = AzureServicePrincipal.load("fleetflow-aso")  # type: ignore[assignment]
    original = block.client_secret.get_secret_value()
    block.client_secret = SecretStr("rotated-secret-canary")
    block.save("fleetflow-aso", overwrite=True)
    try:
        rows = bootstrap_aso(fleet=str(git_fleet.spec_path), return_state=True).result()
        assert all(row["changed"] == "operator settings written, controller restarted" for row in rows), rows
        with git_fleet.api("eastus") as api:
            settings = kube.CoreV1Api(api).read_namespaced_secret(SETTINGS_SECRET, "azureserviceoperator-system")
            assert base64.b64decode(settings.data["AZURE_CLIENT_SECRET"]) == b"rotated-secret-canary"
            template = kube.AppsV1Api(api).read_namespaced_deployment(
                "azureserviceoperator-controller-manager", "azureserviceoperator-system").spec.template
            assert "kubectl.kubernetes.io/restartedAt" in (template.metadata.annotations or {})
        assert "rotated-secret-canary" not in json.dumps(_latest_artifact("bootstrap-aso-gitfleet"))
    finally:
        block.client_secret = SecretStr(original)
        block.save("fleetflow-aso", overwrite=True)
    assert bootstrap_aso(fleet=str(git_fleet.spec_path), return_state=True).is_completed()


def _control_plane_pids(cluster_name: str) -> list[int]:
    """Pids of the API server process of one local cluster (found by its cluster directory in the command line)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if len(argv) > 1 and argv[1] in (b"control-plane", b"kube-apiserver") and \
                any(cluster_name.encode() in arg for arg in argv):
            found.append(int(entry.name))
    return found


def test_an_unreachable_cluster_fails_alone_and_a_rerun_finishes_it(git_fleet: GitFleet) -> None:
    import os
    import signal

    down = git_fleet.spec.cluster("centralus").name
    pids = _control_plane_pids(down)
    assert pids, f"no API server process found for {down}"
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    state = bootstrap_aso(fleet=str(git_fleet.spec_path), return_state=True)
    assert state.is_failed()
    assert down in state.message and "1 failed" in state.message
    rows = _latest_artifact("bootstrap-aso-gitfleet")
    assert sorted(row["region"] for row in rows) == ["eastus", "westus2"]  # the others finished
    # local Azure restarts a cluster whose processes died when it starts again.
    LocalAzure(git_fleet.state_dir).stop()
    LocalAzure.start(git_fleet.state_dir, clusters="local", time_scale=0.01)
    again = bootstrap_aso(fleet=str(git_fleet.spec_path), return_state=True)
    assert again.is_completed(), again.message


def test_first_apply_makes_every_object_ready_and_the_azure_resources_exist(git_fleet: GitFleet) -> None:
    state = apply_resources(fleet=str(git_fleet.spec_path), return_state=True)
    assert state.is_completed(), state.message
    rows = state.result()
    assert {row["state"] for row in rows} <= {"Ready", "Available", "Applied"}, rows
    spec = git_fleet.spec
    resources = git_fleet.azure_resources()
    expected = {spec.registry_name, spec.key_vault_name, *(c.storage_account_name for c in spec.clusters())}
    assert expected <= set(resources), sorted(resources)
    assert resources[spec.registry_name].type == "Microsoft.ContainerRegistry/registries"
    table = _latest_artifact("apply-resources-gitfleet")
    assert {row["kind"] for row in table} >= {"Registry", "Vault", "StorageAccount", "Deployment"}
    # Each kubelet identity may pull from the registry: exactly one AcrPull assignment per cluster on it.
    clients = load_azure_clients("fleetflow-azure")
    registry_id = resources[spec.registry_name].id
    pulls = [a for a in clients.authorization.role_assignments.list_for_scope(registry_id)
             if a.role_definition_id.endswith("7f951dda-4ed3-4680-a7ca-43fe172d538d")]
    assert len(pulls) == 3


def test_a_new_commit_updates_objects_in_place(git_fleet: GitFleet) -> None:
    app = (git_fleet.repo / "gitops/regional/app.yaml").read_text().replace("${APP_REPLICAS:=2}", "3")
    git_fleet.commit("three replicas", {"gitops/regional/app.yaml": app})
    assert apply_resources(fleet=str(git_fleet.spec_path), return_state=True).is_completed()
    with git_fleet.api("centralus") as api:
        deployment = kube.AppsV1Api(api).read_namespaced_deployment("regional-app", "fleet-app")
        assert deployment.spec.replicas == 3


def test_drift_in_the_cluster_and_in_azure_is_reported(git_fleet: GitFleet) -> None:
    spec = git_fleet.spec
    with git_fleet.api("westus2") as api:
        kube.AppsV1Api(api).patch_namespaced_deployment("regional-app", "fleet-app", {"spec": {"replicas": 1}},
                                                        field_manager="kubectl-edit")
    clients = load_azure_clients("fleetflow-azure")
    account = git_fleet.azure_resources()[spec.cluster("centralus").storage_account_name]
    clients.resource.resources.begin_update_by_id(
        account.id, {"properties": {"minimumTlsVersion": "TLS1_0"}}, api_version="2023-01-01").result()
    state = drift_check(fleet=str(git_fleet.spec_path), return_state=True)
    assert state.is_failed()
    report = _latest_artifact("drift-gitfleet")
    assert "westus2" in report and "spec.replicas" in report
    assert "minimumTlsVersion" in report and "TLS1_0" in report
    assert drift_check(fleet=str(git_fleet.spec_path), correct=True, return_state=True) is not None


def test_a_removed_file_is_pruned_and_its_azure_resource_deleted(git_fleet: GitFleet) -> None:
    spec = git_fleet.spec
    git_fleet.commit("no more storage", remove=["gitops/regional/storage.yaml"])
    state = apply_resources(fleet=str(git_fleet.spec_path), return_state=True)
    rows = state.result() if state.is_completed() else []
    assert {row["state"] for row in rows if row["kind"] == "StorageAccount"} == {"Pruned"}, state.message
    names = set(git_fleet.azure_resources())
    assert not {c.storage_account_name for c in spec.clusters()} & names


def test_an_invalid_manifest_fails_naming_file_object_and_cluster_and_keeps_the_rest(git_fleet: GitFleet) -> None:
    bad = ("apiVersion: containerregistry.azure.com/v1api20230701\nkind: Registry\nmetadata:\n  name: gold\n"
           "  namespace: azure-resources\nspec:\n  owner:\n    armId: ${RESOURCE_GROUP_ID}\n  sku:\n"
           "    name: Gold\n")
    git_fleet.commit("a bad registry", {"gitops/fleet/bad.yaml": bad})
    state = apply_resources(fleet=str(git_fleet.spec_path), return_state=True)
    assert state.is_failed()
    assert "gitops/fleet/bad.yaml" in state.message and "Registry gold" in state.message
    assert git_fleet.spec.cluster("eastus").name in state.message
    assert git_fleet.spec.registry_name in git_fleet.azure_resources()
    git_fleet.commit("fix it", remove=["gitops/fleet/bad.yaml"])
    assert apply_resources(fleet=str(git_fleet.spec_path), return_state=True).is_completed()


def test_a_changed_secret_writes_exactly_one_new_version(git_fleet: GitFleet) -> None:
    spec = git_fleet.spec
    clients = load_azure_clients("fleetflow-azure")
    vault = clients.resource.resources.get_by_id(git_fleet.azure_resources()[spec.key_vault_name].id,
                                                 api_version="2023-07-01")
    secrets = clients.secret_client(vault.properties["vaultUri"])

    def versions() -> int:
        return len(list(secrets.list_properties_of_secret_versions("app-db-password")))

    assert secrets.get_secret("app-db-password").value == "first-password-value"
    before = versions()
    assert apply_resources(fleet=str(git_fleet.spec_path), return_state=True).is_completed()
    assert versions() == before
    Secret(value="second-password-value").save("gitfleet-db-password", overwrite=True)
    assert apply_resources(fleet=str(git_fleet.spec_path), return_state=True).is_completed()
    assert versions() == before + 1
    assert secrets.get_secret("app-db-password").value == "second-password-value"
    assert "second-password-value" not in json.dumps(_latest_artifact("apply-resources-gitfleet"))


def test_no_secret_reached_any_log_parameter_or_artifact(git_fleet: GitFleet) -> None:
    operator: AzureServicePrincipal = AzureServicePrincipal.load("fleetflow-aso")  # type: ignore[assignment]
    admin: AzureServicePrincipal = AzureServicePrincipal.load("fleetflow-azure")  # type: ignore[assignment]
    secrets = [operator.client_secret.get_secret_value(), admin.client_secret.get_secret_value(),
               "first-password-value", "second-password-value"]

    async def everything() -> str:
        async with get_client() as client:
            runs = await client.read_flow_runs()
            logs: list[Any] = []
            while page := await client.read_logs(log_filter=LogFilter(), limit=200, offset=len(logs)):
                logs += page
            artifacts = await client.read_artifacts(artifact_filter=ArtifactFilter())
        return "\n".join([*(str(run.parameters) for run in runs), *(log.message for log in logs),
                          *(str(artifact.data) for artifact in artifacts)])

    text = asyncio.run(everything())
    assert "bootstrap-aso" in text and "apply-resources" in text  # the flows' own records are there
    for secret in secrets:
        assert secret not in text


def test_teardown_leaves_nothing_in_local_azure(git_fleet: GitFleet) -> None:
    state = teardown(fleet=str(git_fleet.spec_path), return_state=True)
    assert state.is_completed(), state.message
    clients = load_azure_clients("fleetflow-azure")
    groups = {group.name for group in clients.resource.resource_groups.list()}
    assert git_fleet.spec.resource_group_name not in groups
    assert not [item.name for item in clients.resource.resources.list()
                if "gitfleet" in (item.id or "").lower() or "git001" in (item.name or "")]
