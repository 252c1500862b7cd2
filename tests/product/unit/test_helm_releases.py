"""Helm releases against an in-memory helm client: which binary runs, install / upgrade / no-op decisions with the
arguments helm gets, and the whole message of each failure (chart not found, API unreachable, anything else)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pyhelm3 import errors as helm_errors

from tasks import helm
from tasks.charts import ResolvedChart
from tasks.helm import HelmError, ReleaseOutcome, ensure_release, helm_executable, release_values

CHART = ResolvedChart("cert-manager", "v1.21.1", ref="cert-manager", repo="https://charts.jetstack.io")
KUBECONFIG = "apiVersion: v1\nkind: Config\n"


class _Revision:
    def __init__(self, revision: int, values: dict[str, Any] | None = None) -> None:
        self.revision = revision
        self._values = values or {}

    async def values(self) -> dict[str, Any]:
        return self._values


class _Helm:
    """Stands in for pyhelm3's Client; records what fleetflow asks of helm."""

    current: _Revision | None = None
    differs = True
    fail: BaseException | None = None
    made: list[_Helm] = []

    def __init__(self, **options: Any) -> None:
        self.options = options
        self.kubeconfig_text = Path(options["kubeconfig"]).read_text()
        self.calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []
        _Helm.made.append(self)

    def _record(self, name: str, *args: Any, **kwargs: Any) -> None:
        self.calls.append((name, args, kwargs))
        if _Helm.fail is not None:
            raise _Helm.fail

    async def get_chart(self, ref: str, **kwargs: Any) -> str:
        self._record("get_chart", ref, **kwargs)
        return "loaded-chart"

    async def get_proceedable_revision(self, release: str, **kwargs: Any) -> _Revision | None:
        self._record("get_proceedable_revision", release, **kwargs)
        return _Helm.current

    async def should_install_or_upgrade_release(self, current: Any, chart: Any, values: Any) -> bool:
        self._record("should_install_or_upgrade_release", current, chart, values)
        return _Helm.differs

    async def install_or_upgrade_release(self, release: str, chart: Any, values: Any, **kwargs: Any) -> _Revision:
        self._record("install_or_upgrade_release", release, chart, values, **kwargs)
        return _Revision((_Helm.current.revision if _Helm.current else 0) + 1)

    async def get_current_revision(self, release: str, **kwargs: Any) -> _Revision:
        self._record("get_current_revision", release, **kwargs)
        if _Helm.current is None:
            raise helm_errors.ReleaseNotFoundError(1, b"", b"release: not found")
        return _Helm.current


@pytest.fixture
def fake_helm(monkeypatch):
    monkeypatch.setattr(helm, "Client", _Helm)
    monkeypatch.setenv("FLEETFLOW_HELM", "/opt/helm/bin/helm")
    _Helm.current, _Helm.differs, _Helm.fail, _Helm.made = None, True, None, []
    return _Helm


def run_release(values: dict[str, Any] | None = None) -> ReleaseOutcome:
    return ensure_release(KUBECONFIG, cluster="aks-1", release="cm", namespace="cert-manager", chart=CHART,
                          values=values or {"a": 1}, timeout_seconds=300)


def test_a_missing_release_is_installed_into_a_created_namespace_and_waited_for(fake_helm):
    assert run_release() == ReleaseOutcome("cm", "cert-manager", "cert-manager", "v1.21.1", "installed", 1)
    client = fake_helm.made[0]
    assert client.options["executable"] == "/opt/helm/bin/helm"
    assert client.options["default_timeout"] == "300s"
    assert client.kubeconfig_text == KUBECONFIG
    assert not Path(client.options["kubeconfig"]).exists()  # the kubeconfig file is removed afterwards
    assert client.calls == [
        ("get_chart", ("cert-manager",), {"repo": "https://charts.jetstack.io", "version": "v1.21.1"}),
        ("get_proceedable_revision", ("cm",), {"namespace": "cert-manager", "timeout": "300s"}),
        ("install_or_upgrade_release", ("cm", "loaded-chart", {"a": 1}),
         {"namespace": "cert-manager", "create_namespace": True, "atomic": False, "wait": True, "timeout": "300s"}),
    ]


def test_a_release_that_differs_is_upgraded_to_the_next_revision(fake_helm):
    fake_helm.current = _Revision(4)
    assert run_release() == ReleaseOutcome("cm", "cert-manager", "cert-manager", "v1.21.1", "upgraded", 5)
    assert [name for name, _, _ in fake_helm.made[0].calls] == [
        "get_chart", "get_proceedable_revision", "should_install_or_upgrade_release", "install_or_upgrade_release"]
    assert fake_helm.made[0].calls[2][1] == (fake_helm.current, "loaded-chart", {"a": 1})


def test_a_release_that_matches_is_left_unchanged_at_its_revision(fake_helm):
    fake_helm.current, fake_helm.differs = _Revision(4), False
    assert run_release() == ReleaseOutcome("cm", "cert-manager", "cert-manager", "v1.21.1", "unchanged", 4)
    assert "install_or_upgrade_release" not in [name for name, _, _ in fake_helm.made[0].calls]


@pytest.mark.parametrize(("error", "message", "retryable"), [
    (helm_errors.ChartNotFoundError(1, b"", b"Error: chart \"cert-manager\"\n  version \"v9\" not found"),
     "helm release cm on aks-1: chart cert-manager v1.21.1 not found in https://charts.jetstack.io: Error: chart "
     "\"cert-manager\" version \"v9\" not found", False),
    (helm_errors.ConnectionError(1, b"", b"Kubernetes cluster unreachable: dial tcp 127.0.0.1:6443"),
     "helm release cm on aks-1: the API server is unreachable: Kubernetes cluster unreachable: dial tcp "
     "127.0.0.1:6443", True),
    (helm_errors.FailedToRenderChartError(1, b"", b"template: bad"),
     "helm release cm on aks-1 failed: template: bad", True),
    (helm_errors.Error(1, b"", b""), "helm release cm on aks-1 failed: Error", True),
    (helm_errors.Error(1, b"", b"x" * 700), f"helm release cm on aks-1 failed: {'x' * 600}", True),
], ids=["chart not found", "unreachable", "render failure", "no stderr", "long stderr"])
def test_a_helm_failure_names_release_cluster_and_helms_words(fake_helm, error, message: str, retryable: bool):
    fake_helm.fail = error
    with pytest.raises(HelmError) as raised:
        run_release()
    assert str(raised.value) == message
    assert (raised.value.operation, raised.value.resource_id, raised.value.retryable) == (
        "helm upgrade --install", "aks-1/cert-manager/cm", retryable)
    assert raised.value.__cause__ is error


def test_release_values_are_the_deployed_revisions_or_none(fake_helm):
    assert release_values(KUBECONFIG, release="cm", namespace="cert-manager") is None
    fake_helm.current = _Revision(2, {"installCRDs": True})
    assert release_values(KUBECONFIG, release="cm", namespace="cert-manager") == {"installCRDs": True}
    client = fake_helm.made[-1]
    assert client.options["executable"] == "/opt/helm/bin/helm" and client.kubeconfig_text == KUBECONFIG
    assert client.calls == [("get_current_revision", ("cm",), {"namespace": "cert-manager"})]


def test_helm_is_the_setting_else_the_one_on_path_else_the_newest_built(monkeypatch, tmp_path):
    monkeypatch.setenv("FLEETFLOW_HELM", "/custom/helm")
    assert helm_executable() == "/custom/helm"
    monkeypatch.setenv("FLEETFLOW_HELM", "")
    monkeypatch.setattr(helm.shutil, "which", lambda name: f"/usr/bin/{name}")
    assert helm_executable() == "/usr/bin/helm"
    monkeypatch.setattr(helm.shutil, "which", lambda name: None)
    for version in ("3.9.0", "3.10.1"):
        (tmp_path / f"helm-{version}").mkdir()
        (tmp_path / f"helm-{version}" / "helm").write_text("")
    (tmp_path / "kubectl-1.0").mkdir()
    monkeypatch.setenv("FLEETFLOW_TOOLS", str(tmp_path))
    assert helm_executable() == str(tmp_path / "helm-3.9.0" / "helm")  # sorted by name: the last one wins
    monkeypatch.delenv("FLEETFLOW_TOOLS")
    monkeypatch.setenv("HOME", str(tmp_path))
    built = tmp_path / ".cache" / "fleetflow" / "tools" / "helm-1.0" / "helm"
    built.parent.mkdir(parents=True)
    built.write_text("")
    assert helm_executable() == str(built)


def test_without_any_helm_the_error_says_how_to_get_one(monkeypatch, tmp_path):
    monkeypatch.delenv("FLEETFLOW_HELM", raising=False)
    monkeypatch.setattr(helm.shutil, "which", lambda name: None)
    monkeypatch.setenv("FLEETFLOW_TOOLS", str(tmp_path))
    with pytest.raises(HelmError) as raised:
        helm_executable()
    assert str(raised.value) == "no helm binary: set FLEETFLOW_HELM, put helm on PATH, or run `make tools`"
    assert (raised.value.operation, raised.value.resource_id, raised.value.retryable) == ("find helm", "helm", False)
