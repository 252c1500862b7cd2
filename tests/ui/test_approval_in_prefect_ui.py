"""An approver answers the staged-upgrade gate in the Prefect UI's resume form, in headless Chromium."""

from __future__ import annotations

import contextvars
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prefect.settings import PREFECT_API_URL, temporary_settings

from flows.local_mode import save_local_blocks
from flows.staged_upgrade import staged_upgrade
from tests.fleet_fixtures import paused_run_for

HERE = Path(__file__).resolve().parent
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
pytestmark = [
    pytest.mark.ui,
    pytest.mark.emulator,
    pytest.mark.skipif(not Path(CHROMIUM).exists() or not (HERE / "node_modules" / "playwright-core").exists(),
                       reason="needs Debian chromium and tests/ui/node_modules (run `make ui-deps`)"),
]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def prefect_with_ui(tmp_path: Path) -> Iterator[str]:
    """A Prefect server whose UI knows where its API is (the test harness serves no usable UI)."""
    port = _free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / "prefect"), "PREFECT_UI_API_URL": api,
           "PREFECT_SERVER_API_PORT": str(port), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    env.pop("PREFECT_API_URL", None)
    server = subprocess.Popen([str(Path(sys.executable).parent / "prefect"), "server", "start", "--host",
                               "127.0.0.1", "--port", str(port)], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{api}/health", timeout=2):  # noqa: S310 - loopback
                    break
            except OSError:
                time.sleep(0.5)
        else:
            raise AssertionError("the Prefect server with UI did not start within 120 s")
        yield api
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_approving_in_the_prefect_ui_resumes_the_upgrade_and_prod_follows(fleet, local_azure, prefect_with_ui,
                                                                         tmp_path):
    with temporary_settings(updates={PREFECT_API_URL: prefect_with_ui}):
        save_local_blocks(local_azure.state_dir, fleet=str(fleet.spec_path))
        before = fleet.versions()
        outcome: dict[str, Any] = {}
        context = contextvars.copy_context()
        thread = threading.Thread(target=lambda: outcome.update(state=context.run(
            staged_upgrade, fleet=str(fleet.spec_path), upgrade_type="ControlPlaneOnly", kubernetes_version="1.37",
            poll_seconds=0.5, return_state=True)), daemon=True)
        thread.start()
        paused = paused_run_for(fleet.spec_path, timeout=120)
        assert all(fleet.versions()[name] == before[name] for name in fleet.group_of("prod-group"))

        screenshot = tmp_path / "resume-form.png"
        page = prefect_with_ui.removesuffix("/api") + f"/runs/flow-run/{paused.id}"
        answer = subprocess.run(["node", str(HERE / "answer_in_ui.mjs"), page, "approve", "ui-approver",
                                 "dashboards green", str(screenshot)], cwd=HERE, capture_output=True, text=True,
                                timeout=120)
        assert answer.returncode == 0, answer.stderr
        report = json.loads(answer.stdout.strip().splitlines()[-1])["report"]
        assert "stage2" in report and fleet.group_of("test-group")[0] in report.replace("\t", " ")
        thread.join(timeout=180)

    assert outcome["state"].is_completed(), outcome["state"]
    assert all(version.startswith("1.37") for version in fleet.versions().values())
    assert screenshot.stat().st_size > 10_000
