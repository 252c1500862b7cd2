"""Fleets with several clusters per region, and the subscription's write budget every flow shares (a Prefect
global concurrency limit gating each Resource Manager write)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import yaml
from prefect import flow
from prefect.client.orchestration import get_client

from console.local_mode import save_local_blocks
from flows.join import join
from flows.provision import provision
from flows.teardown import teardown
from tasks import arm_budget
from tasks.clients import load_azure_clients
from tasks.spec import FleetSpec, load_spec, parse_spec


def _multi_spec(tmp_path: Path, name: str, **concurrency: float) -> Path:
    document = {
        "name": name, "location": "eastus", "suffix": name[-6:], "resource_group": f"rg-{name}",
        "regions": [
            {"name": "eastus", "update_group": "prod-group",
             "clusters": [{"name": "team-a", "update_group": "test-group"}, {"name": "team-b"}, {"name": "team-c"}]},
            {"name": "westus2", "update_group": "prod-group", "clusters": [{"name": "team-a"}, {"name": "team-b"}]},
        ],
        "update_strategy": {"stages": [{"name": "stage1", "groups": ["test-group"]},
                                       {"name": "stage2", "groups": ["prod-group"]}]},
        **({"concurrency": concurrency} if concurrency else {}),
    }
    path = tmp_path / "fleet.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def _limit(name: str) -> Any:
    with get_client(sync_client=True) as client:
        return client.read_global_concurrency_limit_by_name(name)


def test_the_write_budget_is_one_limit_per_subscription_created_then_updated(prefect_server, monkeypatch):
    monkeypatch.setenv("FLEETFLOW_TIME_SCALE", "1")
    base = {"name": "budget", "location": "eastus", "regions": [{"name": "eastus", "update_group": "g"}],
            "update_strategy": {"stages": [{"name": "s", "groups": ["g"]}]}}
    first = parse_spec(yaml.safe_dump(base))
    second = parse_spec(yaml.safe_dump({**base, "concurrency": {"max_parallel_writes": 7, "writes_per_second": 2}}))
    name = arm_budget.share_write_budget(first, "SUB-1234")
    assert name == "fleetflow-arm-writes-sub-1234"
    assert arm_budget.share_write_budget(first, "sub-1234") == name  # idempotent
    limit = _limit(name)
    assert (limit.limit, limit.slot_decay_per_second) == (200, 10.0)
    arm_budget.share_write_budget(second, "sub-1234")
    limit = _limit(name)
    assert (limit.limit, limit.slot_decay_per_second) == (7, 2.0)


def test_every_write_takes_a_slot_so_a_small_budget_paces_the_writes(local_azure, prefect_server, tmp_path,
                                                                    fresh_name, monkeypatch):
    monkeypatch.setenv("FLEETFLOW_TIME_SCALE", "1")
    spec_path = _multi_spec(tmp_path, fresh_name, max_parallel_writes=1, writes_per_second=0.5)
    save_local_blocks(local_azure.state_dir, fleet=str(spec_path))
    paced: FleetSpec = load_spec(spec_path)
    free = paced.model_copy(update={"concurrency": paced.concurrency.model_copy(
        update={"max_parallel_writes": 100, "writes_per_second": 1000.0})})

    @flow(name="write-budget-probe")
    def writes(spec: FleetSpec, count: int) -> float:
        from flows.common import share_write_budget

        share_write_budget(spec, "fleetflow-azure")
        clients = load_azure_clients("fleetflow-azure")
        started = time.monotonic()
        for index in range(count):
            clients.resource.resource_groups.create_or_update(f"rg-{fresh_name}-{index}", {"location": "eastus"})
            clients.resource.resource_groups.get(f"rg-{fresh_name}-{index}")  # reads are not gated
        return time.monotonic() - started

    # A burst of one, then one write every two seconds: the fifth write cannot go before eight seconds have
    # passed, a margin no load on the machine gives the ungated writes.
    unpaced = writes(free, 5)
    paced_seconds = writes(paced, 5)
    assert paced_seconds >= 7.5 and paced_seconds - unpaced >= 3.0, (paced_seconds, unpaced)
    clients = load_azure_clients("fleetflow-azure")
    for index in range(5):
        clients.resource.resource_groups.begin_delete(f"rg-{fresh_name}-{index}").result()


def test_several_clusters_per_region_are_provisioned_joined_and_torn_down(local_azure, prefect_server, tmp_path,
                                                                         fresh_name):
    spec_path = _multi_spec(tmp_path, fresh_name)
    save_local_blocks(local_azure.state_dir, fleet=str(spec_path))
    spec = load_spec(spec_path)
    assert provision(fleet=str(spec_path), return_state=True).is_completed()
    assert join(fleet=str(spec_path), return_state=True).is_completed()
    clients = load_azure_clients("fleetflow-azure")
    clusters = {c.name: c.location for c in
                clients.containerservice.managed_clusters.list_by_resource_group(spec.resource_group_name)}
    assert clusters == {c.name: c.region for c in spec.clusters()}
    members = {m.name: m.group for m in clients.fleet.fleet_members.list_by_fleet(spec.resource_group_name,
                                                                                   spec.name)}
    assert members == {c.member_name: c.update_group for c in spec.clusters()}
    assert _limit(arm_budget.write_limit_name(clients.subscription_id)).limit == 200
    removed = teardown(fleet=str(spec_path), force=True, return_state=True)
    assert removed.is_completed(), removed.message


def test_provision_and_join_under_subscription_throttling_fail_no_task(local_azure, prefect_server, tmp_path,
                                                                      fresh_name, knobs_restored):
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    spec_path = _multi_spec(tmp_path, fresh_name)
    save_local_blocks(local_azure.state_dir, fleet=str(spec_path))
    # Five writes and forty reads per 3600 Azure seconds (3.6 s wall at the session's time scale).
    knobs_restored.set_knobs(write_budget=5, read_budget=40, budget_window=3600)
    for run in (provision, join):
        state = run(fleet=str(spec_path), return_state=True)
        assert state.is_completed(), state.message
        with get_client(sync_client=True) as client:
            task_runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(
                any_=[state.state_details.flow_run_id])))
        assert task_runs and all(t.state is not None and t.state.is_completed() for t in task_runs)
        assert all(t.run_count <= 1 for t in task_runs), [(t.name, t.run_count) for t in task_runs]
    knobs_restored.set_knobs(write_budget=0, read_budget=0)
    assert teardown(fleet=str(spec_path), force=True, return_state=True).is_completed()
