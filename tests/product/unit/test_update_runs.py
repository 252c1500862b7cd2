"""Staged-upgrade planning: request checks, strategy with gates, run naming, reading run status."""

from __future__ import annotations

import pytest
from azure.mgmt.containerservicefleet import models as fleet_models
from pydantic import ValidationError

from tasks import update_runs
from tasks.spec import StageSpec, load_spec
from tasks.update_runs import UpgradeRequest
from tests.paths import REPO

SPEC = load_spec(REPO / "fleet.yaml")


def test_full_upgrade_without_a_kubernetes_version_is_refused():
    with pytest.raises(ValidationError, match="kubernetes_version is required for upgrade_type Full"):
        UpgradeRequest(upgrade_type="Full")


def test_node_image_upgrade_with_a_kubernetes_version_is_refused():
    with pytest.raises(ValidationError, match="must be empty for upgrade_type NodeImageOnly"):
        UpgradeRequest(upgrade_type="NodeImageOnly", kubernetes_version="1.37.2")


def test_unparseable_kubernetes_version_is_refused():
    with pytest.raises(ValidationError, match="not a Kubernetes version"):
        UpgradeRequest(upgrade_type="ControlPlaneOnly", kubernetes_version="latest")


def test_strategy_puts_an_approval_gate_before_every_later_stage():
    strategy = update_runs.desired_strategy(SPEC.update_strategy.stages, approval_between_stages=True)
    assert [stage.name for stage in strategy.stages] == ["stage1", "stage2"]
    assert strategy.stages[0].before_gates is None
    assert [gate.type for gate in strategy.stages[1].before_gates] == ["Approval"]
    assert strategy.stages[0].after_stage_wait_in_seconds == 3600
    assert [group.name for group in strategy.stages[1].groups] == ["prod-group"]


def test_strategy_without_approvals_has_no_gates():
    strategy = update_runs.desired_strategy(SPEC.update_strategy.stages, approval_between_stages=False)
    assert all(stage.before_gates is None for stage in strategy.stages)


def test_fingerprint_sees_a_changed_wait_and_ignores_group_order():
    one = update_runs.desired_strategy([StageSpec(name="s", groups=["a", "b"], after_stage_wait_seconds=5)], True)
    same = update_runs.desired_strategy([StageSpec(name="s", groups=["b", "a"], after_stage_wait_seconds=5)], True)
    other = update_runs.desired_strategy([StageSpec(name="s", groups=["a", "b"], after_stage_wait_seconds=6)], True)
    assert update_runs.strategy_fingerprint(one) == update_runs.strategy_fingerprint(same)
    assert update_runs.strategy_fingerprint(one) != update_runs.strategy_fingerprint(other)


def test_run_names_are_stable_per_request_and_numbered():
    request = UpgradeRequest(upgrade_type="Full", kubernetes_version="1.37.2")
    prefix = update_runs.run_name_prefix("multicluster-fleet", request, SPEC.update_strategy.stages)
    assert prefix == update_runs.run_name_prefix("multicluster-fleet", request, SPEC.update_strategy.stages)
    assert prefix.startswith("ff-full-1-37-2-")
    other = UpgradeRequest(upgrade_type="NodeImageOnly", node_image_selection="Consistent")
    assert update_runs.run_name_prefix("multicluster-fleet", other, SPEC.update_strategy.stages) != prefix
    assert update_runs.next_run_name(prefix, []) == f"{prefix}-1"
    assert update_runs.next_run_name(prefix, [f"{prefix}-1", f"{prefix}-3", "unrelated-9"]) == f"{prefix}-4"
    assert len(update_runs.next_run_name(prefix, [])) <= 50


def _run(stage1_state: str, gate_state: str, run_state: str = "Running") -> fleet_models.UpdateRun:
    cluster = "/subscriptions/s/resourceGroups/g/providers/Microsoft.ContainerService/managedClusters/"
    member = {"name": "m-east", "clusterResourceId": cluster + "aks-east",
              "status": {"state": stage1_state, "startTime": "2026-11-24T10:00:00Z",
                         "completedTime": "2026-11-24T10:02:30Z"}}
    return fleet_models.UpdateRun({
        "id": "/subscriptions/s/resourceGroups/g/providers/Microsoft.ContainerService/fleets/f/updateRuns/r-1",
        "name": "r-1",
        "properties": {"status": {"status": {"state": run_state}, "stages": [
            {"name": "stage1", "status": {"state": stage1_state},
             "groups": [{"name": "test-group", "members": [member]}]},
            {"name": "stage2", "status": {"state": "NotStarted"},
             "beforeGates": [{"displayName": "Approve stage stage2", "status": {"state": gate_state},
                              "gateId": "/subscriptions/s/resourceGroups/g/providers/Microsoft.ContainerService/"
                                        "fleets/f/gates/gate-123"}],
             "groups": [{"name": "prod-group", "members": [
                 {"name": "m-west", "clusterResourceId": cluster + "aks-west", "status": {"state": "NotStarted"}}]}]},
        ]}},
    })


def test_view_finds_the_pending_gate_and_the_stage_before_it():
    view = update_runs.view_run(_run("Completed", "Pending"))
    assert view.pending_gate is not None
    assert view.pending_gate.gate_name == "gate-123"
    assert (view.pending_gate.previous_stage, view.pending_gate.next_stage) == ("stage1", "stage2")
    assert [(m.member, m.state) for m in view.members] == [("m-east", "Completed"), ("m-west", "NotStarted")]
    assert view.progress_percent == 50.0 and not view.is_terminal


def test_view_without_pending_gate_has_none():
    assert update_runs.view_run(_run("Running", "NotStarted")).pending_gate is None


def test_stage_report_shows_versions_durations_and_who_is_next():
    view = update_runs.view_run(_run("Completed", "Pending"))
    key = view.members[0].cluster_id.lower()
    report = update_runs.stage_report(view, "stage1", {key: "1.36.3"}, {key: "1.37.2"})
    assert "| m-east | test-group | Completed | 1.36.3 | 1.37.2 | 150.0 |" in report
    assert "approve stage `stage2`" in report and "m-west" in report
    assert "m-west | prod-group" not in report
