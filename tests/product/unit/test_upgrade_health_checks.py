"""Every health row between upgrade stages, whole (cluster, check, object, result, detail): the pure judgements on
plain objects, the clusters a stage touched, the cluster read through an in-memory Kubernetes API (what is asked,
with which timeout, and the rows it becomes), and a cluster whose API server Azure does not run."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from kubernetes import client as kube_client
from kubernetes.client.exceptions import ApiException

from tasks import upgrade_health
from tasks.aks import NO_KUBERNETES_CODE
from tasks.retry import AzureOperationError
from tasks.spec import ClusterSpec, FleetSpec, UpgradeHealthSpec, load_spec
from tasks.update_runs import MemberProgress, RunView
from tasks.upgrade_health import (
    HealthRow,
    aso_object_rows,
    auto_approval,
    health_report,
    health_summary,
    judge_cluster,
    node_rows,
    pdb_rows,
    pod_restarts,
    read_pods,
    restart_baseline,
    restart_rows,
    stage_clusters,
    version_rows,
    workload_rows,
)
from tests.paths import REPO


def row(cluster: str, check: str, obj: str, result: str, detail: str) -> HealthRow:
    return HealthRow(cluster=cluster, check=check, object=obj, result=result, detail=detail)  # type: ignore[typeddict-item]


def node(name: str, *, pool: str | None = "nodepool1", image: str | None = "img-2", kubelet: str | None = "v1.37.2",
         ready: dict[str, Any] | None = None, unschedulable: bool = False) -> dict[str, Any]:
    labels = {}
    if pool is not None:
        labels["kubernetes.azure.com/agentpool"] = pool
    if image is not None:
        labels["kubernetes.azure.com/node-image-version"] = image
    conditions = [] if ready is None else [{"type": "MemoryPressure", "status": "False"}, {"type": "Ready", **ready}]
    return {"metadata": {"name": name, "labels": labels}, "spec": {"unschedulable": unschedulable},
            "status": {"conditions": conditions, "nodeInfo": {"kubeletVersion": kubelet} if kubelet else {}}}


READY = {"status": "True", "reason": "KubeletReady"}


# --- versions ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("upgrade_type", "target", "arm", "server", "pools", "nodes", "rows"), [
    # Full: API server at the target, each node on its pool's image, each kubelet at the target.
    ("Full", "1.37", "1.37.2", "v1.37.2", {"nodepool1": "img-2"}, [node("n1"), node("n2")], [
        row("c1", "API server version", "kube-apiserver", "passed", "v1.37.2 (expected 1.37)"),
        row("c1", "node images", "2 nodes", "passed", "all 2 healthy"),
        row("c1", "kubelet version", "2 nodes", "passed", "all 2 healthy")]),
    ("Full", "1.37.2", "1.37.2", "v1.36.3", {"nodepool1": "img-2", "system": "img-9"},
     [node("n1", image="img-1", kubelet="v1.36.3"), node("n2", pool="system", image=None, kubelet=None),
      node("n3", pool=None, image="img-0")], [
        row("c1", "API server version", "kube-apiserver", "failed", "v1.36.3 (expected 1.37.2)"),
        row("c1", "node images", "node n1", "failed", "runs image img-1; pool nodepool1 is at img-2"),
        row("c1", "node images", "node n2", "failed", "runs image -; pool system is at img-9"),
        row("c1", "kubelet version", "node n1", "failed", "kubelet v1.36.3 (expected 1.37.2)"),
        row("c1", "kubelet version", "node n2", "failed", "kubelet - (expected 1.37.2)")]),
    # No server version read, no target nor Azure version to expect: both shown as unknown.
    ("Full", None, None, None, {}, [], [
        row("c1", "API server version", "kube-apiserver", "failed", "- (expected ?)"),
        row("c1", "node images", "0 nodes", "passed", "all 0 healthy"),
        row("c1", "kubelet version", "0 nodes", "passed", "all 0 healthy")]),
    # ControlPlaneOnly: the target for the API server; kubelets are not checked.
    ("ControlPlaneOnly", "1.37", "1.36.3", "v1.37.1", {"nodepool1": "img-2"}, [node("n1", kubelet="v1.36.3")], [
        row("c1", "API server version", "kube-apiserver", "passed", "v1.37.1 (expected 1.37)"),
        row("c1", "node images", "1 nodes", "passed", "all 1 healthy")]),
    # NodeImageOnly: the version Azure reports, whatever target the request carried.
    ("NodeImageOnly", "1.37", "1.36.3", "v1.36.3", {}, [node("n1", kubelet="v1.30.0")], [
        row("c1", "API server version", "kube-apiserver", "passed", "v1.36.3 (expected 1.36.3)"),
        row("c1", "node images", "1 nodes", "passed", "all 1 healthy")]),
    ("NodeImageOnly", None, "1.36.3", "v1.37.2", {"nodepool1": "img-3"}, [node("n1")], [
        row("c1", "API server version", "kube-apiserver", "failed", "v1.37.2 (expected 1.36.3)"),
        row("c1", "node images", "node n1", "failed", "runs image img-2; pool nodepool1 is at img-3")]),
])
def test_version_rows(upgrade_type, target, arm, server, pools, nodes, rows):
    assert version_rows("c1", upgrade_type, target, arm, server, pools, nodes) == rows


# --- nodes -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("nodes", "rows"), [
    ([], [row("c1", "nodes Ready and schedulable", "nodes", "failed", "the cluster has no nodes")]),
    ([node("a", ready=READY), node("b", ready=READY)],
     [row("c1", "nodes Ready and schedulable", "2 nodes", "passed", "all 2 healthy")]),
    ([node("a", ready=READY),
      node("b", ready={"status": "False", "reason": "KubeletNotReady", "message": "PLEG is not healthy"}),
      node("c", ready={"status": "Unknown"}),
      node("d", ready=None),
      node("e", ready=READY, unschedulable=True),
      node("f", ready={"status": "False", "reason": "NetworkUnavailable"}, unschedulable=True)], [
        row("c1", "nodes Ready and schedulable", "node b", "failed",
            "not Ready (KubeletNotReady: PLEG is not healthy)"),
        row("c1", "nodes Ready and schedulable", "node c", "failed", "not Ready (no Ready condition)"),
        row("c1", "nodes Ready and schedulable", "node d", "failed", "not Ready (no Ready condition)"),
        row("c1", "nodes Ready and schedulable", "node e", "failed", "cordoned (spec.unschedulable)"),
        row("c1", "nodes Ready and schedulable", "node f", "failed",
            "not Ready (NetworkUnavailable); cordoned (spec.unschedulable)")]),
])
def test_node_rows(nodes, rows):
    assert node_rows("c1", nodes) == rows


# --- workloads, restarts, budgets, ASO objects ---------------------------------------------------------------------


def workload(kind: str, namespace: str | None, name: str | None, spec: dict[str, Any],
             status: dict[str, Any]) -> dict[str, Any]:
    metadata: dict[str, Any] = {}
    if namespace:
        metadata["namespace"] = namespace
    if name:
        metadata["name"] = name
    return {"kind": kind, "metadata": metadata, "spec": spec, "status": status}


@pytest.mark.parametrize(("workloads", "rows"), [
    ([], [row("c1", "workloads available", "0 workloads", "passed", "all 0 healthy")]),
    ([workload("Deployment", "app", "web", {"replicas": 2}, {"availableReplicas": 2, "updatedReplicas": 2}),
      workload("DaemonSet", "kube-system", "agent", {}, {"desiredNumberScheduled": 3, "numberAvailable": 3})],
     [row("c1", "workloads available", "2 workloads", "passed", "all 2 healthy")]),
    ([workload("Deployment", "app", "web", {"replicas": 2}, {"availableReplicas": 0, "updatedReplicas": 2}),
      workload("StatefulSet", "db", "pg", {"replicas": 3}, {"readyReplicas": 3, "updatedReplicas": 1}),
      workload("DaemonSet", "kube-system", "agent", {}, {"desiredNumberScheduled": 3, "numberAvailable": 2}),
      workload("Deployment", None, "cluster-wide", {"replicas": 1}, {"updatedReplicas": 1}),
      workload("Deployment", "app", None, {"replicas": 1}, {"updatedReplicas": 1}),
      workload("Deployment", None, None, {"replicas": 1}, {"updatedReplicas": 1})], [
        row("c1", "workloads available", "Deployment app/web", "failed", "Progressing: 0/2 available"),
        row("c1", "workloads available", "StatefulSet db/pg", "failed", "Progressing: 1/3 updated"),
        row("c1", "workloads available", "DaemonSet kube-system/agent", "failed", "Progressing: 2/3 available"),
        row("c1", "workloads available", "Deployment cluster-wide", "failed", "Progressing: 0/1 available"),
        row("c1", "workloads available", "Deployment app/?", "failed", "Progressing: 0/1 available"),
        row("c1", "workloads available", "Deployment ?", "failed", "Progressing: 0/1 available")]),
])
def test_workload_rows(workloads, rows):
    assert workload_rows("c1", workloads) == rows


def pod(uid: str, *containers: int | None, init: tuple[int, ...] = (), name: str | None = None,
        namespace: str | None = "app") -> dict[str, Any]:
    metadata: dict[str, Any] = {"uid": uid, "name": name or f"p-{uid}"}
    if namespace:
        metadata["namespace"] = namespace
    status: dict[str, Any] = {"containerStatuses": [{"name": f"c{i}", "restartCount": count}
                                                    for i, count in enumerate(containers)]}
    if init:
        status["initContainerStatuses"] = [{"name": f"i{i}", "restartCount": count} for i, count in enumerate(init)]
    return {"metadata": metadata, "status": status}


@pytest.mark.parametrize(("item", "restarts"), [
    (pod("a"), 0), (pod("a", 0, 0), 0), (pod("a", None, 2), 2), (pod("a", 1, 2), 3), (pod("a", 0, init=(0,)), 0),
    (pod("a", 1, init=(4, 0)), 5), ({"metadata": {"uid": "x"}}, 0), ({"status": {"containerStatuses": None}}, 0),
])
def test_restarts_of_a_pod_count_every_container_and_init_container(item, restarts):
    assert pod_restarts(item) == restarts


def test_the_baseline_is_the_restarts_per_pod_uid():
    assert restart_baseline([pod("a", 0, 0), pod("b", 2, init=(1,)), {"status": {}}]) == {"a": 0, "b": 3, "None": 0}


@pytest.mark.parametrize(("pods", "baseline", "limit", "rows"), [
    ([], {}, 3, [row("c1", "pod restarts", "0 pods", "passed", "all 0 healthy")]),
    # At the threshold passes; one over fails; restarts before the stage do not count; a new pod's all do.
    ([pod("old", 12), pod("edge", 3), pod("new", 4), pod("init", 0, init=(5,), name="job", namespace=None)],
     {"old": 10, "edge": 0, "init": 1}, 3, [
        row("c1", "pod restarts", "pod app/p-new", "failed", "restarted 4 times since the stage began (threshold 3)"),
        row("c1", "pod restarts", "pod job", "failed", "restarted 4 times since the stage began (threshold 3)")]),
    ([pod("a", 1), pod("b", 0)], {}, 0,
     [row("c1", "pod restarts", "pod app/p-a", "failed", "restarted 1 times since the stage began (threshold 0)")]),
    ([pod("a", 3), pod("b", 0)], {"a": 3}, 0, [row("c1", "pod restarts", "2 pods", "passed", "all 2 healthy")]),
])
def test_restart_rows(pods, baseline, limit, rows):
    assert restart_rows("c1", pods, baseline, limit) == rows


def budget(name: str, **status: int) -> dict[str, Any]:
    return {"metadata": {"namespace": "app", "name": name}, "status": status}


@pytest.mark.parametrize(("budgets", "rows"), [
    ([], [row("c1", "PodDisruptionBudgets respected", "0 budgets", "passed", "all 0 healthy")]),
    ([budget("web", currentHealthy=2, desiredHealthy=2), budget("idle"), budget("spare", currentHealthy=1)],
     [row("c1", "PodDisruptionBudgets respected", "3 budgets", "passed", "all 3 healthy")]),
    ([budget("web", currentHealthy=1, desiredHealthy=2, disruptionsAllowed=0),
      budget("api", desiredHealthy=1), budget("db", currentHealthy=0, desiredHealthy=3, disruptionsAllowed=2)], [
        row("c1", "PodDisruptionBudgets respected", "PodDisruptionBudget app/web", "failed",
            "currentHealthy 1 < desiredHealthy 2 (disruptionsAllowed 0)"),
        row("c1", "PodDisruptionBudgets respected", "PodDisruptionBudget app/api", "failed",
            "currentHealthy 0 < desiredHealthy 1 (disruptionsAllowed 0)"),
        row("c1", "PodDisruptionBudgets respected", "PodDisruptionBudget app/db", "failed",
            "currentHealthy 0 < desiredHealthy 3 (disruptionsAllowed 2)")]),
])
def test_pdb_rows(budgets, rows):
    assert pdb_rows("c1", budgets) == rows


def aso(kind: str, name: str, ready: dict[str, Any] | None, generation: int = 1) -> dict[str, Any]:
    conditions = [] if ready is None else [{"type": "Ready", **ready}]
    return {"kind": kind, "metadata": {"namespace": "infra", "name": name, "generation": generation},
            "status": {"conditions": conditions}}


@pytest.mark.parametrize(("objects", "rows"), [
    ([], [row("c1", "ASO objects Ready", "0 objects", "passed", "all 0 healthy")]),
    ([aso("Vault", "kv", {"status": "True", "observedGeneration": 1})],
     [row("c1", "ASO objects Ready", "1 objects", "passed", "all 1 healthy")]),
    ([aso("Vault", "kv", {"status": "True", "observedGeneration": 1}),
      aso("Registry", "acr", {"status": "False", "reason": "Conflict", "message": "name taken"}),
      aso("StorageAccount", "st", None),
      aso("ResourceGroup", "rg", {"status": "True", "observedGeneration": 1}, generation=2)], [
        row("c1", "ASO objects Ready", "Registry infra/acr", "failed", "NotReady: Conflict: name taken"),
        row("c1", "ASO objects Ready", "StorageAccount infra/st", "failed",
            "Pending: no Ready condition yet (is Azure Service Operator running?)"),
        row("c1", "ASO objects Ready", "ResourceGroup infra/rg", "failed",
            "Reconciling: Ready for generation 1, object is at 2")]),
])
def test_aso_object_rows(objects, rows):
    assert aso_object_rows("c1", objects) == rows


# --- the auto-approve policy, the summary and the report -----------------------------------------------------------

GREEN = [row("c1", "nodes Ready and schedulable", "2 nodes", "passed", "all 2 healthy"),
         row("c2", "pod restarts", "5 pods", "passed", "all 5 healthy"),
         row("c1", "pod restarts", "3 pods", "passed", "all 3 healthy")]
FAILED = row("c2", "workloads available", "Deployment app/web", "failed", "Progressing: 0/2 available")
SKIPPED = row("c1", "reachable", "kube-apiserver", "skipped", "no API server")


@pytest.mark.parametrize(("listed", "upgrade_type", "rows", "decision"), [
    (["NodeImageOnly"], "NodeImageOnly", GREEN, (True, (
        "approved by the auto-approve policy: upgrade type NodeImageOnly is listed in upgrade_health.auto_approve "
        "and all 3 health checks of stage `stage1` passed on c1, c2"))),
    (["NodeImageOnly", "Full"], "Full", GREEN[:1], (True, (
        "approved by the auto-approve policy: upgrade type Full is listed in upgrade_health.auto_approve and all 1 "
        "health checks of stage `stage1` passed on c1"))),
    (["NodeImageOnly"], "NodeImageOnly", [*GREEN, FAILED, FAILED, SKIPPED], (False, (
        "the auto-approve policy for NodeImageOnly did not approve: 2 check(s) failed on stage `stage1`; "
        "a human approves"))),
    (["NodeImageOnly"], "NodeImageOnly", [*GREEN, SKIPPED], (False, (
        "the auto-approve policy for NodeImageOnly did not approve: 1 check(s) could not run on stage `stage1`; "
        "a human approves"))),
    (["NodeImageOnly"], "NodeImageOnly", [], (False, (
        "the auto-approve policy for NodeImageOnly did not approve: no cluster was checked on stage `stage1`; "
        "a human approves"))),
    (["NodeImageOnly", "ControlPlaneOnly"], "Full", GREEN, (False, (
        "the auto-approve policy does not apply: upgrade type Full is not in upgrade_health.auto_approve "
        "(NodeImageOnly, ControlPlaneOnly); a human approves"))),
    ([], "NodeImageOnly", GREEN, (False, (
        "the auto-approve policy does not apply: upgrade type NodeImageOnly is not in upgrade_health.auto_approve "
        "(none); a human approves"))),
])
def test_auto_approval_decision_and_reason(listed, upgrade_type, rows, decision):
    assert auto_approval(UpgradeHealthSpec(auto_approve=listed), upgrade_type, "stage1", rows) == decision


def problems(count: int) -> list[HealthRow]:
    return [row(f"c{i}", "pod restarts", f"pod app/p{i}", "failed", f"restarted {i} times") for i in range(count)]


@pytest.mark.parametrize(("rows", "limit", "lines"), [
    ([], 8, ["Health of stage stage1 (0 cluster(s)): 0 passed, 0 failed, 0 skipped"]),
    ([*GREEN, SKIPPED, FAILED], 8, ["Health of stage stage1 (2 cluster(s)): 3 passed, 1 failed, 1 skipped",
                                    "- c1: reachable: kube-apiserver: no API server",
                                    "- c2: workloads available: Deployment app/web: Progressing: 0/2 available"]),
    (problems(8), 8, ["Health of stage stage1 (8 cluster(s)): 0 passed, 8 failed, 0 skipped",
                      *(f"- c{i}: pod restarts: pod app/p{i}: restarted {i} times" for i in range(8))]),
    (problems(9), 8, ["Health of stage stage1 (9 cluster(s)): 0 passed, 9 failed, 0 skipped",
                      *(f"- c{i}: pod restarts: pod app/p{i}: restarted {i} times" for i in range(8)),
                      "- ... and 1 more (see the approval report)"]),
    (problems(5), 2, ["Health of stage stage1 (5 cluster(s)): 0 passed, 5 failed, 0 skipped",
                      "- c0: pod restarts: pod app/p0: restarted 0 times",
                      "- c1: pod restarts: pod app/p1: restarted 1 times",
                      "- ... and 3 more (see the approval report)"]),
])
def test_health_summary(rows, limit, lines):
    if limit == 8:
        assert health_summary("stage1", rows).splitlines() == lines
    assert health_summary("stage1", rows, limit).splitlines() == lines


HEADER = ["", "| cluster | check | object | result | detail |", "|---|---|---|---|---|"]


@pytest.mark.parametrize(("rows", "lines"), [
    ([], ["### Health of the clusters stage `stage1` upgraded: no cluster was checked", *HEADER]),
    (GREEN, ["### Health of the clusters stage `stage1` upgraded: all checks passed", *HEADER,
             "| c1 | nodes Ready and schedulable | 2 nodes | passed | all 2 healthy |",
             "| c1 | pod restarts | 3 pods | passed | all 3 healthy |",
             "| c2 | pod restarts | 5 pods | passed | all 5 healthy |"]),
    # Failed first, then skipped, then passed; within each by cluster, then check. Pipes and newlines escaped.
    ([*GREEN, row("c9", "reachable", "kube-apiserver", "skipped", "no API server"),
      row("c1", "reachable", "kube-apiserver", "skipped", "a | b\nc"), FAILED,
      row("c2", "nodes Ready and schedulable", "node n1", "failed", "cordoned")],
     ["### Health of the clusters stage `stage1` upgraded: **2 failed**, 2 skipped", *HEADER,
      "| c2 | nodes Ready and schedulable | node n1 | failed | cordoned |",
      "| c2 | workloads available | Deployment app/web | failed | Progressing: 0/2 available |",
      "| c1 | reachable | kube-apiserver | skipped | a \\| b c |",
      "| c9 | reachable | kube-apiserver | skipped | no API server |",
      "| c1 | nodes Ready and schedulable | 2 nodes | passed | all 2 healthy |",
      "| c1 | pod restarts | 3 pods | passed | all 3 healthy |",
      "| c2 | pod restarts | 5 pods | passed | all 5 healthy |"]),
    ([row("c2", "pod restarts", "4 pods", "passed", "all 4 healthy"), SKIPPED],
     ["### Health of the clusters stage `stage1` upgraded: **0 failed**, 1 skipped", *HEADER,
      "| c1 | reachable | kube-apiserver | skipped | no API server |",
      "| c2 | pod restarts | 4 pods | passed | all 4 healthy |"]),
])
def test_health_report(rows, lines):
    assert health_report("stage1", rows).split("\n") == lines


# --- the clusters a stage touched ----------------------------------------------------------------------------------

SPEC = load_spec(REPO / "fleet.yaml")
EAST, WEST = "aks-multicluster-fleet-eastus", "aks-multicluster-fleet-westus2"
CENTRAL = "aks-multicluster-fleet-centralus"


def member(stage: str, name: str, cluster_id: str | None) -> MemberProgress:
    return MemberProgress(stage=stage, group="g", member=name, cluster_id=cluster_id, state="Completed")


def cluster_id(name: str) -> str:
    return f"/subscriptions/s/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/{name}"


@pytest.mark.parametrize(("members", "stage", "clusters"), [
    # By member name, whatever its case.
    ([member("stage1", EAST.upper(), None), member("stage2", WEST, None)], "stage1", [EAST]),
    ([member("stage1", EAST, None), member("stage2", WEST, None), member("stage2", CENTRAL, None)], "stage2",
     [WEST, CENTRAL]),
    # By the cluster's resource id when the member has another name (case and a trailing slash ignored).
    ([member("stage1", "m-east", cluster_id(EAST).upper() + "/"), member("stage2", "m-west", cluster_id(WEST))],
     "stage1", [EAST]),
    ([member("stage1", "m-east", cluster_id(EAST)), member("stage2", "m-west", cluster_id(WEST) + "/")], "stage2",
     [WEST]),
    # Members of other stages, members of unknown clusters, and no stage at all.
    ([member("stage1", "m-east", cluster_id("other")), member("stage2", EAST, None)], "stage1", []),
    ([member("stage1", EAST, None)], None, []),
    ([], "stage1", []),
])
def test_stage_clusters(members, stage, clusters):
    view = RunView(name="run-1", run_id="id", state="Running", members=members)
    assert [cluster.name for cluster in stage_clusters(SPEC, view, stage)] == clusters


def test_a_member_without_a_cluster_id_matches_by_its_member_name_only():
    document = yaml.safe_load((REPO / "fleet.yaml").read_text())
    document["regions"][0].update(cluster_name="xxxx", member_name="member-east")
    spec = FleetSpec.model_validate(document)
    view = RunView(name="run-1", run_id="id", state="Running", members=[member("stage1", "elsewhere", None)])
    assert stage_clusters(spec, view, "stage1") == []
    view.members.append(member("stage1", "MEMBER-EAST", None))
    assert [cluster.name for cluster in stage_clusters(spec, view, "stage1")] == ["xxxx"]


# --- a cluster read through its API server ---------------------------------------------------------------------------


def crd(group: str, kind: str, plural: str, *versions: tuple[str, bool]) -> kube_client.V1CustomResourceDefinition:
    return kube_client.V1CustomResourceDefinition(
        metadata=kube_client.V1ObjectMeta(name=f"{plural}.{group}"),
        spec=kube_client.V1CustomResourceDefinitionSpec(
            group=group, scope="Namespaced",
            names=kube_client.V1CustomResourceDefinitionNames(kind=kind, plural=plural),
            versions=[kube_client.V1CustomResourceDefinitionVersion(name=name, served=True, storage=storage)
                      for name, storage in versions]))


class Cluster:
    """What one cluster's API server holds; every read is recorded with its timeout."""

    def __init__(self) -> None:
        self.version = "v1.37.2"
        self.nodes: list[Any] = [node("n1", ready=READY)]
        self.deployments: list[Any] = []
        self.statefulsets: list[Any] = []
        self.daemonsets: list[Any] = []
        self.budgets: list[Any] = []
        self.pods: list[Any] = []
        self.crds: list[Any] = []
        self.custom: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.bootstrapped = False
        self.operator: dict[str, str] = {}
        self.reads: list[tuple[str, Any]] = []

    def read(self, what: str, timeout: Any, items: list[Any]) -> Any:
        self.reads.append((what, timeout))
        return type("Listed", (), {"items": items})()


class _Api:
    clusters: dict[int, Cluster] = {}

    def __init__(self, api: kube_client.ApiClient) -> None:
        self.cluster = _Api.clusters[id(api)]


class _Version(_Api):
    def get_code(self, _request_timeout: Any = None) -> Any:
        self.cluster.reads.append(("version", _request_timeout))
        return kube_client.VersionInfo(git_version=self.cluster.version, build_date="", compiler="", git_commit="",
                                       git_tree_state="", go_version="", major="1", minor="37", platform="")


class _Core(_Api):
    def list_node(self, _request_timeout: Any = None) -> Any:
        return self.cluster.read("nodes", _request_timeout, self.cluster.nodes)

    def list_pod_for_all_namespaces(self, _request_timeout: Any = None) -> Any:
        return self.cluster.read("pods", _request_timeout, self.cluster.pods)


class _Apps(_Api):
    def list_deployment_for_all_namespaces(self, _request_timeout: Any = None) -> Any:
        return self.cluster.read("deployments", _request_timeout, self.cluster.deployments)

    def list_stateful_set_for_all_namespaces(self, _request_timeout: Any = None) -> Any:
        return self.cluster.read("statefulsets", _request_timeout, self.cluster.statefulsets)

    def list_daemon_set_for_all_namespaces(self, _request_timeout: Any = None) -> Any:
        return self.cluster.read("daemonsets", _request_timeout, self.cluster.daemonsets)


class _Policy(_Api):
    def list_pod_disruption_budget_for_all_namespaces(self, _request_timeout: Any = None) -> Any:
        return self.cluster.read("budgets", _request_timeout, self.cluster.budgets)


class _Extensions(_Api):
    def list_custom_resource_definition(self, _request_timeout: Any = None) -> Any:
        return self.cluster.read("crds", _request_timeout, self.cluster.crds)


class _Custom(_Api):
    def list_cluster_custom_object(self, group: str, version: str, plural: str, _request_timeout: Any = None) -> Any:
        self.cluster.reads.append((f"{plural}.{group}/{version}", _request_timeout))
        if (group, version, plural) not in self.cluster.custom:
            raise ApiException(status=404, reason="Not Found")
        return self.cluster.custom[(group, version, plural)]


@pytest.fixture
def cluster(monkeypatch: pytest.MonkeyPatch) -> tuple[kube_client.ApiClient, Cluster]:
    api, held = kube_client.ApiClient(), Cluster()
    monkeypatch.setattr(_Api, "clusters", {id(api): held})
    for name, fake in [("VersionApi", _Version), ("CoreV1Api", _Core), ("AppsV1Api", _Apps), ("PolicyV1Api", _Policy),
                       ("ApiextensionsV1Api", _Extensions), ("CustomObjectsApi", _Custom)]:
        monkeypatch.setattr(upgrade_health.kube_client, name, fake)

    def is_bootstrapped(client: kube_client.ApiClient, spec: FleetSpec) -> bool:
        assert spec is SPEC
        return _Api.clusters[id(client)].bootstrapped

    def service_operator_health(client: kube_client.ApiClient, spec: FleetSpec,
                                checked: ClusterSpec) -> dict[str, str]:
        assert spec is SPEC and checked is EAST_SPEC
        return _Api.clusters[id(client)].operator

    monkeypatch.setattr(upgrade_health, "is_bootstrapped", is_bootstrapped)
    monkeypatch.setattr(upgrade_health, "service_operator_health", service_operator_health)
    return api, held


EAST_SPEC = next(c for c in SPEC.clusters() if c.name == EAST)
C = EAST


def test_a_healthy_cluster_not_bootstrapped_reads_each_kind_once_within_its_timeout(cluster):
    api, held = cluster
    held.pods = [kube_client.V1Pod(metadata=kube_client.V1ObjectMeta(namespace="app", name="web-1", uid="u1"),
                                   status=kube_client.V1PodStatus(container_statuses=[kube_client.V1ContainerStatus(
                                       name="web", image="web:1", image_id="", ready=True, restart_count=5)]))]
    rows = judge_cluster(api, SPEC, EAST_SPEC, "Full", "1.37", "1.37.2", {"nodepool1": "img-2"}, {"u1": 2})
    assert rows == [
        row(C, "API server version", "kube-apiserver", "passed", "v1.37.2 (expected 1.37)"),
        row(C, "node images", "1 nodes", "passed", "all 1 healthy"),
        row(C, "kubelet version", "1 nodes", "passed", "all 1 healthy"),
        row(C, "nodes Ready and schedulable", "1 nodes", "passed", "all 1 healthy"),
        row(C, "workloads available", "0 workloads", "passed", "all 0 healthy"),
        row(C, "pod restarts", "1 pods", "passed", "all 1 healthy"),
        row(C, "PodDisruptionBudgets respected", "0 budgets", "passed", "all 0 healthy"),
        row(C, "Azure Service Operator", "-", "passed", "not bootstrapped: nothing to check")]
    assert sorted(held.reads) == sorted([("version", 30), ("nodes", 30), ("deployments", 30), ("statefulsets", 30),
                                         ("daemonsets", 30), ("budgets", 30), ("pods", 60)])


def test_every_check_of_a_cluster_names_what_failed(cluster):
    api, held = cluster
    held.version = "v1.36.3"
    held.nodes = [node("n1", ready=READY, image="img-1", kubelet="v1.36.3"), node("n2", ready=READY)]
    held.deployments = [{"metadata": {"namespace": "app", "name": "web"}, "spec": {"replicas": 2},
                         "status": {"availableReplicas": 1, "updatedReplicas": 2}}]
    held.statefulsets = [{"metadata": {"namespace": "db", "name": "pg"}, "spec": {"replicas": 1},
                          "status": {"readyReplicas": 0, "updatedReplicas": 1}}]
    held.daemonsets = [{"metadata": {"namespace": "kube-system", "name": "agent"}, "spec": {},
                        "status": {"desiredNumberScheduled": 2, "numberAvailable": 1}}]
    held.budgets = [budget("web", currentHealthy=1, desiredHealthy=2, disruptionsAllowed=0)]
    held.pods = [pod("u1", 9), pod("u2", 4)]
    baseline = {"u1": 2}
    rows = judge_cluster(api, SPEC, EAST_SPEC, "Full", "1.37", "1.36.3", {"nodepool1": "img-2"}, baseline)
    assert rows == [
        row(C, "API server version", "kube-apiserver", "failed", "v1.36.3 (expected 1.37)"),
        row(C, "node images", "node n1", "failed", "runs image img-1; pool nodepool1 is at img-2"),
        row(C, "kubelet version", "node n1", "failed", "kubelet v1.36.3 (expected 1.37)"),
        row(C, "nodes Ready and schedulable", "2 nodes", "passed", "all 2 healthy"),
        row(C, "workloads available", "Deployment app/web", "failed", "Progressing: 1/2 available"),
        row(C, "workloads available", "StatefulSet db/pg", "failed", "Progressing: 0/1 available"),
        row(C, "workloads available", "DaemonSet kube-system/agent", "failed", "Progressing: 1/2 available"),
        # spec.upgrade_health.max_pod_restarts is 3: 7 restarts since the stage began fail, 4 of a new pod too.
        row(C, "pod restarts", "pod app/p-u1", "failed", "restarted 7 times since the stage began (threshold 3)"),
        row(C, "pod restarts", "pod app/p-u2", "failed", "restarted 4 times since the stage began (threshold 3)"),
        row(C, "PodDisruptionBudgets respected", "PodDisruptionBudget app/web", "failed",
            "currentHealthy 1 < desiredHealthy 2 (disruptionsAllowed 0)"),
        row(C, "Azure Service Operator", "-", "passed", "not bootstrapped: nothing to check")]
    assert baseline == {"u1": 2}


def test_a_bootstrapped_cluster_checks_the_operator_and_the_objects_of_every_azure_crd(cluster):
    api, held = cluster
    held.bootstrapped = True
    held.operator = {"cert-manager Available": "", "operator Available": "azureserviceoperator-system/aso (0/1)",
                     "CRDs Established": ""}
    held.crds = [
        crd("cert-manager.io", "Certificate", "certificates", ("v1", True)),
        crd("keyvault.azure.com", "Vault", "vaults", ("v1api20210401preview", False), ("v1api20230701", True)),
        crd("resources.azure.com", "ResourceGroup", "resourcegroups", ("v1api20200601", True)),
        crd("storage.azure.com", "StorageAccount", "storageaccounts", ("v1api20230101", False)),
        crd("acme.azure.com.example", "Order", "orders", ("v1", True)),
    ]
    held.custom = {
        ("keyvault.azure.com", "v1api20230701", "vaults"): {"items": [
            {"metadata": {"namespace": "infra", "name": "kv"}, "status": {"conditions": [
                {"type": "Ready", "status": "False", "reason": "Forbidden", "message": "no access"}]}},
            {"kind": "VaultOverride", "metadata": {"namespace": "infra", "name": "kv2"}, "status": {}}]},
        ("resources.azure.com", "v1api20200601", "resourcegroups"): {"items": None},
        ("storage.azure.com", "v1api20230101", "storageaccounts"): {"items": [
            {"metadata": {"namespace": "infra", "name": "st"},
             "status": {"conditions": [{"type": "Ready", "status": "True"}]}}]},
    }
    # NodeImageOnly: the API server is expected at the version Azure reports.
    rows = judge_cluster(api, SPEC, EAST_SPEC, "NodeImageOnly", None, "1.37.2", {}, {})
    assert rows[0] == row(C, "API server version", "kube-apiserver", "passed", "v1.37.2 (expected 1.37.2)")
    assert rows[-6:] == [
        row(C, "PodDisruptionBudgets respected", "0 budgets", "passed", "all 0 healthy"),
        row(C, "cert-manager Available", "all", "passed", "ready"),
        row(C, "operator Available", "azureserviceoperator-system/aso (0/1)", "failed",
            "azureserviceoperator-system/aso (0/1)"),
        row(C, "CRDs Established", "all", "passed", "ready"),
        row(C, "ASO objects Ready", "Vault infra/kv", "failed", "NotReady: Forbidden: no access"),
        row(C, "ASO objects Ready", "VaultOverride infra/kv2", "failed",
            "Pending: no Ready condition yet (is Azure Service Operator running?)")]
    assert [read for read in held.reads if read[0] not in
            ("version", "nodes", "deployments", "statefulsets", "daemonsets", "budgets", "pods")] == [
        ("crds", 30), ("vaults.keyvault.azure.com/v1api20230701", 30),
        ("resourcegroups.resources.azure.com/v1api20200601", 30),
        ("storageaccounts.storage.azure.com/v1api20230101", 30)]


def test_a_bootstrapped_cluster_without_azure_objects_passes_them(cluster):
    api, held = cluster
    held.bootstrapped = True
    held.operator = {"operator Available": ""}
    rows = judge_cluster(api, SPEC, EAST_SPEC, "NodeImageOnly", None, "1.37.2", {}, {})
    assert rows[-2:] == [row(C, "operator Available", "all", "passed", "ready"),
                         row(C, "ASO objects Ready", "0 objects", "passed", "all 0 healthy")]


def test_pods_are_read_as_plain_objects_within_a_minute(cluster):
    api, held = cluster
    held.pods = [kube_client.V1Pod(metadata=kube_client.V1ObjectMeta(namespace="app", name="web-1", uid="u1"),
                                   status=kube_client.V1PodStatus(container_statuses=[kube_client.V1ContainerStatus(
                                       name="web", image="web:1", image_id="", ready=True, restart_count=2)]))]
    assert read_pods(api) == [{"metadata": {"namespace": "app", "name": "web-1", "uid": "u1"},
                               "status": {"containerStatuses": [{"name": "web", "image": "web:1", "imageID": "",
                                                                 "ready": True, "restartCount": 2}]}}]
    assert held.reads == [("pods", 60)]


# --- a cluster whose API server Azure does not run ----------------------------------------------------------------


def azure_error(code: str) -> AzureOperationError:
    return AzureOperationError(operation="list cluster admin credentials", resource_id=cluster_id(EAST),
                               region="eastus", status=400, code=code, azure_message="the cluster is stopped",
                               retryable=False, reason="refused")


@pytest.fixture
def azure(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    given: dict[str, Any] = {"error": None}
    clients = object()

    def load_azure_clients(block: str) -> object:
        assert block == "fleetflow-azure"
        return clients

    def admin_kubeconfig(got: object, spec: FleetSpec, checked: ClusterSpec) -> str:
        assert got is clients and spec is SPEC
        if given["error"] is not None:
            raise given["error"]
        return f"kubeconfig of {checked.name}"

    monkeypatch.setattr(upgrade_health, "load_azure_clients", load_azure_clients)
    monkeypatch.setattr(upgrade_health, "admin_kubeconfig", admin_kubeconfig)
    return given


def test_a_cluster_with_an_api_server_gets_its_kubeconfig(azure):
    assert upgrade_health._kubeconfig_or_row(SPEC, EAST_SPEC, "fleetflow-azure") == (f"kubeconfig of {EAST}", None)


def test_a_cluster_without_an_api_server_is_a_skipped_check(azure):
    azure["error"] = azure_error(NO_KUBERNETES_CODE)
    assert upgrade_health._kubeconfig_or_row(SPEC, EAST_SPEC, "fleetflow-azure") == (
        None, row(EAST, "reachable", "kube-apiserver", "skipped", "the cluster is stopped"))


@pytest.mark.parametrize("code", ["AuthorizationFailed", "ResourceNotFound", None])
def test_any_other_azure_refusal_is_raised(azure, code):
    azure["error"] = error = azure_error(code)
    with pytest.raises(AzureOperationError) as raised:
        upgrade_health._kubeconfig_or_row(SPEC, EAST_SPEC, "fleetflow-azure")
    assert raised.value is error
