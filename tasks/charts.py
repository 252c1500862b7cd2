"""Where a pinned chart comes from: its own repository, or a chart mirror that replaces the public ones.

A mirror is a Helm repository (an index.yaml plus archives) on an https:// server or in a directory, for
fleets that cannot reach the public repositories. The spec's `charts_mirror` names it; without one the
FLEETFLOW_CHART_MIRROR setting of the worker does; without either the chart's own repository is used. A
directory mirror that does not hold a chart at all leaves that chart to its own repository.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tasks.retry import FleetflowError
from tasks.spec import ChartSpec, FleetSpec

CHART_MIRROR_ENV = "FLEETFLOW_CHART_MIRROR"


class ChartSourceError(FleetflowError):
    """A chart cannot be found where its spec or the mirror says it is."""


@dataclass(frozen=True)
class ResolvedChart:
    """What helm is given: a chart reference, the repository to look it up in (if any), and the version."""

    name: str
    version: str
    ref: str
    repo: str | None

    @property
    def origin(self) -> str:
        """Where the chart comes from, for reports."""
        return self.repo or self.ref


def chart_mirror(spec: FleetSpec) -> str | None:
    """The chart mirror in effect for a fleet: the spec's, else the worker's setting, else none."""
    return spec.charts_mirror or os.environ.get(CHART_MIRROR_ENV) or None


def _archive_in_directory(mirror: Path, chart: ChartSpec) -> Path | None:
    """The archive of the pinned version in a directory mirror; None when the mirror has no such chart at all
    (a mirror that has the chart but not the pinned version is an error: the pin is probably wrong)."""
    index_path = mirror / "index.yaml"
    try:
        index: dict[str, Any] = yaml.safe_load(index_path.read_text()) or {}
    except OSError as error:
        raise ChartSourceError(f"chart mirror {mirror}: cannot read index.yaml ({error.strerror}); point "
                               f"charts_mirror or {CHART_MIRROR_ENV} at a directory holding a Helm repository index",
                               operation="resolve chart", resource_id=chart.name) from error
    except yaml.YAMLError as error:
        raise ChartSourceError(f"chart mirror {mirror}: index.yaml is not valid YAML ({error})",
                               operation="resolve chart", resource_id=chart.name) from error
    entries = (index.get("entries") or {}).get(chart.name) or []
    if not entries:
        return None
    wanted = chart.version.lstrip("v")
    for entry in entries:
        if str(entry.get("version", "")).lstrip("v") == wanted and entry.get("urls"):
            url = str(entry["urls"][0])
            path = Path(url.removeprefix("file://"))
            return path if path.is_absolute() else mirror / path
    offered = sorted(str(entry.get("version")) for entry in entries) or ["none"]
    raise ChartSourceError(f"chart mirror {mirror} has no {chart.name} {chart.version} (it has: {', '.join(offered)}); "
                           "add the chart to the mirror or pin a version it holds",
                           operation="resolve chart", resource_id=chart.name)


def resolve_chart(chart: ChartSpec, mirror: str | None) -> ResolvedChart:
    """Where helm finds `chart`: the mirror when one is set (except for oci:// and archive sources), else its own."""
    source = chart.repository
    if source.startswith("oci://"):
        return ResolvedChart(chart.name, chart.version, ref=source.rstrip("/"), repo=None)
    if not source.startswith(("https://", "http://")):
        archive = Path(source).expanduser()
        if not archive.is_file():
            raise ChartSourceError(f"chart archive {archive} for {chart.name} does not exist",
                                   operation="resolve chart", resource_id=chart.name)
        return ResolvedChart(chart.name, chart.version, ref=str(archive), repo=None)
    if mirror:
        if mirror.startswith(("https://", "http://")):
            return ResolvedChart(chart.name, chart.version, ref=chart.name, repo=mirror.rstrip("/"))
        listed = _archive_in_directory(Path(mirror).expanduser(), chart)
        if listed is None:
            return ResolvedChart(chart.name, chart.version, ref=chart.name, repo=source.rstrip("/"))
        if not listed.is_file():
            raise ChartSourceError(f"chart mirror {mirror} lists {chart.name} {chart.version} at {listed}, which "
                                   "does not exist", operation="resolve chart", resource_id=chart.name)
        return ResolvedChart(chart.name, chart.version, ref=str(listed), repo=None)
    return ResolvedChart(chart.name, chart.version, ref=chart.name, repo=source.rstrip("/"))
