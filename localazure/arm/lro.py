"""Long-running operations: background work, operation-status resources, and the headers the SDK polls."""

from __future__ import annotations

import datetime as dt
import logging
import math
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from localazure.arm.errors import ArmError, error_detail
from localazure.arm.ids import is_at_or_below, utc_now
from localazure.arm.knobs import KnobBoard
from localazure.arm.store import Record, StateStore

log = logging.getLogger(__name__)

TABLE = "operations"
TERMINAL = frozenset({"Succeeded", "Failed", "Canceled"})
RESTART_MESSAGE = "The operation was interrupted because the local Azure emulator stopped before it finished."


class OperationRun:
    """Handle given to the work function of an operation."""

    def __init__(self, operations: Operations, record: Record, knobs: KnobBoard) -> None:
        self._operations = operations
        self.name: str = record["name"]
        self.kind: str = record["kind"]
        self.resource_id: str = record["resourceId"]
        self.knobs = knobs
        self._started = time.monotonic()
        self._duration = knobs.duration(self.kind)

    def pace(self, fraction: float = 1.0) -> None:
        """Sleep until `fraction` of this operation's configured (scaled) duration has passed since it began."""
        remaining = self._started + self._duration * fraction - time.monotonic()
        if remaining > 0:
            time.sleep(remaining)

    def set_result(self, resource_id: str | None) -> None:
        """The resource whose body the operation-result URL returns once the operation succeeded."""
        self._operations._set(self.name, resultResourceId=resource_id)


class Operations:
    """Starts operations in threads and keeps their status records (persisted)."""

    def __init__(self, store: StateStore, knobs: KnobBoard, subscription_id: str) -> None:
        self._store = store
        self._knobs = knobs
        self._subscription_id = subscription_id
        self._threads: dict[str, threading.Thread] = {}
        self._closing = threading.Event()

    def close(self) -> None:
        """The emulator is stopping: operations that end from now on (cut off by the stop) keep their
        InProgress record, so the next start marks them -- and their resources -- interrupted."""
        self._closing.set()

    def start(
        self,
        *,
        kind: str,
        namespace: str,
        location: str,
        resource_id: str,
        work: Callable[[OperationRun], None],
        on_failure: Callable[[dict[str, Any]], None] | None = None,
        result_resource_id: str | None = None,
        name: str = "",
        on_interrupt: str | None = None,
    ) -> Record:
        """Record an InProgress operation and run `work` in a background thread.

        `work` does the change and commits the final resource state (calling `run.pace()` first so
        the configured latency is honoured). An ArmError it raises becomes the operation's error;
        `on_failure(error)` then lets the provider mark the resource Failed. A forced-failure knob
        matching (kind, resource name / location / id) fails the operation after its latency.

        If the emulator stops before the operation ends, the next start marks the operation Failed and
        gives its resource the provisioningState `on_interrupt` (default: Failed when the resource was
        left in a transitional state such as Creating/Joining/Deleting) -- see fail_interrupted_resources.
        """
        op_name = str(uuid.uuid4())
        record: Record = {
            "name": op_name,
            "kind": kind,
            "namespace": namespace,
            "location": location.replace(" ", "").lower() or "global",
            "resourceId": resource_id,
            "resultResourceId": result_resource_id,
            "status": "InProgress",
            "startTime": utc_now(),
            "endTime": None,
            "error": None,
            "httpStatus": None,
            "onInterrupt": on_interrupt,
        }
        self._store.put(TABLE, op_name, record)
        thread = threading.Thread(
            target=self._run, args=(record, work, on_failure, name), name=f"op-{kind}-{op_name[:8]}", daemon=True
        )
        self._threads[op_name] = thread
        thread.start()
        return record

    def _run(
        self, record: Record, work: Callable[[OperationRun], None],
        on_failure: Callable[[dict[str, Any]], None] | None, name: str,
    ) -> None:
        run = OperationRun(self, record, self._knobs)
        try:
            resource_name = name or record["resourceId"].rstrip("/").rsplit("/", 1)[-1]
            if self._knobs.should_fail(run.kind, name=resource_name, location=record["location"],
                                       resource_id=record["resourceId"]):
                run.pace()
                raise ArmError(400, "InjectedFailure", f"Operation {run.kind} on '{resource_name}' failed because "
                               "a local Azure fail rule matches it (see knobs).")
            work(run)
        except Exception as exc:
            if self._closing.is_set():
                log.warning("operation %s (%s) cut off by the stop: %s", record["name"], run.kind, exc)
            elif isinstance(exc, ArmError):
                self._fail(record["name"], exc.as_error_detail(), exc.status, on_failure)
            else:  # the worker thread must always leave a terminal status behind
                self._crashed(record, run, exc, on_failure)
        else:
            self._set(record["name"], status="Succeeded", endTime=utc_now())
        finally:
            self._threads.pop(record["name"], None)

    def _crashed(self, record: Record, run: OperationRun, exc: Exception,
                 on_failure: Callable[[dict[str, Any]], None] | None) -> None:
        log.exception("operation %s (%s) on %s crashed", record["name"], run.kind, record["resourceId"],
                      exc_info=exc)
        detail = {"code": "InternalOperationError", "message": f"{run.kind} failed: {type(exc).__name__}: {exc}"}
        self._fail(record["name"], detail, 500, on_failure)

    def _fail(self, name: str, detail: dict[str, Any], status: int,
              on_failure: Callable[[dict[str, Any]], None] | None) -> None:
        if on_failure is not None:
            try:
                on_failure(detail)
            except Exception:
                log.exception("failure hook of operation %s crashed", name)
        self._set(name, status="Failed", endTime=utc_now(), error=detail, httpStatus=status)

    def _set(self, name: str, **fields: Any) -> None:
        self._store.update(TABLE, name, lambda r: r.update(fields))

    def get(self, name: str) -> Record | None:
        """An operation record."""
        return self._store.get(TABLE, name)

    def active_on(self, resource_id: str) -> Record | None:
        """An unfinished operation on exactly this resource (or on one below it), if any."""
        low = resource_id.lower().rstrip("/")
        found = self._store.values(
            TABLE,
            lambda r: r["status"] == "InProgress"
            and (r["resourceId"].lower() == low or r["resourceId"].lower().startswith(low + "/")),
        )
        return found[0] if found else None

    def under(self, scope: str) -> list[Record]:
        """Every operation (any status) on a resource at or below a scope, oldest first."""
        return sorted(self._store.values(TABLE, lambda r: is_at_or_below(r["resourceId"], scope)),
                      key=lambda r: r["startTime"])

    def wait(self, name: str, timeout: float | None = None) -> Record:
        """Block until an operation reaches a terminal status (for in-process callers such as Fleet)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            record = self.get(name)
            if record is None:
                raise KeyError(name)
            if record["status"] in TERMINAL:
                return record
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"operation {record['kind']} {name} still {record['status']} after {timeout}s")
            time.sleep(0.02)

    def fail_interrupted(self) -> list[Record]:
        """Mark operations left InProgress by a previous emulator process as Failed; returns them."""
        interrupted = []
        with self._store.transaction():
            for record in self._store.values(TABLE, lambda r: r["status"] == "InProgress"):
                detail = {"code": "OperationInterrupted", "message": RESTART_MESSAGE}
                self._set(record["name"], status="Failed", endTime=utc_now(), error=detail, httpStatus=500)
                interrupted.append(record)
        return interrupted

    def fail_interrupted_resources(self, interrupted: list[Record], table: str = "resources") -> list[str]:
        """Give the resources that interrupted operations were changing the state Azure shows after a
        failed operation: the operation's `on_interrupt` state, else Failed when the resource still shows a
        transitional provisioningState (Creating, Joining, Deleting, ...), with the operation's error where
        the resource has a place for it (`properties.status.lastOperationError`). Runs after the providers'
        on_start hooks: AKS marks its clusters itself; this treats every other provider the same way.
        A re-PUT (or re-DELETE) of a Failed resource then converges. Returns the ids changed."""
        marked = []
        with self._store.transaction():
            for record in interrupted:
                detail = {"code": "OperationInterrupted", "message": RESTART_MESSAGE}

                def fail(stored: Record, op: Record = record, detail: dict[str, Any] = detail) -> None:
                    props = stored.get("body", {}).get("properties")
                    if not isinstance(props, dict) or "provisioningState" not in props:
                        return
                    current = props["provisioningState"]
                    target = op.get("onInterrupt") or (None if current in TERMINAL else "Failed")
                    if target is None or target == current:
                        return
                    props["provisioningState"] = target
                    status = props.get("status")
                    if target == "Failed" and isinstance(status, dict) and "lastOperationError" in status:
                        status["lastOperationError"] = error_detail(detail)
                    marked.append(op["resourceId"])

                self._store.update(table, record["resourceId"], fail)
        return marked

    def prune_finished(self, max_age_seconds: float = 3600.0) -> int:
        """Forget operations that ended more than `max_age_seconds` ago (keeps state.json small)."""
        cutoff = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=max_age_seconds)

        def old(record: Record) -> bool:
            end = record.get("endTime")
            if not end:
                return False
            return dt.datetime.strptime(str(end), "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.UTC) < cutoff

        with self._store.transaction():
            stale = [r["name"] for r in self._store.values(TABLE, old)]
            for name in stale:
                self._store.delete(TABLE, name)
        return len(stale)

    # ---- URLs and response shapes ---------------------------------------------------------------

    def status_path(self, record: Record) -> str:
        """Path of the Azure-AsyncOperation status resource."""
        return (f"/subscriptions/{self._subscription_id}/providers/{record['namespace']}/locations/"
                f"{record['location']}/operations/{record['name']}")

    def result_path(self, record: Record) -> str:
        """Path of the Location (operation result) resource."""
        return (f"/subscriptions/{self._subscription_id}/providers/{record['namespace']}/locations/"
                f"{record['location']}/operationresults/{record['name']}")

    def poll_delay(self, record: Record) -> float:
        """Seconds the client should wait between polls: a fraction of the op's duration, kept small."""
        return min(1.0, max(0.05, self._knobs.duration(record["kind"]) / 8))

    def headers(
        self, record: Record, base_url: str, api_version: str, *, async_operation: bool = True
    ) -> dict[str, str]:
        """Azure-AsyncOperation / Location / Retry-After headers for a 201/202 answer."""
        base = base_url.rstrip("/")
        query = f"?api-version={api_version}"
        headers = {"Location": base + self.result_path(record) + query, **self.delay_headers(record)}
        if async_operation:
            headers["Azure-AsyncOperation"] = base + self.status_path(record) + query
        return headers

    def delay_headers(self, record: Record) -> dict[str, str]:
        """Poll-delay headers: Retry-After (whole seconds, as the SDK parses it) or, below a second,
        retry-after-ms, which azure-core honours too (Retry-After: 0 would make it fall back to 30 s)."""
        delay = self.poll_delay(record)
        if delay >= 1:
            return {"Retry-After": str(math.ceil(delay))}
        return {"retry-after-ms": str(max(1, round(delay * 1000)))}

    def status_body(self, record: Record) -> dict[str, Any]:
        """The operation-status JSON."""
        body: dict[str, Any] = {
            "id": self.status_path(record),
            "name": record["name"],
            "status": record["status"],
            "startTime": record["startTime"],
        }
        if record["endTime"]:
            body["endTime"] = record["endTime"]
        if record["status"] == "Succeeded":
            body["percentComplete"] = 100.0
        if record["error"]:
            body["error"] = record["error"]
        return body
