"""Approvers are notified when a staged-upgrade stage waits: `fleetflow automations apply` makes a Prefect
automation that sends, through the spec's notification block, to a webhook receiver on 127.0.0.1."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import yaml
from prefect.blocks.notifications import CustomWebhookNotificationBlock
from prefect.client.orchestration import get_client
from prefect.settings import PREFECT_API_URL

from console.approvals import answer_pending_approval
from console.automations import apply_automation, automation_name
from flows.staged_upgrade import staged_upgrade
from tasks.spec import load_spec
from tests.fleet_fixtures import paused_run_for
from tests.paths import REPO

pytestmark = [pytest.mark.emulator]


class Receiver:
    """A webhook receiver on loopback that records every request body it gets."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                length = int(self.headers.get("Content-Length") or 0)
                received.append(json.loads(self.rfile.read(length) or b"{}"))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, count: int, timeout: float = 60.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while len(self.received) < count and time.monotonic() < deadline:
            time.sleep(0.2)
        return list(self.received)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.server.shutdown()


def run_in_background(**parameters: Any) -> tuple[threading.Thread, dict[str, Any]]:
    outcome: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: outcome.update(state=staged_upgrade(**parameters, return_state=True)),
                              daemon=True)
    thread.start()
    return thread, outcome


def test_the_webhook_gets_one_notification_per_pause_with_the_run_link_and_the_health_summary(fleet, receiver):
    block = f"approvers-{fleet.spec.name}"
    CustomWebhookNotificationBlock(name="fleet approvers", url=receiver.url,
                                   json_data={"subject": "{{subject}}", "body": "{{body}}"}).save(block, overwrite=True)
    document = yaml.safe_load(fleet.spec_path.read_text())
    document["upgrade_health"] = {"notification_block": f"custom-webhook/{block}", "settle_seconds": 0}
    fleet.spec_path.write_text(yaml.safe_dump(document))
    spec = load_spec(fleet.spec_path)

    # The console command, as an operator runs it; then again (nothing changes) and once from Python.
    command = [sys.executable, "-m", "console.cli", "automations", "apply", "--fleet", str(fleet.spec_path)]
    env = {**os.environ, "PREFECT_API_URL": str(PREFECT_API_URL.value())}
    first = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0 and first.stdout.startswith("created automation"), first.stderr
    again = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and "is up to date" in again.stdout, again.stdout + again.stderr
    assert "is up to date" in apply_automation(spec)
    with get_client(sync_client=True) as client:
        assert len(client.read_automations_by_name(automation_name(spec))) == 1

    parameters = {"fleet": str(fleet.spec_path), "poll_seconds": 0.3}
    thread, outcome = run_in_background(upgrade_type="ControlPlaneOnly", kubernetes_version="1.37", **parameters)
    paused = paused_run_for(fleet.spec_path)
    seen = time.monotonic()
    got = receiver.wait_for(1)
    print(f"notification received {time.monotonic() - seen:.1f}s after the run was seen Paused")
    assert len(got) == 1, got
    body = got[0]["body"]
    assert "waits for an approval of stage stage2" in got[0]["subject"], got[0]["subject"]
    assert f"/runs/flow-run/{paused.id}" in body, body
    # ARM-only clusters have no API server: the summary says the checks could not run, naming the cluster.
    tested = fleet.group_of("test-group")[0]
    assert "Health of stage stage1 (1 cluster(s)): 0 passed, 0 failed, 1 skipped" in body, body
    assert f"- {tested}: reachable: kube-apiserver:" in body, body
    assert f"fleetflow approve {paused.id}" in body
    answer_pending_approval(str(paused.id), approve=True, comment="seen the notification", approver="ops")
    thread.join(timeout=120)
    assert outcome["state"].is_completed(), outcome["state"]
    time.sleep(3)  # a late duplicate would have arrived by now
    assert len(receiver.received) == 1, receiver.received

    # A second run pauses once more: one more notification, for that run.
    thread, outcome = run_in_background(upgrade_type="NodeImageOnly", node_image_selection="Consistent",
                                        **parameters)
    second = paused_run_for(fleet.spec_path, exclude=frozenset({paused.id}))
    got = receiver.wait_for(2)
    assert len(got) == 2 and f"/runs/flow-run/{second.id}" in got[1]["body"], got
    answer_pending_approval(str(second.id), approve=True, comment="", approver="ops")
    thread.join(timeout=120)
    assert outcome["state"].is_completed(), outcome["state"]
    time.sleep(3)
    assert len(receiver.received) == 2
    with get_client(sync_client=True) as client:  # the session's Prefect server serves other fleets' tests next
        for automation in client.read_automations_by_name(automation_name(spec)):
            client.delete_automation(automation.id)


def test_a_gate_the_policy_does_not_approve_stops_the_run_when_nobody_answers_in_time(fleet):
    # Listed for auto-approval, but the ARM-only test cluster cannot be checked: a human must answer, and nobody does.
    document = yaml.safe_load(fleet.spec_path.read_text())
    document["upgrade_health"] = {"auto_approve": ["ControlPlaneOnly"], "settle_seconds": 0}
    fleet.spec_path.write_text(yaml.safe_dump(document))
    state = staged_upgrade(fleet=str(fleet.spec_path), upgrade_type="ControlPlaneOnly", kubernetes_version="1.37",
                           poll_seconds=0.3, approval_timeout_seconds=3, return_state=True)
    assert state.is_failed() and "nobody approved stage stage2" in state.message, state.message
    assert [run.properties.status.status.state for run in fleet.update_runs()] == ["Stopped"]
    assert all(not version.startswith("1.37") for name, version in fleet.versions().items()
               if name in fleet.group_of("prod-group"))
