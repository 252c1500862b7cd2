"""An approver answers the staged-upgrade gate in the Prefect UI's resume form, in headless Chromium."""

from __future__ import annotations

import contextvars
import json
import os
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from console.local_mode import save_local_blocks
from console.prefect_server import temporary_prefect_server
from flows.staged_upgrade import staged_upgrade
from tests.fleet_fixtures import paused_run_for

HERE = Path(__file__).resolve().parent
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
pytestmark = [
    pytest.mark.ui,
    pytest.mark.emulator,
    pytest.mark.skipif(not Path(CHROMIUM).exists() or not (HERE / "node_modules" / "playwright-core").exists(),
                       reason="needs Debian chromium and tests/product/ui/node_modules (run `make ui-deps`)"),
]


@pytest.fixture
def prefect_with_ui(tmp_path: Path) -> Iterator[str]:
    """A Prefect server whose UI knows where its API is (the test harness serves no usable UI)."""
    with temporary_prefect_server(tmp_path / "prefect") as api:
        yield api


def test_approving_in_the_prefect_ui_resumes_the_upgrade_and_prod_follows(fleet, local_azure, prefect_with_ui,
                                                                         tmp_path):
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
