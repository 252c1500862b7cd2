"""What the lifecycle flows share: the fleet-wide task runner, the write budget, collecting fanned-out results."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from prefect.futures import PrefectFuture
from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

from tasks.retry import FleetflowError
from tasks.spec import FleetSpec

# Threads for one flow run's fanned-out tasks: more than a fleet holds clusters (Fleet Manager's member limit), so
# fan-out is per cluster and never waits for a thread; the pool starts threads only for tasks actually submitted.
# What bounds the pace is the subscription's Resource Manager write budget (share_write_budget), not this pool.
FLEET_WORKERS = 256


def fleet_task_runner() -> TaskRunner[PrefectFuture[Any]]:
    """A task runner wide enough to run every cluster's tasks at the same time."""
    runner: TaskRunner[PrefectFuture[Any]] = ThreadPoolTaskRunner(max_workers=FLEET_WORKERS)  # type: ignore[assignment]
    return runner


region_task_runner = fleet_task_runner  # the name flows used when a region held one cluster


def share_write_budget(spec: FleetSpec, credentials_block: str) -> str:
    """Create or update the subscription's Resource Manager write budget (a Prefect global concurrency limit every
    flow on the subscription draws on) from the spec's concurrency section; returns the limit's name."""
    from tasks import arm_budget
    from tasks.clients import load_azure_clients

    return arm_budget.share_write_budget(spec, load_azure_clients(credentials_block).subscription_id)


class StepFailed(FleetflowError):
    """One or more fanned-out tasks of a flow step failed; lists each with its own error."""


def gather(step: str, futures: Iterable[PrefectFuture[Any]]) -> tuple[list[Any], list[str]]:
    """Wait for every future; return the results of those that succeeded and a line per failure."""
    results: list[Any] = []
    failures: list[str] = []
    for future in futures:
        future.wait()
        state = future.state
        if state.is_completed():
            results.append(future.result())
            continue
        error = future.result(raise_on_failure=False)
        failures.append(f"{step}: {error}" if isinstance(error, BaseException) else f"{step}: {state.message}")
    return results, failures


def raise_if_failed(step: str, failures: list[str], resource_id: str) -> None:
    """Fail the flow naming every failed task, after the tasks that could finish have finished."""
    if failures:
        listing = "\n".join(f"  - {line}" for line in failures)
        raise StepFailed(f"{step}: {len(failures)} failed; a re-run finishes only what is missing:\n{listing}",
                         operation=step, resource_id=resource_id)
