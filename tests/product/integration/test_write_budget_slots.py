"""Write slots of the subscription's budget are taken for many writers at once in few Prefect API calls, paced by
the budget, and a budget call that cannot be made fails the waiting writes instead of hanging them."""

from __future__ import annotations

import contextvars
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from prefect.client.orchestration import get_client
from prefect.settings import PREFECT_API_URL, temporary_settings

from tasks import arm_budget


def _budget(limit: int, decay: float) -> str:
    name = f"fleetflow-arm-writes-test-{uuid.uuid4().hex[:8]}"
    with get_client(sync_client=True) as client:
        client.upsert_global_concurrency_limit_by_name(name, limit, slot_decay_per_second=decay)
    return name


def _count_calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    asked: list[int] = []
    real = arm_budget._increment
    lock = threading.Lock()

    def counted(api: Any, limit_name: str, slots: int) -> Any:
        with lock:
            asked.append(slots)
        return real(api, limit_name, slots)

    monkeypatch.setattr(arm_budget, "_increment", counted)
    return asked


def test_sixty_writers_get_their_slots_in_far_fewer_api_calls(prefect_server, monkeypatch):
    name = _budget(limit=200, decay=100.0)
    asked = _count_calls(monkeypatch)
    with ThreadPoolExecutor(60) as pool:
        list(pool.map(lambda _: arm_budget.take_write_slot(name), range(60)))
    granted_calls = [slots for slots in asked]
    assert sum(granted_calls) >= 60
    assert len(asked) < 30, f"{len(asked)} budget calls for 60 writers: {asked}"
    assert max(asked) > 1


def test_a_spent_budget_paces_writers_by_its_decay(prefect_server, monkeypatch):
    # Burst of 3, one slot back per 0.5 s: the 7th writer cannot start before (7 - 3) * 0.5 = 2 s.
    name = _budget(limit=3, decay=2.0)
    started = time.monotonic()
    with ThreadPoolExecutor(7) as pool:
        list(pool.map(lambda _: arm_budget.take_write_slot(name), range(7)))
    elapsed = time.monotonic() - started
    assert elapsed >= 1.5, elapsed


def test_writers_fail_naming_the_budget_when_the_prefect_api_cannot_be_reached(prefect_server, monkeypatch):
    monkeypatch.setattr(arm_budget, "BUSY_GIVE_UP", 0.5)
    name = f"fleetflow-arm-writes-unreachable-{uuid.uuid4().hex[:8]}"
    # Port 9 on loopback (discard): nothing listens there, so every call is refused at once. Each writer runs in
    # the settings it was started with, as Prefect's task threads do.
    with temporary_settings(updates={PREFECT_API_URL: "http://127.0.0.1:9/api"}), ThreadPoolExecutor(3) as pool:
        futures = [pool.submit(contextvars.copy_context().run, arm_budget.take_write_slot, name) for _ in range(3)]
        errors = [future.exception(timeout=30) for future in futures]
    assert all(isinstance(error, RuntimeError) for error in errors), errors
    assert all(name in str(error) and "kept refusing" in str(error) for error in errors), errors
