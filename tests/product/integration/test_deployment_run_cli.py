"""CI's path: `prefect deploy`, `prefect deployment run`, a process worker, `fleetflow approve` from a shell."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from uuid import UUID

import pytest
from prefect.client.orchestration import get_client
from prefect.settings import PREFECT_API_URL

from tests.fleet_fixtures import paused_run_for
from tests.paths import REPO

BIN = Path(sys.executable).parent
pytestmark = [pytest.mark.emulator]


def shell(*command: str, env: dict[str, str], check: bool = True) -> str:
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(command)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
    return result.stdout + result.stderr


def test_deployment_run_from_the_shell_completes_after_approval_from_the_shell(fleet):
    env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value(), "PWD": str(REPO)}
    prefect, fleetflow = str(BIN / "prefect"), str(BIN / "fleetflow")
    shell(prefect, "work-pool", "create", "fleetflow", "--type", "process", "--overwrite", env=env)
    shell(prefect, "--no-prompt", "deploy", "--name", "staged-upgrade", env=env)
    output = shell(prefect, "deployment", "run", "staged-upgrade/staged-upgrade",
                   "--params", json.dumps({"fleet": str(fleet.spec_path), "upgrade_type": "ControlPlaneOnly",
                                           "kubernetes_version": "1.37", "poll_seconds": 0.5}), env=env)
    flow_run_id = UUID(re.search(r"UUID: ([0-9a-f-]{36})", output).group(1))

    worker = subprocess.Popen([prefect, "worker", "start", "--pool", "fleetflow", "--run-once"], cwd=REPO, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        paused = paused_run_for(fleet.spec_path, timeout=180)
        assert paused.id == flow_run_id
        print(shell(fleetflow, "approve", paused.name, "--approver", "ci-bot", "--comment", "canary green",
                    env=env))
        worker.wait(timeout=300)
    finally:
        if worker.poll() is None:
            worker.kill()

    async def final_state():
        async with get_client() as client:
            return (await client.read_flow_run(flow_run_id)).state

    state = asyncio.run(final_state())
    assert state is not None and state.is_completed(), state
    assert all(version.startswith("1.37") for version in fleet.versions().values())


def test_rejecting_without_a_reason_is_refused_by_the_cli(prefect_server):
    env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value()}
    result = subprocess.run([str(BIN / "fleetflow"), "reject", "some-run"], cwd=REPO, env=env,
                            capture_output=True, text=True)
    assert result.returncode == 2 and "--reason" in result.stderr
