"""One Resource Manager write budget per subscription, shared by every flow through Prefect.

Azure throttles a subscription's writes with a token bucket (a burst, refilled at a steady rate) and answers
429 with Retry-After beyond it. fleetflow keeps under that budget with a Prefect global concurrency limit named
after the subscription, `fleetflow-arm-writes-<subscription id>`: its limit is the burst
(`concurrency.max_parallel_writes`) and its slot decay the refill rate (`concurrency.writes_per_second`).
Every write request (PUT, PATCH, POST, DELETE) to Resource Manager takes one slot first (`take_write_slot`,
in the Azure SDK pipeline of every client `tasks/clients.py` builds; a process asks for its waiting writes'
slots together), so every task, every flow and every worker on the same subscription and Prefect server draws
on one budget. Reads and long-running-operation polls are
not gated: the SDK's retry policy honours Retry-After when Azure throttles them.

Fan-out is per cluster and as wide as the fleet; what bounds throughput is this budget, not the thread pool.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from azure.core.pipeline import PipelineRequest, PipelineResponse
from azure.core.pipeline.policies import HTTPPolicy

from tasks.retry import time_scale
from tasks.spec import FleetSpec

WRITE_LIMIT_PREFIX = "fleetflow-arm-writes-"
WRITE_METHODS = frozenset({"PUT", "PATCH", "POST", "DELETE"})
# Waits between budget calls a busy Prefect server refused (503) or did not answer, seconds: doubling from the
# first to the max; after BUSY_GIVE_UP seconds of refusals the waiting writes fail.
BUSY_WAIT_FIRST, BUSY_WAIT_MAX, BUSY_GIVE_UP = 0.05, 1.0, 120.0
MAX_SLOTS_PER_CALL = 256

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
            take_write_slot(self.limit_name)
        return self.next.send(request)


_api_clients_lock = threading.Lock()
_api_clients: dict[str, Any] = {}


def _prefect_api(url: str) -> Any:
    """One synchronous Prefect API client per API URL in this process, shared by every thread (httpx's client
    is thread-safe and pools its connections); built with the calling thread's Prefect settings."""
    from prefect.client.orchestration import get_client

    with _api_clients_lock:
        if url not in _api_clients:
            client = get_client(sync_client=True)
            client.__enter__()
            _api_clients[url] = client
        return _api_clients[url]


class _SlotBroker:
    """Takes slots of one budget for every thread of this process, many in one API call.

    A hundred tasks writing at once would otherwise make a hundred calls that all update the limit's one row: on
    a SQLite-backed Prefect server they collide (SQLITE_BUSY, answered 503 and retried with back-off), and
    Prefect's own `rate_limit()` avoids that by queueing the calls of a process one after another (at 100
    clusters the median write waited 13 s in that line with the budget nowhere near spent). Here the waiting
    writers are counted and their slots asked for together; when the budget has fewer left (423), the batch is
    halved, and a single slot waits the Retry-After the server names (seconds until enough slots decay)."""

    def __init__(self, api: Any, limit_name: str) -> None:
        self.api = api
        self.limit_name = limit_name
        self._changed = threading.Condition()
        self._waiting = 0
        self._granted = 0
        self._failure: Exception | None = None
        self._failures_owed = 0
        self._next_ask = MAX_SLOTS_PER_CALL
        threading.Thread(target=self._serve, name=f"write-slots-{limit_name}", daemon=True).start()

    def take(self) -> None:
        """Block until this thread's write has a slot."""
        with self._changed:
            self._waiting += 1
            self._changed.notify_all()
            while not self._granted and not self._failures_owed:
                self._changed.wait()
            if self._granted:
                self._granted -= 1
                return
            self._failures_owed -= 1
            failure = self._failure
        raise RuntimeError(f"no slot of the Resource Manager write budget {self.limit_name}: {failure}") from failure

    def _serve(self) -> None:
        while True:
            with self._changed:
                while not self._waiting:
                    self._changed.wait()
                wanted = self._waiting
            try:
                got = self._acquire(wanted)
            except Exception as error:  # the waiting writers fail with it rather than wait forever
                with self._changed:
                    self._failure, self._failures_owed = error, self._failures_owed + wanted
                    self._waiting -= wanted
                    self._changed.notify_all()
                continue
            with self._changed:
                self._waiting -= got
                self._granted += got
                self._changed.notify_all()

    def _acquire(self, wanted: int) -> int:
        import httpx

        asked, busy_wait, busy_since = min(wanted, self._next_ask), BUSY_WAIT_FIRST, time.monotonic()
        while True:
            try:
                response = _increment(self.api, self.limit_name, asked)
            except httpx.TransportError:
                response = None
            if response is not None and response.status_code == 200:
                # A spent budget is asked one slot at a time, then twice as many after each grant.
                self._next_ask = min(MAX_SLOTS_PER_CALL, asked * 2)
                return asked
            # 422: more slots asked than the budget holds at all; 423: more than it has left now.
            if response is not None and response.status_code in (422, 423) and asked > 1:
                asked //= 2
                continue
            if response is not None and response.status_code == 423:
                self._next_ask = 1
                time.sleep(self._slot_interval(response))
                continue
            if response is not None and response.status_code != 503:
                response.raise_for_status()
            if time.monotonic() - busy_since > BUSY_GIVE_UP:
                raise RuntimeError(f"the Prefect API kept refusing budget calls for {BUSY_GIVE_UP:.0f} s (busy)")
            time.sleep(busy_wait)
            busy_wait = min(BUSY_WAIT_MAX, busy_wait * 2)


    def _slot_interval(self, refusal: Any) -> float:
        """Seconds until the spent budget has one slot again: one slot's decay. The server's Retry-After also
        counts every slot it refused before (it grows with each halved batch), so it is used only for a limit
        without decay."""
        limit = self.api.read_global_concurrency_limit_by_name(self.limit_name)
        decay = float(limit.slot_decay_per_second or 0.0)
        return 1.0 / decay if decay > 0 else float(refusal.headers.get("Retry-After", "1"))


def _increment(api: Any, limit_name: str, slots: int) -> Any:
    """One call taking `slots` of a budget, answered as it comes: the Prefect client's own request method sleeps
    2 s or more before handing back a busy server's 503, even with retries off, and a budget call is cheap to
    repeat sooner. It goes through the client's HTTP session (base URL, credentials; prefect is pinned to 3.8)."""
    import httpx

    http = api._client
    request = http.build_request("POST", "/v2/concurrency_limits/increment",
                                 json={"names": [limit_name], "slots": slots, "mode": "rate_limit"})
    return httpx.Client.send(http, request)


_brokers: dict[tuple[str, str], _SlotBroker] = {}


def take_write_slot(limit_name: str) -> None:
    """Block until the budget `limit_name` gives this write a slot (ungated when no flow created the limit: the
    API then grants without counting)."""
    from prefect.settings import PREFECT_API_URL

    url = str(PREFECT_API_URL.value())
    api = _prefect_api(url)
    with _api_clients_lock:
        broker = _brokers.get((url, limit_name))
        if broker is None:
            broker = _brokers[(url, limit_name)] = _SlotBroker(api, limit_name)
    broker.take()
