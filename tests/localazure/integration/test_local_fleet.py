"""Local Azure Kubernetes Fleet Manager through azure-mgmt-containerservicefleet (ARM-only clusters)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.mgmt.containerservicefleet import ContainerServiceFleetMgmtClient

pytestmark = pytest.mark.emulator

OLD, NEW = "1.36.3", "1.37.2"  # ARM-only versions of the AKS emulator


@pytest.fixture
def fleet_client(local_azure: Any) -> ContainerServiceFleetMgmtClient:
    return local_azure.clients().fleet


@pytest.fixture
def group(azure_clients: Any, fresh_name: str) -> str:
    azure_clients.resource.resource_groups.create_or_update(fresh_name, {"location": "eastus"})
    return fresh_name


def _cluster_body(version: str = OLD) -> dict[str, Any]:
    return {"location": "eastus", "properties": {
        "kubernetesVersion": version, "dnsPrefix": "fleet",
        "agentPoolProfiles": [{"name": "nodepool1", "count": 2, "mode": "System"},
                              {"name": "user", "count": 1, "mode": "User"}]}}


def _make_fleet(fleet_client: Any, azure_clients: Any, group: str, members: dict[str, str],
                fleet: str = "fleet") -> dict[str, str]:
    """Create a fleet plus one ARM-only cluster per member (in parallel) joined in its group; returns name -> id."""
    fleet_client.fleets.begin_create_or_update(group, fleet, {"location": "eastus"}).result()
    aks = azure_clients.containerservice.managed_clusters
    pollers = {name: aks.begin_create_or_update(group, name, _cluster_body()) for name in members}
    ids = {name: poller.result().id for name, poller in pollers.items()}
    joins = [fleet_client.fleet_members.begin_create(group, fleet, name, {
        "properties": {"clusterResourceId": ids[name], "group": update_group}})
        for name, update_group in members.items()]
    for join in joins:
        assert join.result().properties.provisioning_state == "Succeeded"
    return ids


def _versions(azure_clients: Any, group: str, names: list[str]) -> dict[str, str]:
    aks = azure_clients.containerservice.managed_clusters
    return {name: aks.get(group, name).current_kubernetes_version for name in names}


def _run(fleet_client: Any, group: str, run: str, fleet: str = "fleet") -> Any:
    return fleet_client.update_runs.get(group, fleet, run)


def _wait_for(what: str, probe: Callable[[], Any], timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _text(value: Any) -> str:
    """An SDK enum or plain string as its wire value."""
    return str(getattr(value, "value", value))


def _state(run: Any) -> str:
    return _text(run.properties.status.status.state)


def _member_states(run: Any) -> dict[str, str]:
    return {m.name: _text(m.status.state) for stage in run.properties.status.stages
            for g in stage.groups for m in g.members}


def _wait_run(fleet_client: Any, group: str, run: str, states: set[str], timeout: float = 30.0) -> Any:
    return _wait_for(f"update run {run} in {states}",
                     lambda: (r := _run(fleet_client, group, run)) and _state(r) in states and r, timeout)


def _full(version: str = NEW) -> dict[str, Any]:
    return {"upgrade": {"type": "Full", "kubernetesVersion": version}}


def _error_of(exc: pytest.ExceptionInfo[HttpResponseError]) -> tuple[int, str, str]:
    error = exc.value.error
    return exc.value.status_code or 0, str(error.code if error else ""), str(exc.value.message)


# ---- fleets and members ---------------------------------------------------------------------------


def test_fleet_create_get_list_patch_delete_follow_resource_manager_semantics(fleet_client, group):
    poller = fleet_client.fleets.begin_create_or_update(group, "hubless", {"location": "East US", "tags": {"a": "1"}})
    fleet = poller.result()
    assert fleet.properties.provisioning_state == "Succeeded"
    assert fleet.location == "eastus"
    assert fleet.properties.hub_profile is None
    assert fleet.e_tag
    assert [f.name for f in fleet_client.fleets.list_by_resource_group(group)] == ["hubless"]
    assert "hubless" in {f.name for f in fleet_client.fleets.list_by_subscription()}

    patched = fleet_client.fleets.begin_update(group, "hubless", {"tags": {"b": "2"}}).result()
    assert patched.tags == {"b": "2"}
    assert fleet_client.fleets.get(group, "hubless").e_tag == patched.e_tag != fleet.e_tag

    fleet_client.fleets.begin_delete(group, "hubless").result()
    with pytest.raises(ResourceNotFoundError):
        fleet_client.fleets.get(group, "hubless")


def test_fleet_with_hub_profile_is_refused_naming_the_property(fleet_client, group):
    with pytest.raises(HttpResponseError) as exc:
        fleet_client.fleets.begin_create_or_update(group, "hub", {
            "location": "eastus", "properties": {"hubProfile": {"dnsPrefix": "hub"}}}).result()
    status, code, message = _error_of(exc)
    assert (status, code) == (400, "InvalidParameter")
    assert "hubProfile" in message


def test_member_joins_with_its_group_and_group_can_be_changed(fleet_client, azure_clients, group):
    ids = _make_fleet(fleet_client, azure_clients, group, {"aks-a": "test-group"})
    member = fleet_client.fleet_members.get(group, "fleet", "aks-a")
    assert member.properties.cluster_resource_id == ids["aks-a"]
    assert member.properties.group == "test-group"
    assert member.properties.status.last_operation_id
    assert member.properties.status.last_operation_error is None

    updated = fleet_client.fleet_members.begin_update(group, "fleet", "aks-a",
                                                      {"properties": {"group": "prod-group"}}).result()
    assert updated.properties.group == "prod-group"
    assert [m.properties.group for m in fleet_client.fleet_members.list_by_fleet(group, "fleet")] == ["prod-group"]

    fleet_client.fleet_members.begin_delete(group, "fleet", "aks-a").result()
    assert list(fleet_client.fleet_members.list_by_fleet(group, "fleet")) == []
    # Leaving the fleet does not delete the cluster.
    assert azure_clients.containerservice.managed_clusters.get(group, "aks-a").id == ids["aks-a"]


def test_member_for_a_missing_cluster_is_refused_with_400(fleet_client, group, local_azure):
    fleet_client.fleets.begin_create_or_update(group, "fleet", {"location": "eastus"}).result()
    missing = (f"/subscriptions/{local_azure.endpoint.subscription_id}/resourceGroups/{group}/providers/"
               "Microsoft.ContainerService/managedClusters/nope")
    with pytest.raises(HttpResponseError) as exc:
        fleet_client.fleet_members.begin_create(group, "fleet", "nope", {
            "properties": {"clusterResourceId": missing, "group": "g"}}).result()
    status, code, message = _error_of(exc)
    assert (status, code) == (400, "ClusterNotFound")
    assert "nope" in message


def test_cluster_already_in_a_fleet_cannot_join_another_with_409(fleet_client, azure_clients, group):
    ids = _make_fleet(fleet_client, azure_clients, group, {"aks-a": "g"})
    fleet_client.fleets.begin_create_or_update(group, "other", {"location": "eastus"}).result()
    with pytest.raises(HttpResponseError) as exc:
        fleet_client.fleet_members.begin_create(group, "other", "aks-a", {
            "properties": {"clusterResourceId": ids["aks-a"], "group": "g"}}).result()
    status, code, _ = _error_of(exc)
    assert (status, code) == (409, "MemberAlreadyExists")


# ---- strategies and validation -----------------------------------------------------------------------


STAGED = {"stages": [
    {"name": "test", "groups": [{"name": "test-group"}], "afterStageWaitInSeconds": 0},
    {"name": "prod", "groups": [{"name": "prod-group", "maxConcurrency": "50%"}],
     "beforeGates": [{"type": "Approval", "displayName": "Approve prod"}]},
]}


def test_update_strategy_round_trips_stages_gates_and_concurrency(fleet_client, azure_clients, group):
    _make_fleet(fleet_client, azure_clients, group, {"aks-t": "test-group"})
    created = fleet_client.fleet_update_strategies.begin_create_or_update(
        group, "fleet", "staged", {"properties": {"strategy": STAGED}}).result()
    assert created.properties.provisioning_state == "Succeeded"
    prod = created.properties.strategy.stages[1]
    assert prod.before_gates[0].type == "Approval"
    assert prod.before_gates[0].display_name == "Approve prod"
    assert prod.groups[0].max_concurrency == "50%"
    assert [s.name for s in fleet_client.fleet_update_strategies.list_by_fleet(group, "fleet")] == ["staged"]
    fleet_client.fleet_update_strategies.begin_delete(group, "fleet", "staged").result()
    with pytest.raises(ResourceNotFoundError):
        fleet_client.fleet_update_strategies.get(group, "fleet", "staged")


def test_update_strategy_with_unknown_gate_type_is_refused(fleet_client, azure_clients, group):
    fleet_client.fleets.begin_create_or_update(group, "fleet", {"location": "eastus"}).result()
    bad = {"stages": [{"name": "s", "groups": [{"name": "g"}], "afterGates": [{"type": "Timer"}]}]}
    with pytest.raises(HttpResponseError) as exc:
        fleet_client.fleet_update_strategies.begin_create_or_update(
            group, "fleet", "bad", {"properties": {"strategy": bad}}).result()
    status, _, message = _error_of(exc)
    assert status == 400
    assert "properties.strategy.stages[0].afterGates[0].type" in message or "Timer" in message


@pytest.mark.parametrize(("upgrade", "problem"), [
    ({"type": "Full"}, "required"),
    ({"type": "ControlPlaneOnly"}, "required"),
    ({"type": "NodeImageOnly", "kubernetesVersion": NEW}, "must not be set"),
])
def test_kubernetes_version_rules_per_upgrade_type_answer_400_naming_the_property(
        fleet_client, azure_clients, group, upgrade, problem):
    _make_fleet(fleet_client, azure_clients, group, {"aks-v": "g"})
    with pytest.raises(HttpResponseError) as exc:
        fleet_client.update_runs.begin_create_or_update(group, "fleet", "run", {
            "properties": {"managedClusterUpdate": {"upgrade": upgrade}}}).result()
    status, code, message = _error_of(exc)
    assert (status, code) == (400, "InvalidParameter")
    assert "properties.managedClusterUpdate.upgrade.kubernetesVersion" in message
    assert problem in message


def test_run_naming_a_group_without_members_is_refused(fleet_client, azure_clients, group):
    _make_fleet(fleet_client, azure_clients, group, {"aks-x": "test-group"})
    with pytest.raises(HttpResponseError) as exc:
        fleet_client.update_runs.begin_create_or_update(group, "fleet", "run", {"properties": {
            "strategy": STAGED, "managedClusterUpdate": _full()}}).result()
    status, _, message = _error_of(exc)
    assert status == 400
    assert "prod-group" in message


# ---- update runs ---------------------------------------------------------------------------------------


def test_two_stage_run_upgrades_test_group_first_and_prod_waits_for_the_gate(fleet_client, azure_clients, group):
    members = {"aks-test1": "test-group", "aks-prod1": "prod-group", "aks-prod2": "prod-group"}
    _make_fleet(fleet_client, azure_clients, group, members)
    strategy = fleet_client.fleet_update_strategies.begin_create_or_update(
        group, "fleet", "staged", {"properties": {"strategy": STAGED}}).result()
    run = fleet_client.update_runs.begin_create_or_update(group, "fleet", "run1", {"properties": {
        "updateStrategyId": strategy.id, "managedClusterUpdate": _full()}}).result()
    assert _state(run) == "NotStarted"
    assert run.properties.strategy.stages[1].before_gates[0].type == "Approval"  # snapshot of the strategy
    assert set(_member_states(run).values()) == {"NotStarted"}

    started = fleet_client.update_runs.begin_start(group, "fleet", "run1").result()
    assert _state(started) == "Running"

    # The run reaches the gate: a Pending gate resource exists and the test cluster is upgraded.
    def pending_gate() -> Any:
        gate_status = _run(fleet_client, group, "run1").properties.status.stages[1].before_gates[0]
        return gate_status if gate_status.status.state == "Pending" and gate_status.gate_id else None

    gate_status = _wait_for("the approval gate", pending_gate)
    assert _versions(azure_clients, group, list(members)) == {
        "aks-test1": NEW, "aks-prod1": OLD, "aks-prod2": OLD}
    gate_name = gate_status.gate_id.rsplit("/", 1)[-1]
    gate = fleet_client.gates.get(group, "fleet", gate_name)
    assert gate.properties.state == "Pending"
    assert gate.properties.gate_type == "Approval"
    assert gate.properties.display_name == "Approve prod"
    assert gate.properties.target.id == run.id
    assert gate.properties.target.update_run_properties.stage == "prod"
    assert gate.properties.target.update_run_properties.timing == "Before"
    assert [g.name for g in fleet_client.gates.list_by_fleet(group, "fleet")] == [gate_name]
    assert [g.name for g in fleet_client.gates.list_by_fleet(group, "fleet", filter="properties/state eq 'Pending'")
            ] == [gate_name]
    assert list(fleet_client.gates.list_by_fleet(group, "fleet", filter="properties/state eq 'Completed'")) == []

    # Nothing in prod moves while the gate is pending.
    time.sleep(0.5)
    waiting = _run(fleet_client, group, "run1")
    assert _state(waiting) == "Running"
    assert _text(waiting.properties.status.stages[1].status.state) == "Pending"
    assert _member_states(waiting) == {"aks-test1": "Completed", "aks-prod1": "NotStarted",
                                       "aks-prod2": "NotStarted"}
    assert _versions(azure_clients, group, ["aks-prod1", "aks-prod2"]) == {"aks-prod1": OLD, "aks-prod2": OLD}

    completed_gate = fleet_client.gates.begin_update(group, "fleet", gate_name,
                                                     {"properties": {"state": "Completed"}}).result()
    assert completed_gate.properties.state == "Completed"
    done = _wait_run(fleet_client, group, "run1", {"Completed", "Failed"})
    assert _state(done) == "Completed"
    assert _versions(azure_clients, group, list(members)) == {name: NEW for name in members}
    test_member = done.properties.status.stages[0].groups[0].members[0]
    prod_start = min(m.status.start_time for m in done.properties.status.stages[1].groups[0].members)
    assert test_member.status.completed_time <= prod_start
    assert test_member.operation_id
    assert done.properties.status.stages[1].max_concurrency == 2
    assert done.properties.status.stages[1].groups[0].max_concurrency == 1  # 50% of 2 members


def test_gate_can_only_be_set_to_completed(fleet_client, azure_clients, group):
    _make_fleet(fleet_client, azure_clients, group, {"aks-t": "test-group", "aks-p": "prod-group"})
    fleet_client.update_runs.begin_create_or_update(group, "fleet", "run", {"properties": {
        "strategy": STAGED, "managedClusterUpdate": _full()}}).result()
    fleet_client.update_runs.begin_start(group, "fleet", "run").result()
    gate = _wait_for("a gate", lambda: next(iter(fleet_client.gates.list_by_fleet(group, "fleet")), None))
    with pytest.raises(HttpResponseError) as exc:
        fleet_client.gates.begin_update(group, "fleet", gate.name, {"properties": {"state": "Skipped"}}).result()
    status, _, message = _error_of(exc)
    assert status == 400
    assert "properties.state" in message
    assert fleet_client.gates.get(group, "fleet", gate.name).properties.state == "Pending"
    fleet_client.update_runs.begin_stop(group, "fleet", "run").result()
    assert _state(_wait_run(fleet_client, group, "run", {"Stopped"})) == "Stopped"


def test_after_stage_wait_holds_the_next_stage_for_the_time_scaled_duration(
        fleet_client, azure_clients, group, knobs_restored):
    knobs_restored.set_knobs(time_scale=0.001)
    _make_fleet(fleet_client, azure_clients, group, {"aks-w1": "first", "aks-w2": "second"})
    strategy = {"stages": [{"name": "one", "groups": [{"name": "first"}], "afterStageWaitInSeconds": 1500},
                           {"name": "two", "groups": [{"name": "second"}]}]}
    fleet_client.update_runs.begin_create_or_update(group, "fleet", "run", {"properties": {
        "strategy": strategy, "managedClusterUpdate": {"upgrade": {"type": "ControlPlaneOnly",
                                                                   "kubernetesVersion": NEW}}}}).result()
    fleet_client.update_runs.begin_start(group, "fleet", "run").result()
    done = _wait_run(fleet_client, group, "run", {"Completed", "Failed"})
    assert _state(done) == "Completed"
    wait = done.properties.status.stages[0].after_stage_wait_status
    assert wait.wait_duration_in_seconds == 1500
    assert wait.status.state == "Completed"
    waited = (wait.status.completed_time - wait.status.start_time).total_seconds()
    assert waited >= 1.5  # 1500 Azure seconds at time scale 0.001
    second_start = done.properties.status.stages[1].groups[0].members[0].status.start_time
    assert second_start >= wait.status.completed_time


def test_stop_halts_before_the_next_member_and_start_resumes(fleet_client, azure_clients, group, knobs_restored):
    knobs_restored.set_knobs(latency={"aks.upgrade": 1500})  # 1.5 s per member at time scale 0.001
    members = {"aks-s1": "all", "aks-s2": "all", "aks-s3": "all"}
    _make_fleet(fleet_client, azure_clients, group, members)
    fleet_client.update_runs.begin_create_or_update(group, "fleet", "run", {"properties": {
        "strategy": {"stages": [{"name": "only", "groups": [{"name": "all"}]}]},
        "managedClusterUpdate": _full()}}).result()
    fleet_client.update_runs.begin_start(group, "fleet", "run").result()
    _wait_for("the first member to run",
              lambda: "Running" in _member_states(_run(fleet_client, group, "run")).values())
    stopping = fleet_client.update_runs.begin_stop(group, "fleet", "run").result()
    assert _state(stopping) in ("Stopping", "Stopped")

    stopped = _wait_run(fleet_client, group, "run", {"Stopped"})
    states = _member_states(stopped)
    assert sorted(states.values()) == ["Completed", "NotStarted", "NotStarted"]
    upgraded = [name for name, state in states.items() if state == "Completed"]
    versions = _versions(azure_clients, group, list(members))
    assert [name for name, version in versions.items() if version == NEW] == upgraded
    assert _text(stopped.properties.status.stages[0].status.state) == "Stopped"

    knobs_restored.set_knobs(latency={"aks.upgrade": 300})
    fleet_client.update_runs.begin_start(group, "fleet", "run").result()
    done = _wait_run(fleet_client, group, "run", {"Completed", "Failed"})
    assert _state(done) == "Completed"
    assert _versions(azure_clients, group, list(members)) == {name: NEW for name in members}


def test_skip_leaves_the_skipped_member_and_wait_untouched(fleet_client, azure_clients, group):
    members = {"aks-k1": "first", "aks-k2": "second", "aks-k3": "second"}
    _make_fleet(fleet_client, azure_clients, group, members)
    strategy = {"stages": [{"name": "one", "groups": [{"name": "first"}], "afterStageWaitInSeconds": 3600},
                           {"name": "two", "groups": [{"name": "second"}]}]}
    fleet_client.update_runs.begin_create_or_update(group, "fleet", "run", {"properties": {
        "strategy": strategy, "managedClusterUpdate": _full()}}).result()
    fleet_client.update_runs.begin_skip(group, "fleet", "run", {"targets": [{"type": "Member", "name": "aks-k3"}]}
                                        ).result()
    fleet_client.update_runs.begin_start(group, "fleet", "run").result()
    _wait_for("the after-stage wait", lambda: _run(fleet_client, group, "run").properties.status.stages[0]
              .after_stage_wait_status.status.state == "Running")
    # Without the skip, this wait would last 3.6 s.
    skipped = fleet_client.update_runs.begin_skip(group, "fleet", "run", {
        "targets": [{"type": "AfterStageWait", "name": "one"}]}).result()
    assert skipped.properties.status.stages[0].after_stage_wait_status.status.state == "Skipped"
    done = _wait_run(fleet_client, group, "run", {"Completed", "Failed"}, timeout=3.0)
    assert _state(done) == "Completed"
    assert _member_states(done) == {"aks-k1": "Completed", "aks-k2": "Completed", "aks-k3": "Skipped"}
    assert _versions(azure_clients, group, list(members)) == {"aks-k1": NEW, "aks-k2": NEW, "aks-k3": OLD}

    with pytest.raises(HttpResponseError) as exc:
        fleet_client.update_runs.begin_skip(group, "fleet", "run", {
            "targets": [{"type": "Member", "name": "aks-k1"}]}).result()
    assert _error_of(exc)[0] == 409


def test_a_failing_member_fails_its_group_stage_and_the_run(fleet_client, azure_clients, group, knobs_restored):
    members = {"aks-f1": "first", "aks-f2": "first", "aks-f3": "second"}
    _make_fleet(fleet_client, azure_clients, group, members)
    knobs_restored.set_knobs(fail=f"aks.upgrade:aks-f1,aks.upgrade:*{group}*aks-f1")
    fleet_client.update_runs.begin_create_or_update(group, "fleet", "run", {"properties": {
        "strategy": {"stages": [{"name": "one", "groups": [{"name": "first"}]},
                                {"name": "two", "groups": [{"name": "second"}]}]},
        "managedClusterUpdate": _full()}}).result()
    fleet_client.update_runs.begin_start(group, "fleet", "run").result()
    done = _wait_run(fleet_client, group, "run", {"Completed", "Failed"})
    assert _state(done) == "Failed"
    assert "aks-f1" in done.properties.status.status.error.message
    stage_one, stage_two = done.properties.status.stages
    assert stage_one.status.state == "Failed"
    assert stage_one.groups[0].status.state == "Failed"
    failed = stage_one.groups[0].members[0]
    assert (failed.name, failed.status.state) == ("aks-f1", "Failed")
    assert failed.status.error.code == "InjectedFailure"
    # One member at a time: the member after the failed one never starts, nor does the next stage.
    assert _member_states(done)["aks-f2"] == "NotStarted"
    assert stage_two.status.state == "NotStarted"
    assert _versions(azure_clients, group, ["aks-f2", "aks-f3"]) == {"aks-f2": OLD, "aks-f3": OLD}


def test_node_image_only_rolls_node_images_without_touching_versions(fleet_client, azure_clients, group,
                                                                    knobs_restored):
    latest = knobs_restored.knobs()["node_image_latest"]
    ids = _make_fleet(fleet_client, azure_clients, group, {"aks-n1": "g", "aks-n2": "g"})
    aks = azure_clients.containerservice.managed_clusters
    before = {name: aks.get(group, name) for name in ids}
    assert all(p.node_image_version != latest for c in before.values() for p in c.agent_pool_profiles)
    fleet_client.update_runs.begin_create_or_update(group, "fleet", "run", {"properties": {
        "managedClusterUpdate": {"upgrade": {"type": "NodeImageOnly"}, "nodeImageSelection": {"type": "Consistent"}}}}
    ).result()
    started = fleet_client.update_runs.begin_start(group, "fleet", "run").result()
    assert started.properties.status.node_image_selection.selected_node_image_versions[0].version == latest
    done = _wait_run(fleet_client, group, "run", {"Completed", "Failed"})
    assert _state(done) == "Completed"
    # No strategy: one default stage and group with every member.
    assert [s.name for s in done.properties.status.stages] == ["default"]
    for name in ids:
        after = aks.get(group, name)
        assert after.current_kubernetes_version == before[name].current_kubernetes_version == OLD
        assert {p.name: p.node_image_version for p in after.agent_pool_profiles} == {"nodepool1": latest,
                                                                                     "user": latest}
        assert [p.current_orchestrator_version for p in after.agent_pool_profiles] == [OLD, OLD]


def test_running_run_cannot_be_deleted_but_a_finished_one_can_with_its_gates(fleet_client, azure_clients, group):
    _make_fleet(fleet_client, azure_clients, group, {"aks-t": "test-group", "aks-p": "prod-group"})
    fleet_client.update_runs.begin_create_or_update(group, "fleet", "run", {"properties": {
        "strategy": STAGED, "managedClusterUpdate": _full()}}).result()
    fleet_client.update_runs.begin_start(group, "fleet", "run").result()
    _wait_for("a gate", lambda: list(fleet_client.gates.list_by_fleet(group, "fleet")))
    with pytest.raises(HttpResponseError) as exc:
        fleet_client.update_runs.begin_delete(group, "fleet", "run").result()
    assert _error_of(exc)[:2] == (409, "UpdateRunInProgress")
    fleet_client.update_runs.begin_stop(group, "fleet", "run").result()
    _wait_run(fleet_client, group, "run", {"Stopped"})
    fleet_client.update_runs.begin_delete(group, "fleet", "run").result()
    assert list(fleet_client.update_runs.list_by_fleet(group, "fleet")) == []
    assert list(fleet_client.gates.list_by_fleet(group, "fleet")) == []


def _client_after_restart(local_azure: Any) -> ContainerServiceFleetMgmtClient:
    return local_azure.clients().fleet


def test_restart_keeps_a_run_waiting_on_its_gate_and_approval_still_completes_it(
        fleet_client, azure_clients, group, local_azure):
    members = {"aks-rt": "test-group", "aks-rp": "prod-group"}
    _make_fleet(fleet_client, azure_clients, group, members)
    fleet_client.update_runs.begin_create_or_update(group, "fleet", "run", {"properties": {
        "strategy": STAGED, "managedClusterUpdate": _full()}}).result()
    fleet_client.update_runs.begin_start(group, "fleet", "run").result()
    gate = _wait_for("a gate", lambda: next(iter(fleet_client.gates.list_by_fleet(group, "fleet")), None))

    local_azure.restart()
    client = _client_after_restart(local_azure)
    resumed = _run(client, group, "run")
    assert _state(resumed) == "Running"
    assert _member_states(resumed) == {"aks-rt": "Completed", "aks-rp": "NotStarted"}
    assert client.gates.get(group, "fleet", gate.name).properties.state == "Pending"
    time.sleep(0.3)
    assert _versions(local_azure.clients(), group, ["aks-rp"]) == {"aks-rp": OLD}

    client.gates.begin_update(group, "fleet", gate.name, {"properties": {"state": "Completed"}}).result()
    done = _wait_run(client, group, "run", {"Completed", "Failed"})
    assert _state(done) == "Completed"
    assert _versions(local_azure.clients(), group, list(members)) == {name: NEW for name in members}


def test_crash_during_a_member_upgrade_redoes_that_member_instead_of_reporting_success(
        fleet_client, azure_clients, group, local_azure):
    members = {"aks-c1": "all", "aks-c2": "all"}
    _make_fleet(fleet_client, azure_clients, group, members)
    local_azure.azure.set_knobs(latency={"aks.upgrade": 20000})  # 20 s: the crash lands mid-upgrade
    fleet_client.update_runs.begin_create_or_update(group, "fleet", "run", {"properties": {
        "strategy": {"stages": [{"name": "only", "groups": [{"name": "all"}]}]},
        "managedClusterUpdate": _full()}}).result()
    fleet_client.update_runs.begin_start(group, "fleet", "run").result()
    _wait_for("the first member to run",
              lambda: "Running" in _member_states(_run(fleet_client, group, "run")).values())

    local_azure.restart(crash=True)  # back with the session's default latencies
    client = _client_after_restart(local_azure)
    done = _wait_run(client, group, "run", {"Completed", "Failed"})
    assert _state(done) == "Completed"
    first = done.properties.status.stages[0].groups[0].members[0]
    assert first.status.state == "Completed"
    assert "restart" in first.message
    assert _versions(local_azure.clients(), group, list(members)) == {name: NEW for name in members}


def test_group_max_concurrency_upgrades_members_in_parallel(fleet_client, azure_clients, group, knobs_restored):
    knobs_restored.set_knobs(latency={"aks.upgrade": 1500})
    _make_fleet(fleet_client, azure_clients, group, {"aks-p1": "wide", "aks-p2": "wide"})
    fleet_client.update_runs.begin_create_or_update(group, "fleet", "run", {"properties": {
        "strategy": {"stages": [{"name": "only", "groups": [{"name": "wide", "maxConcurrency": "100%"}]}]},
        "managedClusterUpdate": _full()}}).result()
    fleet_client.update_runs.begin_start(group, "fleet", "run").result()
    both = _wait_for("both members running at once", lambda: set(
        _member_states(_run(fleet_client, group, "run")).values()) == {"Running"})
    assert both
    done = _wait_run(fleet_client, group, "run", {"Completed", "Failed"})
    assert _state(done) == "Completed"
    assert done.properties.status.stages[0].groups[0].max_concurrency == 2


def test_skipping_a_stage_waiting_on_its_gate_skips_the_gate_and_its_members(fleet_client, azure_clients, group):
    _make_fleet(fleet_client, azure_clients, group, {"aks-t": "test-group", "aks-p": "prod-group"})
    fleet_client.update_runs.begin_create_or_update(group, "fleet", "run", {"properties": {
        "strategy": STAGED, "managedClusterUpdate": _full()}}).result()
    fleet_client.update_runs.begin_start(group, "fleet", "run").result()
    gate = _wait_for("a gate", lambda: next(iter(fleet_client.gates.list_by_fleet(group, "fleet")), None))
    fleet_client.update_runs.begin_skip(group, "fleet", "run", {"targets": [{"type": "Stage", "name": "prod"}]}
                                        ).result()
    done = _wait_run(fleet_client, group, "run", {"Completed", "Failed"})
    assert _state(done) == "Completed"
    assert _text(done.properties.status.stages[1].status.state) == "Skipped"
    assert _member_states(done) == {"aks-t": "Completed", "aks-p": "Skipped"}
    assert fleet_client.gates.get(group, "fleet", gate.name).properties.state == "Skipped"
    assert _versions(azure_clients, group, ["aks-t", "aks-p"]) == {"aks-t": NEW, "aks-p": OLD}


def test_reader_can_watch_a_run_but_cannot_approve_its_gate(fleet_client, azure_clients, group, local_azure):
    _make_fleet(fleet_client, azure_clients, group, {"aks-t": "test-group", "aks-p": "prod-group"})
    fleet_client.update_runs.begin_create_or_update(group, "fleet", "run", {"properties": {
        "strategy": STAGED, "managedClusterUpdate": _full()}}).result()
    fleet_client.update_runs.begin_start(group, "fleet", "run").result()
    gate = _wait_for("a gate", lambda: next(iter(fleet_client.gates.list_by_fleet(group, "fleet")), None))
    scope = f"/subscriptions/{local_azure.endpoint.subscription_id}/resourceGroups/{group}"
    reader = local_azure.azure.create_service_principal(f"reader-{group}", role="Reader", scopes=[scope])
    as_reader = local_azure.clients(reader["appId"], reader["password"]).fleet
    assert _state(as_reader.update_runs.get(group, "fleet", "run")) == "Running"
    with pytest.raises(HttpResponseError) as exc:
        as_reader.gates.begin_update(group, "fleet", gate.name, {"properties": {"state": "Completed"}}).result()
    assert _error_of(exc)[:2] == (403, "AuthorizationFailed")
    assert fleet_client.gates.get(group, "fleet", gate.name).properties.state == "Pending"
    fleet_client.update_runs.begin_stop(group, "fleet", "run").result()
    _wait_run(fleet_client, group, "run", {"Stopped"})


def test_deleting_the_resource_group_removes_a_fleet_whose_run_waits_on_a_gate(fleet_client, azure_clients, group):
    _make_fleet(fleet_client, azure_clients, group, {"aks-t": "test-group", "aks-p": "prod-group"})
    fleet_client.update_runs.begin_create_or_update(group, "fleet", "run", {"properties": {
        "strategy": STAGED, "managedClusterUpdate": _full()}}).result()
    fleet_client.update_runs.begin_start(group, "fleet", "run").result()
    _wait_for("a gate", lambda: list(fleet_client.gates.list_by_fleet(group, "fleet")))
    azure_clients.resource.resource_groups.begin_delete(group).result()
    assert group not in {f.id.split("/")[4] for f in fleet_client.fleets.list_by_subscription()}
    assert not azure_clients.resource.resource_groups.check_existence(group)
