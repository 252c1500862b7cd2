"""Command line of local Azure: `python -m localazure serve --state-dir DIR [--port N] [knobs]`."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from localazure.arm.knobs import Knobs, apply_changes, from_environment

# Exit status when another emulator already serves the state directory (LocalAzure.start waits for it).
EXIT_BUSY = 3


def build_parser() -> argparse.ArgumentParser:
    """Arguments of `python -m localazure`."""
    parser = argparse.ArgumentParser(prog="python -m localazure", description="fleetflow local Azure")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the Resource Manager + token emulator over HTTPS")
    serve.add_argument("--state-dir", required=True, type=Path, help="directory for state, keys, certificates")
    serve.add_argument("--port", type=int, default=None, help="port on 127.0.0.1 (default: last used, else any)")
    serve.add_argument("--latency", help="Azure seconds per operation type, e.g. aks.create=240,aks.delete=60")
    serve.add_argument("--time-scale", type=float, help="wall seconds per Azure second (default 0.01)")
    serve.add_argument("--throttle-rate", type=float, help="fraction of ARM requests answered 429 (0..1)")
    serve.add_argument("--error-rate", type=float, help="fraction of ARM requests answered 500 (0..1)")
    serve.add_argument("--retry-after", type=float, help="Retry-After seconds sent with 429 (default 1)")
    serve.add_argument("--write-budget", type=int, help="subscription write requests per budget window (0 = no limit)")
    serve.add_argument("--read-budget", type=int, help="subscription read requests per budget window (0 = no limit)")
    serve.add_argument("--budget-window", type=float, help="budget window in Azure seconds (default 3600)")
    serve.add_argument("--fail", action="append", default=[],
                       help="force operations to fail: OP[:PATTERN], e.g. aks.create:eastus (repeatable)")
    serve.add_argument("--clusters", choices=["local", "arm-only"], help="back AKS clusters by local Kubernetes")
    serve.add_argument("--node-image-create", help="node image version new agent pools get")
    serve.add_argument("--node-image-latest", help="node image version upgradeNodeImageVersion moves to")
    return parser


def knobs_from_args(args: argparse.Namespace) -> Knobs:
    """Knobs from defaults, then FLEETFLOW_LOCAL_* environment, then flags."""
    knobs = from_environment(Knobs())
    changes: dict[str, object] = {}
    for name in ("latency", "time_scale", "throttle_rate", "error_rate", "retry_after", "clusters",
                 "node_image_create", "node_image_latest", "write_budget", "read_budget", "budget_window"):
        value = getattr(args, name)
        if value is not None:
            changes[name] = value
    if args.fail:
        changes["fail"] = ",".join(args.fail)
    return apply_changes(knobs, changes) if changes else knobs


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.command == "serve":
        from localazure.arm.server import StateDirBusy, serve
        from localazure.composition import providers

        try:
            knobs = knobs_from_args(args)
        except ValueError as exc:
            print(f"localazure: {exc}", file=sys.stderr)
            return 2
        try:
            serve(args.state_dir, args.port, knobs, providers())
        except StateDirBusy as exc:
            print(f"localazure: {exc}", file=sys.stderr)
            return EXIT_BUSY
    return 0


if __name__ == "__main__":
    sys.exit(main())
