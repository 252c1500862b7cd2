"""staged-upgrade: a Fleet update run, stage by stage, with a health check of each stage's clusters and an
approval (a human's, or the spec's auto-approve policy's when every check passed) before each next stage."""

from __future__ import annotations

import contextlib
import threading
from typing import Any, cast
from uuid import UUID

from prefect import flow, get_run_logger, unmapped
from prefect.artifacts import create_progress_artifact
from prefect.context import FlowRunContext
from prefect.exceptions import FlowPauseTimeout
from prefect.flow_runs import pause_flow_run, resume_flow_run
from prefect.input import RunInput
from pydantic import Field

from flows.common import gather, region_task_runner, share_write_budget
from tasks import update_runs
from tasks.artifacts import artifact_key, publish_markdown, publish_table
from tasks.fleet_source import resolve_fleet_spec
from tasks.spec import ClusterSpec, FleetSpec, NodeImageSelection, StageSpec, UpgradeType
from tasks.staged_upgrade import (
    attach_or_start_run,
    complete_gate,
    ensure_update_strategy,
    follow_run,
    read_cluster_versions,
    stop_update_run,
)
from tasks.update_runs import UPDATE_RUN_TAG, PendingGate, RunView, UpgradeRequest
from tasks.upgrade_health import (
    WAITING_EVENT,
    HealthRow,
    auto_approval,
    check_upgraded_cluster,
    fleet_resource_id,
    health_counts,
    health_report,
    health_summary,
    read_restart_baseline,
    stage_clusters,
)

TIMEOUT_APPROVER = "fleetflow-approval-timeout"
PAUSE_SAFETY_MARGIN_SECONDS = 600


class StageApproval(RunInput):
    """The approver's answer, entered in the Prefect UI's resume form or with `fleetflow approve|reject`."""

    approve: bool = Field(False, description="Tick to start the next stage; leave unticked to reject and stop "
                                              "the update run.")
    approver: str = Field("", description="Who answers, for the record.")
    comment: str = Field("", description="Why (required to reject).")


class UpgradeNotApproved(RuntimeError):
    """The next stage was rejected or nobody approved in time; the update run was stopped."""


class UpdateRunFailed(RuntimeError):
    """The update run ended without completing."""


def update_run_tag(spec: FleetSpec, run_name: str) -> str:
    """The flow-run tag naming the update run a staged-upgrade flow run follows (fleet and run name)."""
    return f"{UPDATE_RUN_TAG}{spec.resource_group_name}/{spec.name}/{run_name}"


def take_over_update_run(spec: FleetSpec, run_name: str) -> list[str]:
    """Mark this flow run as the one following `run_name`, and cancel older flow runs of the same update run
    still Paused or Running (e.g. killed while waiting for an approval): an approval given to one of them
    would reach no one. Returns the names of the runs cancelled."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterTags
    from prefect.states import Cancelled

    context = FlowRunContext.get()
    if context is None or context.flow_run is None:
        return []
    me = context.flow_run
    tag = update_run_tag(spec, run_name)
    cancelled = []
    with get_client(sync_client=True) as client:
        client.update_flow_run(me.id, tags=sorted({*(me.tags or []), tag}))
        others = client.read_flow_runs(flow_run_filter=FlowRunFilter(tags=FlowRunFilterTags(all_=[tag])))
        for other in others:
            if other.id == me.id or other.state is None or not (other.state.is_paused() or
                                                                 other.state.is_running()):
                continue
            message = (f"superseded: flow run {me.name} ({me.id}) took over update run {run_name}; answer its "
                       "approvals instead")
            with contextlib.suppress(Exception):  # it may have ended meanwhile
                client.set_flow_run_state(other.id, Cancelled(message=message), force=True)
                cancelled.append(f"{other.name} ({other.id})")
    return cancelled


def restart_baselines(spec: FleetSpec, clusters: list[ClusterSpec],
                      credentials_block: str) -> dict[str, dict[str, int]]:
    """Restarts per pod of each cluster as its stage begins (cluster name -> pod uid -> restarts); a cluster
    that cannot be read gets none, so all of its pods' restarts count."""
    baselines: dict[str, dict[str, int]] = {}
    for cluster, future in zip(clusters, read_restart_baseline.map(unmapped(spec), clusters,
                                                                   unmapped(credentials_block)), strict=True):
        future.wait()
        baselines[cluster.name] = future.result() if future.state.is_completed() else {}
    return baselines


def stage_health(spec: FleetSpec, view: RunView, stage: str | None, request: UpgradeRequest,
                 baselines: dict[str, dict[str, int]], credentials_block: str) -> list[HealthRow]:
    """Every health check of every cluster the stage upgraded, in parallel; a check that could not run fails."""
    clusters = stage_clusters(spec, view, stage)
    futures = [check_upgraded_cluster.submit(spec, cluster, request.upgrade_type, request.kubernetes_version,
                                             baselines.get(cluster.name, {}), credentials_block)
               for cluster in clusters]
    results, errors = gather("upgrade health", futures)
    rows: list[HealthRow] = [row for group in results for row in group]
    return rows + [HealthRow(cluster=spec.name, check="health check ran", object="-", result="failed", detail=error)
                   for error in errors]


def announce_waiting(spec: FleetSpec, run_name: str, gate: PendingGate, summary: str) -> None:
    """Tell Prefect's automations this run is about to pause at a gate: an event about the flow run, related to
    the fleet, carrying the health summary and the run's link (what the approvers' notification sends)."""
    from prefect.events import emit_event
    from prefect.utilities.urls import url_for

    context = FlowRunContext.get()
    if context is None or context.flow_run is None:
        return
    run = context.flow_run
    emit_event(
        event=WAITING_EVENT,
        resource={"prefect.resource.id": f"prefect.flow-run.{run.id}", "prefect.resource.name": run.name},
        related=[{"prefect.resource.id": fleet_resource_id(spec), "prefect.resource.role": "fleet",
                  "prefect.resource.name": spec.name},
                 {"prefect.resource.id": f"prefect.flow.{run.flow_id}", "prefect.resource.role": "flow",
                  "prefect.resource.name": "staged-upgrade"}],
        payload={"fleet": spec.name, "update_run": run_name, "next_stage": gate.next_stage,
                 "previous_stage": gate.previous_stage or "", "health": summary, "flow_run_id": str(run.id),
                 "flow_run_name": run.name, "run_url": url_for("flow-run", obj_id=run.id, url_type="ui") or ""},
    )


def _ask_for_approval(report: str, gate: PendingGate, timeout_seconds: int,
                      poll_seconds: float) -> StageApproval | None:
    """Pause for the approver's answer; None when nobody answered within the timeout.

    fleetflow enforces the timeout itself (a timer answers "not approved" on the approver's behalf)
    so that the flow can still stop the update run; Prefect's own pause timeout, which would fail the
    flow run before it could act, is only a later safety net for a flow process that died.
    """
    context = FlowRunContext.get()
    assert context is not None and context.flow_run is not None
    flow_run_id = context.flow_run.id
    expired = threading.Event()

    def expire() -> None:
        expired.set()
        with contextlib.suppress(Exception):  # a human may have answered at the same moment
            resume_flow_run(flow_run_id, run_input={"approve": False, "approver": TIMEOUT_APPROVER,
                                                    "comment": f"no answer within {timeout_seconds}s"})

    timer = threading.Timer(timeout_seconds, expire)
    timer.daemon = True
    timer.start()
    try:
        answer = pause_flow_run(
            wait_for_input=StageApproval.with_initial_data(description=report, approve=False),
            timeout=timeout_seconds + PAUSE_SAFETY_MARGIN_SECONDS, poll_interval=max(1, int(poll_seconds)),
            key=gate.gate_name,
        )
    except FlowPauseTimeout:
        return None
    finally:
        timer.cancel()
    if expired.is_set() and answer.approver == TIMEOUT_APPROVER:
        return None
    return answer


@flow(name="staged-upgrade", task_runner=region_task_runner())
def staged_upgrade(
    fleet: str = "fleet.yaml",
    credentials_block: str = "fleetflow-azure",
    upgrade_type: UpgradeType = "Full",
    kubernetes_version: str | None = None,
    node_image_selection: NodeImageSelection = "Latest",
    stages: list[StageSpec] | None = None,
    approval_timeout_seconds: int = 8 * 3600,
    poll_seconds: float = 15.0,
) -> list[dict[str, Any]]:
    """Upgrade the fleet stage by stage through a Fleet update run, pausing for approval between stages.

    Before each gate, every cluster of the stage just done is health-checked (upgrade_health in the spec); the
    report the approver reads holds the results. The spec's auto-approve policy completes the gate itself
    when the upgrade type is listed and every check passed; otherwise a human answers.

    Kubernetes version is required for Full and ControlPlaneOnly and refused for NodeImageOnly. Running
    it again with the same parameters attaches to the update run already in progress.

    Args:
        fleet: The fleet spec: a YAML path such as fleet.yaml, or block:<name> for a saved fleet-spec block.
        credentials_block: Name of the fleetflow Azure Service Principal block to authenticate with.
        upgrade_type: Full (control plane, then node images), ControlPlaneOnly or NodeImageOnly.
        kubernetes_version: Target version, e.g. 1.37 or 1.37.2; required unless upgrade_type is NodeImageOnly.
        node_image_selection: Latest (newest image at each member's turn) or Consistent (one image for all).
        stages: Stages of update groups to use instead of the fleet spec's update strategy.
        approval_timeout_seconds: How long to wait for an approval before stopping the update run.
        poll_seconds: How often to read the update run.
    """
    logger = get_run_logger()
    request = UpgradeRequest(upgrade_type=upgrade_type, kubernetes_version=kubernetes_version,
                             node_image_selection=node_image_selection, stages=stages)
    spec = resolve_fleet_spec(fleet)
    share_write_budget(spec, credentials_block)
    chosen_stages = update_runs.desired_stages(spec, request.stages)
    versions_before = read_cluster_versions(spec, credentials_block)
    strategy_id = ensure_update_strategy(spec, chosen_stages, credentials_block)
    run_name = attach_or_start_run(spec, request, chosen_stages, strategy_id, credentials_block)
    for superseded in take_over_update_run(spec, run_name):
        logger.warning("cancelled flow run %s: this run now follows update run %s", superseded, run_name)
    baselines = restart_baselines(spec, spec.clusters(), credentials_block)
    progress_id = cast(UUID, create_progress_artifact(0.0, key=artifact_key("upgrade-progress", spec.name),
                                                      description=f"Members done in update run {run_name}"))

    while True:
        view = follow_run(spec, run_name, progress_id, versions_before, poll_seconds, credentials_block)
        if view.is_terminal:
            break
        gate = view.pending_gate
        assert gate is not None  # follow_run returns only at a gate or at the end
        versions_now = read_cluster_versions(spec, credentials_block)
        health = stage_health(spec, view, gate.previous_stage, request, baselines, credentials_block)
        counts = health_counts(health)
        publish_table(f"upgrade-health-{spec.name}", health,
                      f"Health of stage {gate.previous_stage} of {run_name}: {counts['passed']} passed, "
                      f"{counts['failed']} failed, {counts['skipped']} skipped")
        approved, policy = auto_approval(spec.upgrade_health, request.upgrade_type, gate.previous_stage, health)
        report = "\n\n".join([update_runs.stage_report(view, gate.previous_stage, versions_before, versions_now),
                               health_report(gate.previous_stage, health), f"**Auto-approve policy:** {policy}."])
        for row in health:
            if row["result"] != "passed":
                logger.warning("health of %s: %s %s on %s: %s", gate.previous_stage, row["check"], row["result"],
                               row["cluster"], f"{row['object']}: {row['detail']}")
        if approved:
            publish_markdown(f"upgrade-approval-{spec.name}", report,
                             f"Stage {gate.next_stage} of {run_name} approved by the auto-approve policy")
            logger.info("stage %s %s", gate.next_stage, policy)
            baselines |= restart_baselines(spec, stage_clusters(spec, view, gate.next_stage), credentials_block)
            complete_gate(spec, gate, credentials_block)
            continue
        publish_markdown(f"upgrade-approval-{spec.name}", report, f"Approve stage {gate.next_stage} of {run_name}?")
        announce_waiting(spec, run_name, gate, health_summary(gate.previous_stage, health))
        logger.info("update run %s waits for approval of stage %s (%s)", run_name, gate.next_stage, policy)
        answer = _ask_for_approval(report, gate, approval_timeout_seconds, poll_seconds)
        if answer is None:
            stop_update_run(spec, run_name, credentials_block)
            raise UpgradeNotApproved(f"nobody approved stage {gate.next_stage} of update run {run_name} within "
                                     f"{approval_timeout_seconds}s; the update run was stopped")
        if not answer.approve:
            stop_update_run(spec, run_name, credentials_block)
            who = answer.approver or "an approver"
            raise UpgradeNotApproved(f"stage {gate.next_stage} of update run {run_name} rejected by {who}: "
                                     f"{answer.comment or 'no reason given'}; the update run was stopped")
        logger.info("stage %s approved by %s: %s", gate.next_stage, answer.approver or "an approver",
                    answer.comment or "-")
        baselines |= restart_baselines(spec, stage_clusters(spec, view, gate.next_stage), credentials_block)
        complete_gate(spec, gate, credentials_block)

    versions_now = read_cluster_versions(spec, credentials_block)
    rows = update_runs.member_rows(view, versions_before, versions_now)
    publish_table(f"upgrade-members-{spec.name}", rows, f"Members of update run {run_name}: {view.state}")
    publish_markdown(f"upgrade-result-{spec.name}", update_runs.stage_report(view, None, versions_before, versions_now),
                     f"Result of update run {run_name}")
    summary = "; ".join(f"{member.member} {member.state}" for member in view.members)
    if view.state != "Completed":
        raise UpdateRunFailed(f"update run {run_name} ended {view.state}"
                              f"{' (' + view.error + ')' if view.error else ''}: {summary}")
    logger.info("update run %s completed: %s", run_name, summary)
    return rows
