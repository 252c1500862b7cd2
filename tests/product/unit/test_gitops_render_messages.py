"""Rendering a Git tree for one cluster, asserted whole: every variable a manifest may use, substitution line by
line, object identities, and the exact refusal for each kind of bad file."""

from __future__ import annotations

import pytest

from tasks.gitops.render import RenderedObject, RenderError, cluster_variables, render_cluster, substitute
from tasks.spec import FleetSpec

SPEC_FIELDS = {
    "name": "demo", "location": "eastus", "suffix": "abc123",
    "regions": [{"name": "eastus", "update_group": "test-group"}, {"name": "westus2", "update_group": "prod-group"}],
    "update_strategy": {"stages": [{"name": "s1", "groups": ["test-group", "prod-group"]}]},
}


def test_a_cluster_gets_its_fleet_and_own_names_as_variables_and_the_specs_variables_win():
    spec = FleetSpec.model_validate({**SPEC_FIELDS, "gitops": {"repository": ".", "variables": {
        "REGION": "overridden", "APP_REPLICAS": "3"}}})
    cluster = spec.clusters()[1]
    assert cluster_variables(spec, cluster, "sub-1", "tenant-1") == {
        "FLEET_NAME": "demo", "FLEET_LOCATION": "eastus", "SUFFIX": "abc123", "SUBSCRIPTION_ID": "sub-1",
        "TENANT_ID": "tenant-1", "RESOURCE_GROUP": "rg-demo-abc123",
        "RESOURCE_GROUP_ID": "/subscriptions/sub-1/resourceGroups/rg-demo-abc123", "REGION": "overridden",
        "CLUSTER_NAME": "aks-demo-westus2", "UPDATE_GROUP": "prod-group", "REGISTRY_NAME": "acrdemoabc123",
        "KEY_VAULT_NAME": "kv-demo-abc123", "STORAGE_ACCOUNT_NAME": "stdemoabc1231", "APP_REPLICAS": "3"}


def test_without_gitops_the_variables_are_the_derived_ones_only():
    spec = FleetSpec.model_validate(SPEC_FIELDS)
    variables = cluster_variables(spec, spec.clusters()[0], "s", "t")
    assert (variables["REGION"], variables["STORAGE_ACCOUNT_NAME"], len(variables)) == ("eastus", "stdemoabc1230", 13)


@pytest.mark.parametrize(("text", "rendered"), [
    ("r: ${REGION}\n", "r: westus2\n"),
    ("r: ${REGION:=eastus}\n", "r: westus2\n"),
    ("n: ${N:=3}\n", "n: 3\n"),
    ("n: ${N:=}\n", "n: \n"),
    ("lit: $${REGION} and $${N:=1}\n", "lit: ${REGION} and ${N:=1}\n"),
    ("two: ${REGION}-${_X9}\n", "two: westus2-x\n"),
    ("no brace: $REGION ${1X} ${ REGION}\n", "no brace: $REGION ${1X} ${ REGION}\n"),
    ("a: 1\r\nb: ${REGION}", "a: 1\r\nb: westus2"),
    ("", ""),
])
def test_variables_defaults_and_escapes_are_replaced_and_everything_else_kept(text: str, rendered: str):
    assert substitute(text, {"REGION": "westus2", "_X9": "x"}, "f.yaml", "aks-1") == rendered


def test_an_unknown_variable_is_refused_naming_file_line_cluster_the_known_ones_and_the_fix():
    with pytest.raises(RenderError) as raised:
        substitute("a: 1\n\nb: ${NOPE}\n", {"ZONE": "1", "REGION": "eastus"}, "gitops/regional/x.yaml", "aks-1")
    assert str(raised.value) == ("gitops/regional/x.yaml:3: unknown variable ${NOPE} for cluster aks-1 (known: REGION, "
                                 "ZONE); add it to gitops.variables or give a default as ${NOPE:=value}")
    assert (raised.value.operation, raised.value.resource_id) == ("render", "gitops/regional/x.yaml:3")


@pytest.mark.parametrize(("manifest", "key", "namespace"), [
    ({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "app"}},
     "apps/Deployment/app/web", "app"),
    ({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "app"}}, "/Namespace//app", None),
    ({"apiVersion": "storage.azure.com/v1api20230101", "kind": "StorageAccount",
      "metadata": {"name": "st", "namespace": ""}}, "storage.azure.com/StorageAccount//st", None),
])
def test_an_object_is_known_by_group_kind_namespace_and_name(manifest, key: str, namespace: str | None):
    rendered = RenderedObject("f.yaml", manifest)
    assert (rendered.api_version, rendered.kind, rendered.name, rendered.namespace, rendered.key) == (
        manifest["apiVersion"], manifest["kind"], manifest["metadata"]["name"], namespace, key)


def render_one(document: bytes, path: str = "gitops/regional/bad.yaml") -> list[RenderedObject]:
    return render_cluster({path: document}, "gitops", {}, "aks-1", fleet_wide=False)


B = "gitops/regional/bad.yaml"


@pytest.mark.parametrize(("document", "message"), [
    (b"apiVersion: v1\nkind: ConfigMap\nmetadata: {}\n", f"{B} document 1: missing metadata.name"),
    (b"apiVersion: v1\nkind: ConfigMap\nmetadata: [a]\n", f"{B} document 1: missing metadata.name"),
    (b"apiVersion: v1\nkind: ConfigMap\n", f"{B} document 1: missing metadata.name"),
    (b"kind: ConfigMap\nmetadata: {name: x}\n", f"{B} document 1: missing apiVersion"),
    (b"apiVersion: v1\nmetadata: {name: x}\n", f"{B} document 1: missing kind"),
    (b"apiVersion: ''\nkind: ''\n", f"{B} document 1: missing apiVersion, kind, metadata.name"),
    (b"---\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\n- a\n",
     f"{B} document 3: not a Kubernetes object (a mapping with apiVersion, kind and metadata)"),
    (b"apiVersion: v1\nkind: Secret\nmetadata: {name: pw}\nstringData: {password: hunter2}\n",
     f"{B} document 1: Secret pw puts a secret in Git; map it to a Prefect Secret block under "
     "gitops.key_vault_secrets instead"),
    (b"\xff\xfe", f"{B}: not UTF-8 text"),
], ids=["empty metadata", "metadata a list", "no metadata", "no apiVersion", "no kind", "all missing",
        "a list after empty documents", "a Secret", "not UTF-8"])
def test_a_bad_document_is_refused_naming_file_document_and_what_is_wrong(document: bytes, message: str):
    with pytest.raises(RenderError) as raised:
        render_one(document)
    assert str(raised.value) == message
    assert (raised.value.operation, raised.value.resource_id) == ("render", B)


def test_invalid_yaml_is_refused_naming_file_and_cluster():
    with pytest.raises(RenderError) as raised:
        render_one(b"a: [\n")
    assert str(raised.value).startswith(f"{B}: not valid YAML for cluster aks-1: while parsing a flow node")
    assert (raised.value.operation, raised.value.resource_id) == ("render", B)


def test_a_secret_of_another_api_group_and_empty_documents_are_rendered():
    rendered = render_one(b"---\napiVersion: secrets-store.csi.x-k8s.io/v1\nkind: Secret\nmetadata: {name: s}\n---\n")
    assert [(item.source, item.kind, item.name) for item in rendered] == [(B, "Secret", "s")]


def test_the_same_object_twice_is_refused_naming_both_files_even_within_one():
    namespace = b"apiVersion: v1\nkind: Namespace\nmetadata: {name: dup}\n"
    with pytest.raises(RenderError) as raised:
        render_one(namespace + b"---\n" + namespace)
    assert str(raised.value) == f"{B}: Namespace dup is also declared in {B}"
    assert (raised.value.operation, raised.value.resource_id) == ("render", B)
    other_namespace = b"apiVersion: v1\nkind: Namespace\nmetadata: {name: dup, namespace: x}\n"
    assert len(render_one(namespace + b"---\n" + other_namespace)) == 2


def test_regional_files_always_and_fleet_files_on_the_fleet_cluster_sorted_by_path():
    def namespace(name: str) -> bytes:
        return f"apiVersion: v1\nkind: Namespace\nmetadata: {{name: {name}}}\n".encode()

    files = {"deploy/regional/b.yaml": namespace("rb"), "deploy/regional/a.yml": namespace("ra"),
             "deploy/fleet/z.yaml": namespace("fz"), "deploy/regional/c.json": namespace("json"),
             "deploy/regionalx/d.yaml": namespace("x"), "other/regional/e.yaml": namespace("other"),
             "deploy/fleet.yaml": namespace("top"), "deploy/regional/sub/f.yaml": namespace("sub")}
    def names(folder: str, fleet_wide: bool) -> list[str]:
        return [item.name for item in render_cluster(files, folder, {}, "c", fleet_wide=fleet_wide)]

    assert names("deploy", False) == ["ra", "rb", "sub"]
    assert names("/deploy/", True) == ["fz", "ra", "rb", "sub"]


def test_an_unknown_variable_in_the_tree_names_the_file_and_the_cluster():
    files = {"appX/regional/ns.yaml": b"apiVersion: v1\nkind: Namespace\nmetadata: {name: ${NS}}\n"}
    with pytest.raises(RenderError) as raised:
        render_cluster(files, "appX/", {"REGION": "eastus"}, "aks-7", fleet_wide=False)
    assert str(raised.value) == ("appX/regional/ns.yaml:3: unknown variable ${NS} for cluster aks-7 (known: REGION); "
                                 "add it to gitops.variables or give a default as ${NS:=value}")
    assert [item.name for item in render_cluster(files, "appX", {"NS": "a"}, "aks-7", fleet_wide=False)] == ["a"]
