"""Prefect artifacts fleetflow publishes: tables and markdown, always secret-free."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from prefect.artifacts import create_markdown_artifact, create_table_artifact


def artifact_key(*parts: str) -> str:
    """An artifact key Prefect accepts (lowercase letters, digits and dashes)."""
    return re.sub(r"[^a-z0-9-]+", "-", "-".join(parts).lower()).strip("-")


def publish_table(key: str, rows: Sequence[Mapping[str, Any]], description: str) -> None:
    """Publish a table artifact under a stable key so each run's latest status is easy to find."""
    create_table_artifact(key=artifact_key(key), table=[dict(row) for row in rows], description=description)


def publish_markdown(key: str, markdown: str, description: str) -> None:
    """Publish a markdown artifact under a stable key."""
    create_markdown_artifact(key=artifact_key(key), markdown=markdown, description=description)
