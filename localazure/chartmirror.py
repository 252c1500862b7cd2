"""The chart mirror local mode hands to the flows: the upstream mirror's charts plus local mode's ASO chart.

The flows only know "a chart mirror" (a Helm repository index and archives). Local mode composes one in
its state directory from the mirror the machine already has (FLEETFLOW_CHART_MIRROR, e.g. a directory
with the real cert-manager chart) and the ASO-compatible chart local Azure ships, packaged here, so the
same `helm upgrade --install` the flows run against Azure installs them on local clusters.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import shutil
import tarfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

CHART_MIRROR_ENV = "FLEETFLOW_CHART_MIRROR"
LOCAL_CHARTS = Path(__file__).resolve().parent / "aso" / "chart"


def package_chart(chart_dir: Path, destination: Path) -> tuple[Path, dict[str, Any]]:
    """Write `<name>-<version>.tgz` of a chart directory (what `helm package` makes); returns it and Chart.yaml."""
    metadata: dict[str, Any] = yaml.safe_load((chart_dir / "Chart.yaml").read_text())
    archive = destination / f"{metadata['name']}-{metadata['version']}.tgz"
    buffer = io.BytesIO()
    # mtime=0 in the gzip header too, or every packaging would differ by its timestamp.
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as compressed, \
            tarfile.open(fileobj=compressed, mode="w") as tar:
        for path in sorted(chart_dir.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                info = tar.gettarinfo(str(path), arcname=f"{metadata['name']}/{path.relative_to(chart_dir)}")
                # Stable archives: the same chart always packages to the same bytes (and digest).
                info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
                with path.open("rb") as handle:
                    tar.addfile(info, handle)
    data = buffer.getvalue()
    if not archive.exists() or archive.read_bytes() != data:
        archive.write_bytes(data)
    return archive, metadata


def _entry(metadata: dict[str, Any], archive: Path) -> dict[str, Any]:
    keys = ("apiVersion", "name", "version", "appVersion", "description", "type")
    entry: dict[str, Any] = {key: metadata[key] for key in keys if key in metadata}
    entry["urls"] = [archive.name]
    entry["digest"] = hashlib.sha256(archive.read_bytes()).hexdigest()
    entry["created"] = datetime.now(UTC).isoformat()
    return entry


def build_local_chart_mirror(destination: Path, upstream: str | None = None) -> Path:
    """Compose the local-mode mirror in `destination`: every chart of `upstream` (a directory mirror, default
    FLEETFLOW_CHART_MIRROR) and local mode's azure-service-operator chart. Returns `destination`."""
    destination.mkdir(parents=True, exist_ok=True)
    entries: dict[str, list[dict[str, Any]]] = {}
    upstream = upstream if upstream is not None else os.environ.get(CHART_MIRROR_ENV)
    if upstream and Path(upstream).is_dir() and Path(upstream).resolve() != destination.resolve():
        index = yaml.safe_load((Path(upstream) / "index.yaml").read_text()) or {}
        for name, versions in (index.get("entries") or {}).items():
            for version in versions:
                source = Path(upstream) / str(version["urls"][0])
                if source.is_file():
                    target = destination / source.name
                    if not target.exists():
                        shutil.copyfile(source, target)
                    entries.setdefault(name, []).append({**version, "urls": [source.name]})
    archive, metadata = package_chart(LOCAL_CHARTS, destination)
    entries[metadata["name"]] = [_entry(metadata, archive)]
    index_doc = {"apiVersion": "v1", "entries": entries, "generated": datetime.now(UTC).isoformat()}
    (destination / "index.yaml").write_text(yaml.safe_dump(index_doc, sort_keys=False))
    return destination
