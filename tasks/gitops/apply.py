"""Server-side apply of rendered objects, the per-cluster inventory, and pruning what left Git.

Objects are applied with field manager `fleetflow` (conflicts forced: Git is the source of truth for the
fields it sets). The inventory — the commit and every object applied from it — is a ConfigMap in
namespace fleetflow-system; an object in the previous inventory but not in this commit's render is
deleted (for an ASO object that deletes its Azure resource, unless its reconcile-policy says otherwise).
A failed apply leaves the previous inventory in place with the new objects added, so nothing is pruned
and a later run still knows every object it made.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kubernetes import client as kube_client
from kubernetes.client.rest import ApiException
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import DynamicApiError, ResourceNotFoundError

from tasks.gitops.render import RenderedObject
from tasks.kube_objects import MANAGED_BY, ensure_namespace, kube_call
from tasks.retry import FleetflowError

FIELD_MANAGER = "fleetflow"
INVENTORY_NAMESPACE = "fleetflow-system"
INVENTORY_NAME = "fleetflow-inventory"
SOURCE_ANNOTATION = "fleetflow.io/source"
# Applied first so that what other objects live in exists: namespaces, then custom resource definitions.
APPLY_ORDER = {"Namespace": 0, "CustomResourceDefinition": 1}


class ApplyError(FleetflowError):
    """Objects that could not be applied; names each with its file, kind, name and cluster."""


@dataclass(frozen=True)
class ObjectRef:
    """An applied object as the inventory records it."""

    api_version: str
    kind: str
    namespace: str | None
    name: str

    @property
    def key(self) -> str:
        """group/Kind/namespace/name, as RenderedObject.key."""
        return f"{self.api_version.rpartition('/')[0]}/{self.kind}/{self.namespace or ''}/{self.name}"

    @property
    def display(self) -> str:
        """namespace/name or name."""
        return f"{self.namespace}/{self.name}" if self.namespace else self.name

    def to_json(self) -> dict[str, str | None]:
        """For the inventory ConfigMap."""
        return {"apiVersion": self.api_version, "kind": self.kind, "namespace": self.namespace, "name": self.name}

    @classmethod
    def of(cls, rendered: RenderedObject) -> ObjectRef:
        """The reference of a rendered object."""
        return cls(rendered.api_version, rendered.kind, rendered.namespace, rendered.name)


@dataclass(frozen=True)
class Inventory:
    """What fleetflow applied on a cluster, and from which commit."""

    commit: str | None
    objects: tuple[ObjectRef, ...]


@contextlib.contextmanager
def dynamic_client(api: kube_client.ApiClient) -> Iterator[DynamicClient]:
    """A dynamic client whose discovery cache lives in a private directory removed afterwards."""
    directory = tempfile.mkdtemp(prefix="fleetflow-discovery-")
    try:
        yield DynamicClient(api, cache_file=str(Path(directory) / "discovery.json"))
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _resource(dynamic: DynamicClient, api_version: str, kind: str) -> Any:
    try:
        return dynamic.resources.get(api_version=api_version, kind=kind)
    except ResourceNotFoundError:
        dynamic.resources.invalidate_cache()  # a CRD installed after discovery ran
        return dynamic.resources.get(api_version=api_version, kind=kind)


def _error_text(error: Exception) -> str:
    if isinstance(error, (DynamicApiError, ApiException)):
        body = getattr(error, "body", None) or ""
        with contextlib.suppress(ValueError, TypeError):
            return str(json.loads(body).get("message") or body)[:500]
        return f"{getattr(error, 'status', '')} {body}"[:500]
    if isinstance(error, ResourceNotFoundError):
        return "the cluster serves no such kind (is its CRD installed? check the apiVersion and the crdPattern)"
    return f"{type(error).__name__}: {error}"[:500]


def stale_objects(previous: Inventory, wanted: list[ObjectRef]) -> list[ObjectRef]:
    """What left Git: objects of the previous inventory that this commit's render no longer holds (to prune)."""
    wanted_keys = {ref.key for ref in wanted}
    return [ref for ref in previous.objects if ref.key not in wanted_keys]


def inventory_after_failure(previous: Inventory, wanted: list[ObjectRef], applied_keys: set[str]) -> Inventory:
    """After a failed apply: the previous commit, tracking every object it had plus the new ones that were applied,
    so nothing is pruned now and a re-run after the fix still knows every object fleetflow made."""
    kept = {ref.key: ref for ref in (*previous.objects, *(ref for ref in wanted if ref.key in applied_keys))}
    return Inventory(previous.commit, tuple(kept.values()))


def _with_marks(rendered: RenderedObject) -> dict[str, Any]:
    manifest = json.loads(json.dumps(rendered.manifest))
    metadata = manifest.setdefault("metadata", {})
    metadata.setdefault("labels", {}).update(MANAGED_BY)
    metadata.setdefault("annotations", {})[SOURCE_ANNOTATION] = rendered.source
    return dict(manifest)


def apply_objects(dynamic: DynamicClient, cluster: str, objects: list[RenderedObject], *,
                  dry_run: bool = False) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """Server-side apply every object (namespaces first); returns the live (or dry-run) objects by key and a line per
    object that failed, each naming file, kind, name and cluster. One failure does not stop the others."""
    applied: dict[str, dict[str, Any]] = {}
    failures: list[str] = []
    for rendered in sorted(objects, key=lambda item: APPLY_ORDER.get(item.kind, 2)):
        try:
            resource = _resource(dynamic, rendered.api_version, rendered.kind)
            extra = {"dry_run": "All"} if dry_run else {}
            result = dynamic.server_side_apply(resource, body=_with_marks(rendered), name=rendered.name,
                                               namespace=rendered.namespace, field_manager=FIELD_MANAGER,
                                               force_conflicts=True, **extra)
            applied[rendered.key] = result.to_dict()
        except (DynamicApiError, ApiException, ResourceNotFoundError, ValueError) as error:
            failures.append(f"{rendered.source}: {rendered.kind} {rendered.name} on cluster {cluster}: "
                            f"{_error_text(error)}")
    return applied, failures


def read_inventory(api: kube_client.ApiClient, cluster: str) -> Inventory:
    """The cluster's inventory; empty when nothing was applied yet."""
    core = kube_client.CoreV1Api(api)
    try:
        config_map = core.read_namespaced_config_map(INVENTORY_NAME, INVENTORY_NAMESPACE, _request_timeout=30)
    except ApiException as error:
        if error.status == 404:
            return Inventory(None, ())
        raise
    data = config_map.data or {}
    objects = tuple(ObjectRef(item["apiVersion"], item["kind"], item.get("namespace"), item["name"])
                    for item in json.loads(data.get("objects", "[]")))
    return Inventory(data.get("commit") or None, objects)


def write_inventory(api: kube_client.ApiClient, cluster: str, inventory: Inventory) -> None:
    """Record the inventory (commit and objects) on the cluster."""
    ensure_namespace(api, cluster, INVENTORY_NAMESPACE)
    core = kube_client.CoreV1Api(api)
    data = {
        "commit": inventory.commit or "",
        "objects": json.dumps([ref.to_json() for ref in inventory.objects], indent=1),
        "applied-at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    body = kube_client.V1ConfigMap(
        metadata=kube_client.V1ObjectMeta(name=INVENTORY_NAME, namespace=INVENTORY_NAMESPACE,
                                          labels=dict(MANAGED_BY)), data=data)
    resource = f"configmap {INVENTORY_NAMESPACE}/{INVENTORY_NAME}"
    try:
        core.replace_namespaced_config_map(INVENTORY_NAME, INVENTORY_NAMESPACE, body, _request_timeout=30)
    except ApiException as error:
        if error.status != 404:
            raise
        kube_call(cluster, "create", resource,
                  lambda: core.create_namespaced_config_map(INVENTORY_NAMESPACE, body, _request_timeout=30))


def delete_objects(dynamic: DynamicClient, cluster: str, refs: list[ObjectRef]) -> list[str]:
    """Delete objects (namespaces last); already-gone ones count as deleted. Returns a line per failure."""
    failures = []
    for ref in sorted(refs, key=lambda item: -APPLY_ORDER.get(item.kind, 2)):
        try:
            resource = _resource(dynamic, ref.api_version, ref.kind)
            dynamic.delete(resource, name=ref.name, namespace=ref.namespace,
                           body={"propagationPolicy": "Background"})
        except ResourceNotFoundError:
            continue  # the kind is gone with its CRD, and so is the object
        except (DynamicApiError, ApiException) as error:
            if getattr(error, "status", None) == 404:
                continue
            failures.append(f"delete {ref.kind} {ref.display} on cluster {cluster}: {_error_text(error)}")
    return failures


def present(dynamic: DynamicClient, refs: list[ObjectRef]) -> list[str]:
    """Which of these objects still exist (a deleted ASO object lingers until Azure has removed its resource)."""
    left = []
    for ref in refs:
        try:
            resource = _resource(dynamic, ref.api_version, ref.kind)
            dynamic.get(resource, name=ref.name, namespace=ref.namespace)
            left.append(f"{ref.kind} {ref.display}")
        except ResourceNotFoundError:
            continue
        except (DynamicApiError, ApiException) as error:
            if getattr(error, "status", None) != 404:
                left.append(f"{ref.kind} {ref.display} ({_error_text(error)})")
    return left


def read_live(dynamic: DynamicClient, ref: ObjectRef) -> dict[str, Any] | None:
    """The live object, or None when it does not exist."""
    try:
        resource = _resource(dynamic, ref.api_version, ref.kind)
        result: dict[str, Any] = dynamic.get(resource, name=ref.name, namespace=ref.namespace).to_dict()
        return result
    except ResourceNotFoundError:
        return None
    except (DynamicApiError, ApiException) as error:
        if getattr(error, "status", None) == 404:
            return None
        raise
