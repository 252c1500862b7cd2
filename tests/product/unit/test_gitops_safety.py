"""Safety decisions of the GitOps and Helm modules that need no cluster: what is pruned, what the inventory keeps
after a failed apply, what marks an applied object carries, when a Key Vault secret gets a new version, which
helm binary runs."""

from __future__ import annotations

import os
import stat

import pytest
from pyhelm3 import errors as helm_errors

from tasks.gitops.apply import (
    APPLY_ORDER,
    SOURCE_ANNOTATION,
    Inventory,
    ObjectRef,
    _with_marks,
    inventory_after_failure,
    stale_objects,
)
from tasks.gitops.render import RenderedObject
from tasks.helm import HELM_ENV, TOOLS_ENV, HelmError, _helm_message, helm_executable
from tasks.keyvault import secret_action
from tasks.kube_objects import MANAGED_BY

APP = ObjectRef("apps/v1", "Deployment", "app", "web")
VAULT = ObjectRef("keyvault.azure.com/v1api20230701", "Vault", "fleet", "kv")
NAMESPACE = ObjectRef("v1", "Namespace", None, "app")


def rendered(api_version: str, kind: str, name: str, namespace: str | None = None, **extra) -> RenderedObject:
    manifest = {"apiVersion": api_version, "kind": kind, "metadata": {"name": name, **extra}}
    if namespace:
        manifest["metadata"]["namespace"] = namespace
    return RenderedObject(source=f"gitops/regional/{name}.yaml", manifest=manifest)


# --- inventory and prune --------------------------------------------------------------------------


def test_only_objects_that_left_git_are_pruned():
    previous = Inventory("c1", (APP, VAULT, NAMESPACE))
    assert stale_objects(previous, [APP, NAMESPACE]) == [VAULT]
    assert stale_objects(previous, [APP, VAULT, NAMESPACE]) == []
    assert stale_objects(Inventory(None, ()), [APP]) == []
    # Same kind and name under a newer API version is the same object: not pruned.
    assert stale_objects(Inventory("c1", (VAULT,)), [ObjectRef("keyvault.azure.com/v1api20240101", "Vault", "fleet",
                                                                "kv")]) == []
    # Same name in another namespace, or another kind, is another object.
    moved = ObjectRef("apps/v1", "Deployment", "other", "web")
    assert stale_objects(Inventory("c1", (APP,)), [moved]) == [APP]
    assert stale_objects(Inventory("c1", (APP,)), [ObjectRef("apps/v1", "StatefulSet", "app", "web")]) == [APP]


def test_a_failed_apply_keeps_the_old_commit_and_tracks_old_and_newly_applied_objects():
    previous = Inventory("c1", (APP, VAULT))
    new_ok, new_failed = ObjectRef("v1", "ConfigMap", "app", "settings"), ObjectRef("v1", "Secret", "app", "x")
    after = inventory_after_failure(previous, [APP, new_ok, new_failed], {APP.key, new_ok.key})
    assert after.commit == "c1"
    assert after.objects == (APP, VAULT, new_ok)  # VAULT left Git but is kept: nothing is pruned on failure
    assert inventory_after_failure(Inventory(None, ()), [APP], set()) == Inventory(None, ())


def test_object_refs_key_display_and_json():
    assert APP.key == "apps/Deployment/app/web" and APP.display == "app/web"
    assert NAMESPACE.key == "/Namespace//app" and NAMESPACE.display == "app"
    assert VAULT.to_json() == {"apiVersion": "keyvault.azure.com/v1api20230701", "kind": "Vault",
                               "namespace": "fleet", "name": "kv"}
    assert ObjectRef.of(rendered("apps/v1", "Deployment", "web", "app")) == APP
    assert ObjectRef.of(rendered("apps/v1", "Deployment", "web", "app")).key == rendered(
        "apps/v1", "Deployment", "web", "app").key


def test_applied_objects_carry_fleetflows_marks_and_keep_their_own():
    source = rendered("apps/v1", "Deployment", "web", "app", labels={"app": "web"}, annotations={"note": "x"})
    marked = _with_marks(source)
    assert marked["metadata"]["labels"] == {"app": "web", **MANAGED_BY}
    assert marked["metadata"]["annotations"] == {"note": "x", SOURCE_ANNOTATION: "gitops/regional/web.yaml"}
    assert "labels" not in source.manifest["metadata"] or source.manifest["metadata"]["labels"] == {"app": "web"}
    assert SOURCE_ANNOTATION not in source.manifest["metadata"]["annotations"]  # the render is not changed
    bare = _with_marks(rendered("v1", "Namespace", "app"))
    assert bare["metadata"]["labels"] == MANAGED_BY
    assert bare["metadata"]["annotations"] == {SOURCE_ANNOTATION: "gitops/regional/app.yaml"}


def test_namespaces_and_crds_go_first():
    assert APPLY_ORDER["Namespace"] < APPLY_ORDER["CustomResourceDefinition"] < APPLY_ORDER.get("Deployment", 2)


# --- Key Vault ------------------------------------------------------------------------------------


def test_a_key_vault_secret_gets_a_new_version_only_when_its_value_changed():
    assert secret_action("s3cret", "s3cret") == "unchanged"
    assert secret_action(None, "s3cret") == "created"
    assert secret_action("old", "s3cret") == "updated"
    assert secret_action("", "s3cret") == "updated"


# --- helm -----------------------------------------------------------------------------------------


def _fake_helm(directory, name="helm"):
    path = directory / name
    path.write_text("#!/bin/sh\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_helm_binary_from_the_setting_then_path_then_the_newest_built(tmp_path, monkeypatch):
    tools = tmp_path / "tools"
    for version in ("v3.9.0", "v3.22.0"):
        (tools / f"helm-{version}").mkdir(parents=True)
        _fake_helm(tools / f"helm-{version}")
    on_path = tmp_path / "bin"
    on_path.mkdir()
    monkeypatch.setenv(TOOLS_ENV, str(tools))
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.delenv(HELM_ENV, raising=False)
    assert helm_executable() == str(tools / "helm-v3.9.0" / "helm")  # sorted by name: v3.9 after v3.22
    _fake_helm(on_path)
    monkeypatch.setenv("PATH", str(on_path))
    assert helm_executable() == str(on_path / "helm")
    monkeypatch.setenv(HELM_ENV, "/opt/helm/bin/helm")
    assert helm_executable() == "/opt/helm/bin/helm"


def test_no_helm_binary_says_how_to_get_one(tmp_path, monkeypatch):
    monkeypatch.delenv(HELM_ENV, raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv(TOOLS_ENV, str(tmp_path / "no-tools"))
    with pytest.raises(HelmError, match=r"no helm binary: set FLEETFLOW_HELM, put helm on PATH, or run `make tools`"):
        helm_executable()
    monkeypatch.delenv(TOOLS_ENV)
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / ".cache" / "fleetflow" / "tools" / "helm-v3.1.0").mkdir(parents=True)
    _fake_helm(tmp_path / ".cache" / "fleetflow" / "tools" / "helm-v3.1.0")
    assert helm_executable() == os.path.join(tmp_path, ".cache/fleetflow/tools/helm-v3.1.0/helm")


def test_helm_messages_are_one_bounded_line_of_helms_stderr():
    error = helm_errors.Error(1, b"", b"Error: INSTALLATION FAILED:\n  chart   not found\n")
    assert _helm_message(error) == "Error: INSTALLATION FAILED: chart not found"
    assert len(_helm_message(helm_errors.Error(1, b"", b"x" * 5000))) == 600
    assert _helm_message(helm_errors.Error(1, b"", b"")) == "Error"
