"""Benchmark: provision + join + a two-stage staged upgrade of 10, 30 and 100 clusters (several per region)
through a Prefect server, against the critical path, with and without Resource Manager's subscription
throttling.

Run (nice it: the machine is shared):

    nice -n 10 .venv/bin/python tests/benchmarks/bench_scale.py --clusters 10 30 100 --time-scale 0.1

Local Azure serves ARM-only clusters with Azure-like durations (AKS create 300 s, Fleet 60 s, member join 60 s),
scaled by --time-scale. Each fleet size runs in its own process (its peak RSS is that size's figure), against
one Prefect server and its own local Azure:

* unthrottled: wall of provision and of join against their critical paths (the group, then the slowest
  create; the slowest join), of a two-stage control-plane upgrade (a group per region, whose members Fleet
  upgrades one after another, 120 Azure s each; eastus first, a 60 s wait, then every other region at once; the
  gate approved as soon as it opens), and Prefect's
  overhead per mapped task (a no-op task mapped over the fleet);
* throttled: local Azure's write budget (--write-budget writes per --budget-window Azure seconds, a token
  bucket) and read budget, with the spec's concurrency set to the same budget; the best time the budget
  allows is when the last write can go (burst, then the refill rate) plus the create it starts.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

AZURE_LATENCY = {"aks.create": 300.0, "fleet.create": 60.0, "fleet.member.create": 60.0, "group.create": 2.0,
                 "aks.upgrade": 120.0, "aks.update": 120.0}
STAGE_WAIT = 60  # Azure seconds after the first stage of the staged upgrade
REGIONS = ["eastus", "westus2", "centralus", "northeurope", "westeurope", "uksouth", "japaneast", "australiaeast",
           "southeastasia", "canadacentral"]


def write_spec(directory: Path, name: str, clusters: int, budget: tuple[int, float] | None) -> Path:
    """A spec of `clusters` clusters spread over ten regions (several per region), a group per region."""
    per_region: dict[str, list[dict[str, str]]] = {}
    for index in range(clusters):
        per_region.setdefault(REGIONS[index % len(REGIONS)], []).append({"name": f"c{index:03d}"})
    document: dict[str, Any] = {
        "name": name, "location": "eastus", "suffix": "scale1", "resource_group": f"rg-{name}",
        # One update group per region: Fleet upgrades a group's members one after another and the groups of a
        # stage side by side, so the first stage is eastus, the second every other region at once.
        "regions": [{"name": region, "update_group": f"g-{region}", "clusters": entries}
                    for region, entries in per_region.items()],
        "update_strategy": {"stages": [{"name": "stage1", "groups": ["g-eastus"],
                                        "after_stage_wait_seconds": STAGE_WAIT},
                                       {"name": "stage2", "groups": [f"g-{r}" for r in per_region if r != "eastus"]}]},
    }
    if budget is not None:
        writes, window = budget
        document["concurrency"] = {"max_parallel_writes": writes, "writes_per_second": writes / window}
    path = directory / f"{name}.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def mapped_overhead(count: int) -> float:
    """Seconds per task of a no-op task (fleetflow's decorator) mapped over `count` items in one flow run."""
    from prefect import flow, unmapped

    from flows.common import fleet_task_runner, gather
    from tasks.retry import azure_task

    @azure_task()
    def noop(index: int, spec: str) -> int:
        return index

    @flow(name="bench-mapped-noop", task_runner=fleet_task_runner())
    def many(n: int) -> None:
        results, failures = gather("noop", noop.map(range(n), unmapped("x")))
        assert not failures and len(results) == n

    many(2)  # warm up
    started = time.monotonic()
    many(count)
    return (time.monotonic() - started) / count


def best_time(writes: int, budget: tuple[int, float] | None, work: float) -> float:
    """Azure seconds: the last of `writes` writes goes when the bucket allows (burst, then its refill), then the
    `work` it starts."""
    if budget is None:
        return work
    burst, window = budget
    return max(0, writes - burst) * window / burst + work


def one_size(args: argparse.Namespace) -> dict[str, Any]:
    """Measure one fleet size in this process (a child of main)."""
    from console.local_mode import save_local_blocks
    from flows.join import join
    from flows.provision import provision
    from localazure import LocalAzure

    scale = args.time_scale
    budget = (args.write_budget, args.budget_window) if args.throttled else None
    work = Path(tempfile.mkdtemp(prefix="fleetflow-bench-scale-"))
    knobs: dict[str, Any] = {"clusters": "arm-only", "time_scale": scale, "latency": AZURE_LATENCY}
    if budget is not None:
        knobs.update(write_budget=args.write_budget, read_budget=args.read_budget, budget_window=args.budget_window)
    local = LocalAzure.start(work / "local-azure", **knobs)
    os.environ["FLEETFLOW_TIME_SCALE"] = str(scale)
    try:
        spec_path = write_spec(work, f"scale{args.one}{'t' if budget else ''}", args.one, budget)
        save_local_blocks(local.state_dir, fleet=str(spec_path))
        overhead = mapped_overhead(args.one)
        started = time.monotonic()
        state = provision(fleet=str(spec_path), return_state=True)
        provision_wall = time.monotonic() - started
        assert state.is_completed(), state.message
        provision_failed, provision_retries = task_run_counts(state)
        if budget is not None:
            # Join's best time assumes a full budget, as provision's does: let both buckets (Prefect's limit and
            # local Azure's) refill first.
            time.sleep(scale * args.budget_window)
        started = time.monotonic()
        state = join(fleet=str(spec_path), return_state=True)
        join_wall = time.monotonic() - started
        assert state.is_completed(), state.message
        join_failed, join_retries = task_run_counts(state)
        upgrade_wall = staged_upgrade_wall(spec_path) if args.upgrade and not budget else None
    finally:
        local.stop()
    n = args.one
    # provision writes: group, fleet, role assignment, one per cluster; join: one per member.
    provision_best = scale * (AZURE_LATENCY["group.create"] + best_time(
        n + 2, budget, max(AZURE_LATENCY["aks.create"], AZURE_LATENCY["fleet.create"])))
    join_best = scale * best_time(n, budget, AZURE_LATENCY["fleet.member.create"])
    # Fleet upgrades a group's members one after another, a stage's groups side by side: the first stage is
    # eastus's clusters in turn, then the wait, then the most populous other region's clusters in turn.
    per_region = [len(range(i, n, len(REGIONS))) for i in range(min(n, len(REGIONS)))]
    upgrade = AZURE_LATENCY["aks.upgrade"]
    upgrade_best = scale * (per_region[0] * upgrade + STAGE_WAIT + max(per_region[1:], default=0) * upgrade)
    return {"clusters": n, "throttled": bool(budget), "provision_wall": provision_wall,
            "upgrade_wall": upgrade_wall, "upgrade_best": upgrade_best,
            "provision_best": provision_best,
            "join_wall": join_wall, "join_best": join_best, "overhead": overhead,
            "failed_tasks": provision_failed + join_failed, "retried_tasks": provision_retries + join_retries,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def staged_upgrade_wall(spec_path: Path) -> float:
    """Wall seconds of a two-stage control-plane upgrade to 1.37, its gate approved the moment the flow pauses."""
    import contextvars
    import threading

    from console.approvals import answer_pending_approval
    from flows.staged_upgrade import staged_upgrade
    from tests.fleet_fixtures import paused_run_for

    def approver() -> None:
        paused = paused_run_for(spec_path, timeout=1200)
        answer_pending_approval(str(paused.id), approve=True, comment="benchmark", approver="bench")

    threading.Thread(target=contextvars.copy_context().run, args=(approver,), daemon=True).start()
    started = time.monotonic()
    state = staged_upgrade(fleet=str(spec_path), upgrade_type="ControlPlaneOnly", kubernetes_version="1.37",
                           poll_seconds=1.0, return_state=True)
    assert state.is_completed(), state.message
    return time.monotonic() - started


def task_run_counts(state: Any, settle: float = 60.0) -> tuple[int, int]:
    """(failed task runs, task runs that needed a retry) of a finished flow run. The server records task states
    from events, behind the flow under load: wait until every task run it knows has a final state."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    deadline = time.monotonic() + settle
    with get_client(sync_client=True) as client:
        while True:
            runs: list[Any] = []
            while True:
                page = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(
                    any_=[state.state_details.flow_run_id])), limit=200, offset=len(runs))
                runs += page
                if len(page) < 200:
                    break
            if all(run.state is not None and run.state.is_final() for run in runs) or time.monotonic() > deadline:
                break
            time.sleep(1.0)
    return (sum(1 for run in runs if run.state is None or not run.state.is_completed()),
            sum(1 for run in runs if run.run_count > 1))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clusters", type=int, nargs="+", default=[10, 30, 100])
    parser.add_argument("--time-scale", type=float, default=0.1)
    parser.add_argument("--write-budget", type=int, default=40, help="writes per budget window when throttled")
    parser.add_argument("--read-budget", type=int, default=12000, help="reads per budget window when throttled")
    parser.add_argument("--budget-window", type=float, default=600.0, help="budget window, Azure seconds")
    parser.add_argument("--no-throttled", dest="with_throttled", action="store_false")
    parser.add_argument("--no-upgrade", dest="upgrade", action="store_false",
                        help="skip the staged upgrade (its critical path grows with clusters per region)")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--throttled", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    if args.one:
        print(json.dumps(one_size(args)))
        return 0

    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    rows = []
    with prefect_test_harness(server_startup_timeout=120):
        env = {**os.environ, "PREFECT_API_URL": str(PREFECT_API_URL.value())}
        for throttled in ([False, True] if args.with_throttled else [False]):
            for count in args.clusters:
                argv = [sys.executable, __file__, "--one", str(count), "--time-scale", str(args.time_scale),
                        "--write-budget", str(args.write_budget), "--read-budget", str(args.read_budget),
                        "--budget-window", str(args.budget_window), *(["--throttled"] if throttled else []),
                        *([] if args.upgrade else ["--no-upgrade"])]
                done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
                if done.returncode != 0:
                    print(done.stdout[-3000:], done.stderr[-5000:], file=sys.stderr)
                    return 1
                rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
                print(rows[-1], flush=True)

    print(f"\ntime scale {args.time_scale}; throttled = {args.write_budget} writes / {args.read_budget} reads per "
          f"{args.budget_window:g} Azure s")
    print(f"{'clusters':>8} {'throttled':>9} {'provision s':>11} {'best s':>7} {'ratio':>6} {'join s':>7} "
          f"{'best s':>7} {'ratio':>6} {'upgrade s':>9} {'best s':>7} {'ratio':>6} {'s/mapped task':>13} "
          f"{'failed':>6} {'retried':>7} {'peak RSS MB':>11}")
    for row in rows:
        print(f"{row['clusters']:>8} {str(row['throttled']):>9} {row['provision_wall']:>11.2f} "
              f"{row['provision_best']:>7.2f} {row['provision_wall'] / row['provision_best']:>6.2f} "
              f"{row['join_wall']:>7.2f} {row['join_best']:>7.2f} {row['join_wall'] / row['join_best']:>6.2f} "
              f"{_upgrade_columns(row)} "
              f"{row['overhead']:>13.4f} {row['failed_tasks']:>6} {row['retried_tasks']:>7} "
              f"{row['peak_rss_mb']:>11.0f}")
    return 0


def _upgrade_columns(row: dict[str, Any]) -> str:
    if row["upgrade_wall"] is None:
        return f"{'-':>9} {'-':>7} {'-':>6}"
    return (f"{row['upgrade_wall']:>9.2f} {row['upgrade_best']:>7.2f} "
            f"{row['upgrade_wall'] / row['upgrade_best']:>6.2f}")


if __name__ == "__main__":
    sys.exit(main())
