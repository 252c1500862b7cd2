"""Chart sources (own repository, mirror, OCI, archive) and the health rules of applied objects."""

from __future__ import annotations

from pathlib import Path

import pytest

from localazure.chartmirror import build_local_chart_mirror
from tasks.charts import ChartSourceError, resolve_chart
from tasks.gitops.health import health_of
from tasks.spec import CERT_MANAGER_CHART, SERVICE_OPERATOR_CHART, ChartSpec


def test_without_a_mirror_the_charts_own_repository_is_used() -> None:
    resolved = resolve_chart(CERT_MANAGER_CHART, None)
    assert (resolved.ref, resolved.repo, resolved.version) == ("cert-manager", "https://charts.jetstack.io", "v1.21.1")


def test_a_directory_mirror_gives_the_archive_of_the_pinned_version(chart_mirror: Path) -> None:
    resolved = resolve_chart(CERT_MANAGER_CHART, str(chart_mirror))
    assert resolved.repo is None and Path(resolved.ref).is_file() and resolved.ref.endswith(".tgz")
    with pytest.raises(ChartSourceError, match=r"has no cert-manager v0.1.0 \(it has: v1.21.1\)"):
        resolve_chart(ChartSpec(name="cert-manager", version="v0.1.0", repository="https://charts.jetstack.io"),
                      str(chart_mirror))


def test_an_https_mirror_replaces_the_repository_and_oci_and_archives_are_kept(tmp_path: Path) -> None:
    assert resolve_chart(CERT_MANAGER_CHART, "https://mirror.example/charts/").repo == "https://mirror.example/charts"
    oci = ChartSpec(name="azure-service-operator", version="2.17.0", repository="oci://myacr.azurecr.io/charts/aso")
    assert resolve_chart(oci, "https://mirror.example").ref == "oci://myacr.azurecr.io/charts/aso"
    with pytest.raises(ChartSourceError, match="does not exist"):
        resolve_chart(ChartSpec(name="x", version="1", repository=str(tmp_path / "x.tgz")), None)


def test_local_mode_mirror_holds_the_upstream_charts_and_the_local_aso_chart(chart_mirror: Path,
                                                                             tmp_path: Path) -> None:
    mirror = build_local_chart_mirror(tmp_path / "charts", str(chart_mirror))
    assert Path(resolve_chart(CERT_MANAGER_CHART, str(mirror)).ref).is_file()
    aso = Path(resolve_chart(SERVICE_OPERATOR_CHART, str(mirror)).ref)
    first = aso.read_bytes()
    build_local_chart_mirror(tmp_path / "charts", str(chart_mirror))
    assert aso.read_bytes() == first  # packaging is reproducible: same chart, same digest


def _aso(status: str | None, generation: int = 2, observed: int = 2, reason: str = "", severity: str = "") -> dict:
    conditions = [] if status is None else [{"type": "Ready", "status": status, "observedGeneration": observed,
                                             "reason": reason, "severity": severity, "message": "m"}]
    return {"metadata": {"generation": generation}, "status": {"conditions": conditions}}


@pytest.mark.parametrize(("live", "ready", "state"), [
    (_aso("True"), True, "Ready"),
    (_aso("True", generation=3, observed=2), False, "Reconciling"),
    (_aso("False", reason="AuthorizationFailed", severity="Warning"), False, "NotReady"),
    (_aso(None), False, "Pending"),
    (None, False, "Missing"),
])
def test_aso_objects_are_healthy_only_when_ready_at_their_generation(live: dict | None, ready: bool,
                                                                     state: str) -> None:
    health = health_of("storage.azure.com/v1api20230101", "StorageAccount", live)
    assert (health.ready, health.state) == (ready, state)


def test_an_aso_refusal_reports_asos_reason() -> None:
    health = health_of("keyvault.azure.com/v1api20230701", "Vault",
                       _aso("False", reason="AuthorizationFailed", severity="Warning"))
    assert health.reason.startswith("AuthorizationFailed (Warning)")


def test_deployments_are_healthy_when_available_at_the_desired_count() -> None:
    spec = {"replicas": 2}
    assert not health_of("apps/v1", "Deployment", {"kind": "Deployment", "spec": spec, "status": {
        "updatedReplicas": 2, "availableReplicas": 1}}).ready
    assert health_of("apps/v1", "Deployment", {"kind": "Deployment", "spec": spec, "status": {
        "updatedReplicas": 2, "availableReplicas": 2}}).ready
    assert health_of("v1", "Namespace", {"kind": "Namespace"}).ready


def test_a_mirror_without_the_chart_leaves_it_to_its_own_repository(tmp_path: Path) -> None:
    mirror = build_local_chart_mirror(tmp_path / "charts", upstream="")
    assert resolve_chart(CERT_MANAGER_CHART, str(mirror)).repo == "https://charts.jetstack.io"
    assert resolve_chart(SERVICE_OPERATOR_CHART, str(mirror)).repo is None
