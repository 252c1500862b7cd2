"""Helm releases through pyhelm3: install or upgrade only when the chart or the values differ.

Values reach helm on its standard input (pyhelm3 sends `--values -`), never on a command line or in a
file, and fleetflow never puts a secret in them: credentials go to Kubernetes Secrets through the API.
The kubeconfig helm needs is a 0600 file from the client factory, removed when the release is done.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pyhelm3 import Client
from pyhelm3 import errors as helm_errors

from tasks.charts import ResolvedChart
from tasks.clients import kubeconfig_file
from tasks.retry import FleetflowError

HELM_ENV = "FLEETFLOW_HELM"
TOOLS_ENV = "FLEETFLOW_TOOLS"

ReleaseAction = Literal["installed", "upgraded", "unchanged"]


class HelmError(FleetflowError):
    """A helm command failed; names the release, the cluster and helm's own message."""


@dataclass(frozen=True)
class ReleaseOutcome:
    """What ensure_release did to one release."""

    release: str
    namespace: str
    chart: str
    version: str
    action: ReleaseAction
    revision: int


def helm_executable() -> str:
    """The helm binary: FLEETFLOW_HELM, else `helm` on PATH, else the newest one `make tools` built."""
    configured = os.environ.get(HELM_ENV)
    if configured:
        return configured
    on_path = shutil.which("helm")
    if on_path:
        return on_path
    tools = Path(os.environ.get(TOOLS_ENV) or Path.home() / ".cache" / "fleetflow" / "tools").expanduser()
    built = sorted(tools.glob("helm-*/helm"))
    if built:
        return str(built[-1])
    raise HelmError(f"no helm binary: set {HELM_ENV}, put helm on PATH, or run `make tools`",
                    operation="find helm", resource_id="helm")


def _helm_message(error: helm_errors.Error) -> str:
    stderr = getattr(error, "stderr", b"") or b""
    text = stderr.decode(errors="replace") if isinstance(stderr, bytes) else str(stderr)
    return " ".join(text.split())[:600] or type(error).__name__


async def _ensure(client: Client, release: str, namespace: str, chart: ResolvedChart, values: dict[str, Any],
                  timeout_seconds: int) -> ReleaseOutcome:
    loaded = await client.get_chart(chart.ref, repo=chart.repo, version=chart.version)
    current = await client.get_proceedable_revision(release, namespace=namespace, timeout=f"{timeout_seconds}s")
    if current is not None and not await client.should_install_or_upgrade_release(current, loaded, values):
        return ReleaseOutcome(release, namespace, chart.name, chart.version, "unchanged", current.revision)
    revision = await client.install_or_upgrade_release(
        release, loaded, values, namespace=namespace, create_namespace=True, atomic=False,
        wait=True, timeout=f"{timeout_seconds}s",
    )
    action: ReleaseAction = "installed" if current is None else "upgraded"
    return ReleaseOutcome(release, namespace, chart.name, chart.version, action, revision.revision)


def ensure_release(kubeconfig: str, *, cluster: str, release: str, namespace: str, chart: ResolvedChart,
                   values: dict[str, Any], timeout_seconds: int) -> ReleaseOutcome:
    """Install or upgrade `release` to `chart` with `values` and wait for it; a no-op when both already match."""
    with kubeconfig_file(kubeconfig) as path:
        try:
            client = Client(executable=helm_executable(), kubeconfig=Path(path),
                            default_timeout=f"{timeout_seconds}s")
            return asyncio.run(_ensure(client, release, namespace, chart, values, timeout_seconds))
        except helm_errors.ChartNotFoundError as error:
            raise HelmError(f"helm release {release} on {cluster}: chart {chart.name} {chart.version} not found in "
                            f"{chart.origin}: {_helm_message(error)}", operation="helm upgrade --install",
                            resource_id=f"{cluster}/{namespace}/{release}") from error
        except helm_errors.ConnectionError as error:
            raise HelmError(f"helm release {release} on {cluster}: the API server is unreachable: "
                            f"{_helm_message(error)}", operation="helm upgrade --install",
                            resource_id=f"{cluster}/{namespace}/{release}", retryable=True) from error
        except helm_errors.Error as error:
            raise HelmError(f"helm release {release} on {cluster} failed: {_helm_message(error)}",
                            operation="helm upgrade --install",
                            resource_id=f"{cluster}/{namespace}/{release}", retryable=True) from error


def release_values(kubeconfig: str, *, release: str, namespace: str) -> dict[str, Any] | None:
    """The user-supplied values stored with a deployed release (what `helm get values` shows), or None."""

    async def read() -> dict[str, Any] | None:
        client = Client(executable=helm_executable(), kubeconfig=Path(path))
        try:
            revision = await client.get_current_revision(release, namespace=namespace)
        except helm_errors.ReleaseNotFoundError:
            return None
        values: dict[str, Any] = await revision.values()
        return values

    with kubeconfig_file(kubeconfig) as path:
        return asyncio.run(read())
