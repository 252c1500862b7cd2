"""A corpus of broken fleet specs (tests/product/specs/broken, one per kind of mistake): `fleetflow spec validate`
exits 1, names the field (or file / line) and the fix, and never prints a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from console.cli import main
from tests.paths import REPO

CORPUS = REPO / "tests" / "product" / "specs" / "broken"


def _expected() -> list[tuple[str, str]]:
    rows = []
    for line in (CORPUS / "EXPECTED.tsv").read_text().splitlines():
        if line and not line.startswith("#"):
            name, path = line.split("\t")
            rows.append((name, path))
    return rows


def test_the_corpus_has_one_file_per_listed_mistake_and_at_least_thirty():
    listed = {name for name, _ in _expected()}
    assert listed == {p.name for p in CORPUS.glob("*.yaml")}
    assert len(listed) >= 30


def test_the_valid_spec_the_corpus_starts_from_validates(capsys):
    assert main(["spec", "validate", "--offline", str(REPO / "tests" / "product" / "specs" / "valid.yaml")]) == 0


@pytest.mark.parametrize(("name", "field_path"), _expected())
def test_broken_spec_is_refused_naming_the_field_and_the_fix(name: str, field_path: str, capsys):
    assert main(["spec", "validate", str(CORPUS / name)]) == 1
    captured = capsys.readouterr()
    output = captured.out + captured.err
    assert "Traceback" not in output
    problems = [line for line in captured.err.splitlines() if line.startswith("  - ")]
    assert problems, output
    assert any(line.startswith(f"  - {field_path}") for line in problems), output
    assert all("(fix: " in line for line in problems), output


@pytest.mark.parametrize("name", ["binary-junk.yaml", "utf16-with-bom.yaml", "duplicate-top-level-key.yaml",
                                  "yaml-tab-indentation.yaml"])
def test_the_console_script_prints_no_traceback(name: str):
    done = subprocess.run([sys.executable, "-m", "console.cli", "spec", "validate", str(CORPUS / name)],
                          capture_output=True, text=True, cwd=REPO, timeout=120)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr + done.stdout
    assert str(CORPUS / name) in done.stderr


def test_a_missing_file_and_a_directory_are_one_line_each(tmp_path: Path, capsys):
    for target in (tmp_path / "absent.yaml", tmp_path):
        assert main(["spec", "validate", str(target)]) == 1
        err = capsys.readouterr().err
        assert "(file): cannot read" in err and "Traceback" not in err


def test_approve_with_an_unreachable_prefect_api_is_one_line_naming_it():
    env = {**os.environ, "PREFECT_API_URL": "http://127.0.0.1:9/api"}
    done = subprocess.run([sys.executable, "-m", "console.cli", "approve", "some-run"], capture_output=True,
                          text=True, cwd=REPO, env=env, timeout=120)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "cannot reach the Prefect API at http://127.0.0.1:9/api" in lines[0]
    assert "PREFECT_API_URL" in lines[0]


@pytest.mark.parametrize("command", [["env"], ["sp", "create", "probe"], ["blocks"]])
def test_local_commands_without_local_azure_are_one_line_with_the_fix(tmp_path: Path, command: list[str]):
    env = {**os.environ, "FLEETFLOW_HOME": str(tmp_path)}
    done = subprocess.run([sys.executable, "-m", "console.cli", "local", *command], capture_output=True, text=True,
                          cwd=REPO, env=env, timeout=120)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "fleetflow local up" in lines[0], done.stderr


def test_the_fix_hint_points_to_a_page_documenting_every_spec_field():
    from tasks.spec import _spec_field_names

    page = (REPO / "docs" / "fleet-spec.md").read_text()
    missing = [name for name in _spec_field_names() if f"`{name}`" not in page]
    assert not missing, f"docs/fleet-spec.md does not document {missing}"
