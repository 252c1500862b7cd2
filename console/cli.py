"""`fleetflow`: what Prefect's own CLI does not cover — spec checks, local Azure, stage approvals."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from tasks.spec import FleetSpec, FleetSpecError, load_spec


def _spec_validate(args: argparse.Namespace) -> int:
    try:
        spec = load_spec(args.file)
        checked = None if args.offline else _versions_check(spec, args.file)
    except FleetSpecError as error:
        print(str(error), file=sys.stderr)
        return 1
    if checked:
        print(checked)
    print(f"{args.file}: valid — fleet {spec.name}, {len(spec.clusters())} clusters in {len(spec.regions)} regions, "
          f"{len(spec.update_strategy.stages)} stages, resource group {spec.resource_group_name}")
    return 0


def _versions_check(spec: FleetSpec, source: str) -> str:
    from tasks.versions import check_against_azure, principal_from_environment

    environment = principal_from_environment()
    if environment is not None:
        return check_against_azure(spec, source, (environment, "the AZURE_* environment"))
    from localazure.local import LocalAzure, LocalAzureError

    try:
        endpoint = LocalAzure().endpoint  # a running local Azure (default state directory)
    except (LocalAzureError, OSError, ValueError):
        return check_against_azure(spec, source, None)
    local = {"AZURE_TENANT_ID": endpoint.tenant_id, "AZURE_CLIENT_ID": endpoint.client_id,
             "AZURE_CLIENT_SECRET": endpoint.client_secret, "AZURE_SUBSCRIPTION_ID": endpoint.subscription_id,
             "AZURE_AUTHORITY_HOST": endpoint.authority_host,
             "AZURE_RESOURCE_MANAGER_ENDPOINT": endpoint.resource_manager_endpoint, "CA_BUNDLE": endpoint.ca_bundle}
    return check_against_azure(spec, source, (local, "the running local Azure"))


def _spec_show(args: argparse.Namespace) -> int:
    try:
        spec = load_spec(args.file)
    except FleetSpecError as error:
        print(str(error), file=sys.stderr)
        return 1
    print(f"fleet           {spec.name} ({spec.location})")
    print(f"resource group  {spec.resource_group_name}")
    print(f"registry        {spec.registry_name}")
    print(f"key vault       {spec.key_vault_name}")
    header = f"{'region':<16}{'cluster':<40}{'update group':<16}{'kubernetes':<12}nodes"
    print(header)
    for cluster in spec.clusters():
        print(f"{cluster.region:<16}{cluster.name:<40}{cluster.update_group:<16}{cluster.kubernetes_version:<12}"
              f"{cluster.node_count} x {cluster.vm_size}")
    for stage in spec.update_strategy.stages:
        print(f"stage {stage.name}: groups {', '.join(stage.groups)}; wait {stage.after_stage_wait_seconds}s after")
    return 0


def _local(args: argparse.Namespace) -> int:
    from localazure.local import LocalAzureError

    try:
        return _local_command(args)
    except LocalAzureError as error:
        print(f"fleetflow local {args.local_command}: {error} (fix: start it with `fleetflow local up`, or pass the "
              "--state-dir it runs with)", file=sys.stderr)
        return 1


def _local_command(args: argparse.Namespace) -> int:
    from console.local_mode import local_home, prefect_server_status
    from console.prefect_server import stop as stop_prefect_server
    from localazure import cli as local_cli

    state_dir = Path(args.state_dir) if args.state_dir else None
    command = args.local_command
    if command == "up":
        return local_cli.up(state_dir)
    if command == "env":
        print(local_cli.env(state_dir), end="")
        return 0
    if command == "az":
        print(local_cli.az(state_dir), end="")
        return 0
    if command == "sp":
        print(json.dumps(local_cli.sp_create(args.name, state_dir), indent=2))
        return 0
    if command == "status":
        code = local_cli.status(state_dir)
        print(prefect_server_status(local_home(state_dir)))
        return code
    if command == "down":
        stopped = stop_prefect_server(local_home(state_dir))
        print("the local-mode Prefect server is stopped" if stopped else "no local-mode Prefect server was running")
        return local_cli.down(state_dir)
    if command == "blocks":
        from console.local_mode import save_local_blocks

        for line in save_local_blocks(state_dir, fleet=args.fleet):
            print(line)
        return 0
    if command == "run":
        from console.local_mode import run_flow

        parameters = {}
        for item in args.param or []:
            key, separator, value = item.partition("=")
            if not separator:
                print(f"fleetflow local run: --param {item!r} is not KEY=VALUE (fix: e.g. --param "
                      "kubernetes_version='\"1.37\"')", file=sys.stderr)
                return 2
            try:
                parameters[key] = json.loads(value)
            except json.JSONDecodeError:
                parameters[key] = value
        return run_flow(state_dir, args.flow, fleet=args.fleet, parameters=parameters)
    if command == "demo":
        from console.local_mode import run_demo

        return run_demo(state_dir, fleet=args.fleet, keep=args.keep, interactive=args.interactive)
    raise AssertionError(command)


def _approval(args: argparse.Namespace) -> int:
    from console.approvals import ApprovalError, answer_pending_approval

    approved = args.command == "approve"
    try:
        message = answer_pending_approval(args.flow_run, approve=approved,
                                          comment=args.reason or args.comment or "", approver=args.approver)
    except ApprovalError as error:
        print(f"fleetflow {args.command}: {error}", file=sys.stderr)
        return 2
    print(message)
    return 0


def _automations(args: argparse.Namespace) -> int:
    from console.approvals import ApprovalError
    from console.automations import AutomationError, apply_automation
    from tasks.fleet_source import resolve_fleet_spec

    try:
        print(apply_automation(resolve_fleet_spec(args.fleet)))
    except FleetSpecError as error:
        print(str(error), file=sys.stderr)
        return 1
    except (AutomationError, ApprovalError) as error:
        print(f"fleetflow automations apply: {error}", file=sys.stderr)
        return 2
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The fleetflow command line."""
    parser = argparse.ArgumentParser(
        prog="fleetflow",
        description="fleetflow: Prefect workflows for an AKS fleet. Flows run with `prefect deployment run` "
        "or from the Prefect UI; this command covers fleet-spec checks, local Azure and stage approvals.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    spec = commands.add_parser("spec", help="check a fleet spec")
    spec_commands = spec.add_subparsers(dest="spec_command", required=True)
    validate = spec_commands.add_parser("validate", help="report every problem with its field path and fix")
    validate.add_argument("file", help="fleet spec YAML, e.g. fleet.yaml")
    validate.add_argument("--offline", action="store_true",
                          help="skip checking Kubernetes versions against Azure (the AZURE_* environment or a "
                          "running local Azure)")
    validate.set_defaults(handler=_spec_validate)
    show = spec_commands.add_parser("show", help="print the names fleetflow derives from a spec")
    show.add_argument("file", help="fleet spec YAML, e.g. fleet.yaml")
    show.set_defaults(handler=_spec_show)

    local = commands.add_parser("local", help="local Azure: an emulator with real local Kubernetes clusters")
    local.add_argument("--state-dir", help="state directory (default $FLEETFLOW_HOME/local, ~/.fleetflow/local)")
    local_commands = local.add_subparsers(dest="local_command", required=True)
    local_commands.add_parser("up", help="start local Azure in the background (idempotent)")
    local_commands.add_parser("env", help="print export lines for Azure SDK scripts: eval \"$(fleetflow local env)\"")
    local_commands.add_parser("az", help="log the real Azure CLI in to local Azure in a config directory of its own: "
                              "eval \"$(fleetflow local az)\"")
    sp = local_commands.add_parser("sp", help="service principals")
    sp_commands = sp.add_subparsers(dest="sp_command", required=True)
    sp_create = sp_commands.add_parser("create", help="create a service principal with no roles")
    sp_create.add_argument("name")
    local_commands.add_parser("status", help="show whether local Azure runs and what it holds")
    local_commands.add_parser("down", help="stop local Azure and every local cluster")
    blocks = local_commands.add_parser("blocks", help="save credential and fleet-spec blocks for local Azure")
    blocks.add_argument("--fleet", default="fleet.yaml", help="fleet spec to store as a block")
    demo = local_commands.add_parser("demo", help="run the whole lifecycle against local Azure")
    demo.add_argument("--fleet", default="fleet.yaml", help="fleet spec (default fleet.yaml)")
    demo.add_argument("--keep", action="store_true", help="skip teardown at the end")
    demo.add_argument("--interactive", action="store_true",
                      help="approve the upgrade's second stage yourself (Prefect UI or fleetflow approve)")
    run = local_commands.add_parser("run", help="run one flow against local Azure and the local Prefect server")
    run.add_argument("flow", choices=["plan", "provision", "join", "bootstrap-aso", "apply-resources", "validate",
                                      "drift-check", "staged-upgrade", "teardown"])
    run.add_argument("--fleet", default="block:fleetflow-fleet",
                     help="fleet spec: a path or block:<name> (default: the block the demo saved)")
    run.add_argument("--param", action="append", metavar="KEY=VALUE",
                     help="a flow parameter; VALUE is JSON when it parses (repeatable)")
    local.set_defaults(handler=_local)

    automations = commands.add_parser("automations", help="Prefect automations fleetflow keeps (idempotent)")
    automation_commands = automations.add_subparsers(dest="automations_command", required=True)
    apply = automation_commands.add_parser("apply", help="notify the approvers (the spec's upgrade_health."
                                           "notification_block) whenever a staged-upgrade stage waits")
    apply.add_argument("--fleet", default="fleet.yaml", help="fleet spec: a path or block:<name> (default fleet.yaml)")
    apply.set_defaults(handler=_automations)

    for name, help_text in (("approve", "approve the pending stage of a staged-upgrade flow run"),
                            ("reject", "reject the pending stage; the update run is stopped")):
        approval = commands.add_parser(name, help=help_text)
        approval.add_argument("flow_run", help="flow run id or name")
        approval.add_argument("--approver", default=None, help="who answers (default: $USER)")
        if name == "reject":
            approval.add_argument("--reason", required=True, help="why the stage is rejected")
        else:
            approval.add_argument("--comment", default="", help="a note for the record")
            approval.set_defaults(reason=None)
        approval.set_defaults(handler=_approval)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `fleetflow` console script."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except KeyboardInterrupt:
        print("fleetflow: interrupted", file=sys.stderr)
        return 130
    except Exception as error:
        if os.environ.get("FLEETFLOW_DEBUG"):
            raise
        # A user sees one line, never a traceback; FLEETFLOW_DEBUG=1 shows it for a bug report.
        text = (str(error).strip().splitlines() or [""])[0]
        print(f"fleetflow {args.command}: {type(error).__name__}: {text} (set FLEETFLOW_DEBUG=1 for the traceback)",
              file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
