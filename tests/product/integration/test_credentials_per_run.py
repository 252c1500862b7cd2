"""A flow run's tasks read a credentials block once between them; each run, and each call outside a run, reads
it afresh (so a rotated secret takes effect from the next run)."""

from __future__ import annotations

import threading
import uuid

from prefect import flow, task
from pydantic import SecretStr

from blocks.azure import AzureServicePrincipal
from flows.common import fleet_task_runner
from tasks import clients


def _save_block() -> str:
    name = f"creds-{uuid.uuid4().hex[:8]}"
    AzureServicePrincipal(tenant_id="t", client_id="c", client_secret=SecretStr("s"), subscription_id="sub",
                          resource_manager_endpoint="https://127.0.0.1:1").save(name)
    return name


def _counting_loads(monkeypatch) -> list[str]:
    loads: list[str] = []
    lock = threading.Lock()
    real = AzureServicePrincipal.load.__func__  # type: ignore[attr-defined]

    def load(cls, name, *args, **kwargs):
        with lock:
            loads.append(name)
        return real(cls, name, *args, **kwargs)

    monkeypatch.setattr(AzureServicePrincipal, "load", classmethod(load))
    return loads


@task
def _client_id_of(block_name: str, index: int) -> str:
    return clients.load_credentials_block(block_name).client_id


@flow(task_runner=fleet_task_runner())
def _many_tasks(block_name: str, count: int) -> list[str]:
    return [future.result() for future in _client_id_of.map(block_name, range(count))]


def test_the_tasks_of_one_run_read_the_block_once_and_the_next_run_reads_it_again(prefect_server, monkeypatch):
    block_name = _save_block()
    loads = _counting_loads(monkeypatch)
    assert _many_tasks(block_name, 20) == ["c"] * 20
    assert loads == [block_name]
    AzureServicePrincipal(tenant_id="t", client_id="rotated", client_secret=SecretStr("s2"), subscription_id="sub",
                          resource_manager_endpoint="https://127.0.0.1:1").save(block_name, overwrite=True)
    assert _many_tasks(block_name, 5) == ["rotated"] * 5
    assert loads == [block_name, block_name]


def test_outside_a_flow_run_every_call_reads_the_block(prefect_server, monkeypatch):
    block_name = _save_block()
    loads = _counting_loads(monkeypatch)
    clients.load_credentials_block(block_name)
    clients.load_credentials_block(block_name)
    assert loads == [block_name, block_name]
