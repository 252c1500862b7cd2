"""`fleetflow approve|reject` against an in-memory Prefect client: which flow run a reference finds, which runs are
refused (not paused, superseded by a later run of the same update run) with the whole message, what answer is
sent to the run, and how an unreachable or refusing Prefect API is reported."""

from __future__ import annotations

import datetime as dt
from typing import Any
from uuid import UUID

import httpx
import pytest
from prefect.client.schemas.filters import FlowRunFilter
from prefect.client.schemas.objects import FlowRun, State
from prefect.exceptions import ObjectNotFound
from prefect.settings import PREFECT_API_URL, temporary_settings
from prefect.states import Cancelled, Completed, Paused, Pending, Running, Scheduled

from console import approvals
from console.approvals import ApprovalError, answer_pending_approval, find_flow_run

API = "http://127.0.0.1:4200/api"
FLOW = UUID("00000000-0000-0000-0000-0000000000f0")
TAG = "update-run:rg-fleet/fleet/run-1"
T0 = dt.datetime(2026, 12, 1, 10, 0, tzinfo=dt.UTC)


def at(minutes: int) -> dt.datetime:
    return T0 + dt.timedelta(minutes=minutes)


def run(number: int, name: str, state: State | None = None, *, tags: list[str] | None = None,
        start: dt.datetime | None = None, created: dt.datetime | None = None) -> FlowRun:
    return FlowRun(id=UUID(int=number), flow_id=FLOW, name=name, state=state, tags=tags or [], start_time=start,
                   created=created)


class _SyncClient:
    """Stands in for Prefect's SyncPrefectClient: serves the runs it holds, filtered as the server filters."""

    def __init__(self, runs: list[FlowRun], fail: BaseException | None) -> None:
        self.runs, self.fail = runs, fail

    def __enter__(self) -> _SyncClient:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def read_flow_run(self, flow_run_id: UUID) -> FlowRun:
        if self.fail is not None:
            raise self.fail
        for flow_run in self.runs:
            if flow_run.id == flow_run_id:
                return flow_run
        raise ObjectNotFound(http_exc=Exception(f"flow run {flow_run_id} not found"))

    def read_flow_runs(self, *, flow_run_filter: FlowRunFilter | None = None) -> list[FlowRun]:
        if self.fail is not None:
            raise self.fail
        found = list(self.runs)
        if flow_run_filter is not None and flow_run_filter.name is not None and flow_run_filter.name.any_ is not None:
            found = [r for r in found if r.name in flow_run_filter.name.any_]
        if flow_run_filter is not None and flow_run_filter.tags is not None and flow_run_filter.tags.all_ is not None:
            found = [r for r in found if set(flow_run_filter.tags.all_) <= set(r.tags)]
        return found


class _AsyncOnlyClient:
    """What get_client() returns without sync_client=True: Prefect's async client refuses a plain `with`."""

    def __enter__(self) -> None:
        raise RuntimeError("The `PrefectClient` must be entered with an async context")

    def __exit__(self, *exc: object) -> None:
        return None


class Prefect:
    """The flow runs the API holds, and the answers sent to them."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.runs: list[FlowRun] = []
        self.fail: BaseException | None = None
        self.resumed: list[tuple[UUID, dict[str, Any]]] = []

        def get_client(*, sync_client: bool = False, **_: Any) -> Any:
            return _SyncClient(self.runs, self.fail) if sync_client else _AsyncOnlyClient()

        def resume_flow_run(flow_run_id: UUID, run_input: dict[str, Any] | None = None) -> None:
            self.resumed.append((flow_run_id, run_input or {}))

        monkeypatch.setattr(approvals, "get_client", get_client)
        monkeypatch.setattr(approvals, "resume_flow_run", resume_flow_run)


@pytest.fixture
def prefect(monkeypatch: pytest.MonkeyPatch) -> Prefect:
    # $USER names the approver before the login name getpass would find first.
    monkeypatch.setenv("USER", "alice")
    monkeypatch.setenv("LOGNAME", "alice-login")
    return Prefect(monkeypatch)


# --- finding the run ---------------------------------------------------------------------------------------


def test_a_run_is_found_by_its_id_or_its_name(prefect: Prefect):
    falcon, heron = run(1, "crimson-falcon", Paused()), run(2, "blue-heron", Paused())
    prefect.runs += [falcon, heron]
    assert find_flow_run(str(heron.id)) is heron
    assert find_flow_run("crimson-falcon") is falcon
    assert find_flow_run("blue-heron") is heron


@pytest.mark.parametrize(("names", "reference", "message"), [
    ([], "crimson-falcon", "no flow run has the id or name 'crimson-falcon'"),
    (["blue-heron"], "crimson-falcon", "no flow run has the id or name 'crimson-falcon'"),
    (["crimson-falcon", "crimson-falcon"], "crimson-falcon",
     "2 flow runs are named 'crimson-falcon'; pass the flow run id instead"),
    (["crimson-falcon", "crimson-falcon", "crimson-falcon", "blue-heron"], "crimson-falcon",
     "3 flow runs are named 'crimson-falcon'; pass the flow run id instead"),
])
def test_a_name_that_matches_no_run_or_several_is_refused(prefect: Prefect, names, reference, message):
    prefect.runs += [run(number, name, Paused()) for number, name in enumerate(names, 1)]
    with pytest.raises(ApprovalError) as refused:
        find_flow_run(reference)
    assert str(refused.value) == message


# --- answering -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("approve", "comment", "approver", "sent_as", "said"), [
    (True, "", None, "alice", "approved the pending stage of flow run crimson-falcon "
     "(00000000-0000-0000-0000-000000000001) as alice"),
    (True, "looks healthy", "bob", "bob", "approved the pending stage of flow run crimson-falcon "
     "(00000000-0000-0000-0000-000000000001) as bob"),
    (False, "pods crash-loop", None, "alice", "rejected the pending stage of flow run crimson-falcon "
     "(00000000-0000-0000-0000-000000000001) as alice"),
    (False, "  no  ", "carol", "carol", "rejected the pending stage of flow run crimson-falcon "
     "(00000000-0000-0000-0000-000000000001) as carol"),
])
def test_the_answer_resumes_the_paused_run_with_who_and_why(prefect: Prefect, approve, comment, approver, sent_as,
                                                            said):
    falcon = run(1, "crimson-falcon", Paused(), tags=[TAG], start=at(0))
    prefect.runs += [falcon, run(2, "blue-heron", Paused())]
    assert answer_pending_approval("crimson-falcon", approve=approve, comment=comment, approver=approver) == said
    assert prefect.resumed == [(falcon.id, {"approve": approve, "approver": sent_as, "comment": comment})]


def test_without_an_approver_or_user_the_login_name_answers(prefect: Prefect, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("USER")
    monkeypatch.setattr(approvals.getpass, "getuser", lambda: "dave")
    falcon = run(1, "crimson-falcon", Paused())
    prefect.runs.append(falcon)
    assert answer_pending_approval(str(falcon.id), approve=True, comment="ok") == (
        "approved the pending stage of flow run crimson-falcon (00000000-0000-0000-0000-000000000001) as dave")
    assert prefect.resumed == [(falcon.id, {"approve": True, "approver": "dave", "comment": "ok"})]


@pytest.mark.parametrize("comment", ["", "   ", "\n\t"])
def test_a_rejection_without_a_reason_is_refused_before_the_api_is_asked(prefect: Prefect, comment):
    prefect.fail = httpx.ConnectError("must not be reached")
    with pytest.raises(ApprovalError) as refused:
        answer_pending_approval("crimson-falcon", approve=False, comment=comment)
    assert str(refused.value) == "a rejection needs a reason (--reason)"
    assert prefect.resumed == []


@pytest.mark.parametrize(("state", "said"), [
    (Running(), "Running"), (Completed(), "Completed"), (Scheduled(), "Scheduled"), (Pending(), "Pending"),
    (Cancelled(), "Cancelled"), (None, "unknown"),
])
def test_a_run_that_is_not_paused_is_not_answered(prefect: Prefect, state, said):
    prefect.runs.append(run(1, "crimson-falcon", state, tags=[TAG]))
    with pytest.raises(ApprovalError) as refused:
        answer_pending_approval("crimson-falcon", approve=True, comment="")
    assert str(refused.value) == (f"flow run crimson-falcon (00000000-0000-0000-0000-000000000001) is {said}, "
                                  "not waiting for an approval")
    assert prefect.resumed == []


# --- a run superseded by a later run of the same update run ----------------------------------------------------

SUPERSEDED = ("flow run crimson-falcon (00000000-0000-0000-0000-000000000001) no longer follows update run "
              "rg-fleet/fleet/run-1: flow run {name} ({id}) took it over; answer that one")


def superseded_by(number: int, name: str) -> str:
    return SUPERSEDED.format(name=name, id=UUID(int=number))


@pytest.mark.parametrize(("me", "others", "refusal"), [
    # A later run of the same update run that is paused, running or scheduled takes over.
    (dict(start=at(0)), [run(2, "blue-heron", Paused(), tags=[TAG], start=at(5))], superseded_by(2, "blue-heron")),
    (dict(start=at(0)), [run(2, "blue-heron", Running(), tags=[TAG], start=at(5))], superseded_by(2, "blue-heron")),
    (dict(start=at(0)), [run(2, "blue-heron", Scheduled(), tags=[TAG], created=at(5))],
     superseded_by(2, "blue-heron")),
    # One that started at the same moment takes over too.
    (dict(start=at(0)), [run(2, "blue-heron", Running(), tags=[TAG], start=at(0))], superseded_by(2, "blue-heron")),
    # Of several, the newest is named, whatever order the API lists them in.
    (dict(start=at(0)), [run(2, "blue-heron", Running(), tags=[TAG], start=at(9)),
                         run(3, "green-owl", Paused(), tags=[TAG], start=at(20)),
                         run(4, "grey-wolf", Paused(), tags=[TAG], start=at(3))], superseded_by(3, "green-owl")),
    # The start time orders runs; the creation time only stands in for a run not started yet.
    (dict(start=at(10), created=at(0)), [run(2, "blue-heron", Running(), tags=[TAG], start=at(20), created=at(-5))],
     superseded_by(2, "blue-heron")),
    (dict(created=at(0)), [run(2, "blue-heron", Scheduled(), tags=[TAG], created=at(1))],
     superseded_by(2, "blue-heron")),
    # A run with neither time is as old as can be: any live run of the update run with a time is newer.
    ({}, [run(2, "blue-heron", Paused(), tags=[TAG], start=at(0))], superseded_by(2, "blue-heron")),
    ({}, [run(2, "blue-heron", Paused(), tags=[TAG])], superseded_by(2, "blue-heron")),
    # Not taken over: older live runs, ended runs, runs without a state, runs of another update run.
    (dict(start=at(10)), [run(2, "blue-heron", Paused(), tags=[TAG], start=at(5))], None),
    (dict(start=at(10), created=at(0)), [run(2, "blue-heron", Running(), tags=[TAG], start=at(5), created=at(9))],
     None),
    (dict(start=at(0)), [run(2, "blue-heron", Completed(), tags=[TAG], start=at(5)),
                         run(3, "green-owl", Cancelled(), tags=[TAG], start=at(6)),
                         run(4, "grey-wolf", Pending(), tags=[TAG], start=at(7)),
                         run(5, "red-fox", None, tags=[TAG], start=at(8))], None),
    (dict(start=at(0)), [run(2, "blue-heron", Paused(), tags=["update-run:rg-fleet/fleet/run-2"], start=at(5)),
                         run(3, "green-owl", Paused(), tags=["env:prod"], start=at(6))], None),
    (dict(), [], None),
])
def test_a_run_another_flow_run_took_over_is_not_answered(prefect: Prefect, me, others, refusal):
    falcon = run(1, "crimson-falcon", Paused(), tags=["env:prod", TAG], **me)
    prefect.runs += [falcon, *others]
    if refusal is None:
        answer_pending_approval("crimson-falcon", approve=True, comment="")
        assert [flow_run_id for flow_run_id, _ in prefect.resumed] == [falcon.id]
        return
    with pytest.raises(ApprovalError) as refused:
        answer_pending_approval("crimson-falcon", approve=True, comment="")
    assert str(refused.value) == refusal
    assert prefect.resumed == []


@pytest.mark.parametrize("tags", [[], ["env:prod"], ["run-1"]])
def test_a_run_that_follows_no_update_run_is_answered_without_looking_for_others(prefect: Prefect, tags):
    falcon = run(1, "crimson-falcon", Paused(), tags=tags, start=at(0))
    prefect.runs += [falcon, run(2, "blue-heron", Paused(), tags=tags, start=at(5))]
    answer_pending_approval("crimson-falcon", approve=True, comment="")
    assert [flow_run_id for flow_run_id, _ in prefect.resumed] == [falcon.id]


# --- the Prefect API unreachable or refusing -------------------------------------------------------------------


def _status(code: int) -> httpx.HTTPStatusError:
    request = httpx.Request("GET", f"{API}/flow_runs/filter")
    return httpx.HTTPStatusError("refused", request=request, response=httpx.Response(code, request=request))


UNREACHABLE = ("cannot reach the Prefect API at {url} ({reason}); start it (prefect server start) or point "
               "PREFECT_API_URL at the server running the flow")


@pytest.mark.parametrize(("url", "error", "message"), [
    (API, httpx.ConnectError("[Errno 111] Connection refused\nwhile connecting"),
     UNREACHABLE.format(url=API, reason="[Errno 111] Connection refused")),
    (API, httpx.ReadTimeout("  timed out  "), UNREACHABLE.format(url=API, reason="timed out")),
    (API, ConnectionRefusedError(), UNREACHABLE.format(url=API, reason="ConnectionRefusedError")),
    (API, httpx.ConnectError("   "), UNREACHABLE.format(url=API, reason="ConnectError")),
    (None, OSError("no route"), UNREACHABLE.format(url="(an ephemeral Prefect server)", reason="no route")),
    (API, _status(401), f"the Prefect API at {API} answered 401 Unauthorized; check PREFECT_API_URL (and "
                        "PREFECT_API_KEY)"),
    (None, _status(503), "the Prefect API at (an ephemeral Prefect server) answered 503 Service Unavailable; check "
                         "PREFECT_API_URL (and PREFECT_API_KEY)"),
])
@pytest.mark.parametrize("reference", ["crimson-falcon", "00000000-0000-0000-0000-000000000001"])
def test_an_api_that_cannot_be_reached_or_refuses_is_named_with_the_fix(prefect: Prefect, url, error, message,
                                                                       reference):
    prefect.fail = error
    with temporary_settings(updates={PREFECT_API_URL: url}):
        with pytest.raises(ApprovalError) as refused:
            answer_pending_approval(reference, approve=True, comment="")
        assert str(refused.value) == message
        with pytest.raises(ApprovalError) as refused:
            find_flow_run(reference)
        assert str(refused.value) == message
    assert prefect.resumed == []
