"""Health of the clusters an upgrade stage touched, read before the next stage's approval gate.

Per cluster: API server and node versions as the update asked for, nodes Ready and schedulable, workloads
available at their desired count, no pod restarting more than the spec allows since the stage began,
PodDisruptionBudgets respected, Azure Service Operator and its objects Ready (once bootstrapped). The
judgement is pure (plain dicts in, rows out) so it is tested without a cluster; one task reads a cluster and
judges it, repeating failed checks for the spec's settle time. The auto-approve decision is pure too.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal, TypedDict

from kubernetes import client as kube_client

from tasks.aks import NO_KUBERNETES_CODE, admin_kubeconfig, cluster_version, read_cluster, version_matches
from tasks.clients import kubernetes_api_client, load_azure_clients
from tasks.gitops.health import aso_health, workload_health
from tasks.retry import AzureOperationError, azure_task
from tasks.service_operator import is_bootstrapped, service_operator_health
from tasks.spec import ClusterSpec, FleetSpec, UpgradeHealthSpec, UpgradeType
from tasks.update_runs import RunView

IMAGE_LABEL = "kubernetes.azure.com/node-image-version"
POOL_LABEL = "kubernetes.azure.com/agentpool"
RETRY_SECONDS = 3.0
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet")

Result = Literal["passed", "failed", "skipped"]

# The event a staged-upgrade run emits as it pauses at a gate, about the run and related to its fleet; the
# approvers' automation (console/automations.py) fires on it and sends its payload (health, link) on.
WAITING_EVENT = "fleetflow.approval.waiting"


class HealthRow(TypedDict):
    """One health check of one cluster; a failure names the object and the reason."""

    cluster: str
    check: str
    object: str
    result: Result
    detail: str


def _row(cluster: str, check: str, obj: str, passed: bool, detail: str) -> HealthRow:
    return HealthRow(cluster=cluster, check=check, object=obj, result="passed" if passed else "failed", detail=detail)


def _name(item: Mapping[str, Any]) -> str:
    metadata = item.get("metadata") or {}
    namespace = metadata.get("namespace")
    return f"{namespace}/{metadata.get('name', '?')}" if namespace else str(metadata.get("name", "?"))


def _summary_or_failures(cluster: str, check: str, total: int, noun: str,
                         failures: list[tuple[str, str]]) -> list[HealthRow]:
    """One passing row for the whole check, or one failing row per object."""
    if not failures:
        return [_row(cluster, check, f"{total} {noun}", True, f"all {total} healthy")]
    return [_row(cluster, check, obj, False, reason) for obj, reason in failures]


# --- the judgement (pure) ------------------------------------------------------------------------------


def version_rows(cluster: str, upgrade_type: UpgradeType, target: str | None, arm_version: str | None,
                 server_version: str | None, pool_images: Mapping[str, str],
                 nodes: Sequence[Mapping[str, Any]]) -> list[HealthRow]:
    """API server at the version the update asked for (the unchanged one for NodeImageOnly); every node on the
    image Azure reports for its pool; for Full, every kubelet at the target version too."""
    wanted = target if upgrade_type != "NodeImageOnly" and target else arm_version
    rows = [_row(cluster, "API server version", "kube-apiserver", bool(wanted) and version_matches(
        str(wanted), server_version), f"{server_version or '-'} (expected {wanted or '?'})")]
    image_failures: list[tuple[str, str]] = []
    kubelet_failures: list[tuple[str, str]] = []
    for node in nodes:
        labels = (node.get("metadata") or {}).get("labels") or {}
        pool, image = labels.get(POOL_LABEL), labels.get(IMAGE_LABEL)
        expected = pool_images.get(pool or "")
        if expected and image != expected:
            image_failures.append((f"node {_name(node)}", f"runs image {image or '-'}; pool {pool} is at {expected}"))
        kubelet = ((node.get("status") or {}).get("nodeInfo") or {}).get("kubeletVersion")
        if upgrade_type == "Full" and target and not version_matches(target, kubelet):
            kubelet_failures.append((f"node {_name(node)}", f"kubelet {kubelet or '-'} (expected {target})"))
    rows += _summary_or_failures(cluster, "node images", len(nodes), "nodes", image_failures)
    if upgrade_type == "Full":
        rows += _summary_or_failures(cluster, "kubelet version", len(nodes), "nodes", kubelet_failures)
    return rows


def node_rows(cluster: str, nodes: Sequence[Mapping[str, Any]]) -> list[HealthRow]:
    """Every node Ready and schedulable."""
    if not nodes:
        return [_row(cluster, "nodes Ready and schedulable", "nodes", False, "the cluster has no nodes")]
    failures = []
    for node in nodes:
        conditions = {c.get("type"): c for c in (node.get("status") or {}).get("conditions") or []}
        ready = conditions.get("Ready") or {}
        problems = []
        if ready.get("status") != "True":
            problems.append(f"not Ready ({ready.get('reason') or 'no Ready condition'}"
                            f"{': ' + ready['message'] if ready.get('message') else ''})")
        if (node.get("spec") or {}).get("unschedulable"):
            problems.append("cordoned (spec.unschedulable)")
        if problems:
            failures.append((f"node {_name(node)}", "; ".join(problems)))
    return _summary_or_failures(cluster, "nodes Ready and schedulable", len(nodes), "nodes", failures)


def workload_rows(cluster: str, workloads: Sequence[Mapping[str, Any]]) -> list[HealthRow]:
    """Every Deployment, StatefulSet and DaemonSet available at its desired count."""
    failures = []
    for workload in workloads:
        health = workload_health(dict(workload))
        if not health.ready:
            failures.append((f"{workload.get('kind')} {_name(workload)}", f"{health.state}: {health.reason}"))
    return _summary_or_failures(cluster, "workloads available", len(workloads), "workloads", failures)


def pod_restarts(pod: Mapping[str, Any]) -> int:
    """Container restarts of a pod (init containers included)."""
    status = pod.get("status") or {}
    return sum(int(c.get("restartCount") or 0) for key in ("containerStatuses", "initContainerStatuses")
               for c in status.get(key) or [])


def restart_baseline(pods: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """Restarts per pod uid, taken when a stage begins; later counts are measured from it."""
    return {str((pod.get("metadata") or {}).get("uid")): pod_restarts(pod) for pod in pods}


def restart_rows(cluster: str, pods: Sequence[Mapping[str, Any]], baseline: Mapping[str, int],
                 max_restarts: int) -> list[HealthRow]:
    """No pod restarted more than `max_restarts` times since the stage began (pods new since then: all restarts)."""
    failures = []
    for pod in pods:
        since = pod_restarts(pod) - baseline.get(str((pod.get("metadata") or {}).get("uid")), 0)
        if since > max_restarts:
            failures.append((f"pod {_name(pod)}", f"restarted {since} times since the stage began "
                             f"(threshold {max_restarts})"))
    return _summary_or_failures(cluster, "pod restarts", len(pods), "pods", failures)


def pdb_rows(cluster: str, budgets: Sequence[Mapping[str, Any]]) -> list[HealthRow]:
    """Every PodDisruptionBudget respected: currentHealthy >= desiredHealthy."""
    failures = []
    for budget in budgets:
        status = budget.get("status") or {}
        current, desired = int(status.get("currentHealthy") or 0), int(status.get("desiredHealthy") or 0)
        if current < desired:
            failures.append((f"PodDisruptionBudget {_name(budget)}", f"currentHealthy {current} < desiredHealthy "
                             f"{desired} (disruptionsAllowed {status.get('disruptionsAllowed', 0)})"))
    return _summary_or_failures(cluster, "PodDisruptionBudgets respected", len(budgets), "budgets", failures)


def aso_object_rows(cluster: str, objects: Sequence[Mapping[str, Any]]) -> list[HealthRow]:
    """Every Azure Service Operator object Ready at its current generation."""
    failures = []
    for item in objects:
        health = aso_health(dict(item))
        if not health.ready:
            failures.append((f"{item.get('kind')} {_name(item)}", f"{health.state}: {health.reason}"))
    return _summary_or_failures(cluster, "ASO objects Ready", len(objects), "objects", failures)


def all_passed(rows: list[HealthRow]) -> bool:
    """True when there is evidence and every check passed (a skipped check is no evidence)."""
    return bool(rows) and all(row["result"] == "passed" for row in rows)


def auto_approval(policy: UpgradeHealthSpec, upgrade_type: UpgradeType, stage: str | None,
                  rows: list[HealthRow]) -> tuple[bool, str]:
    """Whether the auto-approve policy completes the gate, and why (or why not), for the report."""
    if upgrade_type not in policy.auto_approve:
        listed = ", ".join(policy.auto_approve) or "none"
        return False, (f"the auto-approve policy does not apply: upgrade type {upgrade_type} is not in "
                       f"upgrade_health.auto_approve ({listed}); a human approves")
    failed = [row for row in rows if row["result"] == "failed"]
    skipped = [row for row in rows if row["result"] == "skipped"]
    if failed or skipped or not rows:
        why = (f"{len(failed)} check(s) failed" if failed else f"{len(skipped)} check(s) could not run"
               if skipped else "no cluster was checked")
        return False, (f"the auto-approve policy for {upgrade_type} did not approve: {why} on stage "
                       f"`{stage}`; a human approves")
    clusters = sorted({row["cluster"] for row in rows})
    return True, (f"approved by the auto-approve policy: upgrade type {upgrade_type} is listed in "
                  f"upgrade_health.auto_approve and all {len(rows)} health checks of stage `{stage}` passed on "
                  f"{', '.join(clusters)}")


def health_counts(rows: list[HealthRow]) -> dict[str, int]:
    """Rows per result."""
    return {result: sum(1 for row in rows if row["result"] == result) for result in ("passed", "failed", "skipped")}


def health_summary(stage: str | None, rows: list[HealthRow], limit: int = 8) -> str:
    """A few lines for a notification: counts, then the first failures (object and reason)."""
    counts = health_counts(rows)
    clusters = len({row["cluster"] for row in rows})
    head = (f"Health of stage {stage} ({clusters} cluster(s)): {counts['passed']} passed, {counts['failed']} "
            f"failed, {counts['skipped']} skipped")
    problems = [row for row in rows if row["result"] != "passed"]
    lines = [head, *(f"- {row['cluster']}: {row['check']}: {row['object']}: {row['detail']}"
                     for row in problems[:limit])]
    if len(problems) > limit:
        lines.append(f"- ... and {len(problems) - limit} more (see the approval report)")
    return "\n".join(lines)


def health_report(stage: str | None, rows: list[HealthRow]) -> str:
    """The markdown section of the approval report: failures first (object and reason), then what passed."""
    counts = health_counts(rows)
    verdict = ("all checks passed" if all_passed(rows) else
               f"**{counts['failed']} failed**, {counts['skipped']} skipped" if rows else "no cluster was checked")
    lines = [f"### Health of the clusters stage `{stage}` upgraded: {verdict}", "",
             "| cluster | check | object | result | detail |", "|---|---|---|---|---|"]
    order = {"failed": 0, "skipped": 1, "passed": 2}
    for row in sorted(rows, key=lambda item: (order[item["result"]], item["cluster"], item["check"])):
        detail = row["detail"].replace("|", "\\|").replace("\n", " ")
        lines.append(f"| {row['cluster']} | {row['check']} | {row['object']} | {row['result']} | {detail} |")
    return "\n".join(lines)


def fleet_resource_id(spec: FleetSpec) -> str:
    """The fleet as an event resource id (events about a fleet's runs name it as a related resource)."""
    return f"fleetflow.fleet.{spec.resource_group_name}/{spec.name}"


def stage_clusters(spec: FleetSpec, view: RunView, stage: str | None) -> list[ClusterSpec]:
    """The spec's clusters whose members the update run placed in `stage`."""
    members = {member.member.lower() for member in view.members if member.stage == stage}
    ids = {(member.cluster_id or "").lower().rstrip("/").rsplit("/", 1)[-1]
           for member in view.members if member.stage == stage}
    return [cluster for cluster in spec.clusters()
            if cluster.member_name.lower() in members or cluster.name.lower() in ids]


# --- reading a cluster -----------------------------------------------------------------------------------


def _plain(api: kube_client.ApiClient, items: list[Any], kind: str | None = None) -> list[dict[str, Any]]:
    plain = [api.sanitize_for_serialization(item) for item in items]
    if kind:
        for item in plain:
            item["kind"] = kind
    return plain


def _aso_objects(api: kube_client.ApiClient) -> list[dict[str, Any]]:
    """Every object of every Azure Service Operator CRD installed on the cluster."""
    crds = kube_client.ApiextensionsV1Api(api).list_custom_resource_definition(_request_timeout=30).items
    custom = kube_client.CustomObjectsApi(api)
    objects: list[dict[str, Any]] = []
    for crd in crds:
        if not crd.spec.group.endswith(".azure.com"):
            continue
        version = next((v.name for v in crd.spec.versions if v.storage), crd.spec.versions[0].name)
        listed: Any = custom.list_cluster_custom_object(crd.spec.group, version, crd.spec.names.plural,
                                                        _request_timeout=30)
        for item in listed.get("items") or []:
            item.setdefault("kind", crd.spec.names.kind)
            objects.append(item)
    return objects


def read_pods(api: kube_client.ApiClient) -> list[dict[str, Any]]:
    """Every pod of the cluster, as plain dicts."""
    return _plain(api, kube_client.CoreV1Api(api).list_pod_for_all_namespaces(_request_timeout=60).items)


def judge_cluster(api: kube_client.ApiClient, spec: FleetSpec, cluster: ClusterSpec, upgrade_type: UpgradeType,
                  target: str | None, arm_version: str | None, pool_images: Mapping[str, str],
                  baseline: Mapping[str, int]) -> list[HealthRow]:
    """Read the cluster through its API server and judge every check."""
    name = cluster.name
    core, apps = kube_client.CoreV1Api(api), kube_client.AppsV1Api(api)
    server = kube_client.VersionApi(api).get_code(_request_timeout=30).git_version
    nodes = _plain(api, core.list_node(_request_timeout=30).items)
    workloads = [*_plain(api, apps.list_deployment_for_all_namespaces(_request_timeout=30).items, "Deployment"),
                 *_plain(api, apps.list_stateful_set_for_all_namespaces(_request_timeout=30).items, "StatefulSet"),
                 *_plain(api, apps.list_daemon_set_for_all_namespaces(_request_timeout=30).items, "DaemonSet")]
    budgets = _plain(api, kube_client.PolicyV1Api(api).list_pod_disruption_budget_for_all_namespaces(
        _request_timeout=30).items)
    rows = [*version_rows(name, upgrade_type, target, arm_version, server, pool_images, nodes),
            *node_rows(name, nodes), *workload_rows(name, workloads),
            *restart_rows(name, read_pods(api), baseline, spec.upgrade_health.max_pod_restarts),
            *pdb_rows(name, budgets)]
    if not is_bootstrapped(api, spec):
        return [*rows, HealthRow(cluster=name, check="Azure Service Operator", object="-", result="passed",
                                 detail="not bootstrapped: nothing to check")]
    for check, pending in service_operator_health(api, spec, cluster).items():
        rows.append(_row(name, check, pending or "all", not pending, pending or "ready"))
    return [*rows, *aso_object_rows(name, _aso_objects(api))]


def _kubeconfig_or_row(spec: FleetSpec, cluster: ClusterSpec, credentials_block: str) -> tuple[str | None,
                                                                                                 HealthRow | None]:
    try:
        return admin_kubeconfig(load_azure_clients(credentials_block), spec, cluster), None
    except AzureOperationError as error:
        if error.code == NO_KUBERNETES_CODE:
            return None, HealthRow(cluster=cluster.name, check="reachable", object="kube-apiserver",
                                   result="skipped", detail=error.azure_message)
        raise


@azure_task(task_run_name="restart-baseline-{cluster.name}")
def read_restart_baseline(spec: FleetSpec, cluster: ClusterSpec, credentials_block: str) -> dict[str, int]:
    """Restarts per pod as a stage begins (empty for a cluster without an API server or one not answering)."""
    kubeconfig, _ = _kubeconfig_or_row(spec, cluster, credentials_block)
    if kubeconfig is None:
        return {}
    try:
        with kubernetes_api_client(kubeconfig) as api:
            return restart_baseline(read_pods(api))
    except Exception:  # an unreachable cluster is reported by the health check itself
        return {}


@azure_task(task_run_name="upgrade-health-{cluster.name}")
def check_upgraded_cluster(spec: FleetSpec, cluster: ClusterSpec, upgrade_type: UpgradeType, target: str | None,
                           baseline: dict[str, int], credentials_block: str) -> list[HealthRow]:
    """Every health check of one upgraded cluster, repeated for upgrade_health.settle_seconds until they pass."""
    clients = load_azure_clients(credentials_block)
    kubeconfig, skipped = _kubeconfig_or_row(spec, cluster, credentials_block)
    if kubeconfig is None:
        assert skipped is not None
        return [skipped]
    deadline = time.monotonic() + spec.upgrade_health.settle_seconds
    while True:
        managed = read_cluster(clients, spec, cluster)
        props = managed.properties if managed is not None else None
        pool_images = {str(pool.name): str(pool.node_image_version)
                       for pool in (props.agent_pool_profiles if props is not None else None) or []
                       if pool.node_image_version}
        try:
            with kubernetes_api_client(kubeconfig) as api:
                rows = judge_cluster(api, spec, cluster, upgrade_type, target, cluster_version(managed),
                                     pool_images, baseline)
        except Exception as error:  # any failure to talk to the API server is a failed check, named
            rows = [_row(cluster.name, "reachable", "kube-apiserver", False, f"{type(error).__name__}: {error}")]
        if all_passed(rows) or time.monotonic() >= deadline:
            return rows
        time.sleep(RETRY_SECONDS)
