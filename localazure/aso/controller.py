"""The local ASO controller: one operator per local cluster whose ASO Deployment exists.

Each operator polls its cluster's apiserver: it installs the CRDs the Deployment's --crd-pattern selects
(as ASO does at start), reads aso-controller-settings from the Deployment's namespace, and reconciles the
objects of the installed kinds that need it (new generation, deletion, failures after their backoff,
annotation changes, and every object once per AZURE_SYNC_PERIOD). It stops when the Deployment or the
cluster goes away.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import yaml
from kubernetes import client as kclient
from kubernetes import config as kconfig
from kubernetes.client.exceptions import ApiException

from localazure.aso.arm import ArmClient
from localazure.aso.crds import crd_manifest, parse_crd_pattern, selected_kinds
from localazure.aso.kinds import KINDS, AsoKind
from localazure.aso.reconcile import RECONCILE_POLICY, Backoff, Reconciler, ready_condition
from localazure.aso.settings import CREDENTIAL_FROM, SETTINGS_SECRET, OperatorSettings, SettingsError, decode_secret

log = logging.getLogger(__name__)

DEPLOYMENT = "azureserviceoperator-controller-manager"
APP_VERSION = "v2.17.0"
HASH_ANNOTATION = "fleetflow.io/crd-hash"


def crd_pattern_of(deployment: Any) -> str | None:
    """The --crd-pattern of the Deployment's manager container (None when the flag is absent)."""
    for container in deployment.spec.template.spec.containers or []:
        for arg in container.args or []:
            if arg.startswith("--crd-pattern="):
                return str(arg.split("=", 1)[1])
    return None


def _fingerprint(obj: dict[str, Any]) -> str:
    meta = obj["metadata"]
    annotations = meta.get("annotations") or {}
    return f"{meta.get('generation')}|{annotations.get(RECONCILE_POLICY, '')}|{annotations.get(CREDENTIAL_FROM, '')}"


class ClusterOperator:
    """The operator of one local cluster (a thread plus a small reconcile pool)."""

    def __init__(self, name: str, kubeconfig: Callable[[], str], ca_bundle: str, poll: float = 1.0,
                 workers: int = 4, max_backoff: float = 30.0) -> None:
        self.name = name
        self._kubeconfig = kubeconfig
        self.poll = poll
        self.arm = ArmClient(ca_bundle)
        self.backoff = Backoff(maximum=max_backoff)
        self._stop = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"aso-{name}")
        self._inflight: set[str] = set()
        self._lock = threading.Lock()
        self._last_sync: dict[str, float] = {}
        self._seen: dict[str, str] = {}
        self._settings: OperatorSettings | None = None
        self._api: kclient.ApiClient | None = None
        self._installed: dict[str, str] = {}  # crd name -> hash applied
        self.active = False
        self._thread = threading.Thread(target=self._run, name=f"aso-operator-{name}", daemon=True)

    def start(self) -> None:
        """Start polling."""
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop polling and wait for running reconciles."""
        self._stop.set()
        self._thread.join(timeout)
        self._pool.shutdown(wait=True, cancel_futures=True)
        self.arm.close()
        if self._api is not None:
            self._api.close()

    # ---- loop ------------------------------------------------------------------------------------

    def _client(self) -> kclient.ApiClient:
        if self._api is None:
            config = yaml.safe_load(self._kubeconfig())
            self._api = kconfig.new_client_from_config_dict(config)
        return self._api

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.step()
            except Exception as exc:  # apiserver restarting, cluster stopping, ...
                log.debug("local ASO on %s: %s", self.name, exc)
                if self._api is not None:
                    self._api.close()
                    self._api = None
            self._stop.wait(self.poll)

    def step(self) -> None:
        """One poll: Deployment, CRDs, settings, then the objects that need a reconcile."""
        api = self._client()
        apps: Any = kclient.AppsV1Api(api)
        deployments = apps.list_deployment_for_all_namespaces(
            field_selector=f"metadata.name={DEPLOYMENT}").items
        if not deployments:
            if self.active:
                log.warning("local ASO on %s: the %s Deployment is gone; stopped", self.name, DEPLOYMENT)
            self.active = False
            return
        deployment: Any = deployments[0]
        if not self.active:
            log.warning("local ASO on %s: operator running (namespace %s)", self.name, deployment.metadata.namespace)
        self.active = True
        pattern = crd_pattern_of(deployment)
        kinds = self._ensure_crds(api, pattern or "")
        values = self._read_settings(api, deployment.metadata.namespace)
        if values is None:
            return  # like ASO's pod, which cannot start without its settings secret
        try:
            self._settings = OperatorSettings.from_secret(values)
        except SettingsError as exc:
            log.warning("local ASO on %s: %s", self.name, exc)
            return
        custom: Any = kclient.CustomObjectsApi(api)
        for kind in kinds:
            try:
                items = custom.list_cluster_custom_object(kind.group, kind.storage_version, kind.plural)["items"]
            except ApiException as exc:
                if exc.status == 404:  # CRD not established yet
                    continue
                raise
            live = set()
            for obj in items:
                live.add(self._key(obj))
                if self._settings.watches(obj["metadata"]["namespace"]) and self._needs(obj):
                    self._submit(kind, obj)
            for key in [k for k in self._seen if k not in live and k.startswith(kind.kind + "/")]:
                self._forget(key)

    def _key(self, obj: dict[str, Any]) -> str:
        return f"{obj['kind']}/{obj['metadata']['uid']}"

    def _forget(self, key: str) -> None:
        self._seen.pop(key, None)
        self._last_sync.pop(key, None)
        self.backoff.succeeded(key)

    def _needs(self, obj: dict[str, Any]) -> bool:
        key = self._key(obj)
        with self._lock:
            if key in self._inflight:
                return False
        meta = obj["metadata"]
        if meta.get("deletionTimestamp"):
            return self.backoff.due(key)
        if self.backoff.failing(key):
            return self.backoff.due(key) or self._seen.get(key) != _fingerprint(obj)
        if self._seen.get(key) != _fingerprint(obj):
            condition = ready_condition(obj)
            if (key not in self._seen and condition and condition.get("status") == "True"
                    and condition.get("observedGeneration") == meta.get("generation")):
                # Ready from before a restart: resume with the periodic re-sync.
                self._seen[key] = _fingerprint(obj)
                self._last_sync[key] = time.monotonic()
                return False
            return True
        assert self._settings is not None
        return time.monotonic() - self._last_sync.get(key, 0.0) >= self._settings.sync_period

    def _submit(self, kind: AsoKind, obj: dict[str, Any]) -> None:
        key = self._key(obj)
        with self._lock:
            self._inflight.add(key)
        try:
            self._pool.submit(self._reconcile, kind, obj, key)
        except RuntimeError:  # pool shut down
            with self._lock:
                self._inflight.discard(key)

    def _reconcile(self, kind: AsoKind, obj: dict[str, Any], key: str) -> None:
        fingerprint = _fingerprint(obj)
        try:
            api = self._client()
            settings = self._settings
            assert settings is not None
            reconciler = Reconciler(kclient.CustomObjectsApi(api), kclient.CoreV1Api(api), self.arm,
                                    lambda: settings)
            outcome = reconciler.reconcile(kind, obj)
            self._seen[key] = fingerprint
            if outcome.deleted:
                self._forget(key)
            elif outcome.ready:
                self.backoff.succeeded(key)
                self._last_sync[key] = time.monotonic()
            else:
                self.backoff.failed(key, outcome.retry_in)
        except Exception as exc:
            log.warning("local ASO on %s: reconciling %s %s/%s failed: %s", self.name, kind.kind,
                        obj["metadata"].get("namespace"), obj["metadata"].get("name"), exc)
            self._seen[key] = fingerprint
            self.backoff.failed(key)
        finally:
            with self._lock:
                self._inflight.discard(key)

    # ---- CRDs and settings -----------------------------------------------------------------------

    def _ensure_crds(self, api: kclient.ApiClient, pattern: str) -> list[AsoKind]:
        ext: Any = kclient.ApiextensionsV1Api(api)
        existing = {crd.metadata.name: crd for crd in ext.list_custom_resource_definition(
            label_selector="app.kubernetes.io/name=azure-service-operator").items}
        kinds = selected_kinds(pattern, set(existing))
        for kind in kinds:
            manifest = crd_manifest(kind, APP_VERSION)
            digest = hashlib.sha256(json.dumps(manifest, sort_keys=True).encode()).hexdigest()[:16]
            manifest["metadata"]["annotations"][HASH_ANNOTATION] = digest
            current = existing.get(kind.crd_name)
            if current is None:
                try:
                    ext.create_custom_resource_definition(manifest)
                    log.warning("local ASO on %s: installed CRD %s", self.name, kind.crd_name)
                except ApiException as exc:
                    if exc.status != 409:
                        raise
            elif (current.metadata.annotations or {}).get(HASH_ANNOTATION) != digest:
                manifest["metadata"]["resourceVersion"] = current.metadata.resource_version
                ext.replace_custom_resource_definition(kind.crd_name, manifest)
            self._installed[kind.crd_name] = digest
        return kinds

    def _read_settings(self, api: kclient.ApiClient, namespace: str) -> dict[str, str] | None:
        try:
            core: Any = kclient.CoreV1Api(api)
            return decode_secret(core.read_namespaced_secret(SETTINGS_SECRET, namespace))
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise


class AsoService:
    """Runs a ClusterOperator for every local cluster of a local Azure (started/stopped with the emulator)."""

    def __init__(self, list_clusters: Callable[[], list[tuple[str, Callable[[], str]]]], ca_bundle: str,
                 period: float = 2.0, poll: float = 1.0) -> None:
        self._list_clusters = list_clusters
        self.ca_bundle = ca_bundle
        self.period = period
        self.poll = poll
        self.operators: dict[str, ClusterOperator] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="aso-service", daemon=True)

    def start(self) -> None:
        """Start watching for clusters."""
        self._thread.start()

    def stop(self) -> None:
        """Stop every cluster operator."""
        self._stop.set()
        self._thread.join(10)
        for operator in list(self.operators.values()):
            operator.stop()
        self.operators.clear()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.sync()
            except Exception as exc:
                log.warning("local ASO: listing clusters failed: %s", exc)
            self._stop.wait(self.period)

    def sync(self) -> None:
        """Start operators for new local clusters, stop those of clusters that are gone."""
        clusters = dict(self._list_clusters())
        for key in [k for k in self.operators if k not in clusters]:
            self.operators.pop(key).stop()
        for key, kubeconfig in clusters.items():
            if key not in self.operators and not self._stop.is_set():
                operator = ClusterOperator(key.rsplit("/", 1)[-1], kubeconfig, self.ca_bundle, poll=self.poll)
                self.operators[key] = operator
                operator.start()


def served_kinds() -> tuple[AsoKind, ...]:
    """Every kind local ASO can install."""
    return KINDS


__all__ = ["AsoService", "ClusterOperator", "crd_pattern_of", "parse_crd_pattern", "served_kinds"]
