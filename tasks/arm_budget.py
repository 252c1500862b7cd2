"""One Resource Manager write budget per subscription, shared by every flow through Prefect.

Azure throttles a subscription's writes with a token bucket (a burst, refilled at a steady rate) and answers
429 with Retry-After beyond it. fleetflow keeps under that budget with a Prefect global concurrency limit named
after the subscription, `fleetflow-arm-writes-<subscription id>`: its limit is the burst
(`concurrency.max_parallel_writes`) and its slot decay the refill rate (`concurrency.writes_per_second`).
Every write request (PUT, PATCH, POST, DELETE) to Resource Manager takes one slot first (`rate_limit`), in
the Azure SDK pipeline of every client `tasks/clients.py` builds, so every task, every flow and every worker
on the same subscription and Prefect server draws on one budget. Reads and long-running-operation polls are
not gated: the SDK's retry policy honours Retry-After when Azure throttles them.

Fan-out is per cluster and as wide as the fleet; what bounds throughput is this budget, not the thread pool.
"""

from __future__ import annotations

import logging
from typing import Any

from azure.core.pipeline import PipelineRequest, PipelineResponse
from azure.core.pipeline.policies import HTTPPolicy

from tasks.retry import time_scale
from tasks.spec import FleetSpec

WRITE_LIMIT_PREFIX = "fleetflow-arm-writes-"
WRITE_METHODS = frozenset({"PUT", "PATCH", "POST", "DELETE"})

log = logging.getLogger(__name__)


def write_limit_name(subscription_id: str) -> str:
    """The Prefect global concurrency limit holding a subscription's Resource Manager write budget."""
    return f"{WRITE_LIMIT_PREFIX}{subscription_id.lower()}"


def slot_decay(spec: FleetSpec) -> float:
    """Slots freed per wall second: the spec's writes per second, faster when FLEETFLOW_TIME_SCALE shrinks Azure
    time (tests, the local demo and benchmarks against a time-scaled local Azure)."""
    return spec.concurrency.writes_per_second / time_scale()


def share_write_budget(spec: FleetSpec, subscription_id: str) -> str:
    """Create the subscription's write-budget limit, or update it to this spec's values (idempotent); returns its
    name. Two flows on one subscription share the limit; the last one to start sets its size."""
    from prefect.client.orchestration import get_client

    name = write_limit_name(subscription_id)
    with get_client(sync_client=True) as client:
        client.upsert_global_concurrency_limit_by_name(name, spec.concurrency.max_parallel_writes,
                                                       slot_decay_per_second=slot_decay(spec))
    return name


def _in_prefect_run() -> bool:
    from prefect.context import FlowRunContext, TaskRunContext

    return TaskRunContext.get() is not None or FlowRunContext.get() is not None


class WriteBudgetPolicy(HTTPPolicy):
    """Takes a slot of the subscription's write budget before each Resource Manager write (once per call, before
    the SDK's retries). Outside a Prefect run, or when no flow created the limit, writes go ungated."""

    def __init__(self, subscription_id: str) -> None:
        super().__init__()
        self.limit_name = write_limit_name(subscription_id)

    def send(self, request: PipelineRequest[Any]) -> PipelineResponse[Any, Any]:
        if request.http_request.method.upper() in WRITE_METHODS and _in_prefect_run():
            from prefect.concurrency.sync import rate_limit

            rate_limit(self.limit_name, occupy=1, strict=False)
        return self.next.send(request)
