"""Answering a staged-upgrade approval from a terminal or CI (Prefect's CLI has no resume command)."""

from __future__ import annotations

import getpass
import os
from uuid import UUID

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName
from prefect.client.schemas.objects import FlowRun
from prefect.flow_runs import resume_flow_run


class ApprovalError(RuntimeError):
    """The flow run cannot be answered: not found, ambiguous, or not waiting for an approval."""


def find_flow_run(reference: str) -> FlowRun:
    """A flow run by id, or by name (e.g. `crimson-falcon`)."""
    with get_client(sync_client=True) as client:
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


def answer_pending_approval(reference: str, *, approve: bool, comment: str, approver: str | None = None) -> str:
    """Resume a paused staged-upgrade run with an approval or a rejection; returns what was done."""
    if not approve and not comment.strip():
        raise ApprovalError("a rejection needs a reason (--reason)")
    run = find_flow_run(reference)
    if not run.state or not run.state.is_paused():
        state = run.state.name if run.state else "unknown"
        raise ApprovalError(f"flow run {run.name} ({run.id}) is {state}, not waiting for an approval")
    who = approver or os.environ.get("USER") or getpass.getuser()
    resume_flow_run(run.id, run_input={"approve": approve, "approver": who, "comment": comment})
    verb = "approved" if approve else "rejected"
    return f"{verb} the pending stage of flow run {run.name} ({run.id}) as {who}"
