"""LocalCluster: a real Kubernetes control plane (etcd, kube-apiserver, kube-controller-manager,
kube-scheduler) with kwok-simulated AKS nodes, running as local processes under one home directory.

A cluster runs three processes: etcd, ``kube control-plane`` (apiserver, controller-manager and scheduler
in one process, which keeps a cluster's memory small) and kwok. A ``kube`` binary built before that mode
existed runs the three components as separate processes instead.

The cluster's home holds everything: ``cluster.json`` (ports, pids, version, pools), ``pki/``,
``etcd/`` (data), component kubeconfigs and ``logs/<process>.log``.

This module drives a cluster's life (create, adopt, start, stop, delete, upgrades); what it persists is in
``state.py``, how its processes are launched in ``launch.py``, its nodes' manifests in ``manifests.py``,
and node-image rolls in ``nodes.py`` (which gets an API client and a pool, never the cluster).
"""

from __future__ import annotations

import contextlib
import fcntl
import http.client
import json
import logging
import shutil
import ssl
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import yaml

from localazure.kube import launch, processes
from localazure.kube.errors import ClusterNotFoundError, DrainTimeoutError, LocalClusterError
from localazure.kube.launch import COMBINED_CONTROL_PLANE, COMPONENTS, PROCESS_NAMES
from localazure.kube.loopback import LOOPBACK_OBJECTS, POLICY_PROBE, POLICY_PROBE_PATH
from localazure.kube.manifests import new_node_manifest
from localazure.kube.pki import ADMIN, ClusterPki
from localazure.kube.state import (
    CLUSTER_NAME,
    STATE_FILE,
    ClusterState,
    NodePool,
    PoolState,
    Ports,
    StateFile,
    clear_home,
    default_home,
    normalized,
)
from localazure.kube.tools import Toolchain, available_versions, tools_dir, version_key

__all__ = ["ClusterNotFoundError", "DrainTimeoutError", "LocalCluster", "LocalClusterError", "NodePool",
           "default_home"]

log = logging.getLogger(__name__)

class LocalCluster:
    """One local Kubernetes cluster; see the module docstring for its on-disk layout."""

    def __init__(self, home: Path, state: ClusterState) -> None:
        self.home = home
        self._state = state
        self._state_file = StateFile(home)
        self._pki = ClusterPki(home / "pki")
        self._lock = threading.RLock()
        self._lock_depth = 0
        self._api_client: Any = None

    # ----------------------------------------------------------------------------------------------
    # Public properties

    @property
    def name(self) -> str:
        """Cluster name."""
        return self._state.name

    @property
    def version(self) -> str:
        """Control-plane Kubernetes version, e.g. ``v1.36.3``."""
        self._reload()
        return self._state.kubernetes_version

    @property
    def region(self) -> str:
        """Azure region the cluster pretends to live in."""
        self._reload()
        return self._state.region

    @property
    def status(self) -> str:
        """``running``, ``stopped`` (or transiently ``creating`` / ``deleting``)."""
        self._reload()
        return self._state.status

    @property
    def server(self) -> str:
        """API server URL."""
        self._reload()
        return f"https://127.0.0.1:{self._state.ports.apiserver}"

    @property
    def node_pools(self) -> list[NodePool]:
        """The cluster's node pools (copies; change them through the upgrade methods)."""
        self._reload()
        return [NodePool(**asdict(pool.pool)) for pool in self._state.pools]

    @property
    def pids(self) -> dict[str, int]:
        """Pid of each component process as recorded in the state file."""
        self._reload()
        return {name: record.pid for name, record in self._state.processes.items()}

    @property
    def ports(self) -> list[int]:
        """Loopback ports the cluster's components listen on."""
        self._reload()
        return self._state.ports.all()

    # ----------------------------------------------------------------------------------------------
    # Lifecycle

    @classmethod
    def create(
        cls,
        name: str,
        kubernetes_version: str | None = None,
        node_pools: list[NodePool] | None = None,
        region: str = "eastus",
        home: Path | None = None,
        timeout: float = 180.0,
    ) -> LocalCluster:
        """Start a new cluster and return once its API serves and all its nodes are Ready.

        ``kubernetes_version`` defaults to the oldest built version (so an upgrade is possible);
        ``node_pools`` defaults to one ``nodepool1`` of 1 Standard_DS2_v2 node.
        """
        if not CLUSTER_NAME.match(name):
            raise ValueError(f"invalid cluster name {name!r}")
        versions = available_versions()
        if kubernetes_version is None:
            if not versions:
                raise LocalClusterError(f"no Kubernetes version is built under {tools_dir()}; run `make tools`")
            kubernetes_version = versions[0]
        kubernetes_version = normalized(kubernetes_version)
        Toolchain.for_version(kubernetes_version)  # fail before touching disk when binaries are missing
        pools = node_pools if node_pools is not None else [NodePool("nodepool1")]
        if len({pool.name for pool in pools}) != len(pools):
            raise ValueError(f"duplicate node pool names in {[pool.name for pool in pools]}")
        for pool in pools:
            pool.validate()
            if pool.orchestrator_version and version_key(pool.orchestrator_version) > version_key(kubernetes_version):
                raise ValueError(
                    f"node pool {pool.name!r}: version {pool.orchestrator_version} is newer than the control plane "
                    f"{kubernetes_version}"
                )
        home = Path(home) if home is not None else default_home(name)
        if (home / STATE_FILE).exists():
            raise LocalClusterError(f"a cluster already lives in {home}; use LocalCluster.load(home)")
        home.mkdir(parents=True, exist_ok=True, mode=0o700)
        clear_home(home)  # etcd data or keys of a failed earlier attempt must not leak into this cluster

        pool_states = []
        for pool in pools:
            pool_copy = NodePool(**asdict(pool))
            pool_copy.orchestrator_version = normalized(pool.orchestrator_version or kubernetes_version)
            digits = f"{zlib.crc32(f'{name}/{pool.name}'.encode()) % 100_000_000:08d}"
            pool_states.append(PoolState(pool_copy, digits))
        ports = Ports(*processes.allocate_ports(4))
        state = ClusterState(name, kubernetes_version, region, "creating", ports, pool_states)
        cluster = cls(home, state)
        try:
            with cluster._locked():
                cluster._save()
                cluster._pki.generate(name)
                cluster._write_component_configs()
                cluster._start_processes(timeout)
                cluster._register_nodes(cluster._state.pools, timeout)
                cluster._state.status = "running"
                cluster._save()
        except BaseException as error:
            # A half-created cluster is useless; leave nothing behind, but keep the logs' hint in the error.
            logs = home / "logs"
            try:
                cluster._teardown(remove_home=False)
            finally:
                clear_home(home)
            if isinstance(error, Exception):
                raise LocalClusterError(f"creating local cluster {name!r} failed (logs in {logs}): {error}") from error
            raise
        return cluster

    @classmethod
    def load(cls, home: Path, restart: bool = True) -> LocalCluster:
        """Adopt the cluster whose state lives in home.

        A running cluster whose processes are all alive is adopted as is; one whose processes died (host
        restart) is restarted, unless ``restart`` is false; a stopped cluster stays stopped; a cluster whose
        creation or deletion was interrupted is cleaned up and ClusterNotFoundError is raised.
        """
        home = Path(home)
        state_path = home / STATE_FILE
        try:
            state = StateFile(home).read()
        except FileNotFoundError as error:
            raise ClusterNotFoundError(f"no local cluster state in {home}") from error
        except (json.JSONDecodeError, KeyError, TypeError) as error:
            raise LocalClusterError(f"unreadable local cluster state {state_path}: {error}") from error
        cluster = cls(home, state)
        with cluster._locked():
            status = cluster._state.status
            if status in ("creating", "deleting"):
                cluster._teardown(remove_home=True)
                raise ClusterNotFoundError(
                    f"local cluster {state.name!r} in {home} was interrupted while {status}; cleaned it up"
                )
            if restart and cluster._state.status == "running" and not cluster._all_alive():
                cluster._stop_processes()
                cluster._end_strays(everything=True)
                cluster._start_processes(timeout=180.0)
                cluster._wait_nodes_ready(cluster._expected_node_names(), timeout=120.0)
            elif restart:
                cluster._end_strays()
        return cluster

    def start(self, timeout: float = 180.0) -> None:
        """Start a stopped cluster's processes (objects kept in etcd); a no-op when it already runs."""
        with self._locked():
            self._require_exists()
            if self._state.status == "running" and self._all_alive():
                self._end_strays()  # e.g. duplicates an earlier, cut-off start left behind
                return
            self._stop_processes()  # leftovers of a partial start
            self._end_strays(everything=True)  # ... including ones whose pid was never recorded
            self._start_processes(timeout)
            self._wait_nodes_ready(self._expected_node_names(), timeout)
            self._state.status = "running"
            self._save()

    def stop(self) -> None:
        """Stop every process; etcd data, certificates and state stay on disk for start()."""
        with self._locked():
            self._require_exists()
            self._stop_processes()
            self._state.status = "stopped"
            self._save()

    def delete(self) -> None:
        """Stop every process and remove the cluster's home: no process, port or data stays behind."""
        with self._locked():
            if not self.home.exists():
                return
            self._state.status = "deleting"
            self._save()
            self._teardown(remove_home=True)

    def kubeconfig(self) -> str:
        """Admin kubeconfig (YAML text) with the CA and a client certificate in system:masters embedded."""
        return yaml.safe_dump(launch.kubeconfig_dict(self.name, self.server, self._pki, ADMIN, embed=True),
                              sort_keys=False)

    def is_running(self) -> bool:
        """Whether every component process is alive."""
        self._reload()
        return self._state.status == "running" and self._all_alive()

    def server_version(self) -> dict[str, Any]:
        """The API server's ``/version`` document."""
        status, body = self._get("/version")
        if status != 200:
            raise LocalClusterError(f"{self.name}: GET /version returned {status}")
        return dict(json.loads(body))

    def rss_bytes(self) -> int:
        """Resident memory of all the cluster's processes, summed (from /proc)."""
        return sum(processes.rss_bytes(record) for record in self._state.processes.values())

    # ----------------------------------------------------------------------------------------------
    # Upgrades

    def allowed_upgrades(self) -> list[str]:
        """Built versions this control plane may move to: newer patches of its minor or the next minor."""
        major, minor, _ = version_key(self.version)
        return [
            version
            for version in available_versions()
            if version_key(version) > version_key(self.version) and version_key(version)[:2] <= (major, minor + 1)
        ]

    def upgrade_control_plane(self, kubernetes_version: str, timeout: float = 180.0) -> None:
        """Restart apiserver, controller-manager and scheduler on another version's binary.

        Objects are kept (etcd keeps running). Like AKS, only a move of at most one minor version up is
        allowed: the same version is a no-op, a downgrade or a skipped minor raises ValueError.
        """
        kubernetes_version = normalized(kubernetes_version)
        with self._locked():
            self._require_exists()
            current = self.version
            if kubernetes_version == current:
                return
            allowed = self.allowed_upgrades()
            if kubernetes_version not in allowed:
                raise ValueError(
                    f"cluster {self.name!r}: cannot upgrade the control plane from {current} to "
                    f"{kubernetes_version}; allowed: {', '.join(allowed) or 'none (no newer built version)'} "
                    "(only upgrades of at most one minor version are supported)"
                )
            Toolchain.for_version(kubernetes_version)
            if self._state.status != "running":
                # A stopped cluster just records the new version; start() runs it.
                self._state.kubernetes_version = kubernetes_version
                self._save()
                return
            # kwok restarts too: the apiserver's graceful shutdown hangs while a client's watches stay open.
            restarted = tuple(name for name in PROCESS_NAMES if name != "etcd")
            self._stop_processes(only=restarted)
            self._state.kubernetes_version = kubernetes_version
            self._save()
            try:
                self._start_processes(timeout, with_etcd=False)
                reported = self.server_version().get("gitVersion")
                if reported != kubernetes_version:
                    raise LocalClusterError(f"the apiserver reports {reported}")
            except Exception as error:
                # Roll back so the cluster keeps serving on the version it had, as a failed AKS upgrade does.
                self._stop_processes(only=restarted)
                self._state.kubernetes_version = current
                self._save()
                self._start_processes(timeout, with_etcd=False)
                raise LocalClusterError(
                    f"cluster {self.name!r}: upgrading the control plane from {current} to {kubernetes_version} "
                    f"failed and was rolled back (logs in {self.home / 'logs'}): {error}"
                ) from error

    def upgrade_node_image(
        self,
        pool: str,
        image_version: str,
        max_surge: int = 1,
        drain_timeout: float = 120.0,
        kubernetes_version: str | None = None,
        on_event: Callable[[str], None] | None = None,
    ) -> None:
        """Roll a node pool onto a new node image (and optionally a new kubelet version).

        Surges ``max_surge`` new nodes first, then for each old node: cordon, evict its pods through the
        Eviction API honouring PodDisruptionBudgets, wait for them to be gone, delete the node. Pods
        reschedule onto the new nodes. A drain still blocked after ``drain_timeout`` seconds raises
        DrainTimeoutError naming the node and the blocking PodDisruptionBudget(s); the node is uncordoned
        and the roll can be retried.
        """
        from localazure.kube import nodes  # the kubernetes client import is slow; only upgrades need it

        with self._locked():
            self._require_exists()
            if self._state.status != "running":
                raise LocalClusterError(f"cluster {self.name!r} is {self._state.status}; start it first")
            pool_state = self._pool(pool)
            if max_surge < 1:
                raise ValueError(f"max_surge must be at least 1, got {max_surge}")
            if kubernetes_version is not None:
                kubernetes_version = normalized(kubernetes_version)
                if version_key(kubernetes_version) > version_key(self.version):
                    raise ValueError(
                        f"node pool {pool!r} cannot run {kubernetes_version}, newer than the control plane "
                        f"{self.version}"
                    )
                pool_state.pool.orchestrator_version = kubernetes_version
            pool_state.pool.node_image_version = image_version
            self._save()
            nodes.roll_pool(
                self.api_client(),
                pool_state.pool,
                kubelet_version=pool_state.pool.orchestrator_version or self.version,
                max_surge=max_surge,
                drain_timeout=drain_timeout,
                new_node=lambda: self._new_node_manifest(pool_state),
                persist=self._save,
                on_event=on_event or (lambda _message: None),
            )

    # ----------------------------------------------------------------------------------------------
    # Kubernetes API access

    def api_client(self) -> Any:
        """A kubernetes.client.ApiClient authenticated as the cluster admin (cached)."""
        from kubernetes import client as k8s_client

        if self._api_client is None or self._api_client.configuration.host != self.server:
            configuration = k8s_client.Configuration()
            configuration.host = self.server
            configuration.ssl_ca_cert = str(self._pki.ca_cert)
            configuration.cert_file = str(self._pki.client_cert(ADMIN))
            configuration.key_file = str(self._pki.client_key(ADMIN))
            configuration.verify_ssl = True
            self._api_client = k8s_client.ApiClient(configuration)
        return self._api_client

    # ----------------------------------------------------------------------------------------------
    # Internals: state

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        # Thread lock for this object plus a file lock, so neither two host processes nor two LocalCluster
        # objects for the same home drive one cluster at once. Re-entrant: only the outermost level locks.
        with self._lock:
            if self._lock_depth:
                self._lock_depth += 1
                try:
                    yield
                finally:
                    self._lock_depth -= 1
                return
            self.home.mkdir(parents=True, exist_ok=True, mode=0o700)
            with open(self.home / ".lock", "a+") as lock_file:
                fcntl.flock(lock_file, fcntl.LOCK_EX)
                self._lock_depth = 1
                try:
                    self._reload()
                    yield
                finally:
                    self._lock_depth = 0
                    fcntl.flock(lock_file, fcntl.LOCK_UN)

    def _reload(self) -> None:
        # Another object (or process) may have changed the cluster since this one last looked.
        self._state = self._state_file.reload(self._state)

    def _save(self) -> None:
        self._state_file.save(self._state)

    def _require_exists(self) -> None:
        if not self._state_file.exists():
            raise ClusterNotFoundError(f"local cluster {self.name!r} no longer exists in {self.home}")

    def _pool(self, name: str) -> PoolState:
        for pool in self._state.pools:
            if pool.pool.name == name:
                return pool
        known = ", ".join(pool.pool.name for pool in self._state.pools)
        raise KeyError(f"cluster {self.name!r} has no node pool {name!r} (pools: {known})")

    # ----------------------------------------------------------------------------------------------
    # Internals: configuration files

    def _write_component_configs(self) -> None:
        launch.write_component_configs(self.home, self.name, self.server, self._pki, self.version)

    # ----------------------------------------------------------------------------------------------
    # Internals: processes

    def _argv(self, component: str, toolchain: Toolchain) -> list[str]:
        return launch.argv(component, toolchain, name=self.name, home=self.home, pki=self._pki,
                           ports=self._state.ports)

    def _spawn(self, component: str, toolchain: Toolchain) -> None:
        record = processes.spawn(self._argv(component, toolchain), self.home / "logs" / f"{component}.log",
                                 launch.environment(component))
        self._state.processes[component] = record
        self._save()

    def _ensure_ports_free(self, components: tuple[str, ...]) -> None:
        # Ports recorded at creation may have been taken while the cluster was stopped; pick new ones.
        ports = self._state.ports
        for component in components:
            for attribute in launch.PORTS_OF.get(component, ()):
                if not processes.port_is_free(getattr(ports, attribute)):
                    setattr(ports, attribute, processes.allocate_ports(1)[0])

    def _start_processes(self, timeout: float, with_etcd: bool = True) -> None:
        """Start the cluster's processes (all, or all but a running etcd); the binary decides the layout."""
        toolchain = Toolchain.for_version(self.version)
        control_plane = launch.control_plane(toolchain)
        started = (("etcd",) if with_etcd else ()) + control_plane + ("kwok",)
        self._ensure_ports_free(started)
        deadline = time.monotonic() + timeout
        if with_etcd:
            self._spawn("etcd", toolchain)
        # The apiserver retries its etcd connection, so both boot in parallel.
        self._spawn(control_plane[0], toolchain)
        self._wait_apiserver_ready(deadline)
        self._ensure_loopback_policy()
        # Clients start once the apiserver is ready: the controller-manager gives up when the apiserver is
        # not healthy within 10 s, which a loaded 2-core host can exceed when several clusters boot. The
        # combined process waits for its apiserver the same way before starting the other two.
        for component in (*control_plane[1:], "kwok"):
            self._spawn(component, toolchain)
        self._wait_default_service_account(deadline)
        self._check_alive(started)

    def _stop_processes(self, only: tuple[str, ...] = PROCESS_NAMES) -> None:
        # Stop clients before the servers they talk to (kwok, scheduler, controller-manager, apiserver, etcd).
        names = [name for name in reversed(PROCESS_NAMES) if name in only and name in self._state.processes]
        for record in (self._state.processes[name] for name in names):
            # Components shut down in well under a second once their clients are gone; etcd keeps the data,
            # so a SIGKILL after the grace period loses nothing.
            processes.terminate([record], timeout=8.0)
        for name in only:
            self._state.processes.pop(name, None)
        self._save()

    def _teardown(self, remove_home: bool) -> None:
        self._stop_processes()
        # Safety net: components whose pid was never recorded (crash between spawn and save).
        processes.terminate(processes.processes_referencing(self.home), timeout=10.0)
        processes.release_ports(self._state.ports.all())
        if remove_home:
            shutil.rmtree(self.home, ignore_errors=True)

    def running_processes(self) -> list[tuple[str, int, bool]]:
        """Every running process of this cluster, found by its directory: (component, pid, tracked), where
        tracked means the cluster's state records it (an untracked one is a stray, e.g. from a killed driver)."""
        recorded = {record.pid for record in self._state.processes.values() if processes.is_alive(record)}
        return [(processes.component_name(argv), record.pid, record.pid in recorded)
                for record, argv in processes.command_lines_referencing(self.home)]

    def _end_strays(self, everything: bool = False) -> None:
        """End processes naming this cluster's directory that its state does not record (all of them with
        `everything`): strays of a start or stop that was cut off. Never matched by name, only by directory."""
        recorded = set() if everything else {
            record.pid for record in self._state.processes.values() if processes.is_alive(record)}
        strays = [record for record in processes.processes_referencing(self.home) if record.pid not in recorded]
        if strays:
            log.warning("local cluster %s: ending %d stray process(es) %s", self.name, len(strays),
                        [record.pid for record in strays])
            processes.terminate(strays, timeout=10.0)

    def _all_alive(self) -> bool:
        recorded = self._state.processes
        expected = ("etcd", COMBINED_CONTROL_PLANE, "kwok") if COMBINED_CONTROL_PLANE in recorded else COMPONENTS
        return all(name in recorded and processes.is_alive(recorded[name]) for name in expected)

    def _check_alive(self, components: tuple[str, ...]) -> None:
        for name in components:
            record = self._state.processes.get(name)
            if record is None or not processes.is_alive(record):
                raise LocalClusterError(
                    f"{self.name}: {name} exited; see {self.home / 'logs' / f'{name}.log'}"
                )

    # ----------------------------------------------------------------------------------------------
    # Internals: readiness

    def _ssl_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self._pki.ca_cert))
        context.load_cert_chain(str(self._pki.client_cert(ADMIN)), str(self._pki.client_key(ADMIN)))
        return context

    def _get(self, path: str, timeout: float = 5.0) -> tuple[int, bytes]:
        connection = http.client.HTTPSConnection(
            "127.0.0.1", self._state.ports.apiserver, context=self._ssl_context(), timeout=timeout
        )
        try:
            connection.request("GET", path)
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()

    def _wait_until(self, what: str, deadline: float, probe: Callable[[], bool], components: tuple[str, ...]) -> None:
        while True:
            try:
                if probe():
                    return
            except (OSError, http.client.HTTPException, ValueError):
                pass  # not serving yet
            self._check_alive(tuple(name for name in components if name in self._state.processes))
            if time.monotonic() > deadline:
                raise LocalClusterError(f"{self.name}: timed out waiting for {what}; logs in {self.home / 'logs'}")
            time.sleep(0.1)

    def _wait_apiserver_ready(self, deadline: float) -> None:
        self._wait_until(
            "kube-apiserver /readyz",
            deadline,
            lambda: self._get("/readyz")[0] == 200,
            ("etcd", "kube-apiserver", COMBINED_CONTROL_PLANE),
        )

    def _wait_default_service_account(self, deadline: float) -> None:
        # Pods are only admitted once the controller-manager created the namespace's default ServiceAccount.
        self._wait_until(
            "the default ServiceAccount",
            deadline,
            lambda: self._get("/api/v1/namespaces/default/serviceaccounts/default")[0] == 200,
            ("kube-apiserver", "kube-controller-manager", COMBINED_CONTROL_PLANE),
        )

    # ----------------------------------------------------------------------------------------------
    # Internals: nodes

    def _expected_node_names(self) -> list[str]:
        status, body = self._get("/api/v1/nodes")
        if status != 200:
            raise LocalClusterError(f"{self.name}: listing nodes returned {status}")
        return [item["metadata"]["name"] for item in json.loads(body)["items"]]

    def _new_node_manifest(self, pool_state: PoolState) -> dict[str, Any]:
        """Manifest of the pool's next node (advances the pool's instance counter)."""
        return new_node_manifest(pool_state, cluster=self.name, region=self.region, version=self.version,
                                 system=pool_state is self._state.pools[0])

    def _post(self, collection: str, manifest: dict[str, Any]) -> tuple[int, bytes]:
        body = json.dumps(manifest).encode()
        connection = http.client.HTTPSConnection(
            "127.0.0.1", self._state.ports.apiserver, context=self._ssl_context(), timeout=10
        )
        try:
            connection.request("POST", collection, body=body, headers={"Content-Type": "application/json"})
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()

    def _create(self, collection: str, manifest: dict[str, Any]) -> None:
        """POST an object; one that already exists is left as it is."""
        status, payload = self._post(collection, manifest)
        if status not in (200, 201, 409):
            message = json.loads(payload).get("message", payload[:200]) if payload else ""
            raise LocalClusterError(
                f"{self.name}: creating {manifest['kind']} {manifest['metadata']['name']} failed: {message}"
            )

    def _create_node(self, manifest: dict[str, Any]) -> None:
        self._create("/api/v1/nodes", manifest)

    def _ensure_loopback_policy(self, timeout: float = 60.0) -> None:
        # Before any client starts: nothing may create a conversion webhook or a Service-backed APIService.
        for collection, manifest in LOOPBACK_OBJECTS:
            self._create(collection, manifest)
        deadline = time.monotonic() + timeout
        while self._post(POLICY_PROBE_PATH, POLICY_PROBE)[0] not in (403, 422):
            if time.monotonic() > deadline:
                raise LocalClusterError(f"{self.name}: the loopback admission policy is not enforced after "
                                        f"{timeout:g}s; logs in {self.home / 'logs'}")
            time.sleep(0.1)

    def _register_nodes(self, pools: list[PoolState], timeout: float) -> None:
        names = []
        for pool_state in pools:
            for _ in range(pool_state.pool.count):
                manifest = self._new_node_manifest(pool_state)
                self._create_node(manifest)
                names.append(manifest["metadata"]["name"])
        self._save()
        self._wait_nodes_ready(names, timeout)

    def _wait_nodes_ready(self, names: list[str], timeout: float) -> None:
        wanted = set(names)

        def all_ready() -> bool:
            status, body = self._get("/api/v1/nodes")
            if status != 200:
                return False
            ready = {
                item["metadata"]["name"]
                for item in json.loads(body)["items"]
                if any(
                    condition["type"] == "Ready" and condition["status"] == "True"
                    for condition in item.get("status", {}).get("conditions", [])
                )
            }
            return wanted <= ready

        self._wait_until(f"nodes {sorted(wanted)} Ready", time.monotonic() + timeout, all_ready, PROCESS_NAMES)

