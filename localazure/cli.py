"""The `fleetflow local ...` subcommands (flows/cli.py parses arguments and calls these)."""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import subprocess
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
    """Print whether local Azure runs and what it holds, then every running process of every local cluster
    (found by cluster directory, so also ones local Azure does not track); exit 0 when running, 1 when not."""
    local = LocalAzure(state_dir)
    try:
        info = local.status()
    except LocalAzureError as exc:
        print(f"local Azure is not healthy: {exc}")
        info = None
    if info is not None and not info["running"]:
        print(f"local Azure is not running (state {info['state_dir']})")
    elif info is not None:
        print(json.dumps(info, indent=2))
    _print_cluster_processes(local.state_dir / "clusters")
    return 0 if info is not None and info["running"] else 1


def cluster_processes(clusters_dir: Path) -> dict[str, list[tuple[str, int, bool]]]:
    """Cluster directory name -> (component, pid, tracked) of every running process whose command line names a
    file in it; `tracked` when the cluster's state records that process (False: a stray)."""
    try:
        from localazure.kube import processes
    except ImportError:
        return {}
    tracked: dict[str, set[int]] = {}
    if clusters_dir.is_dir():
        for home in clusters_dir.iterdir():
            with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
                recorded = json.loads((home / "cluster.json").read_text()).get("processes", {})
                tracked[home.name] = {int(item["pid"]) for item in recorded.values()}
    found: dict[str, list[tuple[str, int, bool]]] = {}
    prefix = str(clusters_dir).rstrip("/") + "/"
    for record, argv in processes.command_lines_referencing(clusters_dir):
        homes = {part[len(prefix):].split("/", 1)[0] for arg in argv for part in arg.split("=")
                 if part.startswith(prefix)}
        for home_name in sorted(homes) or ["?"]:
            found.setdefault(home_name, []).append((processes.component_name(argv), record.pid,
                                                    record.pid in tracked.get(home_name, set())))
    return found


def _print_cluster_processes(clusters_dir: Path) -> None:
    found = cluster_processes(clusters_dir)
    if not found:
        print(f"no local cluster process is running (clusters in {clusters_dir})")
        return
    print(f"local cluster processes (clusters in {clusters_dir}):")
    for home, entries in sorted(found.items()):
        for component, pid, is_tracked in sorted(entries, key=lambda entry: entry[1]):
            note = "" if is_tracked else "  (not tracked: a stray; `local down` or the next `local up` ends it)"
            print(f"  {home:<40} {component:<24} pid {pid}{note}")


def down(state_dir: Path | None = None) -> int:
    """Stop local Azure and every local cluster process of its state directory (idempotent)."""
    local = LocalAzure(state_dir)
    was_running = local.stop()
    stopped = _stop_leftover_clusters(local.state_dir / "clusters")
    print("local Azure stopped" if was_running else "local Azure was not running",
          f"({stopped} local cluster process(es) stopped afterwards)" if stopped else "")
    return 0


def _stop_leftover_clusters(clusters_dir: Path) -> int:
    # The emulator stops its clusters' processes; this catches those of an emulator that was killed, found by
    # their cluster directory (never by a name match) and left stopped, not restarted.
    if not clusters_dir.is_dir():
        return 0
    try:
        from localazure.kube import processes
    except ImportError:
        return 0
    return len(processes.terminate_referencing(clusters_dir))


# ---- the real Azure CLI against local Azure --------------------------------------------------------------------

AZ_CLOUD = "fleetflow-local"
# Where hack/az.sh installs azure-cli (a cached virtualenv outside any checkout).
AZ_VENV = Path(os.environ.get("FLEETFLOW_AZ_VENV", Path.home() / ".cache" / "fleetflow" / "az-venv"))
# azure-cli's own settings for a config directory that must never reach the public cloud: no telemetry, no
# survey, no instance discovery (MSAL would ask login.microsoftonline.com about the local authority), no dynamic
# extension installs.
AZ_CONFIG = """[core]
collect_telemetry = false
survey_message = false
first_run = no
no_color = true
instance_discovery = false
only_show_errors = true
[auto-upgrade]
enable = no
[extension]
use_dynamic_install = no
"""


def find_az() -> str | None:
    """The `az` executable: on PATH, else the one hack/az.sh installs."""
    cached = AZ_VENV / "bin" / "az"
    return shutil.which("az") or (str(cached) if cached.is_file() else None)


def az_environment(config_dir: Path, ca_bundle: str) -> dict[str, str]:
    """Variables that point az at its own config directory and local Azure's CA, with telemetry off."""
    return {
        "AZURE_CONFIG_DIR": str(config_dir),
        "AZURE_CORE_COLLECT_TELEMETRY": "false",
        "AZURE_CORE_SURVEY_MESSAGE": "false",
        "AZURE_CORE_INSTANCE_DISCOVERY": "false",
        "AZURE_EXTENSION_USE_DYNAMIC_INSTALL": "no",
        "REQUESTS_CA_BUNDLE": ca_bundle,
    }


def az(state_dir: Path | None = None, az_path: str | None = None) -> str:
    """Set up a config directory of its own (`<state dir>/az`) in which the real Azure CLI talks to local Azure:
    `az cloud register` with endpoint discovery, `az cloud set`, `az login --service-principal` as the admin.
    The user's own az profile is never touched. Returns shell export lines: `eval "$(fleetflow local az)"`."""
    local = LocalAzure(state_dir)
    endpoint = local.endpoint
    executable = az_path or find_az()
    if executable is None:
        raise LocalAzureError("the Azure CLI is not installed: run hack/az.sh (a cached virtualenv) or "
                              "`pip install azure-cli`")
    config_dir = local.state_dir / "az"
    if config_dir.exists():
        shutil.rmtree(config_dir)  # its own directory: a restart may have moved the port, so start clean
    config_dir.mkdir(parents=True, mode=0o700)
    (config_dir / "config").write_text(AZ_CONFIG)
    environment = {**os.environ, **az_environment(config_dir, endpoint.ca_bundle)}
    arm = endpoint.resource_manager_endpoint.rstrip("/")
    steps = [
        ["cloud", "register", "--name", AZ_CLOUD, "--endpoint-resource-manager", arm],
        ["cloud", "set", "--name", AZ_CLOUD],
        ["login", "--service-principal", "--username", endpoint.client_id, "--tenant", endpoint.tenant_id,
         "--password", endpoint.client_secret, "--output", "none"],
        ["account", "set", "--subscription", endpoint.subscription_id],
    ]
    for step in steps:
        done = subprocess.run([executable, *step], env=environment, capture_output=True, text=True, timeout=300,
                              check=False)
        if done.returncode != 0:
            shown = " ".join(step[:2])
            message = (done.stderr or done.stdout).replace(endpoint.client_secret, "***").strip()
            raise LocalAzureError(f"`az {shown}` failed in {config_dir}: {message}")
    values = az_environment(config_dir, endpoint.ca_bundle)
    lines = [f"export {name}={shlex.quote(value)}\n" for name, value in values.items()]
    if shutil.which("az") is None:
        lines.append(f"export PATH={shlex.quote(str(Path(executable).parent))}:\"$PATH\"\n")
    return "".join(lines)
