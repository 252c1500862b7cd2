"""hack/kube/build.sh says what it builds and, when a step fails, which one, where its log is and how to retry."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from localazure.kube import available_versions
from tests.paths import REPO

BUILD = REPO / "hack" / "kube" / "build.sh"


def test_a_failed_step_names_itself_its_log_and_the_retry_command(tmp_path: Path) -> None:
    fake_go = tmp_path / "bin" / "go"
    fake_go.parent.mkdir()
    fake_go.write_text("#!/bin/sh\necho 'go: simulated compiler failure' >&2\nexit 1\n")
    fake_go.chmod(0o755)
    tools = tmp_path / "tools"
    environment = {**os.environ, "FLEETFLOW_TOOLS": str(tools), "PATH": f"{fake_go.parent}:{os.environ['PATH']}"}
    result = subprocess.run([str(BUILD), "etcd"], capture_output=True, text=True, env=environment, timeout=120)
    assert result.returncode == 1
    assert "first build: etcd from source" in result.stderr
    assert "building etcd failed after" in result.stderr and str(tools / "build.log") in result.stderr
    assert "retry only this step: hack/kube/build.sh etcd" in result.stderr
    assert "simulated compiler failure" in (tools / "build.log").read_text()


@pytest.mark.cluster
@pytest.mark.skipif(not available_versions(), reason="needs the built toolchain (make tools)")
def test_a_second_run_is_silent() -> None:
    result = subprocess.run([str(BUILD)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0
    assert result.stdout == "" and result.stderr == ""
