"""The deployments declared in prefect.yaml, checked against the flows they point at."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class DeploymentEntry:
    """One deployment of prefect.yaml."""

    name: str
    entrypoint: str
    parameters: dict[str, Any] = field(default_factory=dict)
    schedules: list[dict[str, Any]] = field(default_factory=list)
    work_pool: str | None = None


def load_catalog(path: Path = REPO_ROOT / "prefect.yaml") -> list[DeploymentEntry]:
    """Every deployment in prefect.yaml, with YAML anchors resolved."""
    document = yaml.safe_load(path.read_text())
    return [
        DeploymentEntry(
            name=item["name"],
            entrypoint=item["entrypoint"],
            parameters=dict(item.get("parameters") or {}),
            schedules=list(item.get("schedules") or []),
            work_pool=(item.get("work_pool") or {}).get("name"),
        )
        for item in document.get("deployments", [])
    ]


def check_catalog(entries: list[DeploymentEntry]) -> list[str]:
    """Problems with the catalog: entrypoints that do not load, parameters their flow rejects."""
    from prefect.flows import load_flow_from_entrypoint

    problems = []
    for entry in entries:
        module_path = REPO_ROOT / entry.entrypoint.split(":", 1)[0]
        if not module_path.exists():
            problems.append(f"{entry.name}: entrypoint file {module_path.name} does not exist")
            continue
        try:
            flow: Any = load_flow_from_entrypoint(str(module_path) + ":" + entry.entrypoint.split(":", 1)[1])
            flow.validate_parameters(entry.parameters)
        except Exception as error:  # noqa: BLE001 - every failure is reported, with its cause
            problems.append(f"{entry.name}: {type(error).__name__}: {error}")
    return problems
