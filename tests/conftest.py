"""Shared fixtures: a real Prefect server for the test session."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest_plugins = ["tests.localazure_fixtures", "tests.fleet_fixtures"]

# Keep Prefect quiet and local: no telemetry, no UI assets needed by the API-only test server.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")


@pytest.fixture(scope="session")
def prefect_server() -> Iterator[None]:
    """A temporary Prefect server (SQLite) that every flow in the session runs through."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture(scope="session")
def chart_mirror() -> Path:
    """The chart-mirror directory (a Helm repository index plus archives) named by FLEETFLOW_CHART_MIRROR."""
    configured = os.environ.get("FLEETFLOW_CHART_MIRROR")
    if not configured:
        pytest.fail("FLEETFLOW_CHART_MIRROR is not set: point it at a chart mirror directory (`make test` sets it)")
    mirror = Path(configured)
    if not (mirror / "index.yaml").is_file():
        pytest.fail(f"FLEETFLOW_CHART_MIRROR={mirror} holds no index.yaml")
    return mirror
