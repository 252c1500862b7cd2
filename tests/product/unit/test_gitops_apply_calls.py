"""Server-side apply, pruning, presence checks and the inventory ConfigMap against an in-memory Kubernetes API:
what each object is sent with, the order, and the whole line reported for each failure."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from kubernetes.client.rest import ApiException
from kubernetes.dynamic.exceptions import ResourceNotFoundError

from tasks.gitops import apply
from tasks.gitops.apply import (
    Inventory,
    ObjectRef,
    apply_objects,
    delete_objects,
    dynamic_client,
    present,
    read_inventory,
    read_live,
    write_inventory,
)
from tasks.gitops.render import RenderedObject


def api_error(status: int, body: str = "", reason: str = "") -> ApiException:
    error = ApiException(status=status, reason=reason)
    error.body = body
    return error


class _Result:
    def __init__(self, value: dict[str, Any]) -> None:
        self.value = value

    def to_dict(self) -> dict[str, Any]:
        return self.value


class _Resources:
    def __init__(self, unknown: set[str], late: set[str]) -> None:
        self.unknown, self.late, self.invalidated = unknown, late, 0

    def get(self, api_version: str, kind: str) -> str:
        if kind in self.unknown or (kind in self.late and not self.invalidated):
            raise ResourceNotFoundError(f"No matches found for {{'api_version': '{api_version}', 'kind': '{kind}'}}")
        return f"{api_version}/{kind}"

    def invalidate_cache(self) -> None:
        self.invalidated += 1


class _Dynamic:
    """A dynamic client: kinds it serves (`unknown` ones it does not, `late` ones only after a rediscovery), and a
    failure to raise per object name."""

    def __init__(self, unknown: set[str] = frozenset(), late: set[str] = frozenset(),  # type: ignore[assignment]
                 failures: dict[str, Exception] | None = None, live: dict[str, dict[str, Any]] | None = None):
        self.resources = _Resources(set(unknown), set(late))
        self.failures = failures or {}
        self.live = live or {}
        self.calls: list[tuple[str, Any, dict[str, Any]]] = []

    def _fail(self, name: str) -> None:
        if name in self.failures:
            raise self.failures[name]

    def server_side_apply(self, resource: Any, **kwargs: Any) -> _Result:
        self.calls.append(("apply", resource, kwargs))
        self._fail(kwargs["name"])
        return _Result({"applied": kwargs["name"], "dry_run": kwargs.get("dry_run")})

    def delete(self, resource: Any, **kwargs: Any) -> None:
        self.calls.append(("delete", resource, kwargs))
        self._fail(kwargs["name"])

    def get(self, resource: Any, **kwargs: Any) -> _Result:
        self.calls.append(("get", resource, kwargs))
        self._fail(kwargs["name"])
        return _Result(self.live.get(kwargs["name"], {"name": kwargs["name"]}))


def rendered(kind: str, name: str, namespace: str | None = None, api_version: str = "v1",
             source: str = "gitops/regional/x.yaml") -> RenderedObject:
    metadata: dict[str, Any] = {"name": name}
    if namespace:
        metadata["namespace"] = namespace
    return RenderedObject(source, {"apiVersion": api_version, "kind": kind, "metadata": metadata})


def test_objects_are_applied_namespaces_and_crds_first_with_fleetflows_marks_and_forced_ownership():
    dynamic = _Dynamic()
    objects = [rendered("ConfigMap", "cm", "app"), rendered("Namespace", "app"),
               rendered("CustomResourceDefinition", "things.example.com", api_version="apiextensions.k8s.io/v1")]
    applied, failures = apply_objects(dynamic, "aks-1", objects)  # type: ignore[arg-type]
    assert failures == []
    assert [(resource, kwargs["name"], kwargs["namespace"]) for _, resource, kwargs in dynamic.calls] == [
        ("v1/Namespace", "app", None),
        ("apiextensions.k8s.io/v1/CustomResourceDefinition", "things.example.com", None),
        ("v1/ConfigMap", "cm", "app")]
    _, _, first = dynamic.calls[2]
    assert (first["field_manager"], first["force_conflicts"], "dry_run" in first) == ("fleetflow", True, False)
    assert first["body"]["metadata"] == {
        "name": "cm", "namespace": "app", "labels": {"app.kubernetes.io/managed-by": "fleetflow"},
        "annotations": {"fleetflow.io/source": "gitops/regional/x.yaml"}}
    assert applied == {"/ConfigMap/app/cm": {"applied": "cm", "dry_run": None},
                       "/Namespace//app": {"applied": "app", "dry_run": None},
                       "apiextensions.k8s.io/CustomResourceDefinition//things.example.com":
                           {"applied": "things.example.com", "dry_run": None}}
    assert objects[0].manifest["metadata"] == {"name": "cm", "namespace": "app"}  # the render is not changed


def test_a_dry_run_asks_the_server_to_apply_nothing():
    dynamic = _Dynamic()
    applied, _ = apply_objects(dynamic, "aks-1", [rendered("ConfigMap", "cm", "app")], dry_run=True)  # type: ignore[arg-type]
    assert dynamic.calls[0][2]["dry_run"] == "All"
    assert applied == {"/ConfigMap/app/cm": {"applied": "cm", "dry_run": "All"}}


def test_a_kind_installed_after_discovery_is_found_by_discovering_again():
    dynamic = _Dynamic(late={"Widget"})
    applied, failures = apply_objects(dynamic, "c", [rendered("Widget", "w", "app", "example.com/v1")])  # type: ignore[arg-type]
    assert (list(applied), failures, dynamic.resources.invalidated) == (["example.com/Widget/app/w"], [], 1)
    assert dynamic.calls[0][1] == "example.com/v1/Widget"


NO_KIND = "the cluster serves no such kind (is its CRD installed? check the apiVersion and the crdPattern)"


def test_each_failed_object_is_one_line_naming_file_kind_name_cluster_and_cause_and_the_others_are_applied():
    dynamic = _Dynamic(unknown={"Widget"}, failures={
        "json": api_error(422, json.dumps({"message": "spec.replicas: Invalid value"})),
        "empty-message": api_error(409, json.dumps({"message": "", "reason": "Conflict"})),
        "text": api_error(500, "<html>boom</html>"),
        "long": api_error(400, "x" * 600),
        "long-json": api_error(422, json.dumps({"message": "m" * 600})),
        "no-body": api_error(500),
        "not-text": api_error(409, {"message": "as a mapping"}),  # type: ignore[arg-type]
        "value": ValueError("bad manifest"),
        "long-value": ValueError("v" * 600)})
    names = ("json", "empty-message", "text", "long", "long-json", "no-body", "not-text", "value", "long-value", "fine")
    objects = [rendered("Widget", "w", "app", "example.com/v1", source="gitops/regional/w.yaml")] + [
        rendered("ConfigMap", name, "app") for name in names]
    applied, failures = apply_objects(dynamic, "aks-1", objects)  # type: ignore[arg-type]
    assert list(applied) == ["/ConfigMap/app/fine"]
    where = "gitops/regional/x.yaml: ConfigMap"
    assert failures == [
        f"gitops/regional/w.yaml: Widget w on cluster aks-1: {NO_KIND}",
        f"{where} json on cluster aks-1: spec.replicas: Invalid value",
        f"{where} empty-message on cluster aks-1: " + json.dumps({"message": "", "reason": "Conflict"}),
        f"{where} text on cluster aks-1: 500 <html>boom</html>",
        f"{where} long on cluster aks-1: " + ("400 " + "x" * 600)[:500],
        f"{where} long-json on cluster aks-1: " + "m" * 500,
        f"{where} no-body on cluster aks-1: 500 ",
        f"{where} not-text on cluster aks-1: 409 {{'message': 'as a mapping'}}",
        f"{where} value on cluster aks-1: ValueError: bad manifest",
        f"{where} long-value on cluster aks-1: " + ("ValueError: " + "v" * 600)[:500]]


def test_objects_are_deleted_namespaces_last_in_the_background_and_gone_ones_count_as_deleted():
    dynamic = _Dynamic(unknown={"Widget"}, failures={"gone": api_error(404), "stuck": api_error(403, "forbidden"),
                                                     "busy": api_error(500, json.dumps({"message": "etcd busy"}))})
    refs = [ObjectRef("v1", "Namespace", None, "app"), ObjectRef("example.com/v1", "Widget", "app", "w"),
            ObjectRef("v1", "ConfigMap", "app", "gone"), ObjectRef("v1", "ConfigMap", "app", "stuck"),
            ObjectRef("v1", "ConfigMap", None, "busy"),
            ObjectRef("apiextensions.k8s.io/v1", "CustomResourceDefinition", None, "crd")]
    failures = delete_objects(dynamic, "aks-1", refs)  # type: ignore[arg-type]
    assert failures == ["delete ConfigMap app/stuck on cluster aks-1: 403 forbidden",
                        "delete ConfigMap busy on cluster aks-1: etcd busy"]
    assert [(resource, kwargs["name"], kwargs["namespace"]) for _, resource, kwargs in dynamic.calls] == [
        ("v1/ConfigMap", "gone", "app"), ("v1/ConfigMap", "stuck", "app"), ("v1/ConfigMap", "busy", None),
        ("apiextensions.k8s.io/v1/CustomResourceDefinition", "crd", None), ("v1/Namespace", "app", None)]
    assert all(kwargs["body"] == {"propagationPolicy": "Background"} for _, _, kwargs in dynamic.calls)


def test_present_lists_objects_that_still_exist_and_those_it_cannot_tell():
    dynamic = _Dynamic(unknown={"Widget"}, failures={"gone": api_error(404), "hidden": api_error(403, "forbidden")})
    refs = [ObjectRef("v1", "ConfigMap", "app", "here"), ObjectRef("v1", "Namespace", None, "ns"),
            ObjectRef("v1", "ConfigMap", "app", "gone"), ObjectRef("example.com/v1", "Widget", "app", "w"),
            ObjectRef("v1", "ConfigMap", "app", "hidden")]
    assert present(dynamic, refs) == ["ConfigMap app/here", "Namespace ns",  # type: ignore[arg-type]
                                      "ConfigMap app/hidden (403 forbidden)"]
    assert [(resource, kwargs) for _, resource, kwargs in dynamic.calls] == [
        ("v1/ConfigMap", {"name": "here", "namespace": "app"}), ("v1/Namespace", {"name": "ns", "namespace": None}),
        ("v1/ConfigMap", {"name": "gone", "namespace": "app"}),
        ("v1/ConfigMap", {"name": "hidden", "namespace": "app"})]


def test_read_live_gives_the_object_or_none_when_it_or_its_kind_is_gone():
    dynamic = _Dynamic(unknown={"Widget"}, live={"cm": {"kind": "ConfigMap", "data": {"a": "1"}}},
                       failures={"gone": api_error(404), "hidden": api_error(403, "forbidden")})
    assert read_live(dynamic, ObjectRef("v1", "ConfigMap", "app", "cm")) == {  # type: ignore[arg-type]
        "kind": "ConfigMap", "data": {"a": "1"}}
    assert dynamic.calls[-1][1:] == ("v1/ConfigMap", {"name": "cm", "namespace": "app"})
    assert read_live(dynamic, ObjectRef("v1", "ConfigMap", "app", "gone")) is None  # type: ignore[arg-type]
    assert read_live(dynamic, ObjectRef("example.com/v1", "Widget", "app", "w")) is None  # type: ignore[arg-type]
    with pytest.raises(ApiException) as raised:
        read_live(dynamic, ObjectRef("v1", "ConfigMap", "app", "hidden"))  # type: ignore[arg-type]
    assert raised.value.status == 403


class _ConfigMap:
    def __init__(self, data: dict[str, str] | None) -> None:
        self.data = data


class _Core:
    """CoreV1Api for the inventory ConfigMap."""

    stored: _ConfigMap | None = None
    read_error: ApiException | None = None
    replace_error: ApiException | None = None
    calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []
    apis: list[Any] = []

    def __init__(self, api: Any) -> None:
        self.api = api
        _Core.apis.append(api)

    def read_namespaced_config_map(self, *args: Any, **kwargs: Any) -> _ConfigMap | None:
        _Core.calls.append(("read", args, kwargs))
        if _Core.read_error is not None:
            raise _Core.read_error
        return _Core.stored

    def replace_namespaced_config_map(self, *args: Any, **kwargs: Any) -> None:
        _Core.calls.append(("replace", args, kwargs))
        if _Core.replace_error is not None:
            raise _Core.replace_error

    def create_namespaced_config_map(self, *args: Any, **kwargs: Any) -> None:
        _Core.calls.append(("create", args, kwargs))


@pytest.fixture
def core(monkeypatch):
    monkeypatch.setattr(apply.kube_client, "CoreV1Api", _Core)
    namespaces: list[tuple[str, str]] = []
    monkeypatch.setattr(apply, "ensure_namespace", lambda api, cluster, namespace: namespaces.append(
        (api, cluster, namespace)))
    kube_calls: list[tuple[str, str, str]] = []

    def kube_call(cluster: str, operation: str, resource: str, call: Any) -> Any:
        kube_calls.append((cluster, operation, resource))
        return call()

    monkeypatch.setattr(apply, "kube_call", kube_call)
    _Core.kube_calls = kube_calls  # type: ignore[attr-defined]
    _Core.stored, _Core.read_error, _Core.replace_error, _Core.calls, _Core.apis = None, None, None, [], []
    _Core.namespaces = namespaces  # type: ignore[attr-defined]
    return _Core


def test_the_inventory_is_read_from_its_config_map_and_is_empty_before_any_apply(core):
    core.stored = _ConfigMap({"commit": "abc", "objects": json.dumps([
        {"apiVersion": "v1", "kind": "Namespace", "name": "app"},
        {"apiVersion": "v1", "kind": "ConfigMap", "namespace": "app", "name": "cm"}])})
    assert read_inventory("api", "aks-1") == Inventory("abc", (  # type: ignore[arg-type]
        ObjectRef("v1", "Namespace", None, "app"), ObjectRef("v1", "ConfigMap", "app", "cm")))
    assert core.calls == [("read", ("fleetflow-inventory", "fleetflow-system"), {"_request_timeout": 30})]
    assert core.apis == ["api"]
    core.stored = _ConfigMap({"commit": ""})
    assert read_inventory("api", "aks-1") == Inventory(None, ())  # type: ignore[arg-type]
    core.stored = _ConfigMap(None)
    assert read_inventory("api", "aks-1") == Inventory(None, ())  # type: ignore[arg-type]
    core.read_error = api_error(404)
    assert read_inventory("api", "aks-1") == Inventory(None, ())  # type: ignore[arg-type]
    core.read_error = api_error(403)
    with pytest.raises(ApiException):
        read_inventory("api", "aks-1")  # type: ignore[arg-type]


def test_the_inventory_is_written_with_its_commit_and_objects_and_created_when_missing(core):
    inventory = Inventory("abc", (ObjectRef("v1", "ConfigMap", "app", "cm"),))
    write_inventory("api", "aks-1", inventory)  # type: ignore[arg-type]
    assert core.namespaces == [("api", "aks-1", "fleetflow-system")]  # type: ignore[attr-defined]
    assert core.apis == ["api"]
    (name, args, kwargs), = core.calls
    assert (name, args[:2], kwargs) == ("replace", ("fleetflow-inventory", "fleetflow-system"),
                                        {"_request_timeout": 30})
    body = args[2]
    assert (body.metadata.name, body.metadata.namespace, body.metadata.labels) == (
        "fleetflow-inventory", "fleetflow-system", {"app.kubernetes.io/managed-by": "fleetflow"})
    assert body.data["commit"] == "abc"
    assert json.loads(body.data["objects"]) == [{"apiVersion": "v1", "kind": "ConfigMap", "namespace": "app",
                                                 "name": "cm"}]
    assert body.data["objects"].startswith("[\n {")
    assert len(body.data["applied-at"]) == 20 and body.data["applied-at"].endswith("Z")

    core.calls, core.replace_error = [], api_error(404)
    write_inventory("api", "aks-1", Inventory(None, ()))  # type: ignore[arg-type]
    assert [name for name, _, _ in core.calls] == ["replace", "create"]
    assert core.kube_calls == [("aks-1", "create", "configmap fleetflow-system/fleetflow-inventory")]  # type: ignore[attr-defined]
    assert core.calls[1][1][0] == "fleetflow-system" and core.calls[1][2] == {"_request_timeout": 30}
    assert core.calls[1][1][1].data["commit"] == "" and core.calls[1][1][1].data["objects"] == "[]"

    core.replace_error = api_error(500)
    with pytest.raises(ApiException):
        write_inventory("api", "aks-1", inventory)  # type: ignore[arg-type]


def test_the_discovery_cache_lives_in_a_private_directory_removed_afterwards(monkeypatch):
    made: list[dict[str, Any]] = []
    monkeypatch.setattr(apply, "DynamicClient", lambda api, cache_file: made.append(
        {"api": api, "cache_file": cache_file}) or "client")
    with dynamic_client("api") as client:  # type: ignore[arg-type]
        cache = Path(made[0]["cache_file"])
        assert (client, made[0]["api"], cache.name) == ("client", "api", "discovery.json")
        assert cache.parent.is_dir() and cache.parent.name.startswith("fleetflow-discovery-")
    assert not cache.parent.exists()
