"""Orchestration overhead of staged-upgrade: a two-stage, three-cluster run with an approval between stages.

Local Azure runs with ARM-only clusters and Azure-like upgrade latency, time-scaled. An approver thread
answers the gate as soon as the flow pauses, so what is left after subtracting the upgrade work (the
members' own upgrade durations on the critical path) and the after-stage wait is fleetflow's and
Prefect's overhead: strategy and run creation, polling, publishing artifacts, pausing and resuming.

    .venv/bin/python tests/benchmarks/bench_staged_upgrade.py [--time-scale 0.02] [--poll 1.0]
"""

from __future__ import annotations

import argparse
import contextvars
import statistics
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))


def _seconds(start: datetime | None, end: datetime | None) -> float:
    return (end - start).total_seconds() if start and end else 0.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--time-scale", type=float, default=0.02, help="local Azure seconds per Azure second")
    parser.add_argument("--upgrade-seconds", type=float, default=600, help="Azure seconds per control-plane upgrade")
    parser.add_argument("--wait-seconds", type=int, default=600, help="after-stage wait of stage 1 (Azure seconds)")
    parser.add_argument("--poll", type=float, default=1.0, help="staged-upgrade poll_seconds")
    args = parser.parse_args()

    from prefect.testing.utilities import prefect_test_harness

    from console.approvals import answer_pending_approval
    from console.local_mode import save_local_blocks
    from flows.join import join
    from flows.provision import provision
    from flows.staged_upgrade import staged_upgrade
    from localazure import LocalAzure
    from tasks.clients import load_azure_clients
    from tasks.spec import load_spec
    from tests.fleet_fixtures import paused_run_for

    work = Path(tempfile.mkdtemp(prefix="fleetflow-bench-upgrade-"))
    document = yaml.safe_load((REPO / "fleet.yaml").read_text())
    document.update(name="benchfleet", resource_group="rg-benchfleet", suffix="bench1")
    document["update_strategy"]["stages"][0]["after_stage_wait_seconds"] = args.wait_seconds
    spec_path = work / "fleet.yaml"
    spec_path.write_text(yaml.safe_dump(document))
    spec = load_spec(spec_path)
    local = LocalAzure.start(work / "local-azure", clusters="arm-only", time_scale=args.time_scale,
                             latency={"aks.upgrade": args.upgrade_seconds, "aks.update": args.upgrade_seconds})
    try:
        with prefect_test_harness(server_startup_timeout=120):
            save_local_blocks(local.state_dir, fleet=str(spec_path))
            assert provision(fleet=str(spec_path), return_state=True).is_completed()
            assert join(fleet=str(spec_path), return_state=True).is_completed()

            approvals: list[float] = []

            def approver() -> None:
                paused = paused_run_for(spec_path, timeout=600)
                approvals.append(time.monotonic())
                answer_pending_approval(str(paused.id), approve=True, comment="benchmark", approver="bench")

            threading.Thread(target=contextvars.copy_context().run, args=(approver,), daemon=True).start()
            started = time.monotonic()
            state = staged_upgrade(fleet=str(spec_path), upgrade_type="ControlPlaneOnly", kubernetes_version="1.37",
                                   poll_seconds=args.poll, return_state=True)
            wall = time.monotonic() - started
            assert state.is_completed(), state

            clients = load_azure_clients("fleetflow-azure")
            run = next(iter(clients.fleet.update_runs.list_by_fleet(spec.resource_group_name, spec.name)))
            status = run.properties.status
            upgrade_work = 0.0
            waits = 0.0
            gates = 0.0
            member_durations: list[float] = []
            for stage in status.stages:
                group_work = []
                for group in stage.groups or []:
                    durations = [_seconds(m.status.start_time, m.status.completed_time) for m in group.members or []]
                    member_durations += durations
                    group_work.append(sum(durations))
                upgrade_work += max(group_work, default=0.0)
                if stage.after_stage_wait_status and stage.after_stage_wait_status.status:
                    wait = stage.after_stage_wait_status.status
                    waits += _seconds(wait.start_time, wait.completed_time)
                for gate in stage.before_gates or []:
                    gates += _seconds(gate.status.start_time, gate.status.completed_time)
            run_span = _seconds(status.status.start_time, status.status.completed_time)
    finally:
        local.stop()

    overhead = wall - upgrade_work - waits
    result: dict[str, Any] = {
        "flow wall (s)": round(wall, 2),
        "update run span (s)": round(run_span, 2),
        "upgrade work on the critical path (s)": round(upgrade_work, 2),
        "after-stage waits (s)": round(waits, 2),
        "gate pending, detection to approval to resume (s)": round(gates, 2),
        "member upgrade median (s)": round(statistics.median(member_durations), 2),
        "orchestration overhead (s)": round(overhead, 2),
        "overhead share of wall": f"{overhead / wall:.1%}",
        "flow outside the update run (s)": round(wall - run_span, 2),
    }
    print(f"staged-upgrade, 2 stages, 3 clusters, time scale {args.time_scale}, poll {args.poll}s")
    for key, value in result.items():
        print(f"  {key:<52} {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
