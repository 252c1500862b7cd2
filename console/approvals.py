"""Answering a staged-upgrade approval from a terminal or CI (Prefect's CLI has no resume command)."""

from __future__ import annotations

import contextlib
import getpass
import os
from collections.abc import Iterator
from uuid import UUID

import httpx
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName, FlowRunFilterTags
from prefect.client.schemas.objects import FlowRun
from prefect.flow_runs import resume_flow_run

from tasks.update_runs import UPDATE_RUN_TAG


class ApprovalError(RuntimeError):
    """The flow run cannot be answered: not found, ambiguous, or not waiting for an approval."""


def _api_url() -> str:
    from prefect.settings import PREFECT_API_URL

    return str(PREFECT_API_URL.value() or "(an ephemeral Prefect server)")


@contextlib.contextmanager
def prefect_api() -> Iterator[None]:
    """Turn a Prefect API that cannot be reached into an ApprovalError naming the URL and the fix."""
    try:
        yield
    except (httpx.TransportError, OSError) as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ApprovalError(f"cannot reach the Prefect API at {_api_url()} ({reason}); start it (prefect server "
                            "start) or point PREFECT_API_URL at the server running the flow") from None
    except httpx.HTTPStatusError as error:
        raise ApprovalError(f"the Prefect API at {_api_url()} answered {error.response.status_code} "
                            f"{error.response.reason_phrase}; check PREFECT_API_URL (and PREFECT_API_KEY)") from None


def find_flow_run(reference: str) -> FlowRun:
    """A flow run by id, or by name (e.g. `crimson-falcon`)."""
    with prefect_api(), get_client(sync_client=True) as client:
        try:
            return client.read_flow_run(UUID(reference))
        except ValueError:
            pass
        runs = client.read_flow_runs(flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=[reference])))
    if not runs:
        raise ApprovalError(f"no flow run has the id or name {reference!r}")
    if len(runs) > 1:
        raise ApprovalError(f"{len(runs)} flow runs are named {reference!r}; pass the flow run id instead")
    return runs[0]




def _require_live_follower(run: FlowRun) -> None:
    """Refuse a paused run that no longer follows its update run: a later staged-upgrade flow run of the same
    update run took over (an answer here would reach no one), naming that run."""
    tags = [tag for tag in (run.tags or []) if tag.startswith(UPDATE_RUN_TAG)]
    if not tags:
        return
    with get_client(sync_client=True) as client:
        others = client.read_flow_runs(flow_run_filter=FlowRunFilter(tags=FlowRunFilterTags(all_=tags[:1])))
    def started(flow_run: FlowRun) -> float:
        moment = flow_run.start_time or flow_run.created
        return moment.timestamp() if moment is not None else 0.0

    live = [other for other in others if other.id != run.id and other.state is not None
            and (other.state.is_paused() or other.state.is_running() or other.state.is_scheduled())
            and started(other) >= started(run)]
    if live:
        newest = max(live, key=started)
        raise ApprovalError(f"flow run {run.name} ({run.id}) no longer follows update run "
                            f"{tags[0][len(UPDATE_RUN_TAG):]}: flow run {newest.name} ({newest.id}) took it over; "
                            f"answer that one")


def answer_pending_approval(reference: str, *, approve: bool, comment: str, approver: str | None = None) -> str:
    """Resume a paused staged-upgrade run with an approval or a rejection; returns what was done."""
    if not approve and not comment.strip():
        raise ApprovalError("a rejection needs a reason (--reason)")
    with prefect_api():
        return _answer(reference, approve=approve, comment=comment, approver=approver)


def _answer(reference: str, *, approve: bool, comment: str, approver: str | None) -> str:
    run = find_flow_run(reference)
    if not run.state or not run.state.is_paused():
        state = run.state.name if run.state else "unknown"
        raise ApprovalError(f"flow run {run.name} ({run.id}) is {state}, not waiting for an approval")
    _require_live_follower(run)
    who = approver or os.environ.get("USER") or getpass.getuser()
    resume_flow_run(run.id, run_input={"approve": approve, "approver": who, "comment": comment})
    verb = "approved" if approve else "rejected"
    return f"{verb} the pending stage of flow run {run.name} ({run.id}) as {who}"
