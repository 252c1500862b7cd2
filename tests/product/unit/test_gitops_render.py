"""Rendering the Git tree per cluster: variables, defaults, errors naming file and line, fleet-wide files."""

from __future__ import annotations

import pytest
import yaml

from tasks.gitops.render import RenderError, cluster_variables, render_cluster, substitute
from tasks.spec import load_spec
from tests.paths import REPO

SUBSCRIPTION = "00000000-0000-4000-8000-000000000001"
TENANT = "00000000-0000-4000-8000-000000000002"


def _tree() -> dict[str, bytes]:
    return {str(path.relative_to(REPO)): path.read_bytes() for path in (REPO / "gitops").rglob("*.yaml")}


def test_unknown_variable_names_file_line_and_the_fix() -> None:
    with pytest.raises(RenderError) as error:
        substitute("a: 1\nb: ${NOPE}\n", {"REGION": "eastus"}, "gitops/regional/x.yaml", "aks-1")
    message = str(error.value)
    assert "gitops/regional/x.yaml:2" in message and "${NOPE}" in message and "aks-1" in message
    assert "gitops.variables" in message


def test_defaults_escapes_and_known_variables() -> None:
    text = substitute("r: ${REGION}\nn: ${N:=3}\nlit: $${REGION}\n", {"REGION": "westus2"}, "f.yaml", "c")
    assert yaml.safe_load(text) == {"r": "westus2", "n": 3, "lit": "${REGION}"}


def test_the_projects_tree_renders_fleet_objects_only_on_the_fleet_cluster() -> None:
    spec = load_spec(REPO / "fleet.yaml")
    fleet_cluster = spec.fleet_cluster()
    other = next(cluster for cluster in spec.clusters() if cluster.name != fleet_cluster.name)
    rendered = {}
    for cluster in (fleet_cluster, other):
        variables = cluster_variables(spec, cluster, SUBSCRIPTION, TENANT)
        rendered[cluster.name] = render_cluster(_tree(), "gitops", variables, cluster.name,
                                                fleet_wide=cluster is fleet_cluster)
    kinds = {name: sorted(item.kind for item in objects) for name, objects in rendered.items()}
    assert kinds[fleet_cluster.name] == ["Deployment", "Namespace", "Namespace", "Registry", "StorageAccount", "Vault"]
    assert kinds[other.name] == ["Deployment", "Namespace", "StorageAccount"]
    storage = next(item for item in rendered[other.name] if item.kind == "StorageAccount").manifest
    assert storage["spec"]["azureName"] == other.storage_account_name
    assert storage["spec"]["location"] == other.region
    # The group provision owns is referenced by ARM id: no ASO object owns (or could delete) it.
    assert storage["spec"]["owner"] == {"armId": f"/subscriptions/{SUBSCRIPTION}/resourceGroups/"
                                                  f"{spec.resource_group_name}"}
    vault = next(item for item in rendered[fleet_cluster.name] if item.kind == "Vault").manifest
    assert vault["spec"]["properties"]["tenantId"] == TENANT
    assert vault["spec"]["azureName"] == spec.key_vault_name
    app = next(item for item in rendered[other.name] if item.kind == "Deployment").manifest
    env = {item["name"]: item.get("value") for item in app["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["REGION"] == other.region and env["STORAGE_ACCOUNT"] == other.storage_account_name
    assert app["spec"]["replicas"] == 2


def test_no_object_of_the_projects_tree_uses_the_recipes_wrong_api_versions_or_kinds() -> None:
    text = b"".join(_tree().values()).decode()
    assert "v1api20210701" not in text and "VaultsSecret" not in text and "password" not in text.lower()


@pytest.mark.parametrize(("document", "expected"), [
    ("apiVersion: v1\nkind: ConfigMap\nmetadata: {}\n", "missing metadata.name"),
    ("kind: ConfigMap\nmetadata: {name: x}\n", "missing apiVersion"),
    ("- a\n- b\n", "not a Kubernetes object"),
    ("apiVersion: v1\nkind: Secret\nmetadata: {name: pw}\nstringData: {password: hunter2}\n", "puts a secret in Git"),
    ("a: [\n", "not valid YAML"),
])
def test_bad_documents_are_refused_naming_the_file(document: str, expected: str) -> None:
    files = {"gitops/regional/bad.yaml": document.encode()}
    with pytest.raises(RenderError) as error:
        render_cluster(files, "gitops", {}, "aks-1", fleet_wide=False)
    assert "gitops/regional/bad.yaml" in str(error.value) and expected in str(error.value)
    assert "hunter2" not in str(error.value)


def test_an_object_declared_twice_is_refused_naming_both_files() -> None:
    document = b"apiVersion: v1\nkind: Namespace\nmetadata: {name: dup}\n"
    files = {"gitops/regional/a.yaml": document, "gitops/regional/b.yaml": document}
    with pytest.raises(RenderError, match="gitops/regional/b.yaml.*also declared in gitops/regional/a.yaml"):
        render_cluster(files, "gitops", {}, "aks-1", fleet_wide=False)


def test_files_outside_the_folders_and_non_yaml_files_are_ignored() -> None:
    files = {"gitops/README.md": b"# not a manifest", "other/regional/x.yaml": b"not: applied",
             "gitops/regional/ns.yml": b"apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n",
             "gitops/fleet/ns.yaml": b"apiVersion: v1\nkind: Namespace\nmetadata: {name: b}\n"}
    assert [item.name for item in render_cluster(files, "gitops", {}, "c", fleet_wide=False)] == ["a"]
    assert sorted(item.name for item in render_cluster(files, "gitops", {}, "c", fleet_wide=True)) == ["a", "b"]
