"""The persisted state of a local cluster: `cluster.json` in its home (name, version, region, status, ports,
node pools, process records), read and written atomically, plus the rules a new cluster's inputs follow."""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from localazure.kube.processes import ProcessRecord
from localazure.kube.sizes import vm_size
from localazure.kube.tools import version_key

STATE_FILE = "cluster.json"
DEFAULT_NODE_IMAGE_VERSION = "AKSUbuntu-2204gen2containerd-202610.01.0"

_POOL_NAME = re.compile(r"^[a-z][a-z0-9]{0,11}$")
CLUSTER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")


@dataclass
class NodePool:
    """An AKS-like node pool of kwok-simulated nodes."""

    name: str
    count: int = 1
    vm_size: str = "Standard_DS2_v2"
    node_image_version: str = DEFAULT_NODE_IMAGE_VERSION
    # Kubelet version the pool's nodes report; None means the cluster's version at creation.
    orchestrator_version: str | None = None

    def validate(self) -> None:
        """Check the pool name, count and VM size the way AKS would."""
        if not _POOL_NAME.match(self.name):
            raise ValueError(
                f"invalid node pool name {self.name!r}: 1-12 lowercase letters/digits, starting with a letter"
            )
        if not 0 <= self.count <= 100:
            raise ValueError(f"node pool {self.name!r}: count must be between 0 and 100, got {self.count}")
        vm_size(self.vm_size)  # raises UnknownVmSizeError naming the known sizes


@dataclass
class PoolState:
    """A pool as the cluster keeps it: the pool, the digits of its node names, its instance counter."""

    pool: NodePool
    # AKS node names carry an 8-digit number derived from the pool and a per-VMSS instance counter.
    name_digits: str
    next_instance: int = 0

    def to_json(self) -> dict[str, Any]:
        """JSON form (pool fields flattened)."""
        return {**asdict(self.pool), "name_digits": self.name_digits, "next_instance": self.next_instance}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PoolState:
        pool_fields = {k: data[k] for k in ("name", "count", "vm_size", "node_image_version", "orchestrator_version")}
        return cls(NodePool(**pool_fields), str(data["name_digits"]), int(data["next_instance"]))


@dataclass
class Ports:
    """Loopback ports of the cluster's components."""

    etcd_client: int
    etcd_peer: int
    apiserver: int
    kwok: int

    def all(self) -> list[int]:
        """Every port, etcd first."""
        return [self.etcd_client, self.etcd_peer, self.apiserver, self.kwok]


@dataclass
class ClusterState:
    """What `cluster.json` holds: name, version, region, status, ports, pools and process records."""

    name: str
    kubernetes_version: str
    region: str
    status: str  # creating | running | stopped | deleting
    ports: Ports
    pools: list[PoolState]
    processes: dict[str, ProcessRecord] = field(default_factory=dict)
    created_at: float = field(default_factory=time.time)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kubernetes_version": self.kubernetes_version,
            "region": self.region,
            "status": self.status,
            "ports": asdict(self.ports),
            "pools": [pool.to_json() for pool in self.pools],
            "processes": {name: record.to_json() for name, record in self.processes.items()},
            "created_at": self.created_at,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ClusterState:
        return cls(
            name=data["name"],
            kubernetes_version=data["kubernetes_version"],
            region=data["region"],
            status=data["status"],
            ports=Ports(**data["ports"]),
            pools=[PoolState.from_json(pool) for pool in data["pools"]],
            processes={name: ProcessRecord.from_json(rec) for name, rec in data.get("processes", {}).items()},
            created_at=float(data.get("created_at", 0.0)),
        )


def default_home(name: str) -> Path:
    """Default home of a cluster: ``$FLEETFLOW_HOME/local/clusters/<name>``."""
    root = Path(os.environ.get("FLEETFLOW_HOME", "~/.fleetflow")).expanduser()
    return root / "local" / "clusters" / name


def normalized(version: str) -> str:
    """``1.37.2`` -> ``v1.37.2`` (Azure APIs omit the v; binaries and /version carry it)."""
    version_key(version)  # raises ValueError for anything that is not MAJOR.MINOR.PATCH
    return version if version.startswith("v") else f"v{version}"


def clear_home(home: Path) -> None:
    """Remove everything in a cluster home except its logs (kept so failures can be diagnosed)."""
    for entry in home.iterdir():
        if entry.name == "logs":
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)


class StateFile:
    """`cluster.json` of one home: atomic saves, and reloads only when another object or process changed it."""

    def __init__(self, home: Path) -> None:
        self.path = home / STATE_FILE
        self._mtime = 0

    def exists(self) -> bool:
        """Whether the cluster's state is on disk."""
        return self.path.exists()

    def read(self) -> ClusterState:
        """The state on disk (FileNotFoundError when absent)."""
        state = ClusterState.from_json(json.loads(self.path.read_text()))
        return state

    def reload(self, current: ClusterState) -> ClusterState:
        """`current`, or the state on disk when it changed since this object last read or wrote it."""
        try:
            mtime = self.path.stat().st_mtime_ns
            if mtime != self._mtime:
                current = self.read()
                self._mtime = mtime
        except FileNotFoundError:
            pass  # not saved yet (create) or already deleted
        return current

    def save(self, state: ClusterState) -> None:
        """Write the state atomically."""
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(json.dumps(state.to_json(), indent=2))
        os.replace(temporary, self.path)
        self._mtime = self.path.stat().st_mtime_ns
