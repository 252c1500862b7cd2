"""Locating the Kubernetes toolchain built by ``make tools`` (hack/kube/build.sh)."""

from __future__ import annotations

import functools
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

_KUBE_DIR = re.compile(r"^kube-(v\d+\.\d+\.\d+)$")


class ToolsMissingError(RuntimeError):
    """A binary local clusters need has not been built; ``make tools`` builds it."""


def tools_dir() -> Path:
    """Return the directory holding built binaries (``$FLEETFLOW_TOOLS`` or ``~/.cache/fleetflow/tools``)."""
    configured = os.environ.get("FLEETFLOW_TOOLS")
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "fleetflow" / "tools"


def version_key(version: str) -> tuple[int, int, int]:
    """Sort key for ``vMAJOR.MINOR.PATCH`` strings."""
    match = re.fullmatch(r"v?(\d+)\.(\d+)\.(\d+)", version)
    if not match:
        raise ValueError(f"not a Kubernetes release version: {version!r} (expected e.g. 'v1.37.2')")
    major, minor, patch = (int(part) for part in match.groups())
    return major, minor, patch


def available_versions() -> list[str]:
    """Return the built control-plane versions, ascending, e.g. ``["v1.36.3", "v1.37.2"]``."""
    root = tools_dir()
    if not root.is_dir():
        return []
    versions = []
    for entry in root.iterdir():
        match = _KUBE_DIR.match(entry.name)
        if match and os.access(entry / "kube", os.X_OK):
            versions.append(match.group(1))
    return sorted(versions, key=version_key)


def _newest(prefix: str, binary: str) -> Path:
    root = tools_dir()
    candidates = []
    if root.is_dir():
        for entry in root.iterdir():
            if entry.name.startswith(prefix) and os.access(entry / binary, os.X_OK):
                try:
                    candidates.append((version_key(entry.name[len(prefix) :]), entry / binary))
                except ValueError:
                    continue
    if not candidates:
        raise ToolsMissingError(f"{binary} is not built under {root} ({prefix}<version>/{binary}); run `make tools`")
    return max(candidates)[1]


@dataclass(frozen=True)
class Toolchain:
    """Paths of the binaries one cluster runs."""

    etcd: Path
    kwok: Path
    kube: Path  # multi-call binary: kube-apiserver, kube-controller-manager, kube-scheduler, kubectl

    @classmethod
    def for_version(cls, kubernetes_version: str) -> Toolchain:
        """Resolve the binaries for a control-plane version, failing clearly when it is not built."""
        kube = tools_dir() / f"kube-{kubernetes_version}" / "kube"
        if not os.access(kube, os.X_OK):
            built = ", ".join(available_versions()) or "none"
            raise ToolsMissingError(
                f"Kubernetes {kubernetes_version} is not built under {tools_dir()} (built: {built}); "
                "run `make tools`"
            )
        return cls(etcd=_newest("etcd-", "etcd"), kwok=_newest("kwok-", "kwok"), kube=kube)

    @property
    def has_combined_control_plane(self) -> bool:
        """Whether the kube binary can run apiserver, controller-manager and scheduler as one process."""
        stat = self.kube.stat()
        return _has_control_plane_mode(str(self.kube), stat.st_mtime_ns, stat.st_size)


# What `kube control-plane --help` prints; binaries built before the mode existed print their usage instead.
_CONTROL_PLANE_USAGE = "usage: kube control-plane"


@functools.cache
def _has_control_plane_mode(kube: str, mtime_ns: int, size: int) -> bool:
    # Cached per build of the binary (its mtime and size are part of the key): the probe runs the binary.
    try:
        result = subprocess.run(
            [kube, "control-plane", "--help"], capture_output=True, text=True, timeout=60, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0 and result.stdout.startswith(_CONTROL_PLANE_USAGE)


def helm_binary() -> Path:
    """Return the built helm 3 binary (pyhelm3 needs one)."""
    return _newest("helm-", "helm")
