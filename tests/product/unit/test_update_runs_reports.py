"""Staged-upgrade requests, strategies, run names, the run view, the approver's stage report, and the update-run
calls against an in-memory fleet client: whole messages, names and field values."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest
from azure.core.exceptions import ResourceNotFoundError
from azure.mgmt.containerservicefleet import models as fleet_models
from pydantic import ValidationError

from tasks import update_runs
from tasks.retry import AzureOperationError
from tasks.spec import FleetSpec, StageSpec
from tasks.update_runs import MemberProgress, PendingGate, RunView, UpgradeRequest
from tests.product.unit.test_retry import http_error

STAGES = [StageSpec(name="s1", groups=["b", "a"], after_stage_wait_seconds=60), StageSpec(name="s2", groups=["c"])]
FLEET = "/subscriptions/sub/resourceGroups/rg/providers/Microsoft.ContainerService/fleets/f"
SPEC = FleetSpec.model_validate({
    "name": "f", "location": "eastus", "suffix": "abc123",
    "regions": [{"name": "eastus", "update_group": "a"}],
    "update_strategy": {"stages": [{"name": "only", "groups": ["a"]}]},
})


@pytest.mark.parametrize(("fields", "message"), [
    ({"upgrade_type": "NodeImageOnly", "kubernetes_version": "1.2"},
     "Value error, kubernetes_version must be empty for upgrade_type NodeImageOnly (node images only; the control "
     "plane keeps its version)"),
    ({"upgrade_type": "ControlPlaneOnly"},
     "Value error, kubernetes_version is required for upgrade_type ControlPlaneOnly, e.g. 1.37.2"),
    ({"upgrade_type": "ControlPlaneOnly", "kubernetes_version": ""},
     "Value error, kubernetes_version is required for upgrade_type ControlPlaneOnly, e.g. 1.37.2"),
    ({}, "Value error, kubernetes_version is required for upgrade_type Full, e.g. 1.37.2"),
    ({"upgrade_type": "Full", "kubernetes_version": "latest"},
     "Value error, kubernetes_version: 'latest' is not a Kubernetes version like 1.36 or 1.36.3"),
])
def test_an_upgrade_request_that_cannot_run_is_refused_saying_why(fields: dict[str, Any], message: str):
    with pytest.raises(ValidationError) as raised:
        UpgradeRequest(**fields)
    assert [error["msg"] for error in raised.value.errors()] == [message]


@pytest.mark.parametrize("fields", [
    {"upgrade_type": "NodeImageOnly"}, {"upgrade_type": "NodeImageOnly", "kubernetes_version": ""},
    {"upgrade_type": "ControlPlaneOnly", "kubernetes_version": "1.37"},
    {"upgrade_type": "Full", "kubernetes_version": "1.37.2"},
])
def test_a_consistent_upgrade_request_is_accepted(fields: dict[str, Any]):
    assert UpgradeRequest(**fields).upgrade_type == fields["upgrade_type"]


@pytest.mark.parametrize(("request_fields", "prefix"), [
    ({"upgrade_type": "Full", "kubernetes_version": "1.37.2"}, "ff-full-1-37-2-25183a"),
    ({"upgrade_type": "ControlPlaneOnly", "kubernetes_version": "1.37"}, "ff-cp-1-37-63fd5b"),
    ({"upgrade_type": "NodeImageOnly", "node_image_selection": "Consistent"}, "ff-image-consistent-bdf53f"),
    ({"upgrade_type": "NodeImageOnly"}, "ff-image-latest-136455"),
])
def test_run_names_say_the_kind_and_target_and_digest_the_whole_request(request_fields, prefix: str):
    assert update_runs.run_name_prefix("fleet-a", UpgradeRequest(**request_fields), STAGES) == prefix


def test_the_run_name_digest_changes_with_the_fleet_and_the_stages():
    request = UpgradeRequest(upgrade_type="NodeImageOnly")
    names = {update_runs.run_name_prefix("fleet-a", request, STAGES),
             update_runs.run_name_prefix("fleet-b", request, STAGES),
             update_runs.run_name_prefix("fleet-a", request, STAGES[:1])}
    assert len(names) == 3


@pytest.mark.parametrize(("existing", "name"), [
    ([], "ff-x-1"),
    (["ff-x-1", "ff-x-3", "ff-x-2"], "ff-x-4"),
    (["ff-x-9-old", "ff-x-a", "ff-xy-7", "other-5", "ff-x"], "ff-x-1"),
    (["ff-x-10", "ff-x-9"], "ff-x-11"),
])
def test_a_new_run_is_numbered_after_the_highest_run_of_its_prefix(existing: list[str], name: str):
    assert update_runs.next_run_name("ff-x", existing) == name


def test_the_strategy_has_stages_of_sorted_groups_waits_and_a_gate_before_each_later_stage():
    strategy = update_runs.desired_strategy(STAGES, approval_between_stages=True)
    assert [(s.name, [g.name for g in s.groups], s.after_stage_wait_in_seconds) for s in strategy.stages] == [
        ("s1", ["b", "a"], 60), ("s2", ["c"], None)]
    assert strategy.stages[0].before_gates is None
    assert [(g.type, g.display_name) for g in strategy.stages[1].before_gates] == [("Approval", "Approve stage s2")]
    assert update_runs.strategy_fingerprint(strategy) == (
        '[{"after": [], "before": [], "groups": ["a", "b"], "name": "s1", "wait": 60}, '
        '{"after": [], "before": ["Approval"], "groups": ["c"], "name": "s2", "wait": 0}]')
    assert all(s.before_gates is None for s in update_runs.desired_strategy(STAGES, False).stages)


def test_the_fingerprint_of_no_strategy_is_empty_and_after_gates_count():
    assert update_runs.strategy_fingerprint(None) == ""
    assert update_runs.strategy_fingerprint(fleet_models.UpdateRunStrategy(stages=[])) == "[]"
    stage = fleet_models.UpdateStage(name="s", after_gates=[fleet_models.GateConfiguration(type="Approval")])
    assert update_runs.strategy_fingerprint(fleet_models.UpdateRunStrategy(stages=[stage])) == (
        '[{"after": ["Approval"], "before": [], "groups": [], "name": "s", "wait": 0}]')


def test_the_stages_are_the_override_when_one_is_given():
    override = [StageSpec(name="x", groups=["a"])]
    assert update_runs.desired_stages(SPEC, override) == override
    assert update_runs.desired_stages(SPEC, None) == list(SPEC.update_strategy.stages)
    assert update_runs.desired_stages(SPEC, []) == list(SPEC.update_strategy.stages)


@pytest.mark.parametrize("state", ["Completed", "Failed", "Stopped", "Skipped"])
def test_a_run_that_ended_is_terminal_and_complete_without_members(state: str):
    view = RunView(name="r", run_id="i", state=state)
    assert view.is_terminal and view.progress_percent == 100.0


@pytest.mark.parametrize("state", ["NotStarted", "Running", "Stopping", "Pending"])
def test_a_run_in_progress_is_not_terminal(state: str):
    view = RunView(name="r", run_id="i", state=state)
    assert not view.is_terminal and view.progress_percent == 0.0


def test_progress_counts_members_that_ended_rounded_to_a_tenth():
    members = [MemberProgress(stage="s", group="g", member=f"m{i}", cluster_id=None, state=state)
               for i, state in enumerate(["Completed", "Running", "NotStarted"])]
    assert RunView(name="r", run_id="i", state="Running", members=members).progress_percent == 33.3


CLUSTER = "/subscriptions/s/resourceGroups/g/providers/Microsoft.ContainerService/managedClusters/"
GATES = "/subscriptions/s/resourceGroups/g/providers/Microsoft.ContainerService/fleets/f/gates/"


def run_of(stages: list[dict[str, Any]], state: str = "Running", error: dict[str, str] | None = None):
    status: dict[str, Any] = {"state": state}
    if error is not None:
        status["error"] = error
    return fleet_models.UpdateRun({
        "id": "/subscriptions/s/resourceGroups/g/providers/Microsoft.ContainerService/fleets/f/updateRuns/r-1",
        "name": "r-1", "properties": {"status": {"status": status, "stages": stages}}})


def member(name: str, state: str, message: str | None = None, error: dict[str, str] | None = None,
           times: bool = False) -> dict[str, Any]:
    status: dict[str, Any] = {"state": state}
    if times:
        status.update({"startTime": "2026-11-24T10:00:00Z", "completedTime": "2026-11-24T10:02:30.25Z"})
    if error:
        status["error"] = error
    entry = {"name": name, "clusterResourceId": CLUSTER + name, "status": status}
    if message:
        entry["message"] = message
    return entry


def gate(state: str, gate_id: str | None = GATES + "gate-1", display: str | None = "Approve stage s2"):
    entry: dict[str, Any] = {"status": {"state": state}}
    if gate_id:
        entry["gateId"] = gate_id
    if display:
        entry["displayName"] = display
    return entry


def test_the_view_reads_states_members_their_times_and_messages():
    run = run_of([
        {"name": "s1", "status": {"state": "Failed"}, "groups": [{"name": "g1", "members": [
            member("aks-a", "Completed", times=True), member("aks-b", "Failed", message="drain failed"),
            member("aks-c", "Failed", error={"code": "UpgradeFailed", "message": "node not ready"})]}]},
        {"name": "s2", "groups": [{"name": "g2", "members": [member("aks-d", "NotStarted")]}]},
    ], state="Failed", error={"code": "UpdateRunFailed", "message": "a member failed"})
    view = update_runs.view_run(run)
    assert (view.name, view.state, view.error) == ("r-1", "Failed", "UpdateRunFailed: a member failed")
    assert view.run_id.endswith("/updateRuns/r-1")
    assert view.stage_states == {"s1": "Failed", "s2": "NotStarted"}
    assert [(m.stage, m.group, m.member, m.cluster_id, m.state, m.message) for m in view.members] == [
        ("s1", "g1", "aks-a", CLUSTER + "aks-a", "Completed", None),
        ("s1", "g1", "aks-b", CLUSTER + "aks-b", "Failed", "drain failed"),
        ("s1", "g1", "aks-c", CLUSTER + "aks-c", "Failed", "UpgradeFailed: node not ready"),
        ("s2", "g2", "aks-d", CLUSTER + "aks-d", "NotStarted", None)]
    assert view.members[0].start == datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
    assert view.members[0].end == datetime(2026, 11, 24, 10, 2, 30, 250000, tzinfo=UTC)
    assert view.pending_gate is None and view.progress_percent == 75.0


@pytest.mark.parametrize(("error", "text"), [
    ({"code": "X", "message": "went wrong"}, "X: went wrong"), ({"code": "X"}, "X"),
    ({"message": "went wrong"}, "went wrong"), ({}, ""),
])
def test_a_run_error_is_code_and_message_as_far_as_given(error: dict[str, str], text: str):
    assert update_runs.view_run(run_of([], state="Failed", error=error)).error == text


def test_a_run_without_properties_has_not_started():
    view = update_runs.view_run(fleet_models.UpdateRun({"id": "i", "name": "r"}))
    assert (view.name, view.run_id, view.state, view.error, view.stage_states, view.members, view.pending_gate) == (
        "r", "i", "NotStarted", None, {}, [], None)


def test_the_pending_gate_is_the_first_pending_one_with_an_id_and_knows_the_stages_around_it():
    run = run_of([
        {"name": "s1", "status": {"state": "Completed"}, "beforeGates": [gate("Completed", GATES + "gate-0")]},
        {"name": "s2", "beforeGates": [gate("Pending", gate_id=None), gate("Pending", GATES + "gate-2/", None),
                                       gate("Pending", GATES + "gate-3")]},
        {"name": "s3", "beforeGates": [gate("Pending", GATES + "gate-4")]},
    ])
    assert update_runs.view_run(run).pending_gate == PendingGate(
        gate_name="gate-2", gate_id=GATES + "gate-2/", display_name="", next_stage="s2", previous_stage="s1")


def test_a_pending_gate_before_the_first_stage_has_no_previous_stage():
    run = run_of([{"name": "s1", "beforeGates": [gate("Pending")]}])
    assert update_runs.view_run(run).pending_gate == PendingGate(
        gate_name="gate-1", gate_id=GATES + "gate-1", display_name="Approve stage s2", next_stage="s1",
        previous_stage=None)


def _report_view() -> RunView:
    return update_runs.view_run(run_of([
        {"name": "s1", "status": {"state": "Completed"}, "groups": [{"name": "g1", "members": [
            member("aks-a", "Completed", times=True), member("aks-b", "Failed", message="drain failed")]}]},
        {"name": "s2", "beforeGates": [gate("Pending")],
         "groups": [{"name": "g2", "members": [member("aks-c", "NotStarted"), member("aks-d", "NotStarted")]}]},
    ]))


def test_member_rows_give_versions_duration_and_message_or_blanks():
    key = (CLUSTER + "aks-a").lower()
    rows = update_runs.member_rows(_report_view(), {key: "1.36.3"}, {key: "1.37.2"})
    assert rows[:2] == [
        {"stage": "s1", "group": "g1", "member": "aks-a", "state": "Completed", "before": "1.36.3", "now": "1.37.2",
         "seconds": 150.2, "message": ""},
        {"stage": "s1", "group": "g1", "member": "aks-b", "state": "Failed", "before": "?", "now": "?",
         "seconds": "", "message": "drain failed"}]


def test_the_stage_report_asks_to_approve_the_next_stage_with_what_the_last_one_did():
    key = (CLUSTER + "aks-a").lower()
    report = update_runs.stage_report(_report_view(), "s1", {key: "1.36.3"}, {key: "1.37.2"})
    assert report == "\n".join([
        "## Update run `r-1`: approve stage `s2`?",
        "",
        "Stage `s1` ended **Completed**. What it did:",
        "",
        "| member | group | state | version before | version now | seconds | message |",
        "|---|---|---|---|---|---|---|",
        "| aks-a | g1 | Completed | 1.36.3 | 1.37.2 | 150.2 |  |",
        "| aks-b | g1 | Failed | ? | ? |  | drain failed |",
        "",
        "Failures: 1\n- `aks-b`: drain failed",
        "",
        "Approving starts stage `s2` on: aks-c, aks-d.",
        "Rejecting stops the update run; those clusters are left as they are.",
    ])


def test_the_report_of_a_whole_run_without_a_gate_lists_every_member_and_no_failure():
    view = update_runs.view_run(run_of([
        {"name": "s1", "groups": [{"name": "g1", "members": [member("aks-a", "Completed")]}]},
        {"name": "s2", "groups": [{"name": "g2", "members": [member("aks-b", "Running")]}]}]))
    assert update_runs.stage_report(view, None, {}, {}) == "\n".join([
        "## Update run `r-1`", "", "", "| member | group | state | version before | version now | seconds | message |",
        "|---|---|---|---|---|---|---|", "| aks-a | g1 | Completed | ? | ? |  |  |",
        "| aks-b | g2 | Running | ? | ? |  |  |", "", "Failures: 0"])


def test_a_gate_before_a_stage_without_members_says_so_and_an_unknown_stage_ended_unknown():
    view = update_runs.view_run(run_of([{"name": "s1", "beforeGates": [gate("Pending")]}]))
    report = update_runs.stage_report(view, "s0", {}, {})
    assert "Stage `s0` ended **?**. What it did:" in report.splitlines()
    assert "Approving starts stage `s1` on: (no members)." in report.splitlines()


# --- the calls, against an in-memory fleet client --------------------------------------------------------------


class _Poller:
    def __init__(self, value: Any = None) -> None:
        self.value = value

    def result(self) -> Any:
        return self.value


class _Operations:
    """Records every call; answers from `answers` (an exception is raised)."""

    def __init__(self, **answers: Any) -> None:
        self.answers = answers
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

    def __getattr__(self, name: str):
        def call(*args: Any) -> Any:
            self.calls.append((name, args))
            answer = self.answers.get(name)
            if isinstance(answer, BaseException):
                raise answer
            return _Poller(answer) if name.startswith("begin_") else answer
        return call


def clients_with(strategies: _Operations | None = None, runs: _Operations | None = None,
                 gates: _Operations | None = None) -> Any:
    return SimpleNamespace(subscription_id="sub", fleet=SimpleNamespace(
        fleet_update_strategies=strategies or _Operations(), update_runs=runs or _Operations(),
        gates=gates or _Operations()))


def test_fleet_resource_ids_name_the_fleet_and_the_child():
    clients = clients_with()
    assert update_runs.fleet_resource_id(clients, "rg", "f") == FLEET
    assert update_runs.fleet_resource_id(clients, "rg", "f", "/updateRuns/r") == FLEET + "/updateRuns/r"


def _with_id(model: Any, resource_id: str) -> Any:
    model.id = resource_id
    return model


def test_an_unchanged_strategy_is_kept_and_a_changed_or_missing_one_is_written():
    wanted = update_runs.desired_strategy(STAGES, True)
    same = _Operations(get=_with_id(fleet_models.FleetUpdateStrategy(
        properties=fleet_models.FleetUpdateStrategyProperties(strategy=update_runs.desired_strategy(STAGES, True))),
        FLEET + "/updateStrategies/current"))
    assert update_runs.ensure_strategy(clients_with(strategies=same), "rg", "f", "st", wanted) == (
        FLEET + "/updateStrategies/current", False)
    assert same.calls == [("get", ("rg", "f", "st"))]

    created = _with_id(fleet_models.FleetUpdateStrategy(), FLEET + "/updateStrategies/new")
    for existing in (fleet_models.FleetUpdateStrategy(properties=fleet_models.FleetUpdateStrategyProperties(
            strategy=update_runs.desired_strategy(STAGES, False))), fleet_models.FleetUpdateStrategy(),
                     ResourceNotFoundError("gone")):
        operations = _Operations(get=existing, begin_create_or_update=created)
        assert update_runs.ensure_strategy(clients_with(strategies=operations), "rg", "f", "st", wanted) == (
            FLEET + "/updateStrategies/new", True)
        name, args = operations.calls[-1]
        assert (name, args[:3]) == ("begin_create_or_update", ("rg", "f", "st"))
        assert args[3].properties.strategy is wanted


def _named_run(name: str, state: str) -> fleet_models.UpdateRun:
    return fleet_models.UpdateRun({"name": name, "id": f"{FLEET}/updateRuns/{name}",
                                   "properties": {"status": {"status": {"state": state}}}})


def test_the_active_run_is_the_latest_of_the_prefix_still_in_progress():
    runs = [_named_run("ff-x-1", "Running"), _named_run("ff-x-3", "Completed"), _named_run("ff-x-2", "Pending"),
            _named_run("ff-y-9", "Running"), _named_run("ff-xx-5", "Running")]
    operations = _Operations(list_by_fleet=runs)
    active, names = update_runs.find_active_run(clients_with(runs=operations), "rg", "f", "ff-x")
    assert active is runs[2]
    assert names == ["ff-x-1", "ff-x-3", "ff-x-2"]
    assert operations.calls == [("list_by_fleet", ("rg", "f"))]
    ended = _Operations(list_by_fleet=[_named_run("ff-x-1", "Stopped")])
    assert update_runs.find_active_run(clients_with(runs=ended), "rg", "f", "ff-x") == (None, ["ff-x-1"])
    listing = _Operations(list_by_fleet=runs)
    assert update_runs.list_runs(clients_with(runs=listing), "rg", "f") == runs
    assert listing.calls == [("list_by_fleet", ("rg", "f"))]


def test_a_run_is_created_from_the_strategy_with_the_requested_upgrade():
    operations = _Operations(begin_create_or_update="made")
    request = UpgradeRequest(upgrade_type="ControlPlaneOnly", kubernetes_version="1.37",
                             node_image_selection="Consistent")
    assert update_runs.create_run(clients_with(runs=operations), "rg", "f", "ff-x-1", "strategy-id", request) == "made"
    name, args = operations.calls[0]
    assert (name, args[:3]) == ("begin_create_or_update", ("rg", "f", "ff-x-1"))
    properties = args[3].properties
    assert properties.update_strategy_id == "strategy-id"
    update = properties.managed_cluster_update
    assert (update.upgrade.type, update.upgrade.kubernetes_version, update.node_image_selection.type) == (
        "ControlPlaneOnly", "1.37", "Consistent")


def test_runs_are_started_stopped_read_and_gates_completed_by_name():
    runs, gates = _Operations(get="the run"), _Operations()
    clients = clients_with(runs=runs, gates=gates)
    update_runs.start_run(clients, "rg", "f", "r1")
    update_runs.stop_run(clients, "rg", "f", "r2")
    assert update_runs.read_run(clients, "rg", "f", "r3") == "the run"
    update_runs.complete_gate(clients, "rg", "f", "gate-1")
    assert runs.calls == [("begin_start", ("rg", "f", "r1")), ("begin_stop", ("rg", "f", "r2")),
                          ("get", ("rg", "f", "r3"))]
    name, args = gates.calls[0]
    assert (name, args[:3], args[3].properties.state) == ("begin_update", ("rg", "f", "gate-1"), "Completed")


FAILURE = http_error(409, "Conflict", "busy")


@pytest.mark.parametrize(("call", "operation", "resource"), [
    (lambda c: update_runs.ensure_strategy(c, "rg", "f", "st", update_runs.desired_strategy(STAGES, True)),
     "create or update update strategy", FLEET + "/updateStrategies/st"),
    (lambda c: update_runs.list_runs(c, "rg", "f"), "list update runs", FLEET + "/updateRuns"),
    (lambda c: update_runs.find_active_run(c, "rg", "f", "ff-x"), "find update run", FLEET + "/updateRuns/ff-x-*"),
    (lambda c: update_runs.create_run(c, "rg", "f", "r1", "sid", UpgradeRequest(upgrade_type="NodeImageOnly")),
     "create update run", FLEET + "/updateRuns/r1"),
    (lambda c: update_runs.start_run(c, "rg", "f", "r1"), "start update run", FLEET + "/updateRuns/r1"),
    (lambda c: update_runs.stop_run(c, "rg", "f", "r1"), "stop update run", FLEET + "/updateRuns/r1"),
    (lambda c: update_runs.read_run(c, "rg", "f", "r1"), "read update run", FLEET + "/updateRuns/r1"),
    (lambda c: update_runs.complete_gate(c, "rg", "f", "g1"), "complete approval gate", FLEET + "/gates/g1"),
], ids=["strategy", "list", "find", "create", "start", "stop", "read", "gate"])
def test_a_failed_call_names_its_operation_and_resource(call, operation: str, resource: str):
    failing = {name: FAILURE for name in ("get", "list_by_fleet", "begin_create_or_update", "begin_start",
                                          "begin_stop", "begin_update")}
    clients = clients_with(strategies=_Operations(**failing), runs=_Operations(**failing),
                           gates=_Operations(**failing))
    with pytest.raises(AzureOperationError) as raised:
        call(clients)
    assert (raised.value.operation, raised.value.resource_id, raised.value.status) == (operation, resource, 409)


def test_cluster_versions_give_the_control_plane_and_node_images_by_lowercased_id(monkeypatch):
    def cluster(resource_id: str, current: str | None, requested: str | None, images: list[str | None]):
        pools = [SimpleNamespace(node_image_version=image) for image in images]
        return SimpleNamespace(id=resource_id, agent_pool_profiles=pools, properties=SimpleNamespace(
            current_kubernetes_version=current, kubernetes_version=requested))

    listed = [cluster("/X/AKS-A", "1.36.3", "1.36", ["img-2", "img-1", "img-2", None]),
              cluster("/x/aks-b", None, "1.37", []), cluster("/x/aks-c", None, None, [None])]
    clients = clients_with()
    monkeypatch.setattr(update_runs, "list_clusters",
                        lambda given, spec: listed if given is clients and spec is SPEC else [])
    assert update_runs.cluster_versions(clients, SPEC) == {
        "/x/aks-a": "1.36.3 (img-1, img-2)", "/x/aks-b": "1.37 (no image)", "/x/aks-c": "? (no image)"}


def test_states_the_sdk_does_not_know_are_kept_as_text_and_a_member_without_status_has_not_started():
    run = run_of([{"name": "s1", "status": {"state": "Paused"}, "groups": [{"name": "g1", "members": [
        {"name": "aks-a", "clusterResourceId": CLUSTER + "aks-a"}, member("aks-b", "Draining")]}]}], state="Paused")
    view = update_runs.view_run(run)
    assert (view.state, view.stage_states) == ("Paused", {"s1": "Paused"})
    assert [(m.member, m.state, m.start, m.end, m.message) for m in view.members] == [
        ("aks-a", "NotStarted", None, None, None), ("aks-b", "Draining", None, None, None)]


def test_a_gate_is_named_by_the_last_segment_of_its_id():
    run = run_of([{"name": "s1", "beforeGates": [gate("Pending", GATES + "approve-X/")]}])
    assert update_runs.view_run(run).pending_gate.gate_name == "approve-X"  # type: ignore[union-attr]


def test_a_member_still_upgrading_has_no_duration_and_every_failure_is_listed():
    started = member("aks-a", "Running")
    started["status"]["startTime"] = "2026-11-24T10:00:00Z"
    view = update_runs.view_run(run_of([{"name": "s1", "groups": [{"name": "g1", "members": [
        started, member("aks-b", "Failed", message="drain failed"), member("aks-c", "Failed", message="timeout")]}]}]))
    assert [row["seconds"] for row in update_runs.member_rows(view, {}, {})] == ["", "", ""]
    report = update_runs.stage_report(view, "s1", {}, {})
    assert report.endswith("Failures: 2\n- `aks-b`: drain failed\n- `aks-c`: timeout")
