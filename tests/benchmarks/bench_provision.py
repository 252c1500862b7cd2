"""Benchmark: provision wall time against the critical path (slowest region) and against the recipe's serial loops.

Run: .venv/bin/python tests/benchmarks/bench_provision.py --regions 3 10 --time-scale 0.02

Local Azure (ARM-only clusters) gets typical Azure durations — AKS create 300 s, Fleet create 60 s — scaled
by --time-scale. For each region count the provision flow runs twice through a Prefect server: as shipped
(every region at once) and with a one-thread task runner, which performs the same steps one after another
as the recipe's loops do. Printed: wall time, the critical path, the serial time, their ratio, and
Prefect's own overhead per task (a no-op task run through the same server).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

AZURE_LATENCY = {"aks.create": 300.0, "fleet.create": 60.0, "group.create": 2.0}
BENCH_REGIONS = ["eastus", "westus2", "centralus", "northeurope", "westeurope", "uksouth", "japaneast",
                 "australiaeast", "southeastasia", "canadacentral", "brazilsouth", "koreacentral"]


def write_spec(directory: Path, name: str, regions: int) -> Path:
    """A fleet spec with `regions` regions, alternating between two update groups."""
    document = {
        "name": name, "location": "eastus", "suffix": "bench1", "resource_group": f"rg-{name}",
        "regions": [{"name": region, "update_group": "test-group" if index == 0 else "prod-group"}
                    for index, region in enumerate(BENCH_REGIONS[:regions])],
        "update_strategy": {"stages": [{"name": "stage1", "groups": ["test-group"]},
                                       {"name": "stage2", "groups": ["prod-group"]}]},
    }
    path = directory / f"{name}.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def timed_provision(spec_path: Path, workers: int | None) -> float:
    """Wall seconds of one provision flow run; workers=1 runs the steps one after another."""
    from prefect.task_runners import ThreadPoolTaskRunner

    from flows.provision import provision

    flow = provision if workers is None else provision.with_options(
        task_runner=ThreadPoolTaskRunner(max_workers=workers))
    started = time.monotonic()
    state = flow(fleet=str(spec_path), return_state=True)
    wall = time.monotonic() - started
    if not state.is_completed():
        raise SystemExit(f"provision failed: {state.message}")
    return wall


def prefect_overhead_per_task(count: int = 30) -> float:
    """Seconds Prefect adds per task run (a no-op task with fleetflow's decorator, run sequentially)."""
    from prefect import flow

    from tasks.retry import azure_task

    @azure_task()
    def noop(index: int) -> int:
        return index

    @flow(name="bench-noop-tasks")
    def many() -> None:
        for index in range(count):
            noop(index)

    many()  # warm up: flow registration, client connections
    started = time.monotonic()
    many()
    return (time.monotonic() - started) / count


def run(args: argparse.Namespace, work: Path) -> list[dict[str, Any]]:
    """Start local Azure, save blocks, and measure each region count."""
    from console.local_mode import save_local_blocks
    from localazure import LocalAzure

    local = LocalAzure.start(work / "local-azure", clusters="arm-only", time_scale=args.time_scale,
                             latency=AZURE_LATENCY)
    os.environ["FLEETFLOW_TIME_SCALE"] = str(args.time_scale)
    results = []
    try:
        overhead = prefect_overhead_per_task()
        for regions in args.regions:
            parallel_spec = write_spec(work, f"benchp{regions}", regions)
            serial_spec = write_spec(work, f"benchs{regions}", regions)
            save_local_blocks(local.state_dir, fleet=str(parallel_spec))
            wall = timed_provision(parallel_spec, None)
            serial = timed_provision(serial_spec, 1) if args.serial else float("nan")
            # The group comes first, then every region's cluster and the fleet at once.
            critical = args.time_scale * (AZURE_LATENCY["group.create"]
                                          + max(AZURE_LATENCY["aks.create"], AZURE_LATENCY["fleet.create"]))
            recipe = args.time_scale * (AZURE_LATENCY["group.create"] + AZURE_LATENCY["fleet.create"]
                                        + regions * AZURE_LATENCY["aks.create"])
            results.append({"regions": regions, "wall": wall, "critical": critical, "serial": serial,
                            "recipe": recipe, "overhead": overhead})
    finally:
        local.stop()
    return results


def main() -> None:
    """Parse arguments, run, print a table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--regions", type=int, nargs="+", default=[3, 10])
    parser.add_argument("--time-scale", type=float, default=0.02)
    parser.add_argument("--no-serial", dest="serial", action="store_false",
                        help="skip the measured one-after-another run (the recipe's time is still computed)")
    args = parser.parse_args()
    if max(args.regions) > len(BENCH_REGIONS):
        raise SystemExit(f"at most {len(BENCH_REGIONS)} regions")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")

    with tempfile.TemporaryDirectory() as directory:
        from prefect.settings import PREFECT_API_URL

        if PREFECT_API_URL.value():
            results = run(args, Path(directory))
        else:
            from prefect.testing.utilities import prefect_test_harness

            with prefect_test_harness(server_startup_timeout=120):
                results = run(args, Path(directory))

    print(f"\ntime scale {args.time_scale} (AKS create {AZURE_LATENCY['aks.create']:g} s -> "
          f"{AZURE_LATENCY['aks.create'] * args.time_scale:g} s wall)")
    print(f"{'regions':>7} {'wall s':>8} {'critical s':>10} {'wall/critical':>13} {'serial s':>9} "
          f"{'recipe s':>9} {'serial/wall':>11} {'prefect s/task':>14}")
    for row in results:
        print(f"{row['regions']:>7} {row['wall']:>8.2f} {row['critical']:>10.2f} "
              f"{row['wall'] / row['critical']:>13.2f} {row['serial']:>9.2f} {row['recipe']:>9.2f} "
              f"{row['serial'] / row['wall']:>11.1f} {row['overhead']:>14.3f}")


if __name__ == "__main__":
    main()
