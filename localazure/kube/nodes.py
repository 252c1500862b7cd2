"""Node-image rolls: surge new nodes, then cordon, drain (Eviction API, PDBs honoured) and delete each
old node, the way AKS replaces a node pool's VMs.

A roll gets what it needs (an API client, the pool, the kubelet version, a way to make and record the
next node) and never the cluster, so nothing here imports `localazure.kube.cluster`."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any

from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from localazure.kube.errors import DrainTimeoutError
from localazure.kube.state import NodePool

IMAGE_LABEL = "kubernetes.azure.com/node-image-version"
POOL_LABEL = "kubernetes.azure.com/agentpool"
MIRROR_POD_ANNOTATION = "kubernetes.io/config.mirror"
# How long to wait before retrying an eviction a PodDisruptionBudget refused (HTTP 429).
EVICTION_RETRY_SECONDS = 1.0
POLL_SECONDS = 0.2


def roll_pool(
    api_client: Any,
    pool: NodePool,
    *,
    kubelet_version: str,
    max_surge: int,
    drain_timeout: float,
    new_node: Callable[[], dict[str, Any]],
    persist: Callable[[], None],
    on_event: Callable[[str], None],
    ready_timeout: float = 120.0,
) -> None:
    """Replace every node of the pool that does not run ``pool``'s image and ``kubelet_version``.

    ``api_client`` is a kubernetes.client.ApiClient of the cluster; ``new_node()`` gives the manifest of
    the pool's next node and ``persist()`` records that the pool's instance counter moved.

    Re-running after a failure continues where the roll stopped: nodes already on the target are kept.
    """
    # The client's models declare every field Optional; treat API objects as Any rather than assert each.
    core: Any = k8s.CoreV1Api(api_client)

    def is_current(node: Any) -> bool:
        return bool(
            node.metadata.labels.get(IMAGE_LABEL) == pool.node_image_version
            and node.status.node_info is not None
            and node.status.node_info.kubelet_version == kubelet_version
        )

    def pool_nodes() -> tuple[list[Any], list[Any]]:
        items = core.list_node(label_selector=f"{POOL_LABEL}={pool.name}").items
        items.sort(key=lambda node: node.metadata.name)
        return [n for n in items if not is_current(n)], [n for n in items if is_current(n)]

    old, new = pool_nodes()
    while old:
        # Surge: bring up replacements first, never more than max_surge above the pool's size.
        created: list[str] = []
        while len(new) + len(created) < pool.count and len(old) + len(new) + len(created) < pool.count + max_surge:
            manifest = new_node()
            persist()  # the instance counter moved; a retry must not reuse the name
            core.create_node(manifest)
            created.append(manifest["metadata"]["name"])
            on_event(f"surged node {manifest['metadata']['name']} ({pool.node_image_version})")
        if created:
            wait_nodes_ready(core, created, ready_timeout)
        victim = old[0].metadata.name
        drain_node(core, victim, drain_timeout, on_event)
        core.delete_node(victim)
        wait_gone(functools.partial(_node_exists, core, victim), ready_timeout, f"node {victim} deletion")
        on_event(f"deleted node {victim}")
        old, new = pool_nodes()
    # A pool that had more nodes on the target than its count (e.g. a surge left by an aborted roll).
    while len(new) > pool.count:
        extra = new.pop().metadata.name
        drain_node(core, extra, drain_timeout, on_event)
        core.delete_node(extra)


def _node_exists(core: Any, name: str) -> bool:
    try:
        core.read_node(name)
    except ApiException as error:
        if error.status == 404:
            return False
        raise
    return True


def wait_gone(exists: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll until exists() is false."""
    deadline = time.monotonic() + timeout
    while exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(POLL_SECONDS)


def wait_nodes_ready(core: Any, names: list[str], timeout: float) -> None:
    """Wait until every named node reports Ready=True."""
    deadline = time.monotonic() + timeout
    pending = set(names)
    while pending:
        for node in core.list_node().items:
            conditions = node.status.conditions or []
            if any(c.type == "Ready" and c.status == "True" for c in conditions):
                pending.discard(node.metadata.name)
        if not pending:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"nodes {sorted(pending)} not Ready after {timeout:.0f}s")
        time.sleep(POLL_SECONDS)


def _evictable(pod: Any) -> bool:
    # DaemonSet pods would be recreated on the same node and mirror pods belong to a kubelet: skip both,
    # as `kubectl drain --ignore-daemonsets` does.
    owners = pod.metadata.owner_references or []
    if any(owner.kind == "DaemonSet" for owner in owners):
        return False
    return MIRROR_POD_ANNOTATION not in (pod.metadata.annotations or {})


def _selector_matches(selector: Any, labels: dict[str, str]) -> bool:
    if selector is None:
        return False
    for key, value in (selector.match_labels or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.match_expressions or []:
        present = expression.key in labels
        value = labels.get(expression.key)
        operator, values = expression.operator, expression.values or []
        if operator == "In" and value not in values:
            return False
        if operator == "NotIn" and present and value in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
    return True


def blocking_pdbs(policy: Any, pods: list[Any]) -> list[str]:
    """``namespace/name`` of the PodDisruptionBudgets selecting any of the pods."""
    names: set[str] = set()
    for pod in pods:
        namespace = pod.metadata.namespace
        for pdb in policy.list_namespaced_pod_disruption_budget(namespace).items:
            if _selector_matches(pdb.spec.selector, pod.metadata.labels or {}):
                names.add(f"{namespace}/{pdb.metadata.name}")
    return sorted(names)


def drain_node(core: Any, node: str, timeout: float, on_event: Callable[[str], None]) -> None:
    """Cordon the node and evict its pods through the Eviction API, honouring PodDisruptionBudgets.

    An eviction refused with 429 (a PDB allows no disruption) is retried after a short wait. When the
    node is not empty after ``timeout`` seconds the node is uncordoned and DrainTimeoutError is raised,
    naming the node and the PodDisruptionBudget(s) that blocked it.
    """
    policy: Any = k8s.PolicyV1Api(core.api_client)
    core.patch_node(node, {"spec": {"unschedulable": True}})
    on_event(f"cordoned node {node}")
    deadline = time.monotonic() + timeout
    # uid -> pod; a pod is done when it no longer exists with that uid.
    pods: list[Any] = core.list_pod_for_all_namespaces(field_selector=f"spec.nodeName={node}").items
    remaining = {pod.metadata.uid: pod for pod in pods if _evictable(pod)}
    evicted: set[str] = set()
    refused: dict[str, Any] = {}
    while remaining:
        for uid, pod in list(remaining.items()):
            if uid in evicted:
                continue
            eviction = k8s.V1Eviction(
                metadata=k8s.V1ObjectMeta(name=pod.metadata.name, namespace=pod.metadata.namespace)
            )
            try:
                core.create_namespaced_pod_eviction(pod.metadata.name, pod.metadata.namespace, eviction)
            except ApiException as error:
                if error.status == 404:
                    remaining.pop(uid)
                    continue
                if error.status == 429:
                    refused[uid] = pod
                    continue
                raise
            evicted.add(uid)
            refused.pop(uid, None)
            on_event(f"evicted pod {pod.metadata.namespace}/{pod.metadata.name} from {node}")
        for uid in list(evicted & remaining.keys()):
            pod = remaining[uid]
            current: Any
            try:
                current = core.read_namespaced_pod(pod.metadata.name, pod.metadata.namespace)
            except ApiException as error:
                if error.status != 404:
                    raise
                current = None
            if current is None or current.metadata.uid != uid:
                remaining.pop(uid)
        if not remaining:
            break
        if time.monotonic() > deadline:
            core.patch_node(node, {"spec": {"unschedulable": False}})
            blockers = blocking_pdbs(policy, list(refused.values()))
            stuck = sorted(f"{p.metadata.namespace}/{p.metadata.name}" for p in remaining.values())
            if blockers:
                message = (
                    f"draining node {node} timed out after {timeout:.0f}s: eviction blocked by "
                    f"PodDisruptionBudget {', '.join(blockers)} (pods {', '.join(stuck)})"
                )
            else:
                message = f"draining node {node} timed out after {timeout:.0f}s: pods {', '.join(stuck)} still present"
            raise DrainTimeoutError(message, node=node, blocking_pdbs=blockers)
        time.sleep(EVICTION_RETRY_SECONDS if refused else POLL_SECONDS)
    on_event(f"drained node {node}")
