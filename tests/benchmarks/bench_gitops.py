"""Benchmark: bootstrap-aso, apply-resources and drift-check on three real local clusters.

Run: .venv/bin/python tests/benchmarks/bench_gitops.py   (needs `make tools` and FLEETFLOW_CHART_MIRROR)

Two fleets of three real clusters each are provisioned and joined through a Prefect server. On the first,
bootstrap-aso runs as shipped (every cluster at once); on the second with a one-thread task runner, which
performs the same steps one cluster after another as the recipe's helm loop does. Then apply-resources
(this repository's gitops/ tree) and drift-check run on the first fleet. Printed: each flow's wall time,
its slowest cluster task (the critical path), their ratio, and the serial run's time against the parallel one.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any
from uuid import UUID

import yaml
from dulwich import porcelain

REPO = Path(__file__).resolve().parents[2]


def write_spec(work: Path, name: str, repo: Path) -> Path:
    """fleet.yaml renamed, with its gitops section pointing at `repo`."""
    document = yaml.safe_load((REPO / "fleet.yaml").read_text())
    document.update(name=name, resource_group=f"rg-{name}", suffix=name[-6:])
    document["gitops"] = {"repository": str(repo), "ref": porcelain.active_branch(str(repo)).decode(),
                          "path": "gitops", "fleet_cluster_region": "eastus", "health_timeout_seconds": 300}
    path = work / f"{name}.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def git_repo(work: Path) -> Path:
    """A repository holding this project's gitops/ tree in one commit."""
    repo = work / "repo"
    shutil.copytree(REPO / "gitops", repo / "gitops")
    porcelain.init(str(repo))
    porcelain.add(str(repo), [str(path) for path in (repo / "gitops").rglob("*.yaml")])
    porcelain.commit(str(repo), b"fleet resources", author=b"b <b@example.com>", committer=b"b <b@example.com>")
    return repo


def slowest_task_seconds(flow_run_id: UUID, prefix: str) -> float:
    """Duration of the longest task run of a flow run whose name starts with `prefix`."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    async def read() -> list[Any]:
        async with get_client() as client:
            return await client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))

    runs = [run for run in asyncio.run(read()) if run.name.startswith(prefix) and run.start_time and run.end_time]
    return max((run.end_time - run.start_time).total_seconds() for run in runs)


def timed(flow: Any, **parameters: Any) -> tuple[float, UUID]:
    """Wall seconds of one flow run and its id; the run must complete."""
    started = time.monotonic()
    state = flow(return_state=True, **parameters)
    wall = time.monotonic() - started
    if not state.is_completed():
        raise SystemExit(f"{flow.name} failed: {state.message}")
    return wall, state.state_details.flow_run_id


def run(work: Path) -> dict[str, float]:
    """Start local Azure with real clusters, provision two fleets, measure the three flows."""
    from prefect.task_runners import ThreadPoolTaskRunner

    from console.local_mode import save_local_blocks
    from flows.apply_resources import apply_resources
    from flows.bootstrap_aso import bootstrap_aso
    from flows.drift_check import drift_check
    from flows.join import join
    from flows.provision import provision
    from localazure import LocalAzure
    from localazure.chartmirror import CHART_MIRROR_ENV, build_local_chart_mirror

    local = LocalAzure.start(work / "local-azure", clusters="local", time_scale=0.01)
    os.environ[CHART_MIRROR_ENV] = str(build_local_chart_mirror(local.state_dir / "charts"))
    repo = git_repo(work)
    parallel, serial = write_spec(work, "benchpar001", repo), write_spec(work, "benchser001", repo)
    figures: dict[str, float] = {}
    try:
        save_local_blocks(local.state_dir, fleet=str(parallel))
        for spec in (parallel, serial):
            timed(provision, fleet=str(spec))
            timed(join, fleet=str(spec))
        wall, run_id = timed(bootstrap_aso, fleet=str(parallel))
        figures["bootstrap wall"] = wall
        figures["bootstrap slowest cluster"] = slowest_task_seconds(run_id, "bootstrap-aso-")
        one_at_a_time = bootstrap_aso.with_options(task_runner=ThreadPoolTaskRunner(max_workers=1))
        figures["bootstrap serial"], _ = timed(one_at_a_time, fleet=str(serial))
        figures["bootstrap rerun (no change)"], _ = timed(bootstrap_aso, fleet=str(parallel))
        wall, run_id = timed(apply_resources, fleet=str(parallel))
        figures["apply wall"] = wall
        figures["apply slowest cluster"] = slowest_task_seconds(run_id, "apply-resources-")
        figures["drift-check wall"], _ = timed(drift_check, fleet=str(parallel))
        figures["rss per cluster MB"] = sum(cluster.rss_bytes() for cluster in local_clusters(local)) / 6 / 2**20
    finally:
        local.stop()
    return figures


def local_clusters(local: Any) -> list[Any]:
    """The LocalCluster objects of every running local cluster of this local Azure."""
    from localazure.kube import LocalCluster

    return [LocalCluster.load(path.parent, restart=False) for path in (local.state_dir).rglob("cluster.json")]


def main() -> None:
    """Run and print the figures with their ratios."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    with tempfile.TemporaryDirectory() as directory:
        from prefect.testing.utilities import prefect_test_harness

        with prefect_test_harness(server_startup_timeout=120):
            figures = run(Path(directory))
    for name, value in figures.items():
        print(f"{name:>30}: {value:8.2f}")
    print(f"{'bootstrap wall/slowest':>30}: {figures['bootstrap wall'] / figures['bootstrap slowest cluster']:8.2f}")
    print(f"{'bootstrap serial/parallel':>30}: {figures['bootstrap serial'] / figures['bootstrap wall']:8.2f}")
    print(f"{'apply wall/slowest':>30}: {figures['apply wall'] / figures['apply slowest cluster']:8.2f}")


if __name__ == "__main__":
    main()
