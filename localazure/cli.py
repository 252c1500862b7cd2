"""The `fleetflow local ...` subcommands (flows/cli.py parses arguments and calls these)."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

from localazure.chartmirror import CHART_MIRROR_ENV, build_local_chart_mirror
from localazure.local import LocalAzure, LocalAzureError


def up(state_dir: Path | None = None, **knobs: Any) -> int:
    """Start local Azure in the background unless it already runs; prints where it listens."""
    local = LocalAzure.start(state_dir, **knobs)
    endpoint = local.endpoint
    print(f"local Azure is up at {endpoint.resource_manager_endpoint} (pid {endpoint.pid}, state {local.state_dir})")
    print('use it from a shell with: eval "$(fleetflow local env)"')
    return 0


def env(state_dir: Path | None = None) -> str:
    """Shell export lines pointing Azure SDK programs at the running emulator (admin credentials)."""
    local = LocalAzure(state_dir)
    endpoint = local.endpoint
    values = {
        "AZURE_TENANT_ID": endpoint.tenant_id,
        "AZURE_CLIENT_ID": endpoint.client_id,
        "AZURE_CLIENT_SECRET": endpoint.client_secret,
        "AZURE_SUBSCRIPTION_ID": endpoint.subscription_id,
        "AZURE_AUTHORITY_HOST": endpoint.authority_host,
        "AZURE_RESOURCE_MANAGER_ENDPOINT": endpoint.resource_manager_endpoint,
        "REQUESTS_CA_BUNDLE": endpoint.ca_bundle,
        "FLEETFLOW_CA_BUNDLE": endpoint.ca_bundle,
        # The charts bootstrap-aso installs: the machine's mirror plus local mode's ASO chart.
        CHART_MIRROR_ENV: str(build_local_chart_mirror(local.state_dir / "charts")),
    }
    return "".join(f"export {name}={shlex.quote(value)}\n" for name, value in values.items())


def sp_create(name: str, state_dir: Path | None = None, role: str | None = None,
              scopes: list[str] | None = None) -> dict[str, Any]:
    """Create a service principal (no role unless `role`); returns the `az ad sp create-for-rbac` shape."""
    return LocalAzure(state_dir).create_service_principal(name, role=role, scopes=scopes)


def status(state_dir: Path | None = None) -> int:
    """Print whether local Azure runs and what it holds; exit status 0 when running, 1 when not."""
    try:
        info = LocalAzure(state_dir).status()
    except LocalAzureError as exc:
        print(f"local Azure is not healthy: {exc}")
        return 1
    if not info["running"]:
        print(f"local Azure is not running (state {info['state_dir']})")
        return 1
    print(json.dumps(info, indent=2))
    return 0


def down(state_dir: Path | None = None) -> int:
    """Stop local Azure and every local cluster of its state directory (idempotent)."""
    local = LocalAzure(state_dir)
    was_running = local.stop()
    stopped = _stop_leftover_clusters(local.state_dir / "clusters")
    print("local Azure stopped" if was_running else "local Azure was not running",
          f"({stopped} local cluster(s) stopped afterwards)" if stopped else "")
    return 0


def _stop_leftover_clusters(clusters_dir: Path) -> int:
    # The emulator stops the clusters it adopted; this catches clusters of an emulator that crashed.
    if not clusters_dir.is_dir():
        return 0
    try:
        from localazure.kube import LocalCluster
    except ImportError:
        return 0
    stopped = 0
    for home in sorted(p for p in clusters_dir.iterdir() if p.is_dir()):
        try:
            cluster = LocalCluster.load(home)
            if cluster.is_running():
                cluster.stop()
                stopped += 1
        except Exception as exc:
            print(f"could not stop local cluster in {home}: {exc}")
    return stopped
