"""Reading and waiting on Kubernetes objects: Deployments Available, CRDs Established, Secrets kept in sync.

Every wait has a deadline and, when it passes, names what it was still waiting for.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import urllib3
from kubernetes import client as kube_client
from kubernetes.client.rest import ApiException

from tasks.retry import FleetflowError

T = TypeVar("T")
POLL_SECONDS = 0.5
MANAGED_BY = {"app.kubernetes.io/managed-by": "fleetflow"}


class KubernetesError(FleetflowError):
    """A Kubernetes API call or wait failed; names the cluster, the object and the cause."""


def kube_error(cluster: str, operation: str, resource: str, error: Exception) -> KubernetesError:
    """The fleetflow error for a failed API call: 429/5xx and connection failures are retryable."""
    if isinstance(error, ApiException):
        retryable = error.status in (429, 500, 502, 503, 504)
        return KubernetesError(f"{operation} {resource} on cluster {cluster} failed: {error.status} "
                               f"{error.reason or ''}".rstrip(), operation=operation,
                               resource_id=f"{cluster}/{resource}", retryable=retryable)
    return KubernetesError(f"{operation} {resource} on cluster {cluster}: the API server is unreachable "
                           f"({type(error).__name__})", operation=operation, resource_id=f"{cluster}/{resource}",
                           retryable=True)


def kube_call(cluster: str, operation: str, resource: str, call: Callable[[], T]) -> T:
    """Run one API call; failures become KubernetesError naming the cluster, object and cause."""
    try:
        return call()
    except (ApiException, urllib3.exceptions.HTTPError, OSError) as error:
        raise kube_error(cluster, operation, resource, error) from error


def wait_for(what: str, cluster: str, probe: Callable[[], list[str]], timeout_seconds: float) -> None:
    """Poll `probe` (the names still not ready) until it returns nothing; a timeout names what is left."""
    deadline = time.monotonic() + timeout_seconds
    while True:
        pending = probe()
        if not pending:
            return
        if time.monotonic() > deadline:
            raise KubernetesError(f"timed out after {timeout_seconds:g}s on cluster {cluster} waiting for {what}: "
                                  f"still waiting for {', '.join(sorted(pending))}", operation=f"wait for {what}",
                                  resource_id=cluster, retryable=True)
        time.sleep(POLL_SECONDS)


def _name(item: Any) -> str:
    return str(item.metadata.name) if item.metadata is not None else "?"


def _available(deployment: Any) -> bool:
    status = deployment.status
    wanted = deployment.spec.replicas if deployment.spec.replicas is not None else 1
    conditions = {c.type: c.status for c in (status.conditions or [])} if status else {}
    return bool(status) and conditions.get("Available") == "True" and (status.available_replicas or 0) >= wanted \
        and (status.updated_replicas or 0) >= wanted


def unavailable_deployments(api: kube_client.ApiClient, cluster: str, namespace: str) -> list[str]:
    """Names of the namespace's Deployments that are not Available at their desired count (all of them if none)."""
    apps = kube_client.AppsV1Api(api)
    items = kube_call(cluster, "list deployments", namespace,
                      lambda: apps.list_namespaced_deployment(namespace, _request_timeout=30).items)
    if not items:
        return [f"{namespace}/(no deployment yet)"]
    return [f"{namespace}/{_name(d)}" for d in items if not _available(d)]


def wait_deployments_available(api: kube_client.ApiClient, cluster: str, namespace: str,
                               timeout_seconds: float) -> None:
    """Wait until every Deployment of the namespace is Available."""
    wait_for(f"Deployments in {namespace} to be Available", cluster,
             lambda: unavailable_deployments(api, cluster, namespace), timeout_seconds)


def crds_matching(api: kube_client.ApiClient, cluster: str, items: list[tuple[str, str]]) -> dict[str, bool]:
    """CRD name -> Established, for CRDs whose group (and kind, unless '*') matches one of `items`."""
    crds = kube_call(cluster, "list", "customresourcedefinitions", lambda: kube_client.ApiextensionsV1Api(api)
                     .list_custom_resource_definition(_request_timeout=30).items)
    found: dict[str, bool] = {}
    for crd in crds:
        if any(crd.spec.group == group and kind in ("*", crd.spec.names.kind) for group, kind in items):
            conditions = {c.type: c.status for c in (crd.status.conditions or [])} if crd.status else {}
            found[_name(crd)] = conditions.get("Established") == "True"
    return found


def pending_crds(api: kube_client.ApiClient, cluster: str, items: list[tuple[str, str]]) -> list[str]:
    """Pattern items with no CRD yet and CRDs not yet Established."""
    found = crds_matching(api, cluster, items)
    missing = [f"{group}/{kind}" for group, kind in items
               if not any(name.endswith("." + group) for name in found)]
    return missing + [name for name, established in found.items() if not established]


def ensure_namespace(api: kube_client.ApiClient, cluster: str, namespace: str) -> None:
    """Create the namespace unless it exists."""
    core = kube_client.CoreV1Api(api)
    try:
        core.read_namespace(namespace, _request_timeout=30)
        return
    except ApiException as error:
        if error.status != 404:
            raise kube_error(cluster, "read", f"namespace {namespace}", error) from error
    except (urllib3.exceptions.HTTPError, OSError) as error:
        raise kube_error(cluster, "read", f"namespace {namespace}", error) from error
    body = kube_client.V1Namespace(metadata=kube_client.V1ObjectMeta(name=namespace))
    try:
        core.create_namespace(body, _request_timeout=30)
    except ApiException as error:
        if error.status != 409:
            raise kube_error(cluster, "create", f"namespace {namespace}", error) from error


def sync_secret(api: kube_client.ApiClient, cluster: str, namespace: str, name: str,
                data: dict[str, str]) -> bool:
    """Make Secret namespace/name hold exactly `data`; True when it was created or changed."""
    core = kube_client.CoreV1Api(api)
    resource = f"secret {namespace}/{name}"
    try:
        existing = core.read_namespaced_secret(name, namespace, _request_timeout=30)
    except ApiException as error:
        if error.status != 404:
            raise kube_error(cluster, "read", resource, error) from error
        existing = None
    except (urllib3.exceptions.HTTPError, OSError) as error:
        raise kube_error(cluster, "read", resource, error) from error
    encoded = {key: base64.b64encode(value.encode()).decode() for key, value in data.items()}
    if existing is not None and (existing.data or {}) == encoded:
        return False
    metadata = kube_client.V1ObjectMeta(name=name, namespace=namespace, labels=dict(MANAGED_BY))
    body = kube_client.V1Secret(metadata=metadata, type="Opaque", data=encoded)
    if existing is None:
        kube_call(cluster, "create", resource,
                  lambda: core.create_namespaced_secret(namespace, body, _request_timeout=30))
    else:
        metadata.resource_version = existing.metadata.resource_version if existing.metadata else None
        kube_call(cluster, "replace", resource,
                  lambda: core.replace_namespaced_secret(name, namespace, body, _request_timeout=30))
    return True


def restart_deployment(api: kube_client.ApiClient, cluster: str, namespace: str, name: str) -> None:
    """Roll a Deployment's pods (what `kubectl rollout restart` does), so they read changed Secrets."""
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    patch = {"spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": stamp}}}}}
    kube_call(cluster, "restart", f"deployment {namespace}/{name}", lambda: kube_client.AppsV1Api(api)
              .patch_namespaced_deployment(name, namespace, patch, _request_timeout=30))
