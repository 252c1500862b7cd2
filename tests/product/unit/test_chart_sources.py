"""Where helm gets each pinned chart: its own repository, an https or directory mirror, an oci:// reference or an
archive; and the whole message of every refusal (unreadable index, missing pin, missing archive)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tasks.charts import CHART_MIRROR_ENV, ChartSourceError, ResolvedChart, chart_mirror, resolve_chart
from tasks.spec import ChartSpec, FleetSpec

CHART = ChartSpec(name="cert-manager", version="v1.21.1", repository="https://charts.jetstack.io/")


def spec_with(mirror: str | None) -> FleetSpec:
    return FleetSpec.model_validate({
        "name": "f", "location": "eastus", "charts_mirror": mirror,
        "regions": [{"name": "eastus", "update_group": "g"}],
        "update_strategy": {"stages": [{"name": "s", "groups": ["g"]}]}})


@pytest.mark.parametrize(("in_spec", "setting", "mirror"), [
    ("/srv/spec-mirror", "/srv/setting-mirror", "/srv/spec-mirror"),
    (None, "/srv/setting-mirror", "/srv/setting-mirror"),
    (None, "", None),
    (None, None, None),
    ("", None, None),
])
def test_the_mirror_is_the_specs_else_the_workers_setting_else_none(monkeypatch, in_spec, setting, mirror):
    if setting is None:
        monkeypatch.delenv(CHART_MIRROR_ENV, raising=False)
    else:
        monkeypatch.setenv(CHART_MIRROR_ENV, setting)
    assert CHART_MIRROR_ENV == "FLEETFLOW_CHART_MIRROR"
    assert chart_mirror(spec_with(in_spec)) == mirror


def test_the_origin_of_a_chart_is_its_repository_else_its_reference():
    assert ResolvedChart("c", "1", ref="c", repo="https://r").origin == "https://r"
    assert ResolvedChart("c", "1", ref="/m/c-1.tgz", repo=None).origin == "/m/c-1.tgz"


@pytest.mark.parametrize(("repository", "mirror", "resolved"), [
    ("https://charts.jetstack.io/", None,
     ResolvedChart("cert-manager", "v1.21.1", ref="cert-manager", repo="https://charts.jetstack.io")),
    ("http://charts.local", None, ResolvedChart("cert-manager", "v1.21.1", ref="cert-manager",
                                                repo="http://charts.local")),
    ("https://charts.jetstack.io", "https://mirror.example/charts/",
     ResolvedChart("cert-manager", "v1.21.1", ref="cert-manager", repo="https://mirror.example/charts")),
    ("https://charts.jetstack.io", "http://mirror.example",
     ResolvedChart("cert-manager", "v1.21.1", ref="cert-manager", repo="http://mirror.example")),
    ("oci://acr.example.io/charts/cm/", "https://mirror.example",
     ResolvedChart("cert-manager", "v1.21.1", ref="oci://acr.example.io/charts/cm", repo=None)),
    ("oci://acr.example.io/charts/cm", "/no/such/mirror",
     ResolvedChart("cert-manager", "v1.21.1", ref="oci://acr.example.io/charts/cm", repo=None)),
    ("https://charts.example/X/", None, ResolvedChart("cert-manager", "v1.21.1", ref="cert-manager",
                                                      repo="https://charts.example/X")),
    ("https://charts.example", "https://mirror.example/X",
     ResolvedChart("cert-manager", "v1.21.1", ref="cert-manager", repo="https://mirror.example/X")),
    ("oci://acr.example.io/charts/X/", None,
     ResolvedChart("cert-manager", "v1.21.1", ref="oci://acr.example.io/charts/X", repo=None)),
], ids=["own https", "own http", "https mirror", "http mirror", "oci ignores the mirror", "oci ignores a directory",
        "only slashes are trimmed from a repository", "from a mirror", "from an oci reference"])
def test_a_repository_chart_comes_from_the_mirror_when_set_and_oci_stays_where_it_is(repository, mirror, resolved):
    chart = ChartSpec(name="cert-manager", version="v1.21.1", repository=repository)
    assert resolve_chart(chart, mirror) == resolved


def test_an_archive_chart_is_used_as_it_is_whatever_the_mirror(tmp_path: Path, monkeypatch):
    archive = tmp_path / "cm-1.tgz"
    archive.write_bytes(b"chart")
    monkeypatch.setenv("HOME", str(tmp_path))
    for source in (str(archive), "~/cm-1.tgz"):
        chart = ChartSpec(name="cm", version="1", repository=source)
        assert resolve_chart(chart, "https://mirror.example") == ResolvedChart("cm", "1", ref=str(archive), repo=None)


def test_a_missing_archive_is_refused_naming_it_and_the_chart(tmp_path: Path):
    with pytest.raises(ChartSourceError) as raised:
        resolve_chart(ChartSpec(name="cm", version="1", repository=str(tmp_path / "cm.tgz")), None)
    assert str(raised.value) == f"chart archive {tmp_path / 'cm.tgz'} for cm does not exist"
    assert (raised.value.operation, raised.value.resource_id, raised.value.retryable) == ("resolve chart", "cm", False)


def mirror_with(tmp_path: Path, entries: object, archives: tuple[str, ...] = ()) -> Path:
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "index.yaml").write_text(yaml.safe_dump({"apiVersion": "v1", "entries": entries}))
    for name in archives:
        (mirror / name).write_bytes(b"chart")
    return mirror


@pytest.mark.parametrize(("version", "listed"), [("v1.21.1", "1.21.1"), ("1.21.1", "v1.21.1"), ("v1.21.1", "v1.21.1")])
def test_a_directory_mirror_gives_the_archive_of_the_pinned_version_with_or_without_v(tmp_path, version, listed):
    mirror = mirror_with(tmp_path, {"cert-manager": [
        {"version": "1.20.0", "urls": ["cm-1.20.0.tgz"]},
        {"version": listed},  # no archive listed: skipped
        {"version": listed, "urls": ["charts/cm-1.21.1.tgz", "other.tgz"]}]})
    (mirror / "charts").mkdir()
    (mirror / "charts" / "cm-1.21.1.tgz").write_bytes(b"chart")
    chart = ChartSpec(name="cert-manager", version=version, repository="https://charts.jetstack.io")
    assert resolve_chart(chart, str(mirror)) == ResolvedChart("cert-manager", version,
                                                              ref=str(mirror / "charts" / "cm-1.21.1.tgz"), repo=None)


@pytest.mark.parametrize("url_of", [lambda path: str(path), lambda path: f"file://{path}"], ids=["path", "file url"])
def test_a_directory_mirror_may_list_absolute_archives(tmp_path: Path, url_of):
    archive = tmp_path / "elsewhere.tgz"
    archive.write_bytes(b"chart")
    mirror = mirror_with(tmp_path, {"cert-manager": [{"version": "v1.21.1", "urls": [url_of(archive)]}]})
    assert resolve_chart(CHART, str(mirror)).ref == str(archive)


def test_a_home_relative_directory_mirror_is_expanded(tmp_path: Path, monkeypatch):
    mirror = mirror_with(tmp_path, {"cert-manager": [{"version": "v1.21.1", "urls": ["cm.tgz"]}]}, ("cm.tgz",))
    monkeypatch.setenv("HOME", str(tmp_path))
    assert resolve_chart(CHART, "~/mirror").ref == str(mirror / "cm.tgz")


@pytest.mark.parametrize("entries", [{}, None, {"other-chart": [{"version": "1", "urls": ["o.tgz"]}]},
                                     {"cert-manager": []}, {"cert-manager": None}],
                         ids=["no entries", "null entries", "other charts only", "empty list", "null list"])
def test_a_directory_mirror_without_the_chart_leaves_it_to_its_own_repository(tmp_path: Path, entries):
    mirror = mirror_with(tmp_path, entries)
    assert resolve_chart(CHART, str(mirror)) == ResolvedChart("cert-manager", "v1.21.1", ref="cert-manager",
                                                              repo="https://charts.jetstack.io")


@pytest.mark.parametrize(("pin", "listed"), [("X1.21.1", "1.21.1"), ("1.21.1", "X1.21.1")])
def test_only_a_leading_v_is_ignored_when_matching_a_pin(tmp_path: Path, pin: str, listed: str):
    mirror = mirror_with(tmp_path, {"cert-manager": [{"version": listed, "urls": ["cm.tgz"]}]}, ("cm.tgz",))
    with pytest.raises(ChartSourceError) as raised:
        resolve_chart(ChartSpec(name="cert-manager", version=pin, repository="https://charts.jetstack.io"),
                      str(mirror))
    assert f"has no cert-manager {pin} (it has: {listed})" in str(raised.value)


def test_an_empty_index_leaves_every_chart_to_its_own_repository(tmp_path: Path):
    (tmp_path / "index.yaml").write_text("")
    assert resolve_chart(CHART, str(tmp_path)).repo == "https://charts.jetstack.io"
    own = ChartSpec(name="cert-manager", version="v1.21.1", repository="https://charts.example/X/")
    assert resolve_chart(own, str(tmp_path)).repo == "https://charts.example/X"


def test_a_mirror_holding_the_chart_but_not_the_pin_is_refused_listing_what_it_has(tmp_path: Path):
    mirror = mirror_with(tmp_path, {"cert-manager": [{"version": "v1.9.0", "urls": ["a.tgz"]},
                                                     {"version": "v1.10.0", "urls": ["b.tgz"]},
                                                     {"urls": ["c.tgz"]}]})
    with pytest.raises(ChartSourceError) as raised:
        resolve_chart(CHART, str(mirror))
    assert str(raised.value) == (f"chart mirror {mirror} has no cert-manager v1.21.1 (it has: None, v1.10.0, v1.9.0); "
                                 "add the chart to the mirror or pin a version it holds")
    assert (raised.value.operation, raised.value.resource_id) == ("resolve chart", "cert-manager")


def test_a_mirror_listing_an_archive_it_does_not_hold_is_refused(tmp_path: Path):
    mirror = mirror_with(tmp_path, {"cert-manager": [{"version": "v1.21.1", "urls": ["cm.tgz"]}]})
    with pytest.raises(ChartSourceError) as raised:
        resolve_chart(CHART, str(mirror))
    assert str(raised.value) == (f"chart mirror {mirror} lists cert-manager v1.21.1 at {mirror / 'cm.tgz'}, which does "
                                 "not exist")
    assert (raised.value.operation, raised.value.resource_id) == ("resolve chart", "cert-manager")


def test_a_mirror_without_an_index_is_refused_saying_what_to_point_at(tmp_path: Path):
    with pytest.raises(ChartSourceError) as raised:
        resolve_chart(CHART, str(tmp_path))
    assert str(raised.value) == (f"chart mirror {tmp_path}: cannot read index.yaml (No such file or directory); point "
                                 "charts_mirror or FLEETFLOW_CHART_MIRROR at a directory holding a Helm repository "
                                 "index")
    assert (raised.value.operation, raised.value.resource_id) == ("resolve chart", "cert-manager")
    assert isinstance(raised.value.__cause__, OSError)


def test_a_mirror_whose_index_is_not_yaml_is_refused_with_the_parse_error(tmp_path: Path):
    (tmp_path / "index.yaml").write_text("entries: [\n")
    with pytest.raises(ChartSourceError) as raised:
        resolve_chart(CHART, str(tmp_path))
    text = str(raised.value)
    assert text.startswith(f"chart mirror {tmp_path}: index.yaml is not valid YAML (while parsing a flow node")
    assert text.endswith(")")
    assert (raised.value.operation, raised.value.resource_id) == ("resolve chart", "cert-manager")
    assert isinstance(raised.value.__cause__, yaml.YAMLError)
