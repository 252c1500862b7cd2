"""Benchmark: many AKS clusters across regions through local Azure (ARM-only), created in parallel.

Run: .venv/bin/python tests/benchmarks/bench_local_azure.py --clusters 24 --workers 8 --time-scale 0.01

Shows the orchestration shape fleetflow relies on: with parallel creates the wall time is close to
one (scaled) AKS create, not the sum; and how much the emulator itself adds per request.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

from localazure import LocalAzure
from tests.localazure_fixtures import clients_for

REGIONS = ["eastus", "westus2", "centralus", "northeurope", "westeurope", "uksouth", "japaneast", "australiaeast"]


def main() -> None:
    """Start an emulator, create/delete clusters in parallel, print timings."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clusters", type=int, default=16)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--time-scale", type=float, default=0.01)
    parser.add_argument("--gets", type=int, default=200, help="sequential GETs to time per-request overhead")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as state_dir:
        started = time.monotonic()
        azure = LocalAzure.start(state_dir, clusters="arm-only", time_scale=args.time_scale)
        print(f"emulator up in {time.monotonic() - started:.2f}s")
        try:
            endpoint = azure.endpoint
            clients = clients_for(endpoint)
            resources = clients.resource
            aks = clients.containerservice
            resources.resource_groups.create_or_update("bench", {"location": "eastus"})

            timings = []
            for _ in range(args.gets):
                t0 = time.perf_counter()
                resources.resource_groups.get("bench")
                timings.append(time.perf_counter() - t0)
            print(f"GET resource group: median {statistics.median(timings) * 1000:.1f} ms, "
                  f"p95 {sorted(timings)[int(len(timings) * 0.95)] * 1000:.1f} ms")

            def create(index: int) -> float:
                t0 = time.monotonic()
                region = REGIONS[index % len(REGIONS)]
                aks.managed_clusters.begin_create_or_update("bench", f"aks-{index:03d}-{region}", {
                    "location": region,
                    "properties": {"agentPoolProfiles": [{"name": "nodepool1", "count": 3}]},
                }).result()
                return time.monotonic() - t0

            one_create = 240 * args.time_scale
            t0 = time.monotonic()
            with ThreadPoolExecutor(args.workers) as pool:
                durations = list(pool.map(create, range(args.clusters)))
            wall = time.monotonic() - t0
            print(f"{args.clusters} creates, {args.workers} workers: wall {wall:.2f}s "
                  f"(one scaled create = {one_create:.2f}s, serial would be ~{one_create * args.clusters:.1f}s); "
                  f"per create median {statistics.median(durations):.2f}s max {max(durations):.2f}s")

            t0 = time.monotonic()
            resources.resource_groups.begin_delete("bench").result()
            print(f"group delete with {args.clusters} clusters: {time.monotonic() - t0:.2f}s")
        finally:
            azure.stop()


if __name__ == "__main__":
    main()
