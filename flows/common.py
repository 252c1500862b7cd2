"""What the lifecycle flows share: the region-wide task runner and collecting fanned-out task results."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from prefect.futures import PrefectFuture
from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

from tasks.retry import FleetflowError
from tasks.spec import AZURE_REGIONS

# One thread per region: a spec lists each Azure region at most once, so this many workers never make a
# region wait for another. The pool only starts threads for tasks actually submitted.
REGION_WORKERS = len(AZURE_REGIONS) + 4


def region_task_runner() -> TaskRunner[PrefectFuture[Any]]:
    """A task runner wide enough to run every region's tasks at the same time."""
    runner: TaskRunner[PrefectFuture[Any]] = ThreadPoolTaskRunner(max_workers=REGION_WORKERS)  # type: ignore[assignment]
    return runner


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
