"""The health judgement between upgrade stages and the auto-approve policy, on plain Kubernetes objects."""

from __future__ import annotations

from typing import Any

import pytest

from tasks.spec import UpgradeHealthSpec
from tasks.upgrade_health import (
    HealthRow,
    all_passed,
    auto_approval,
    health_report,
    health_summary,
    node_rows,
    pdb_rows,
    restart_baseline,
    restart_rows,
    version_rows,
    workload_rows,
)
from tests.paths import REPO


def node(name: str, *, ready: str = "True", unschedulable: bool = False, image: str = "img-2",
         kubelet: str = "v1.37.2") -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": {"kubernetes.azure.com/agentpool": "nodepool1",
                                                  "kubernetes.azure.com/node-image-version": image}},
            "spec": {"unschedulable": unschedulable},
            "status": {"conditions": [{"type": "Ready", "status": ready, "reason": "KubeletNotReady"}],
                       "nodeInfo": {"kubeletVersion": kubelet}}}


def failed(rows: list[HealthRow]) -> list[tuple[str, str]]:
    return [(row["object"], row["detail"]) for row in rows if row["result"] == "failed"]


def test_versions_as_the_update_asked_and_nodes_on_their_pools_image():
    rows = version_rows("c1", "Full", "1.37", "1.37.2", "v1.37.2", {"nodepool1": "img-2"},
                        [node("n1"), node("n2", image="img-1", kubelet="v1.36.3")])
    assert failed(rows) == [("node n2", "runs image img-1; pool nodepool1 is at img-2"),
                            ("node n2", "kubelet v1.36.3 (expected 1.37)")]
    # NodeImageOnly expects the version Azure reports (unchanged), whatever the request carried.
    rows = version_rows("c1", "NodeImageOnly", None, "1.36.3", "v1.37.2", {}, [])
    assert failed(rows) == [("kube-apiserver", "v1.37.2 (expected 1.36.3)")]
    assert all_passed(version_rows("c1", "ControlPlaneOnly", "1.37", "1.37.2", "v1.37.2", {}, [node("n1")]))


def test_nodes_not_ready_or_cordoned_are_named():
    rows = node_rows("c1", [node("a"), node("b", ready="False"), node("c", unschedulable=True)])
    assert failed(rows) == [("node b", "not Ready (KubeletNotReady)"), ("node c", "cordoned (spec.unschedulable)")]
    assert failed(node_rows("c1", [])) == [("nodes", "the cluster has no nodes")]
    assert node_rows("c1", [node("a")])[0]["detail"] == "all 1 healthy"


def test_workloads_below_their_desired_count_are_named():
    workloads = [
        {"kind": "Deployment", "metadata": {"namespace": "app", "name": "web"}, "spec": {"replicas": 2},
         "status": {"availableReplicas": 0, "updatedReplicas": 2}},
        {"kind": "DaemonSet", "metadata": {"namespace": "kube-system", "name": "agent"}, "spec": {},
         "status": {"desiredNumberScheduled": 3, "numberAvailable": 3}},
        {"kind": "StatefulSet", "metadata": {"namespace": "db", "name": "pg"}, "spec": {"replicas": 1},
         "status": {"readyReplicas": 1, "updatedReplicas": 1}},
    ]
    assert failed(workload_rows("c1", workloads)) == [("Deployment app/web", "Progressing: 0/2 available")]


def test_restarts_count_from_the_stage_start():
    def pod(uid: str, restarts: int) -> dict[str, Any]:
        return {"metadata": {"namespace": "app", "name": f"p-{uid}", "uid": uid},
                "status": {"containerStatuses": [{"restartCount": restarts}]}}

    before = restart_baseline([pod("old", 10)])
    assert before == {"old": 10}
    # 10 restarts before the stage and 2 during it pass a threshold of 3; a new pod's 4 restarts do not.
    rows = restart_rows("c1", [pod("old", 12), pod("new", 4)], before, max_restarts=3)
    assert failed(rows) == [("pod app/p-new", "restarted 4 times since the stage began (threshold 3)")]


def test_disruption_budgets_below_their_desired_health_are_named():
    budgets = [{"metadata": {"namespace": "app", "name": "web"},
                "status": {"currentHealthy": 1, "desiredHealthy": 2, "disruptionsAllowed": 0}},
               {"metadata": {"namespace": "app", "name": "api"}, "status": {"currentHealthy": 2, "desiredHealthy": 2}}]
    assert failed(pdb_rows("c1", budgets)) == [
        ("PodDisruptionBudget app/web", "currentHealthy 1 < desiredHealthy 2 (disruptionsAllowed 0)")]


GREEN = [HealthRow(cluster="c1", check="nodes Ready and schedulable", object="2 nodes", result="passed",
                   detail="all 2 healthy")]
RED = [*GREEN, HealthRow(cluster="c1", check="workloads available", object="Deployment app/web",
                         result="failed", detail="Progressing: 0/2 available")]
SKIPPED = [HealthRow(cluster="c1", check="reachable", object="kube-apiserver", result="skipped", detail="ARM only")]


@pytest.mark.parametrize(("listed", "upgrade_type", "rows", "approved", "reason"), [
    (["NodeImageOnly"], "NodeImageOnly", GREEN, True, "all 1 health checks of stage `stage1` passed on c1"),
    (["NodeImageOnly"], "NodeImageOnly", RED, False, "1 check(s) failed"),
    (["NodeImageOnly"], "NodeImageOnly", SKIPPED, False, "1 check(s) could not run"),
    (["NodeImageOnly"], "NodeImageOnly", [], False, "no cluster was checked"),
    (["NodeImageOnly"], "Full", GREEN, False, "upgrade type Full is not in upgrade_health.auto_approve"),
    (["NodeImageOnly"], "ControlPlaneOnly", GREEN, False, "ControlPlaneOnly is not in"),
    ([], "NodeImageOnly", GREEN, False, "(none)"),
    (["Full"], "Full", GREEN, True, "upgrade type Full is listed"),
])
def test_auto_approval_only_for_listed_types_with_every_check_passed(listed, upgrade_type, rows, approved, reason):
    decided, why = auto_approval(UpgradeHealthSpec(auto_approve=listed), upgrade_type, "stage1", rows)
    assert decided is approved
    assert reason in why


def test_report_and_summary_put_failures_first_with_object_and_reason():
    report = health_report("stage1", RED)
    assert "**1 failed**" in report
    lines = report.splitlines()
    assert lines.index("| c1 | workloads available | Deployment app/web | failed | Progressing: 0/2 available |") < \
        lines.index("| c1 | nodes Ready and schedulable | 2 nodes | passed | all 2 healthy |")
    summary = health_summary("stage1", RED)
    assert summary.splitlines() == ["Health of stage stage1 (1 cluster(s)): 1 passed, 1 failed, 0 skipped",
                                    "- c1: workloads available: Deployment app/web: Progressing: 0/2 available"]
    assert "all checks passed" in health_report("stage1", GREEN)


def test_spec_checks_the_health_section_with_field_paths():

    import yaml

    from tasks.spec import find_problems

    document = yaml.safe_load((REPO / "fleet.yaml").read_text())
    document["upgrade_health"] = {"max_pod_restarts": -1, "settle_seconds": 4000, "notification_block": "approvers",
                                  "auto_approve": ["NodeImageOnly"]}
    paths = sorted(problem.path for problem in find_problems(document))
    assert paths == ["upgrade_health.max_pod_restarts", "upgrade_health.notification_block",
                     "upgrade_health.settle_seconds"]
    document["upgrade_health"] = {"auto_approve": ["Nightly"]}
    assert [problem.path for problem in find_problems(document)] == ["upgrade_health.auto_approve[0]"]


def test_the_automation_fires_on_its_fleets_waiting_event_only_and_compares_without_server_ids():
    from uuid import uuid4

    from console.automations import _fingerprint, desired_automation
    from tasks.spec import load_spec

    spec = load_spec(REPO / "fleet.yaml")
    block = uuid4()
    one, two = desired_automation(spec, block), desired_automation(spec, block)
    assert _fingerprint(one) == _fingerprint(two)  # each trigger got its own random id
    assert _fingerprint(one) != _fingerprint(desired_automation(spec, uuid4()))
    assert one.trigger.expect == {"fleetflow.approval.waiting"}
    assert one.trigger.model_dump(mode="json")["match_related"] == {
        "prefect.resource.role": "fleet",
        "prefect.resource.id": "fleetflow.fleet.rg-fleet-demo-7f3a2c/multicluster-fleet"}
