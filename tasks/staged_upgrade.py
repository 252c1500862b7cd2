"""The staged-upgrade flow's tasks: the fleet's update strategy, its update run (attached to or started),
following the run to its next gate or its end, completing a gate, stopping the run."""

from __future__ import annotations

import time
from uuid import UUID

from prefect import get_run_logger
from prefect.artifacts import update_progress_artifact

from tasks import update_runs
from tasks.artifacts import publish_table
from tasks.clients import load_azure_clients
from tasks.retry import azure_task
from tasks.spec import FleetSpec, StageSpec
from tasks.update_runs import PendingGate, RunView, UpgradeRequest


@azure_task(name="ensure-update-strategy")
def ensure_update_strategy(spec: FleetSpec, stages: list[StageSpec], credentials_block: str) -> str:
    """Create or update the fleet's update strategy from the spec; returns its resource id."""
    logger = get_run_logger()
    clients = load_azure_clients(credentials_block)
    strategy = update_runs.desired_strategy(stages, spec.update_strategy.approval_between_stages)
    strategy_id, changed = update_runs.ensure_strategy(clients, spec.resource_group_name, spec.name,
                                                       spec.update_strategy.name, strategy)
    logger.info("update strategy %s %s", strategy_id, "created or updated" if changed else "unchanged")
    return strategy_id


@azure_task(name="attach-or-start-update-run")
def attach_or_start_run(spec: FleetSpec, request: UpgradeRequest, stages: list[StageSpec], strategy_id: str,
                        credentials_block: str) -> str:
    """Attach to this request's update run if one is in progress, else create and start a new one."""
    logger = get_run_logger()
    clients = load_azure_clients(credentials_block)
    group, fleet = spec.resource_group_name, spec.name
    prefix = update_runs.run_name_prefix(fleet, request, stages)
    active, names = update_runs.find_active_run(clients, group, fleet, prefix)
    if active is not None:
        view = update_runs.view_run(active)
        logger.info("attaching to update run %s already in state %s", view.name, view.state)
        if view.state == "NotStarted":
            update_runs.start_run(clients, group, fleet, view.name)
        return view.name
    name = update_runs.next_run_name(prefix, names)
    # A retry after a crash between create and start finds the run NotStarted above and starts it.
    update_runs.create_run(clients, group, fleet, name, strategy_id, request)
    update_runs.start_run(clients, group, fleet, name)
    logger.info("started update run %s (%s %s)", name, request.upgrade_type,
                request.kubernetes_version or request.node_image_selection)
    return name


@azure_task(name="read-cluster-versions")
def read_cluster_versions(spec: FleetSpec, credentials_block: str) -> dict[str, str]:
    """Kubernetes and node-image versions of the fleet's clusters."""
    return update_runs.cluster_versions(load_azure_clients(credentials_block), spec)


@azure_task(name="follow-update-run")
def follow_run(spec: FleetSpec, run_name: str, progress_artifact_id: UUID, versions_before: dict[str, str],
               poll_seconds: float, credentials_block: str) -> RunView:
    """Poll the run until it waits at a gate or ends, keeping the progress and member artifacts current."""
    logger = get_run_logger()
    clients = load_azure_clients(credentials_block)
    last_states: dict[str, str] = {}
    last_progress = -1.0
    while True:
        view = update_runs.view_run(update_runs.read_run(clients, spec.resource_group_name, spec.name, run_name))
        states = {member.member: member.state for member in view.members}
        if states != last_states:
            for member, state in states.items():
                if last_states.get(member) != state:
                    logger.info("member %s: %s", member, state)
            versions_now = update_runs.cluster_versions(clients, spec)
            publish_table(f"upgrade-members-{spec.name}", update_runs.member_rows(view, versions_before, versions_now),
                          f"Members of update run {run_name}")
            last_states = states
        if view.progress_percent != last_progress:
            update_progress_artifact(progress_artifact_id, view.progress_percent)
            last_progress = view.progress_percent
        if view.is_terminal or view.pending_gate is not None:
            return view
        time.sleep(poll_seconds)


@azure_task(name="complete-approval-gate")
def complete_gate(spec: FleetSpec, gate: PendingGate, credentials_block: str) -> None:
    """Complete the Fleet approval gate so the next stage starts."""
    clients = load_azure_clients(credentials_block)
    update_runs.complete_gate(clients, spec.resource_group_name, spec.name, gate.gate_name)


@azure_task(name="stop-update-run")
def stop_update_run(spec: FleetSpec, run_name: str, credentials_block: str) -> None:
    """Stop the update run so no further member is upgraded."""
    clients = load_azure_clients(credentials_block)
    update_runs.stop_run(clients, spec.resource_group_name, spec.name, run_name)
