"""The demo's closing tour names only commands that exist: each one answers --help."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from console.local_mode import tour

FLEETFLOW = str(Path(sys.executable).parent / "fleetflow")


def _commands(lines: list[str]) -> set[tuple[str, ...]]:
    found = set()
    for line in lines:
        for match in re.finditer(r"fleetflow ((?:spec|local|approve|reject)(?: [a-z][a-z-]*)?)", line):
            found.add(tuple(shlex.split(match.group(1))))
    return found


@pytest.mark.parametrize("kept", [True, False])
def test_every_command_of_the_tour_exists(kept: bool) -> None:
    commands = _commands(tour("http://127.0.0.1:4280", kept))
    assert ("local", "down") in commands and ("spec", "show") in commands
    for words in sorted(commands):
        result = subprocess.run([FLEETFLOW, *words, "--help"], capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, f"fleetflow {' '.join(words)} --help failed: {result.stderr}"
