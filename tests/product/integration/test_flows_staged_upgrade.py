"""staged-upgrade against local Azure with a real Prefect server: approvals, rejection, timeout, resumption."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey, FlowRunFilter, LogFilter
from prefect.client.schemas.sorting import ArtifactSort
from prefect.settings import PREFECT_API_URL
from prefect.states import Cancelled, Paused

from blocks.azure import AzureServicePrincipal
from console.approvals import ApprovalError, answer_pending_approval
from flows.provision import provision
from flows.staged_upgrade import staged_upgrade
from tests.fleet_fixtures import FleetUnderTest, paused_run_for, write_spec
from tests.paths import REPO

pytestmark = [pytest.mark.emulator]


def artifacts_of(key: str) -> list[Any]:
    """Every version of an artifact key, newest first."""
    async def read() -> list[Any]:
        async with get_client() as client:
            return await client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])),
                                               sort=ArtifactSort.CREATED_DESC)
    return asyncio.run(read())


def run_in_background(target: Callable[[], Any]) -> tuple[threading.Thread, dict[str, Any]]:
    outcome: dict[str, Any] = {}

    def body() -> None:
        outcome["state"] = target()

    thread = threading.Thread(target=body, daemon=True)
    thread.start()
    return thread, outcome


def upgrade(fleet: FleetUnderTest, **overrides: Any) -> Any:
    parameters: dict[str, Any] = {"fleet": str(fleet.spec_path), "upgrade_type": "ControlPlaneOnly",
                                  "kubernetes_version": "1.37", "poll_seconds": 0.3}
    parameters.update(overrides)
    return staged_upgrade(**parameters, return_state=True)


def test_second_stage_upgrades_only_after_approval_through_the_prefect_api(fleet):
    before = fleet.versions()
    assert all(version.startswith("1.36") for version in before.values())
    thread, outcome = run_in_background(lambda: upgrade(fleet))
    paused = paused_run_for(fleet.spec_path)

    during = fleet.versions()
    assert all(during[name].startswith("1.37") for name in fleet.group_of("test-group"))
    assert all(during[name] == before[name] for name in fleet.group_of("prod-group"))
    time.sleep(1.0)  # the gate holds: prod stays where it was while nobody answers
    assert all(fleet.versions()[name] == before[name] for name in fleet.group_of("prod-group"))

    print(answer_pending_approval(str(paused.id), approve=True, comment="test group healthy", approver="ops"))
    thread.join(timeout=120)
    assert outcome["state"].is_completed(), outcome["state"]
    assert all(version.startswith("1.37") for version in fleet.versions().values())
    assert len(fleet.update_runs()) == 1

    progress, members = artifacts_of(f"upgrade-progress-{fleet.spec.name}"), artifacts_of(
        f"upgrade-members-{fleet.spec.name}")
    assert progress and progress[0].type == "progress" and float(progress[0].data) == 100.0
    final_table = members[0].data if isinstance(members[0].data, list) else json.loads(members[0].data)
    assert sorted((row["member"], row["state"]) for row in final_table) == sorted(
        (cluster.member_name, "Completed") for cluster in fleet.spec.clusters())
    assert len(members) >= 3  # the table was republished as members advanced, not only at the end

    # The spec still says 1.36: a later provision leaves the upgraded clusters alone instead of downgrading.
    again = provision(fleet=str(fleet.spec_path), return_state=True)
    assert again.is_completed(), again.message
    assert all(version.startswith("1.37") for version in fleet.versions().values())


def test_rejection_stops_the_run_and_leaves_prod_untouched(fleet):
    before = fleet.versions()
    thread, outcome = run_in_background(lambda: upgrade(fleet))
    paused = paused_run_for(fleet.spec_path)
    answer_pending_approval(paused.name, approve=False, comment="canary error rate up", approver="carol")
    thread.join(timeout=120)

    state = outcome["state"]
    assert state.is_failed()
    assert "rejected by carol: canary error rate up" in state.message
    runs = fleet.update_runs()
    assert [run.properties.status.status.state for run in runs] == ["Stopped"]
    after = fleet.versions()
    assert all(after[name] == before[name] for name in fleet.group_of("prod-group"))


def test_nobody_approving_in_time_stops_the_run(fleet):
    before = fleet.versions()
    state = upgrade(fleet, approval_timeout_seconds=3)
    assert state.is_failed() and "nobody approved stage stage2" in state.message
    after = fleet.versions()
    assert all(after[name] == before[name] for name in fleet.group_of("prod-group"))
    assert all(run.properties.status.status.state == "Stopped" for run in fleet.update_runs())


def test_node_image_only_rolls_node_images_without_changing_versions(fleet):
    versions_before, images_before = fleet.versions(), fleet.node_images()
    thread, outcome = run_in_background(
        lambda: upgrade(fleet, upgrade_type="NodeImageOnly", kubernetes_version=None,
                        node_image_selection="Consistent"))
    answer_pending_approval(str(paused_run_for(fleet.spec_path).id), approve=True, comment="", approver="ops")
    thread.join(timeout=120)
    assert outcome["state"].is_completed(), outcome["state"]
    assert fleet.versions() == versions_before
    images_after = fleet.node_images()
    assert all(images_after[name] != images_before[name] for name in images_before)


def test_a_node_image_request_with_a_version_fails_before_any_azure_call(local_azure, prefect_server, tmp_path):
    spec_path = write_spec(tmp_path, "nocallfleet1")
    state = staged_upgrade(fleet=str(spec_path), upgrade_type="NodeImageOnly", kubernetes_version="1.37",
                           return_state=True)
    assert state.is_failed() and "must be empty for upgrade_type NodeImageOnly" in state.message


def test_killed_flow_is_resumed_by_a_rerun_without_a_second_update_run(fleet, tmp_path):
    env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value()}
    script = (f"from flows.staged_upgrade import staged_upgrade\n"
              f"staged_upgrade(fleet={str(fleet.spec_path)!r}, upgrade_type='ControlPlaneOnly', "
              f"kubernetes_version='1.37', poll_seconds=0.3)\n")
    process = subprocess.Popen([sys.executable, "-c", script], cwd=REPO, env=env, start_new_session=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        killed = paused_run_for(fleet.spec_path)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    assert len(fleet.update_runs()) == 1

    thread, outcome = run_in_background(lambda: upgrade(fleet))
    rerun = paused_run_for(fleet.spec_path, exclude=frozenset({killed.id}))
    # The killed run, left Paused, was cancelled by the run that took its update run over, and says so.
    with get_client(sync_client=True) as client:
        old = client.read_flow_run(killed.id)
        assert old.state is not None and old.state.is_cancelled(), old.state
        assert f"flow run {rerun.name} ({rerun.id}) took over update run" in (old.state.message or "")
        with pytest.raises(ApprovalError, match="not waiting for an approval"):
            answer_pending_approval(str(killed.id), approve=True, comment="", approver="ops")
        # Even put back to Paused (say, by hand), it is refused, naming the run that follows the update run.
        client.set_flow_run_state(killed.id, Paused(), force=True)
        with pytest.raises(ApprovalError, match=f"no longer follows update run .*{rerun.name} \\({rerun.id}\\) "
                           "took it over"):
            answer_pending_approval(str(killed.id), approve=True, comment="", approver="ops")
        client.set_flow_run_state(killed.id, Cancelled(), force=True)
    answer_pending_approval(str(rerun.id), approve=True, comment="resumed", approver="ops")
    thread.join(timeout=120)
    assert outcome["state"].is_completed(), outcome["state"]
    assert len(fleet.update_runs()) == 1
    assert all(version.startswith("1.37") for version in fleet.versions().values())


def test_a_failing_prod_member_fails_the_flow_naming_each_members_result(fleet, knobs_restored):
    failing = fleet.group_of("prod-group")[0]
    knobs_restored.set_knobs(fail=[f"aks.upgrade:{failing}"])
    thread, outcome = run_in_background(lambda: upgrade(fleet))
    answer_pending_approval(str(paused_run_for(fleet.spec_path).id), approve=True, comment="", approver="ops")
    thread.join(timeout=120)

    state = outcome["state"]
    assert state.is_failed()
    assert "ended Failed" in state.message and f"{failing.lower()} Failed" in state.message
    test_member = fleet.group_of("test-group")[0].lower()
    assert f"{test_member} Completed" in state.message
    assert not fleet.versions()[failing].startswith("1.37")


def run_records(state: Any, until: str, timeout: float = 30.0) -> str:
    """Parameters, inputs, state messages and logs of a flow run and its subflows, plus every artifact, as text.

    Logs reach the server in batches: wait until a line holding `until` arrived.
    """
    async def read() -> tuple[list[str], list[str]]:
        async with get_client() as client:
            parent = await client.read_flow_run(state.state_details.flow_run_id)
            runs = [parent, *await client.read_flow_runs(
                flow_run_filter=FlowRunFilter(parent_flow_run_id={"any_": [parent.id]}))]
            logs = await client.read_logs(log_filter=LogFilter(flow_run_id={"any_": [run.id for run in runs]}))
            task_runs = await client.read_task_runs(flow_run_filter=FlowRunFilter(id={"any_": [r.id for r in runs]}))
            artifacts = await client.read_artifacts(artifact_filter=ArtifactFilter())
            records = [json.dumps(run.parameters) + str(run.state and run.state.message) for run in runs]
            records += [f"{task.name} {task.task_inputs} {task.state and task.state.message}" for task in task_runs]
            records += [str(artifact.data) + str(artifact.description) for artifact in artifacts]
            return [log.message for log in logs], records

    deadline = time.monotonic() + timeout
    while True:
        logs, records = asyncio.run(read())
        if any(until in line for line in logs) or time.monotonic() > deadline:
            return "\n".join([*logs, *records])
        time.sleep(0.25)


def test_staged_upgrade_puts_no_client_secret_in_logs_parameters_or_artifacts(fleet, local_azure):
    secrets = {
        "admin": local_azure.endpoint.client_secret,
        "operator": AzureServicePrincipal.load(fleet.spec.service_operator.credentials_block)
        .client_secret.get_secret_value(),
        "fleetflow-azure": AzureServicePrincipal.load("fleetflow-azure").client_secret.get_secret_value(),
    }
    assert all(secrets.values())
    thread, outcome = run_in_background(lambda: upgrade(fleet))
    answer_pending_approval(str(paused_run_for(fleet.spec_path).id), approve=True, comment="ok", approver="ops")
    thread.join(timeout=120)
    assert outcome["state"].is_completed(), outcome["state"]

    everything = run_records(outcome["state"], until="approved by ops")
    # Enough was recorded for the search to mean something: every task of the flow logged or left a state.
    for evidence in ("attach-or-start-update-run", "follow-update-run", "complete-approval-gate",
                     "started update run", "waits for approval of stage stage2", "approved by ops",
                     "Approve stage stage2", "member "):
        assert evidence in everything, evidence
    leaked = [who for who, secret in secrets.items() if secret in everything]
    assert leaked == [], f"client secret of {leaked} recorded by the staged-upgrade flow"
