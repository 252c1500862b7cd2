"""The local-mode Prefect server outlives the command that started it; `fleetflow local down` stops it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from console.local_mode import local_home
from console.prefect_server import ensure_running, healthy, running


def test_the_server_is_started_once_kept_running_shown_and_stopped_by_local_down(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    state_dir = tmp_path / "local"
    home = local_home(state_dir)
    monkeypatch.setenv("FLEETFLOW_PREFECT_PORT", "0")  # any free port: tests must not take the user's 4280
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    server = ensure_running(home)
    try:
        assert healthy(server.api_url)
        assert ensure_running(home) == server  # idempotent: the same process answers
        fleetflow = str(Path(sys.executable).parent / "fleetflow")
        environment = {**os.environ, "FLEETFLOW_PREFECT_PORT": "0"}
        status = subprocess.run([fleetflow, "local", "--state-dir", str(state_dir), "status"], capture_output=True,
                                text=True, timeout=120, env=environment)
        assert server.ui_url in status.stdout
        down = subprocess.run([fleetflow, "local", "--state-dir", str(state_dir), "down"], capture_output=True,
                              text=True, timeout=120, env=environment)
        assert "Prefect server is stopped" in down.stdout, down.stderr
        assert not healthy(server.api_url)
        assert running(home) is None
    finally:
        from console.prefect_server import stop

        stop(home)
