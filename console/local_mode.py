"""Local mode: point fleetflow's blocks at local Azure and run the whole lifecycle on this machine."""

from __future__ import annotations

import contextlib
import contextvars
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from azure.core.exceptions import ClientAuthenticationError

from blocks.azure import AzureServicePrincipal
from blocks.fleet_spec import FleetSpecBlock
from localazure import Endpoint, LocalAzure
from localazure.chartmirror import CHART_MIRROR_ENV, build_local_chart_mirror
from tasks.retry import TIME_SCALE_ENV
from tasks.spec import load_spec, parse_kubernetes_version

ADMIN_BLOCK = "fleetflow-azure"
FLEET_BLOCK = "fleetflow-fleet"


def _local_azure(state_dir: Path | None) -> LocalAzure:

    return LocalAzure(state_dir)


def _principal_still_valid(endpoint: Endpoint, principal: AzureServicePrincipal) -> bool:
    """Whether a saved principal can still get a token from this local Azure (its state may have been reset)."""
    if principal.tenant_id != endpoint.tenant_id or not principal.object_id:
        return False
    credential = endpoint.credential(principal.client_id, principal.client_secret.get_secret_value())
    try:
        credential.get_token(f"{endpoint.resource_manager_endpoint.rstrip('/')}/.default")
    except ClientAuthenticationError:
        return False
    finally:
        credential.close()
    return True


def save_local_blocks(state_dir: Path | None, fleet: str = "fleet.yaml") -> list[str]:
    """Save the admin, service-operator and fleet-spec blocks for the running local Azure; start nothing.

    Returns printable lines (block names, endpoint, principal ids) and never a secret.
    """
    spec = load_spec(fleet)  # validate before anything is saved
    local = _local_azure(state_dir)
    endpoint = local.endpoint
    ca_bundle = Path(endpoint.ca_bundle).read_text()
    admin = AzureServicePrincipal(
        tenant_id=endpoint.tenant_id, client_id=endpoint.client_id, client_secret=endpoint.client_secret,
        subscription_id=endpoint.subscription_id, object_id=endpoint.object_id,
        authority_host=endpoint.authority_host, resource_manager_endpoint=endpoint.resource_manager_endpoint,
        ca_bundle=ca_bundle,
    )
    admin.save(ADMIN_BLOCK, overwrite=True)

    operator_block = spec.service_operator.credentials_block
    operator: AzureServicePrincipal | None = None
    with contextlib.suppress(ValueError):
        operator = AzureServicePrincipal.load(operator_block)  # type: ignore[assignment]
    if operator is not None and _principal_still_valid(endpoint, operator):
        operator_note = "kept (still valid)"
    else:
        created = local.create_service_principal(f"sp-aso-{spec.name}")
        operator = AzureServicePrincipal(
            tenant_id=created["tenant"], client_id=created["appId"], client_secret=created["password"],
            subscription_id=endpoint.subscription_id, object_id=created["objectId"],
            authority_host=endpoint.authority_host, resource_manager_endpoint=endpoint.resource_manager_endpoint,
            ca_bundle=ca_bundle,
        )
        operator.save(operator_block, overwrite=True)
        operator_note = "created, no roles (provision grants Contributor on the fleet's resource group)"

    FleetSpecBlock(spec_yaml=Path(fleet).read_text()).save(FLEET_BLOCK, overwrite=True)
    return [
        f"local Azure       {endpoint.resource_manager_endpoint} (tenant {endpoint.tenant_id})",
        f"block {ADMIN_BLOCK:<18} admin principal {endpoint.client_id}",
        f"block {operator_block:<18} service operator principal {operator.client_id} "
        f"(object id {operator.object_id}): {operator_note}",
        f"block {FLEET_BLOCK:<18} fleet {spec.name} from {fleet}; flows take fleet=block:{FLEET_BLOCK}",
    ]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def prefect_server_for_demo(home: Path) -> Iterator[str | None]:
    """Yield the Prefect API URL to use: None for the configured one, or a temporary local server's."""
    from prefect.settings import PREFECT_API_URL

    if PREFECT_API_URL.value():
        yield None
        return
    with temporary_prefect_server(home) as url:
        yield url


@contextlib.contextmanager
def temporary_prefect_server(home: Path) -> Iterator[str]:
    """Start a Prefect server (API and UI) in `home`, point this process at it, and stop it afterwards."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    port = _free_port()
    url = f"http://127.0.0.1:{port}/api"
    home.mkdir(parents=True, exist_ok=True)
    # The UI learns its API address from these; without them it would call the default port 4200.
    environment = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
                   "PREFECT_UI_API_URL": url, "PREFECT_SERVER_API_PORT": str(port)}
    environment.pop("PREFECT_API_URL", None)
    prefect = shutil.which("prefect", path=str(Path(sys.executable).parent)) or "prefect"
    with open(home / "server.log", "ab") as log:
        server = subprocess.Popen([prefect, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                                  stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                  env=environment, start_new_session=True)
    try:
        deadline = time.monotonic() + 180
        while True:
            if server.poll() is not None:
                raise RuntimeError(f"the temporary Prefect server exited; see {home / 'server.log'}")
            with contextlib.suppress(OSError), urllib.request.urlopen(f"{url}/health", timeout=2):  # noqa: S310
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"the temporary Prefect server did not answer; see {home / 'server.log'}")
            time.sleep(0.5)
        with temporary_settings(updates={PREFECT_API_URL: url}):
            try:
                yield url
            finally:
                # Send the last log lines and events before the server they go to stops.
                from prefect.events.worker import EventsWorker
                from prefect.logging.handlers import APILogWorker

                APILogWorker.drain_all(timeout=10)
                EventsWorker.drain_all(timeout=10)
    finally:
        # The server runs in its own session; signal the whole group so its uvicorn child stops too.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            server.wait(timeout=30)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGKILL)


def next_minor(spec_version: str, available: list[str]) -> str | None:
    """The next Kubernetes minor after the spec's among the versions local Azure offers, as MAJOR.MINOR."""
    major, minor, _ = parse_kubernetes_version(spec_version)
    newer = sorted({parse_kubernetes_version(v)[:2] for v in available} - {(major, minor)})
    candidates = [version for version in newer if version == (major, minor + 1)]
    return f"{candidates[0][0]}.{candidates[0][1]}" if candidates else None


def _approve_upgrade_stages(done: threading.Event, approver: str) -> None:
    """Answer every paused staged-upgrade run with an approval, printing the report the approver would read."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterState, FlowRunFilterStateType
    from prefect.client.schemas.objects import StateType

    from console.approvals import answer_pending_approval

    answered: set[object] = set()
    while not done.wait(1.0):
        with get_client(sync_client=True) as client:
            paused = client.read_flow_runs(flow_run_filter=FlowRunFilter(
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.PAUSED]))))
        for run in paused:
            if run.id in answered:
                continue
            answered.add(run.id)
            with contextlib.suppress(Exception):  # the run may have been answered or ended meanwhile
                answer = answer_pending_approval(str(run.id), approve=True, approver=approver,
                                                 comment="approved by the local demo")
                print(f"demo: {answer}")


def run_demo(state_dir: Path | None, fleet: str = "fleet.yaml", keep: bool = False,
             interactive: bool = False) -> int:
    """Bring local Azure up, save the blocks and run the lifecycle flow; 0 when it succeeded, else 1.

    The lifecycle upgrades the fleet to the next Kubernetes minor local Azure offers. The demo approves the
    gate between stages itself unless `interactive`, in which case it waits for you in the Prefect UI or for
    `fleetflow approve RUN`.
    """
    from localazure.kube import available_versions

    try:
        spec = load_spec(fleet)
    except ValueError as error:
        print(error, file=sys.stderr)
        return 1
    cluster_mode = "local" if available_versions() else "arm-only"
    local = LocalAzure.start(state_dir, clusters=cluster_mode)
    print(f"local Azure is up at {local.endpoint.resource_manager_endpoint} (clusters: "
          f"{local.knobs().get('clusters', cluster_mode)}, state {local.state_dir})")
    if cluster_mode == "arm-only":
        print("no Kubernetes binaries are built (make tools), so clusters are ARM-only and the reachability "
              "checks of validate are reported as skipped")
    # fleetflow's own waits follow local Azure's clock.
    os.environ.setdefault(TIME_SCALE_ENV, str(local.knobs().get("time_scale", 0.01)))
    # bootstrap-aso finds cert-manager and local mode's ASO chart in this mirror, as a fleet would find its own.
    os.environ[CHART_MIRROR_ENV] = str(build_local_chart_mirror(local.state_dir / "charts"))
    with prefect_server_for_demo(local.state_dir / "prefect") as started_url:
        from prefect.settings import PREFECT_API_URL, PREFECT_UI_URL

        if started_url:
            print(f"PREFECT_API_URL is not set: started a temporary Prefect server at {started_url}; it stops when "
                  "the demo ends (set PREFECT_API_URL to keep the runs in your own server)")
        for line in save_local_blocks(local.state_dir, fleet):
            print(line)
        from flows.lifecycle import lifecycle
        from tasks.clients import load_azure_clients

        offered = load_azure_clients(ADMIN_BLOCK).containerservice.managed_clusters.list_kubernetes_versions(
            spec.location)
        upgrade_to = next_minor(spec.cluster_defaults.kubernetes_version,
                                [str(item.version) for item in offered.values_property or []])

        ui = PREFECT_UI_URL.value() or str(PREFECT_API_URL.value()).removesuffix("/api")
        steps = ["provision", "join", "bootstrap-aso", *(["apply-resources"] if spec.gitops else []), "validate",
                 *([f"staged upgrade to {upgrade_to}"] if upgrade_to else []), *([] if keep else ["teardown"])]
        print(f"running the lifecycle ({', '.join(steps)}); watch it at {ui}/runs — the fleet status, validation "
              "and upgrade tables are under Artifacts")
        done = threading.Event()
        if upgrade_to and interactive:
            print("the upgrade pauses before stage2: approve it in the UI (Resume) or with `fleetflow approve RUN`")
        elif upgrade_to:
            print("the demo approves the gate between stages itself (use --interactive to approve it yourself)")
            context = contextvars.copy_context()
            threading.Thread(target=context.run, args=(_approve_upgrade_stages, done, "fleetflow-local-demo"),
                             daemon=True).start()
        try:
            state = lifecycle(fleet=f"block:{FLEET_BLOCK}", credentials_block=ADMIN_BLOCK, keep=keep,
                              upgrade_to=upgrade_to, poll_seconds=1.0, return_state=True)
        finally:
            done.set()
        if state.is_completed():
            print(f"lifecycle completed; flow run {state.state_details.flow_run_id} at {ui}/runs")
            print(f"local Azure keeps running ({local.state_dir}); `fleetflow local down` stops it")
            return 0
        print(f"lifecycle {state.type.value.lower()}: {state.message}; details in flow run "
              f"{state.state_details.flow_run_id} at {ui}/runs", file=sys.stderr)
        return 1
