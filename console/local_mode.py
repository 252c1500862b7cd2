"""Local mode: point fleetflow's blocks at local Azure and run the whole lifecycle on this machine."""

from __future__ import annotations

import contextlib
import contextvars
import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

from azure.core.exceptions import ClientAuthenticationError

from blocks.azure import AzureServicePrincipal
from blocks.fleet_spec import FleetSpecBlock
from console.prefect_server import drain_prefect_workers, ensure_running, running
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


def local_home(state_dir: Path | None) -> Path:
    """Where the local-mode Prefect server keeps its database and record: beside local Azure's state."""
    return _local_azure(state_dir).state_dir / "prefect"


def prefect_server_status(home: Path) -> str:
    """One line saying whether the local-mode Prefect server runs, and where."""
    server = running(home)
    if server is None:
        return "Prefect server: not running (the next `fleetflow local demo` starts it)"
    return f"Prefect server: {server.ui_url} (pid {server.pid}); runs, logs and artifacts of the demo are there"


@contextlib.contextmanager
def prefect_server_for_demo(home: Path) -> Iterator[str | None]:
    """Yield the Prefect API URL to use: None for the configured one, or the local-mode server's (started unless
    it runs; it keeps running after the demo so its runs and artifacts can be explored)."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    if PREFECT_API_URL.value():
        yield None
        return
    server = ensure_running(home)
    with temporary_settings(updates={PREFECT_API_URL: server.api_url}):
        try:
            yield server.api_url
        finally:
            drain_prefect_workers()


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
    with prefect_server_for_demo(local_home(local.state_dir)) as started_url:
        from prefect.settings import PREFECT_API_URL, PREFECT_UI_URL

        if started_url:
            print(f"PREFECT_API_URL is not set: the local-mode Prefect server is at {started_url}; it keeps running "
                  "after the demo (`fleetflow local down` stops it with local Azure)")
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
            for line in tour(ui, kept=keep):
                print(line)
            return 0
        print(f"lifecycle {state.type.value.lower()}: {state.message}; details in flow run "
              f"{state.state_details.flow_run_id} at {ui}/runs", file=sys.stderr)
        step = failed_step(state.state_details.flow_run_id)
        if step in FLOWS:
            print(f"the step that failed: {step}; its logs are in that flow run. Once fixed, retry only it with "
                  f"`fleetflow local run {step}` (the fleet was kept: teardown did not run), then `fleetflow local "
                  "demo` for the rest", file=sys.stderr)
        return 1


def failed_step(lifecycle_run_id: object) -> str | None:
    """The name of the lifecycle's sub-flow that failed (provision, bootstrap-aso, ...), if any."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterParentFlowRunId

    try:
        with get_client(sync_client=True) as client:
            children = client.read_flow_runs(flow_run_filter=FlowRunFilter(
                parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[lifecycle_run_id])))
            for run in children:
                if run.state is not None and (run.state.is_failed() or run.state.is_crashed()):
                    return str(client.read_flow(run.flow_id).name)
    except Exception:  # the message above already points at the run; this is a hint only
        return None
    return None


FLOWS = {
    "plan": "flows.plan:plan",
    "provision": "flows.provision:provision",
    "join": "flows.join:join",
    "bootstrap-aso": "flows.bootstrap_aso:bootstrap_aso",
    "apply-resources": "flows.apply_resources:apply_resources",
    "validate": "flows.validate:validate",
    "drift-check": "flows.drift_check:drift_check",
    "staged-upgrade": "flows.staged_upgrade:staged_upgrade",
    "teardown": "flows.teardown:teardown",
}


def run_flow(state_dir: Path | None, name: str, fleet: str, parameters: dict[str, object]) -> int:
    """Run one flow against the running local Azure (its blocks, chart mirror and clock) and the local-mode
    Prefect server, as the demo does; 0 when it completed."""
    import importlib

    local = _local_azure(state_dir)
    local.endpoint  # noqa: B018 (raises LocalAzureError with the fix when local Azure is not running)
    os.environ.setdefault(TIME_SCALE_ENV, str(local.knobs().get("time_scale", 0.01)))
    os.environ.setdefault(CHART_MIRROR_ENV, str(build_local_chart_mirror(local.state_dir / "charts")))
    module_name, _, attribute = FLOWS[name].partition(":")
    flow = getattr(importlib.import_module(module_name), attribute)
    with prefect_server_for_demo(local_home(local.state_dir)):
        arguments: dict[str, object] = {"fleet": fleet}
        if name != "plan":
            arguments["credentials_block"] = ADMIN_BLOCK
        state = flow(**arguments, **parameters, return_state=True)
    if state.is_completed():
        print(f"{name} completed (flow run {state.state_details.flow_run_id})")
        return 0
    print(f"{name} {state.type.value.lower()}: {state.message}", file=sys.stderr)
    return 1


def tour(ui: str, kept: bool) -> list[str]:
    """What to look at and try after the demo; every command named here exists (a test runs each with --help)."""
    lines = [
        "",
        "Where to look next:",
        f"  - the Prefect UI at {ui}: Runs lists every flow run; open one, then Artifacts for its tables",
        "    (fleet-status, bootstrap-aso, apply-resources, validate) and the staged upgrade's stage report;",
        "    Logs shows each task's own lines.",
        "  - fleetflow spec show fleet.yaml            the names fleetflow derives from the spec",
        "  - fleetflow local status                    local Azure, its clusters and this Prefect server",
        '  - eval "$(fleetflow local env)"              Azure SDK scripts against local Azure (README has one)',
        '  - eval "$(fleetflow local az)"               the Azure CLI logged in to local Azure',
    ]
    if kept:
        lines += [
            "  - fleetflow local run validate               run one flow against the kept fleet (also: drift-check,",
            "                                              apply-resources, bootstrap-aso, teardown, ...)",
        ]
    else:
        lines += ["  - fleetflow local demo --keep               keep the fleet to run single flows against it",
                  "                                              (fleetflow local run validate, drift-check, ...)"]
    lines += ["  - fleetflow local down                      stop local Azure, its clusters and this Prefect server"]
    return lines
