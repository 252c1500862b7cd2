"""Fleet update strategies, update runs and approval gates: desired state, observation and actions.

The pure parts (the strategy built from the spec, run naming, reading a run's status into a plain
view, the stage report) are separate from the calls so they can be unit-tested without Azure.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

from azure.core.exceptions import ResourceNotFoundError
from azure.mgmt.containerservicefleet import models as fleet_models
from pydantic import BaseModel, Field, model_validator

from tasks.aks import cluster_version, list_clusters
from tasks.clients import AzureClients
from tasks.retry import azure_call
from tasks.spec import FleetSpec, NodeImageSelection, StageSpec, UpgradeType, parse_kubernetes_version

ACTIVE_STATES = frozenset({"NotStarted", "Running", "Stopping", "Pending"})
TERMINAL_STATES = frozenset({"Completed", "Failed", "Stopped", "Skipped"})
APPROVAL_GATE_PREFIX = "Approve stage"
# Tag of the flow run following an update run: `update-run:<group>/<fleet>/<run>` (`fleetflow approve` finds it).
UPDATE_RUN_TAG = "update-run:"


class UpgradeRequest(BaseModel):
    """What a staged upgrade should do; checked before any Azure call."""

    upgrade_type: UpgradeType = "Full"
    kubernetes_version: str | None = None
    node_image_selection: NodeImageSelection = "Latest"
    stages: list[StageSpec] | None = Field(None, description="Override the fleet spec's stages.")

    @model_validator(mode="after")
    def _version_matches_type(self) -> UpgradeRequest:
        if self.upgrade_type == "NodeImageOnly" and self.kubernetes_version:
            raise ValueError("kubernetes_version must be empty for upgrade_type NodeImageOnly "
                             "(node images only; the control plane keeps its version)")
        if self.upgrade_type != "NodeImageOnly":
            if not self.kubernetes_version:
                raise ValueError(f"kubernetes_version is required for upgrade_type {self.upgrade_type}, "
                                 "e.g. 1.37.2")
            try:
                parse_kubernetes_version(self.kubernetes_version)
            except ValueError as error:
                raise ValueError(f"kubernetes_version: {error}") from error
        return self


class MemberProgress(BaseModel):
    """One member's place and state in an update run."""

    stage: str
    group: str
    member: str
    cluster_id: str | None
    state: str
    start: datetime | None = None
    end: datetime | None = None
    message: str | None = None


class PendingGate(BaseModel):
    """An approval gate of the run that waits for a human."""

    gate_name: str
    gate_id: str
    display_name: str
    next_stage: str
    previous_stage: str | None


class RunView(BaseModel):
    """An update run as fleetflow reads it: state, members and any pending approval."""

    name: str
    run_id: str
    state: str
    error: str | None = None
    stage_states: dict[str, str] = Field(default_factory=dict)
    members: list[MemberProgress] = Field(default_factory=list)
    pending_gate: PendingGate | None = None

    @property
    def is_terminal(self) -> bool:
        """True once the run has ended (Completed, Failed, Stopped or Skipped)."""
        return self.state in TERMINAL_STATES

    @property
    def progress_percent(self) -> float:
        """Share of members whose upgrade has ended, in percent."""
        if not self.members:
            return 100.0 if self.is_terminal else 0.0
        done = sum(1 for member in self.members if member.state in TERMINAL_STATES)
        return round(100.0 * done / len(self.members), 1)


# --- desired state -------------------------------------------------------------------------------


def desired_stages(spec: FleetSpec, override: list[StageSpec] | None = None) -> list[StageSpec]:
    """The stages to roll through: the override when given, else the spec's."""
    return list(override) if override else list(spec.update_strategy.stages)


def desired_strategy(stages: list[StageSpec], approval_between_stages: bool) -> fleet_models.UpdateRunStrategy:
    """A Fleet update strategy: stages of groups with waits, and an approval gate before every later stage."""
    fleet_stages = []
    for index, stage in enumerate(stages):
        before_gates = None
        if approval_between_stages and index > 0:
            before_gates = [fleet_models.GateConfiguration(type="Approval",
                                                           display_name=f"{APPROVAL_GATE_PREFIX} {stage.name}")]
        fleet_stages.append(fleet_models.UpdateStage(
            name=stage.name,
            groups=[fleet_models.UpdateGroup(name=group) for group in stage.groups],
            after_stage_wait_in_seconds=stage.after_stage_wait_seconds or None,
            before_gates=before_gates,
        ))
    return fleet_models.UpdateRunStrategy(stages=fleet_stages)


def strategy_fingerprint(strategy: fleet_models.UpdateRunStrategy | None) -> str:
    """A comparable form of a strategy: stage names, groups, waits and gates (server defaults ignored)."""
    if strategy is None:
        return ""
    stages = []
    for stage in strategy.stages or []:
        stages.append({
            "name": stage.name,
            "groups": sorted(group.name for group in stage.groups or []),
            "wait": stage.after_stage_wait_in_seconds or 0,
            "before": sorted(gate.type for gate in stage.before_gates or []),
            "after": sorted(gate.type for gate in stage.after_gates or []),
        })
    return json.dumps(stages, sort_keys=True)


def run_name_prefix(fleet_name: str, request: UpgradeRequest, stages: list[StageSpec]) -> str:
    """The stem shared by every update run of the same request, so a re-run finds its run."""
    identity = json.dumps({
        "fleet": fleet_name,
        "type": request.upgrade_type,
        "version": request.kubernetes_version,
        "image": request.node_image_selection,
        "stages": [stage.model_dump() for stage in stages],
    }, sort_keys=True)
    digest = hashlib.sha256(identity.encode()).hexdigest()[:6]
    kind = {"Full": "full", "ControlPlaneOnly": "cp", "NodeImageOnly": "image"}[request.upgrade_type]
    detail = (request.kubernetes_version or request.node_image_selection).lower().replace(".", "-")
    return f"ff-{kind}-{detail}-{digest}"


def next_run_name(prefix: str, existing_names: list[str]) -> str:
    """The name of a new run after the ones already made with this prefix (ff-...-1, ff-...-2, ...)."""
    numbers = [int(name.rsplit("-", 1)[1]) for name in existing_names
               if name.startswith(prefix + "-") and name.rsplit("-", 1)[1].isdigit()]
    return f"{prefix}-{max(numbers, default=0) + 1}"


# --- reading a run -------------------------------------------------------------------------------


def _state(status: Any) -> str:
    state = getattr(status, "state", None) if status is not None else None
    # The SDK hands back its UpdateState enum for known values and a plain string for new ones.
    return str(getattr(state, "value", state) or "NotStarted")


def _error_message(status: Any) -> str | None:
    error = getattr(status, "error", None) if status is not None else None
    if error is None:
        return None
    return f"{getattr(error, 'code', '') or ''}: {getattr(error, 'message', '') or ''}".strip(": ")


def view_run(run: fleet_models.UpdateRun) -> RunView:
    """Read an SDK update run into a RunView."""
    status = run.properties.status if run.properties else None
    view = RunView(name=str(run.name), run_id=str(run.id), state=_state(status.status if status else None),
                   error=_error_message(status.status if status else None))
    previous_stage: str | None = None
    for stage in (status.stages if status else None) or []:
        stage_name = str(stage.name)
        view.stage_states[stage_name] = _state(stage.status)
        for gate in stage.before_gates or []:
            if _state(gate.status) == "Pending" and view.pending_gate is None and gate.gate_id:
                view.pending_gate = PendingGate(gate_name=gate.gate_id.rstrip("/").rsplit("/", 1)[-1],
                                                gate_id=gate.gate_id, display_name=gate.display_name or "",
                                                next_stage=stage_name, previous_stage=previous_stage)
        for group in stage.groups or []:
            for member in group.members or []:
                member_status = member.status
                view.members.append(MemberProgress(
                    stage=stage_name, group=str(group.name), member=str(member.name),
                    cluster_id=member.cluster_resource_id, state=_state(member_status),
                    start=getattr(member_status, "start_time", None),
                    end=getattr(member_status, "completed_time", None),
                    message=member.message or _error_message(member_status),
                ))
        previous_stage = stage_name
    return view


def member_rows(view: RunView, versions_before: dict[str, str], versions_now: dict[str, str]) -> list[dict[str, Any]]:
    """The per-member table: where each member is, its state, versions before and now, duration."""
    rows = []
    for member in view.members:
        key = (member.cluster_id or "").lower()
        duration = (member.end - member.start).total_seconds() if member.start and member.end else None
        rows.append({
            "stage": member.stage, "group": member.group, "member": member.member, "state": member.state,
            "before": versions_before.get(key, "?"), "now": versions_now.get(key, "?"),
            "seconds": round(duration, 1) if duration is not None else "",
            "message": member.message or "",
        })
    return rows


def stage_report(view: RunView, stage: str | None, versions_before: dict[str, str],
                 versions_now: dict[str, str]) -> str:
    """Markdown an approver reads before letting the next stage start."""
    gate = view.pending_gate
    title = f"## Update run `{view.name}`"
    if gate:
        title += f": approve stage `{gate.next_stage}`?"
    lines = [title, ""]
    members = [member for member in view.members if stage is None or member.stage == stage]
    if stage:
        lines.append(f"Stage `{stage}` ended **{view.stage_states.get(stage, '?')}**. What it did:")
    lines += ["", "| member | group | state | version before | version now | seconds | message |",
              "|---|---|---|---|---|---|---|"]
    for row in member_rows(view.model_copy(update={"members": members}), versions_before, versions_now):
        lines.append(f"| {row['member']} | {row['group']} | {row['state']} | {row['before']} | {row['now']} | "
                     f"{row['seconds']} | {row['message']} |")
    failures = [member for member in members if member.state == "Failed"]
    lines += ["", f"Failures: {len(failures)}" + ("".join(f"\n- `{m.member}`: {m.message}" for m in failures))]
    if gate:
        waiting = [member.member for member in view.members if member.stage == gate.next_stage]
        lines += ["", f"Approving starts stage `{gate.next_stage}` on: {', '.join(waiting) or '(no members)'}.",
                  "Rejecting stops the update run; those clusters are left as they are."]
    return "\n".join(lines)


# --- calls (each wrapped with azure_call, so a failure names the operation and the resource) -------------


def fleet_resource_id(clients: AzureClients, resource_group: str, fleet: str, child: str = "") -> str:
    """Id of a fleet (or of `child`, e.g. `/updateRuns/<name>`, below it)."""
    return (f"/subscriptions/{clients.subscription_id}/resourceGroups/{resource_group}"
            f"/providers/Microsoft.ContainerService/fleets/{fleet}{child}")


def ensure_strategy(clients: AzureClients, resource_group: str, fleet: str, name: str,
                    strategy: fleet_models.UpdateRunStrategy) -> tuple[str, bool]:
    """Create or update the fleet's update strategy; returns its id and whether it changed."""
    operations = clients.fleet.fleet_update_strategies
    with azure_call("create or update update strategy",
                    fleet_resource_id(clients, resource_group, fleet, f"/updateStrategies/{name}")):
        try:
            existing = operations.get(resource_group, fleet, name)
            if strategy_fingerprint(existing.properties.strategy if existing.properties else None) == \
                    strategy_fingerprint(strategy):
                return str(existing.id), False
        except ResourceNotFoundError:
            pass
        resource = fleet_models.FleetUpdateStrategy(
            properties=fleet_models.FleetUpdateStrategyProperties(strategy=strategy))
        created = operations.begin_create_or_update(resource_group, fleet, name, resource).result()
    return str(created.id), True


def list_runs(clients: AzureClients, resource_group: str, fleet: str) -> list[fleet_models.UpdateRun]:
    """Every update run of the fleet."""
    with azure_call("list update runs", fleet_resource_id(clients, resource_group, fleet, "/updateRuns")):
        return list(clients.fleet.update_runs.list_by_fleet(resource_group, fleet))


def find_active_run(clients: AzureClients, resource_group: str, fleet: str,
                    prefix: str) -> tuple[fleet_models.UpdateRun | None, list[str]]:
    """The run of this request still in progress (if any) and the names of all its runs."""
    with azure_call("find update run", fleet_resource_id(clients, resource_group, fleet, f"/updateRuns/{prefix}-*")):
        runs = [run for run in clients.fleet.update_runs.list_by_fleet(resource_group, fleet)
                if str(run.name).startswith(prefix + "-")]
    names = [str(run.name) for run in runs]
    for run in sorted(runs, key=lambda item: str(item.name), reverse=True):
        if view_run(run).state in ACTIVE_STATES:
            return run, names
    return None, names


def create_run(clients: AzureClients, resource_group: str, fleet: str, name: str, strategy_id: str,
               request: UpgradeRequest) -> fleet_models.UpdateRun:
    """Create (not start) an update run from the strategy."""
    upgrade = fleet_models.ManagedClusterUpgradeSpec(type=request.upgrade_type,
                                                     kubernetes_version=request.kubernetes_version)
    resource = fleet_models.UpdateRun(properties=fleet_models.UpdateRunProperties(
        update_strategy_id=strategy_id,
        managed_cluster_update=fleet_models.ManagedClusterUpdate(
            upgrade=upgrade,
            node_image_selection=fleet_models.NodeImageSelection(type=request.node_image_selection),
        ),
    ))
    with azure_call("create update run", fleet_resource_id(clients, resource_group, fleet, f"/updateRuns/{name}")):
        return clients.fleet.update_runs.begin_create_or_update(resource_group, fleet, name, resource).result()


def start_run(clients: AzureClients, resource_group: str, fleet: str, name: str) -> None:
    """Start an update run that has not started."""
    with azure_call("start update run", fleet_resource_id(clients, resource_group, fleet, f"/updateRuns/{name}")):
        clients.fleet.update_runs.begin_start(resource_group, fleet, name).result()


def stop_run(clients: AzureClients, resource_group: str, fleet: str, name: str) -> None:
    """Stop an update run (no further member is upgraded)."""
    with azure_call("stop update run", fleet_resource_id(clients, resource_group, fleet, f"/updateRuns/{name}")):
        clients.fleet.update_runs.begin_stop(resource_group, fleet, name).result()


def read_run(clients: AzureClients, resource_group: str, fleet: str, name: str) -> fleet_models.UpdateRun:
    """Read an update run."""
    with azure_call("read update run", fleet_resource_id(clients, resource_group, fleet, f"/updateRuns/{name}")):
        return clients.fleet.update_runs.get(resource_group, fleet, name)


def complete_gate(clients: AzureClients, resource_group: str, fleet: str, gate_name: str) -> None:
    """Mark an approval gate Completed so the update run moves on."""
    patch = fleet_models.GatePatch(properties=fleet_models.GatePatchProperties(state="Completed"))
    with azure_call("complete approval gate", fleet_resource_id(clients, resource_group, fleet, f"/gates/{gate_name}")):
        clients.fleet.gates.begin_update(resource_group, fleet, gate_name, patch).result()


def cluster_versions(clients: AzureClients, spec: FleetSpec) -> dict[str, str]:
    """Each cluster's Kubernetes and node-image versions, keyed by lower-case resource id."""
    versions = {}
    for cluster in list_clusters(clients, spec):
        images = sorted({pool.node_image_version for pool in cluster.agent_pool_profiles or []
                         if pool.node_image_version})
        versions[str(cluster.id).lower()] = f"{cluster_version(cluster) or '?'} ({', '.join(images) or 'no image'})"
    return versions
