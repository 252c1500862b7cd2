"""The staged-upgrade approval path outside the flow body, against in-memory Prefect stand-ins: the answer a pause
returns (a human's, none when the timer or Prefect's own timeout ran out), what the timer sends on the approver's
behalf, the event announcing a waiting gate, which older flow runs of the same update run are cancelled, and the
health rows of a stage whose checks could not all run."""

from __future__ import annotations

import threading
from types import SimpleNamespace
from typing import Any
from uuid import UUID

import pytest
from prefect.client.schemas.filters import FlowRunFilter
from prefect.client.schemas.objects import FlowRun, State
from prefect.exceptions import FlowPauseTimeout
from prefect.settings import PREFECT_API_URL, PREFECT_UI_URL, temporary_settings
from prefect.states import Completed, Failed, Paused, Running, Scheduled

from flows import staged_upgrade
from flows.staged_upgrade import (
    PAUSE_SAFETY_MARGIN_SECONDS,
    TIMEOUT_APPROVER,
    StageApproval,
    announce_waiting,
    restart_baselines,
    stage_health,
    take_over_update_run,
    update_run_tag,
)
from tasks.spec import load_spec
from tasks.update_runs import MemberProgress, PendingGate, RunView, UpgradeRequest
from tasks.upgrade_health import HealthRow
from tests.paths import REPO

SPEC = load_spec(REPO / "fleet.yaml")
FLOW = UUID("00000000-0000-0000-0000-0000000000f0")
TAG = "update-run:rg-fleet-demo-7f3a2c/multicluster-fleet/run-1"
GATE = PendingGate(gate_name="gate-2", gate_id="/gates/gate-2", display_name="Approve stage stage2",
                   next_stage="stage2", previous_stage="stage1")


def flow_run(number: int, name: str, state: State | None, tags: list[str] | None = None) -> FlowRun:
    return FlowRun(id=UUID(int=number), flow_id=FLOW, name=name, state=state, tags=tags or [])


ME = flow_run(1, "crimson-falcon", Running(), tags=["env:prod"])


@pytest.fixture
def context(monkeypatch: pytest.MonkeyPatch) -> SimpleNamespace:
    """The flow run context the module reads (flow_run None or the context None: outside a flow run)."""
    holder = SimpleNamespace(context=SimpleNamespace(flow_run=ME))
    monkeypatch.setattr(staged_upgrade.FlowRunContext, "get", classmethod(lambda cls: holder.context))
    return holder


def test_the_update_run_tag_names_group_fleet_and_run():
    assert update_run_tag(SPEC, "run-1") == TAG


# --- waiting for the approver's answer ----------------------------------------------------------------------------


class Pause:
    """Stands in for pause_flow_run / resume_flow_run: a pause returns the input a resume carried (the timer's), or
    the human answer set beforehand, or raises Prefect's pause timeout."""

    def __init__(self) -> None:
        self.asked: list[dict[str, Any]] = []
        self.resumed: list[tuple[UUID, dict[str, Any]]] = []
        self.resume = threading.Event()
        self.human: StageApproval | None = None
        self.wait_for_timer = False
        self.timeout = False
        self.timers: list[threading.Timer] = []
        self.earlier = set(threading.enumerate())  # timers of earlier tests may still be ending

    def pause_flow_run(self, **kwargs: Any) -> StageApproval:
        self.asked.append(kwargs)
        self.timers = [thread for thread in threading.enumerate()
                       if isinstance(thread, threading.Timer) and thread not in self.earlier]
        if self.timeout:
            raise FlowPauseTimeout("paused too long")
        if self.wait_for_timer:
            assert self.resume.wait(10), "the timer never answered"
        if self.human is not None:
            return self.human
        return StageApproval(**self.resumed[-1][1])

    def resume_flow_run(self, flow_run_id: UUID, run_input: dict[str, Any] | None = None) -> None:
        self.resumed.append((flow_run_id, run_input or {}))
        self.resume.set()


@pytest.fixture
def pause(monkeypatch: pytest.MonkeyPatch, context: SimpleNamespace) -> Pause:
    stand_in = Pause()
    monkeypatch.setattr(staged_upgrade, "pause_flow_run", stand_in.pause_flow_run)
    monkeypatch.setattr(staged_upgrade, "resume_flow_run", stand_in.resume_flow_run)
    return stand_in


@pytest.mark.parametrize(("answer", "poll_seconds", "poll_interval"), [
    (StageApproval(approve=True, approver="bob", comment="healthy"), 15.0, 15),
    (StageApproval(approve=False, approver="carol", comment="pods crash-loop"), 0.4, 1),
    (StageApproval(approve=True, approver="", comment=""), 2.9, 2),
])
def test_a_human_answer_before_the_timeout_is_returned_and_the_timer_sends_nothing(pause: Pause, answer,
                                                                                  poll_seconds, poll_interval):
    pause.human = answer
    got = staged_upgrade._ask_for_approval("## report", GATE, 3600, poll_seconds)
    assert got is answer
    [asked] = pause.asked
    assert (asked["timeout"], asked["poll_interval"], asked["key"]) == (
        3600 + PAUSE_SAFETY_MARGIN_SECONDS, poll_interval, "gate-2")
    form = asked["wait_for_input"]
    assert issubclass(form, StageApproval)
    assert form._description == "## report"
    assert form().model_dump() == {"approve": False, "approver": "", "comment": ""}
    # The timer runs beside the pause without keeping the process alive, and is cancelled by the answer.
    [timer] = pause.timers
    assert timer.daemon
    assert timer.finished.is_set()
    assert pause.resumed == []


def test_no_answer_in_time_resumes_the_run_as_not_approved_and_returns_none(pause: Pause):
    pause.wait_for_timer = True
    assert staged_upgrade._ask_for_approval("## report", GATE, 0, 1.0) is None
    assert pause.resumed == [(ME.id, {"approve": False, "approver": TIMEOUT_APPROVER,
                                      "comment": "no answer within 0s"})]
    assert pause.asked[0]["timeout"] == PAUSE_SAFETY_MARGIN_SECONDS


def test_a_human_answer_given_as_the_timer_ran_out_is_kept(pause: Pause):
    pause.wait_for_timer = True
    pause.human = StageApproval(approve=True, approver="bob", comment="just in time")
    assert staged_upgrade._ask_for_approval("## report", GATE, 0, 1.0) is pause.human


def test_an_answer_signed_as_the_timer_without_the_timer_running_out_is_returned(pause: Pause):
    pause.human = StageApproval(approve=False, approver=TIMEOUT_APPROVER, comment="typed by hand")
    assert staged_upgrade._ask_for_approval("## report", GATE, 3600, 1.0) is pause.human


def test_the_timer_failing_to_resume_still_ends_the_wait_unanswered(pause: Pause, monkeypatch: pytest.MonkeyPatch):
    def refused(flow_run_id: UUID, run_input: dict[str, Any] | None = None) -> None:
        pause.resume_flow_run(flow_run_id, run_input)
        raise RuntimeError("the run is not paused")

    crashed: list[Any] = []
    monkeypatch.setattr(threading, "excepthook", crashed.append)
    monkeypatch.setattr(staged_upgrade, "resume_flow_run", refused)
    pause.wait_for_timer = True
    assert staged_upgrade._ask_for_approval("## report", GATE, 0, 1.0) is None
    for thread in threading.enumerate():
        if isinstance(thread, threading.Timer) and thread not in pause.earlier:
            thread.join(10)
    assert crashed == []  # the refusal is swallowed in the timer, not raised there


@pytest.mark.parametrize("outside", [None, SimpleNamespace(flow_run=None)])
def test_outside_a_flow_run_there_is_nothing_to_pause(pause: Pause, context: SimpleNamespace, outside):
    context.context = outside
    with pytest.raises(AssertionError):
        staged_upgrade._ask_for_approval("## report", GATE, 3600, 1.0)
    assert pause.asked == []


def test_prefects_pause_timeout_is_no_answer(pause: Pause):
    pause.timeout = True
    assert staged_upgrade._ask_for_approval("## report", GATE, 3600, 1.0) is None
    assert pause.resumed == []


# --- announcing the waiting gate ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("ui", "link"), [
    ("http://127.0.0.1:4200", "http://127.0.0.1:4200/runs/flow-run/00000000-0000-0000-0000-000000000001"),
    (None, ""),
])
@pytest.mark.parametrize(("gate", "previous"), [(GATE, "stage1"),
                                                (GATE.model_copy(update={"previous_stage": None}), "")])
def test_the_waiting_event_names_the_run_the_fleet_and_carries_the_health_and_link(
        context: SimpleNamespace, monkeypatch: pytest.MonkeyPatch, ui, link, gate, previous):
    import prefect.events

    emitted: list[dict[str, Any]] = []
    monkeypatch.setattr(prefect.events, "emit_event", lambda **event: emitted.append(event))
    # Without a UI URL Prefect derives one from the API URL; no API URL either, so no link at all.
    with temporary_settings(updates={PREFECT_UI_URL: ui, PREFECT_API_URL: None}):
        announce_waiting(SPEC, "run-1", gate, "Health of stage stage1: 3 passed")
    assert emitted == [{
        "event": "fleetflow.approval.waiting",
        "resource": {"prefect.resource.id": f"prefect.flow-run.{ME.id}", "prefect.resource.name": "crimson-falcon"},
        "related": [{"prefect.resource.id": "fleetflow.fleet.rg-fleet-demo-7f3a2c/multicluster-fleet",
                     "prefect.resource.role": "fleet", "prefect.resource.name": "multicluster-fleet"},
                    {"prefect.resource.id": f"prefect.flow.{FLOW}", "prefect.resource.role": "flow",
                     "prefect.resource.name": "staged-upgrade"}],
        "payload": {"fleet": "multicluster-fleet", "update_run": "run-1", "next_stage": "stage2",
                    "previous_stage": previous, "health": "Health of stage stage1: 3 passed",
                    "flow_run_id": str(ME.id), "flow_run_name": "crimson-falcon", "run_url": link},
    }]


@pytest.mark.parametrize("outside", [None, SimpleNamespace(flow_run=None)])
def test_outside_a_flow_run_nothing_is_announced(context: SimpleNamespace, monkeypatch: pytest.MonkeyPatch, outside):
    import prefect.events

    emitted: list[dict[str, Any]] = []
    monkeypatch.setattr(prefect.events, "emit_event", lambda **event: emitted.append(event))
    context.context = outside
    announce_waiting(SPEC, "run-1", GATE, "summary")
    assert emitted == []


# --- taking over an update run from older flow runs ---------------------------------------------------------------


class Client:
    """Stands in for Prefect's sync client: the flow runs it holds (filtered by tags as the server does), the tags
    and states written."""

    def __init__(self, runs: list[FlowRun], refuse: set[UUID]) -> None:
        self.runs, self.refuse = runs, refuse
        self.tagged: list[tuple[UUID, list[str]]] = []
        self.states: list[tuple[UUID, str, str | None, bool]] = []

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def update_flow_run(self, flow_run_id: UUID, tags: list[str]) -> None:
        self.tagged.append((flow_run_id, tags))

    def read_flow_runs(self, *, flow_run_filter: FlowRunFilter | None = None) -> list[FlowRun]:
        wanted = set(flow_run_filter.tags.all_ or []) if flow_run_filter and flow_run_filter.tags else set()
        return [run for run in self.runs if wanted <= set(run.tags)]

    def set_flow_run_state(self, flow_run_id: UUID, state: State, force: bool = False) -> None:
        if flow_run_id in self.refuse:
            raise RuntimeError("the run ended meanwhile")
        self.states.append((flow_run_id, state.name, state.message, force))


@pytest.fixture
def prefect(monkeypatch: pytest.MonkeyPatch, context: SimpleNamespace) -> SimpleNamespace:
    import prefect.client.orchestration

    holder = SimpleNamespace(runs=[], refuse=set(), client=None)

    def get_client(*, sync_client: bool = False, **_: Any) -> Client:
        assert sync_client, "the module enters the client with a plain `with`"
        holder.client = Client(holder.runs, holder.refuse)
        return holder.client

    monkeypatch.setattr(prefect.client.orchestration, "get_client", get_client)
    return holder


SUPERSEDED = ("superseded: flow run crimson-falcon (00000000-0000-0000-0000-000000000001) took over update run run-1; "
              "answer its approvals instead")


def test_older_paused_or_running_runs_of_the_update_run_are_cancelled(prefect: SimpleNamespace):
    me = ME.model_copy(update={"tags": ["env:prod", TAG]})
    prefect.runs += [me, flow_run(2, "blue-heron", Paused(), [TAG]), flow_run(3, "green-owl", Running(), [TAG]),
                     flow_run(4, "grey-wolf", Completed(), [TAG]), flow_run(5, "red-fox", Scheduled(), [TAG]),
                     flow_run(6, "no-state", None, [TAG]), flow_run(7, "other-run", Paused(), ["update-run:x/y/z"]),
                     flow_run(8, "ended-meanwhile", Paused(), [TAG])]
    prefect.refuse.add(UUID(int=8))
    assert take_over_update_run(SPEC, "run-1") == ["blue-heron (00000000-0000-0000-0000-000000000002)",
                                                   "green-owl (00000000-0000-0000-0000-000000000003)"]
    assert prefect.client.tagged == [(ME.id, ["env:prod", TAG])]
    assert prefect.client.states == [(UUID(int=2), "Cancelled", SUPERSEDED, True),
                                     (UUID(int=3), "Cancelled", SUPERSEDED, True)]


def test_a_run_without_tags_gets_the_update_run_tag(prefect: SimpleNamespace, context: SimpleNamespace):
    context.context = SimpleNamespace(flow_run=ME.model_copy(update={"tags": []}))
    assert take_over_update_run(SPEC, "run-1") == []
    assert prefect.client.tagged == [(ME.id, [TAG])]


@pytest.mark.parametrize("outside", [None, SimpleNamespace(flow_run=None)])
def test_outside_a_flow_run_nothing_is_taken_over(prefect: SimpleNamespace, context: SimpleNamespace, outside):
    context.context = outside
    prefect.runs.append(flow_run(2, "blue-heron", Paused(), [TAG]))
    assert take_over_update_run(SPEC, "run-1") == []
    assert prefect.client is None


# --- restart baselines and the health of a stage ------------------------------------------------------------------


class Future:
    def __init__(self, state: State, value: Any) -> None:
        self.state, self.value, self.waited = state, value, False

    def wait(self) -> None:
        self.waited = True

    def result(self, raise_on_failure: bool = True) -> Any:
        assert self.waited, "read before it was waited for"
        if raise_on_failure and not self.state.is_completed():
            raise self.value
        return self.value


EAST, WEST = "aks-multicluster-fleet-eastus", "aks-multicluster-fleet-westus2"
CLUSTERS = {cluster.name: cluster for cluster in SPEC.clusters()}


def test_a_baseline_that_could_not_be_read_counts_every_restart(monkeypatch: pytest.MonkeyPatch):
    calls: list[tuple[Any, ...]] = []

    def map_(spec: Any, clusters: list[Any], block: Any) -> list[Future]:
        calls.append((spec.value, [cluster.name for cluster in clusters], block.value))
        return [Future(Completed(), {"uid-1": 2}), Future(Failed(message="unreachable"), RuntimeError("down"))]

    monkeypatch.setattr(staged_upgrade, "read_restart_baseline", SimpleNamespace(map=map_))
    assert restart_baselines(SPEC, [CLUSTERS[EAST], CLUSTERS[WEST]], "fleetflow-azure") == {
        EAST: {"uid-1": 2}, WEST: {}}
    assert calls == [(SPEC, [EAST, WEST], "fleetflow-azure")]


def test_the_health_of_a_stage_checks_its_clusters_and_fails_for_each_check_that_could_not_run(
        monkeypatch: pytest.MonkeyPatch):
    submitted: list[tuple[Any, ...]] = []
    east = [HealthRow(cluster=EAST, check="pod restarts", object="1 pods", result="passed", detail="all 1 healthy")]

    def submit(spec: Any, cluster: Any, upgrade_type: str, target: str | None, baseline: dict[str, int],
               block: str) -> Future:
        submitted.append((spec, cluster.name, upgrade_type, target, baseline, block))
        if cluster.name == EAST:
            return Future(Completed(), east)
        return Future(Failed(message="crashed"), RuntimeError("kubeconfig refused"))

    monkeypatch.setattr(staged_upgrade, "check_upgraded_cluster", SimpleNamespace(submit=submit))
    view = RunView(name="run-1", run_id="id", state="Running", members=[
        MemberProgress(stage="stage2", group="prod-group", member=WEST, cluster_id=None, state="Completed"),
        MemberProgress(stage="stage1", group="test-group", member=EAST, cluster_id=None, state="Completed"),
        MemberProgress(stage="stage2", group="prod-group", member="aks-multicluster-fleet-centralus", cluster_id=None,
                       state="Completed")])
    request = UpgradeRequest(upgrade_type="Full", kubernetes_version="1.37.2")
    rows = stage_health(SPEC, view, "stage2", request, {WEST: {"u": 1}, EAST: {"v": 2}}, "fleetflow-azure")
    assert submitted == [(SPEC, WEST, "Full", "1.37.2", {"u": 1}, "fleetflow-azure"),
                         (SPEC, "aks-multicluster-fleet-centralus", "Full", "1.37.2", {}, "fleetflow-azure")]
    failed = HealthRow(cluster="multicluster-fleet", check="health check ran", object="-", result="failed",
                       detail="upgrade health: kubeconfig refused")
    assert rows == [failed, failed]
    submitted.clear()
    assert stage_health(SPEC, view, "stage1", request, {}, "fleetflow-azure") == east
    assert submitted == [(SPEC, EAST, "Full", "1.37.2", {}, "fleetflow-azure")]
