"""The lifecycle flows against local Azure (ARM-only clusters) through a real Prefect server and the real SDK."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey, FlowRunFilter, LogFilter
from prefect.client.schemas.objects import FlowRun

from blocks.azure import AzureServicePrincipal
from flows.join import join
from flows.lifecycle import lifecycle
from flows.provision import provision
from flows.teardown import teardown
from flows.validate import validate
from tasks.aks import desired_cluster
from tasks.rbac import CONTRIBUTOR_ROLE
from tasks.spec import load_spec
from tests.fleet_fixtures import FleetUnderTest

pytestmark = [pytest.mark.emulator]


@pytest.fixture(autouse=True)
def fleetflow_clock(monkeypatch: pytest.MonkeyPatch, local_azure) -> None:
    """fleetflow's own waits follow the session emulator's clock."""
    monkeypatch.setenv("FLEETFLOW_TIME_SCALE", str(local_azure.azure.knobs()["time_scale"]))


@pytest.fixture
def fleet(new_fleet: FleetUnderTest) -> FleetUnderTest:
    """This module's flows start from nothing: a fresh spec, not yet provisioned."""
    return new_fleet


def logged(state: Any, *fragments: str, timeout: float = 15.0) -> bool:
    """Whether one log line of the flow run (or its task runs) holds every fragment; logs arrive in batches."""
    run_id = state.state_details.flow_run_id

    async def read() -> list[str]:
        async with get_client() as client:
            logs = await client.read_logs(log_filter=LogFilter(flow_run_id={"any_": [run_id]}))
            return [log.message for log in logs]

    deadline = time.monotonic() + timeout
    while True:
        if any(all(fragment in line for fragment in fragments) for line in asyncio.run(read())):
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.25)


def flow_logs(state: Any, settle: str = "provision changed nothing") -> list[str]:
    """Every log line of a flow run and its task runs, after the line `settle` arrived."""
    run_id = state.state_details.flow_run_id
    logged(state, settle)

    async def read() -> list[str]:
        async with get_client() as client:
            logs = await client.read_logs(log_filter=LogFilter(flow_run_id={"any_": [run_id]}))
            return [log.message for log in logs]

    return asyncio.run(read())


def latest_artifact(key: str) -> Any:
    async def read() -> Any:
        async with get_client() as client:
            found = await client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])))
            return max(found, key=lambda artifact: artifact.created) if found else None

    return asyncio.run(read())


def table_rows(artifact: Any) -> list[dict[str, Any]]:
    data = artifact.data
    return json.loads(data) if isinstance(data, str) else data


def test_three_region_lifecycle_provision_join_validate_teardown(fleet: FleetUnderTest):
    spec = fleet.spec
    assert provision(fleet=fleet.path, return_state=True).is_completed()

    group = fleet.clients.resource.resource_groups.get(fleet.group)
    assert group.tags == spec.ownership_tags and group.location == "eastus"
    clusters = fleet.clusters()
    assert sorted(clusters) == sorted(c.name for c in spec.clusters())
    for cluster in spec.clusters():
        managed = clusters[cluster.name]
        pool = managed.agent_pool_profiles[0]
        assert managed.location == cluster.region and managed.provisioning_state == "Succeeded"
        assert (pool.count, pool.vm_size) == (2, "Standard_DS2_v2")
        assert (managed.network_profile.network_plugin, managed.network_profile.network_policy) == ("azure", "azure")
        assert managed.identity.type == "SystemAssigned"
        assert managed.current_kubernetes_version.startswith("1.36.")
        assert managed.tags["region"] == cluster.region and managed.tags["fleetflow-fleet"] == spec.name
    fleet_resource = fleet.clients.fleet.fleets.get(fleet.group, spec.name)
    assert fleet_resource.properties.provisioning_state == "Succeeded"
    assert fleet_resource.properties.hub_profile is None  # hubless
    # The service operator is Contributor on the fleet's group and nowhere else.
    assignments = fleet.operator_assignments()
    assert [(a.scope, a.role_definition_id.rsplit("/", 1)[-1]) for a in assignments] == [
        (f"/subscriptions/{fleet.clients.subscription_id}/resourceGroups/{fleet.group}", CONTRIBUTOR_ROLE)]
    status = table_rows(latest_artifact(f"fleet-status-{spec.name}"))
    assert {row["region"] for row in status} == {"eastus", "westus2", "centralus"}
    assert all(row["provisioning state"] == "Succeeded" for row in status)

    assert join(fleet=fleet.path, return_state=True).is_completed()
    members = fleet.members()
    assert {name: m.properties.group for name, m in members.items()} == {
        c.member_name: c.update_group for c in spec.clusters()}
    assert {m.properties.cluster_resource_id.lower() for m in members.values()} == {
        c.id.lower() for c in clusters.values()}
    status = table_rows(latest_artifact(f"fleet-status-{spec.name}"))
    assert {row["cluster"]: row["update group"] for row in status} == {
        c.name: c.update_group for c in spec.clusters()}

    state = validate(fleet=fleet.path, return_state=True)
    assert state.is_completed(), state.message
    checks = state.result()
    reachability = [c for c in checks if c["check"] == "reachable"]
    # ARM-only clusters have no API server: reported as skipped with the emulator's reason, never as passed.
    assert len(reachability) == 3 and all(c["result"] == "skipped" for c in reachability)
    assert all("ARM-only" in c["detail"] for c in reachability)
    assert not [c for c in checks if c["result"] == "failed"]
    assert {c["check"] for c in checks if c["result"] == "passed"} >= {
        "fleet Succeeded", "cluster Succeeded", "kubernetes version", "member Succeeded", "member update group"}
    assert len(table_rows(latest_artifact(f"validate-{spec.name}"))) == len(checks)

    assert teardown(fleet=fleet.path, return_state=True).is_completed()
    assert not fleet.group_exists()
    assert fleet.clusters() == {}
    assert fleet.operator_assignments() == []
    assert not [g for g in fleet.clients.resource.resource_groups.list() if g.name == fleet.group]


def test_validate_fails_naming_each_failed_check(fleet: FleetUnderTest):
    assert provision(fleet=fleet.path, return_state=True).is_completed()
    # Not joined: every member check fails, and the run says which.
    state = validate(fleet=fleet.path, return_state=True)
    assert state.is_failed()
    for cluster in fleet.spec.clusters():
        assert f"member Succeeded on {cluster.member_name}" in state.message
        assert f"member update group on {cluster.member_name}" in state.message
    assert "cluster Succeeded" not in state.message


def test_rerun_of_provision_and_join_changes_nothing(fleet: FleetUnderTest):
    assert provision(fleet=fleet.path, return_state=True).is_completed()
    assert join(fleet=fleet.path, return_state=True).is_completed()
    operations_before = fleet.operations()
    clusters_before = {name: c.as_dict() for name, c in fleet.clusters().items()}
    group_before = fleet.clients.resource.resource_groups.get(fleet.group).as_dict()

    again = provision(fleet=fleet.path, return_state=True)
    joined_again = join(fleet=fleet.path, return_state=True)
    assert again.is_completed() and joined_again.is_completed()
    assert {item["action"] for item in again.result()} == {"unchanged"}
    assert {item["action"] for item in joined_again.result()} == {"unchanged"}
    assert fleet.operations() == operations_before, "a re-run started new Azure operations"
    assert {name: c.as_dict() for name, c in fleet.clusters().items()} == clusters_before
    assert fleet.clients.resource.resource_groups.get(fleet.group).as_dict() == group_before
    logs = flow_logs(again)
    assert any("provision changed nothing" in line for line in logs)
    assert sum("unchanged: it matches the spec" in line for line in logs) == 5  # group, fleet, 3 clusters


def test_provision_and_join_get_through_throttling_and_server_error_storms(fleet: FleetUnderTest, knobs_restored):
    knobs_restored.set_knobs(throttle_rate=0.3, error_rate=0.15, retry_after=0.2)
    provisioned = provision(fleet=fleet.path, return_state=True)
    joined = join(fleet=fleet.path, return_state=True)
    knobs_restored.set_knobs(throttle_rate=0, error_rate=0)
    assert provisioned.is_completed(), provisioned.message
    assert joined.is_completed(), joined.message
    assert all(c.provisioning_state == "Succeeded" for c in fleet.clusters().values())
    assert len(fleet.members()) == 3


def test_forced_failure_in_one_region_leaves_the_others_done_and_a_rerun_finishes_it(
        fleet: FleetUnderTest, knobs_restored):
    knobs_restored.set_knobs(fail=["aks.create:westus2"])
    failed = provision(fleet=fleet.path, return_state=True)
    knobs_restored.set_knobs(fail=[])
    assert failed.is_failed()
    assert "westus2" in failed.message and "InjectedFailure" in failed.message
    assert "eastus" not in failed.message.replace(fleet.group, "")
    states = {c.location: c.provisioning_state for c in fleet.clusters().values()}
    assert states == {"eastus": "Succeeded", "centralus": "Succeeded", "westus2": "Failed"}
    # Permanent: the failing task ran once, it was not retried.
    attempts = [op for op in fleet.operations() if op["resourceId"].lower().endswith("westus2")]
    assert len(attempts) == 1
    before = {op["name"] for op in fleet.operations()}

    rerun = provision(fleet=fleet.path, return_state=True)
    assert rerun.is_completed(), rerun.message
    actions = {item["region"]: item["action"] for item in rerun.result() if item["kind"] == "AKS cluster"}
    assert actions == {"eastus": "unchanged", "centralus": "unchanged", "westus2": "recreated"}
    new_operations = [op for op in fleet.operations() if op["name"] not in before]
    assert [op["resourceId"].rsplit("/", 1)[-1] for op in new_operations] == ["aks-" + fleet.spec.name + "-westus2"]
    assert all(c.provisioning_state == "Succeeded" for c in fleet.clusters().values())


def test_provision_finishes_a_cluster_an_interrupted_run_left_creating(fleet: FleetUnderTest, knobs_restored):
    # A crashed run: the group exists and one cluster's create was sent but nobody waited for it.
    knobs_restored.set_knobs(latency={"aks.create": 4000})
    fleet.clients.resource.resource_groups.create_or_update(fleet.group, {"location": "eastus",
                                                                          "tags": fleet.spec.ownership_tags})
    eastus = fleet.spec.cluster("eastus")
    from azure.mgmt.containerservice.models import ManagedCluster

    fleet.clients.containerservice.managed_clusters.begin_create_or_update(
        fleet.group, eastus.name, ManagedCluster(desired_cluster(eastus)))
    assert fleet.clusters()[eastus.name].provisioning_state == "Creating"

    knobs_restored.set_knobs(latency={"aks.create": 240})
    state = provision(fleet=fleet.path, return_state=True)
    assert state.is_completed(), state.message
    assert len([op for op in fleet.operations() if op["resourceId"].lower().endswith("eastus")]) == 1
    assert {c.provisioning_state for c in fleet.clusters().values()} == {"Succeeded"}
    assert logged(state, "from an earlier run; waiting")


def test_join_reports_unlisted_members_and_removes_them_only_when_asked(fleet: FleetUnderTest, tmp_path: Path):
    assert provision(fleet=fleet.path, return_state=True).is_completed()
    assert join(fleet=fleet.path, return_state=True).is_completed()
    document = yaml.safe_load(Path(fleet.path).read_text())
    document["regions"] = [r for r in document["regions"] if r["name"] != "centralus"]
    smaller = tmp_path / "smaller.yaml"
    smaller.write_text(yaml.safe_dump(document))
    centralus_member = fleet.spec.cluster("centralus").member_name

    reported = join(fleet=str(smaller), return_state=True)
    assert reported.is_completed()
    assert centralus_member in fleet.members()
    assert logged(reported, "does not list", centralus_member)

    assert join(fleet=str(smaller), remove_unlisted=True, return_state=True).is_completed()
    assert sorted(fleet.members()) == sorted(c.member_name for c in load_spec(smaller).clusters())


def test_teardown_keeps_a_group_holding_foreign_resources_unless_forced(fleet: FleetUnderTest):
    assert provision(fleet=fleet.path, return_state=True).is_completed()
    assert join(fleet=fleet.path, return_state=True).is_completed()
    foreign = desired_cluster(fleet.spec.cluster("eastus"))
    foreign["tags"] = {"team": "someone-else"}
    from azure.mgmt.containerservice.models import ManagedCluster

    fleet.clients.containerservice.managed_clusters.begin_create_or_update(
        fleet.group, "aks-not-ours", ManagedCluster(foreign)).result()

    kept = teardown(fleet=fleet.path, return_state=True)
    assert kept.is_completed(), kept.message
    assert fleet.group_exists() and sorted(fleet.clusters()) == ["aks-not-ours"]
    group_outcome = [item for item in kept.result() if item["kind"] == "resource group"][0]
    assert group_outcome["action"] == "kept" and "aks-not-ours" in group_outcome["detail"]
    assert logged(kept, "aks-not-ours", "force=True")
    assert fleet.operator_assignments() == []

    # A re-run finds everything it owned already gone, and force removes the rest with the group.
    forced = teardown(fleet=fleet.path, force=True, return_state=True)
    assert forced.is_completed(), forced.message
    actions = {(item["kind"], item["action"]) for item in forced.result()}
    assert ("AKS cluster", "absent") in actions and ("fleet", "absent") in actions
    assert ("resource group", "deleted") in actions
    assert not fleet.group_exists()


def test_client_secrets_appear_in_no_log_artifact_or_parameter(fleet: FleetUnderTest):
    admin_secret = fleet.local_azure.endpoint.client_secret
    operator_secret = AzureServicePrincipal.load(
        fleet.spec.service_operator.credentials_block).client_secret.get_secret_value()
    state = lifecycle(fleet=fleet.path, return_state=True)
    assert state.is_completed(), state.message

    async def records() -> tuple[list[FlowRun], list[str], list[str]]:
        async with get_client() as client:
            parent = await client.read_flow_run(state.state_details.flow_run_id)
            runs = [parent, *await client.read_flow_runs(
                flow_run_filter=FlowRunFilter(parent_flow_run_id={"any_": [parent.id]}))]
            children = await client.read_flow_runs(
                flow_run_filter=FlowRunFilter(parent_task_run_id={"any_": [r.parent_task_run_id for r in runs[1:]
                                                                          if r.parent_task_run_id]}))
            runs += [run for run in children if run.id not in {r.id for r in runs}]
            logs = await client.read_logs(log_filter=LogFilter(flow_run_id={"any_": [r.id for r in runs]}))
            artifacts = await client.read_artifacts(artifact_filter=ArtifactFilter())
            return runs, [log.message for log in logs], [str(a.data) + str(a.description) for a in artifacts]

    for _ in range(60):  # logs reach the server in batches
        runs, logs, artifacts = asyncio.run(records())
        if any("teardown: deleted" in line for line in logs):
            break
        time.sleep(0.25)
    # lifecycle and its sub-flows: provision, join, bootstrap-aso, apply-resources, validate, teardown
    assert len(runs) == 7 and len(logs) > 20 and artifacts, "nothing to search"
    assert any("teardown: deleted" in line for line in logs)
    assert any("fleet-status" in text or "region" in text for text in artifacts)
    everything = "\n".join([*(json.dumps(run.parameters) for run in runs), *logs, *artifacts])
    assert admin_secret not in everything
    assert operator_secret not in everything


def _run_in_thread(flow: Any, path: str) -> tuple[Any, dict[str, Any]]:
    import threading

    box: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: box.update(state=flow(fleet=path, return_state=True)), daemon=True)
    thread.start()
    return thread, box


def _wait_for(what: str, probe: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not probe():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_provision_and_join_converge_after_local_azure_is_killed_mid_create_and_mid_join(
        fleet: FleetUnderTest, local_azure):
    # Local Azure is SIGKILLed while provision is creating the fleet: the re-run finds the fleet Failed
    # (not Creating forever) and converges without sitting out any wait.
    local_azure.azure.set_knobs(latency={"fleet.create": 600_000})  # 10 min at the session scale
    thread, _ = _run_in_thread(provision, fleet.path)

    def fleet_creating() -> bool:
        try:
            return bool(fleet.clients.fleet.fleets.get(fleet.group, fleet.spec.name).provisioning_state
                        == "Creating")
        except Exception:
            return False

    _wait_for("the fleet to be Creating", fleet_creating)
    local_azure.restart(crash=True)  # back with the session's latencies
    thread.join(120)
    assert not thread.is_alive()
    started = time.monotonic()
    rerun = provision(fleet=fleet.path, return_state=True)
    provision_seconds = time.monotonic() - started
    assert rerun.is_completed(), rerun.message
    assert fleet.clients.fleet.fleets.get(fleet.group, fleet.spec.name).provisioning_state == "Succeeded"
    # The interrupted run's own retries may already have re-created the Failed fleet.
    assert {item["action"] for item in rerun.result() if item["kind"] == "fleet"} <= {"recreated", "unchanged"}
    assert not logged(rerun, "still Creating", timeout=1.0)
    assert provision_seconds < 60, f"provision took {provision_seconds:.1f} s after the crash"

    # Killed again while the members are joining: join's re-run converges the same way.
    local_azure.azure.set_knobs(latency={"fleet.member.create": 600_000})
    thread, _ = _run_in_thread(join, fleet.path)

    def members_joining() -> bool:
        try:
            return any(m.provisioning_state == "Joining" for m in fleet.members().values())
        except Exception:
            return False

    _wait_for("a member to be Joining", members_joining)
    local_azure.restart(crash=True)
    thread.join(120)
    assert not thread.is_alive()
    started = time.monotonic()
    rejoined = join(fleet=fleet.path, return_state=True)
    join_seconds = time.monotonic() - started
    assert rejoined.is_completed(), rejoined.message
    members = fleet.members()
    assert {name: m.provisioning_state for name, m in members.items()} == {
        c.member_name: "Succeeded" for c in fleet.spec.clusters()}
    assert join_seconds < 60, f"join took {join_seconds:.1f} s after the crash"
    assert not logged(rejoined, "still Joining", timeout=1.0)


def test_teardown_keeps_clusters_under_the_specs_names_that_this_fleet_does_not_own(fleet: FleetUnderTest):
    # The group is this fleet's, but the clusters bearing the spec's names are not: one made by hand (no
    # ownership tags), one tagged as another fleet's. Teardown deletes neither, and so keeps the group.
    from azure.mgmt.containerservice.models import ManagedCluster

    fleet.clients.resource.resource_groups.create_or_update(fleet.group, {"location": "eastus",
                                                                          "tags": fleet.spec.ownership_tags})
    hand_made, other_fleets = fleet.spec.cluster("eastus"), fleet.spec.cluster("westus2")
    foreign_tags = {
        hand_made.name: {"team": "someone-else"},
        other_fleets.name: {**fleet.spec.ownership_tags, "fleetflow-fleet": "another-fleet"},
    }
    for cluster in (hand_made, other_fleets):
        body = desired_cluster(cluster)
        body["tags"] = foreign_tags[cluster.name]
        fleet.clients.containerservice.managed_clusters.begin_create_or_update(
            fleet.group, cluster.name, ManagedCluster(body)).result()

    kept = teardown(fleet=fleet.path, return_state=True)
    assert kept.is_completed(), kept.message
    actions = {item["region"]: (item["action"], item["detail"]) for item in kept.result()
               if item["kind"] == "AKS cluster"}
    assert actions == {"eastus": ("kept", "not owned by this fleet"), "westus2": ("kept", "not owned by this fleet"),
                       "centralus": ("absent", "")}
    assert {name: c.tags for name, c in fleet.clusters().items()} == foreign_tags
    assert fleet.group_exists()
    assert [item["action"] for item in kept.result() if item["kind"] == "resource group"] == ["kept"]
    assert not [op for op in fleet.operations() if op["kind"] == "aks.delete"]


def test_provision_updating_another_field_keeps_the_version_an_upgrade_moved_ahead(
        fleet: FleetUnderTest, tmp_path: Path):
    # A staged upgrade moved eastus to 1.37 while the spec still says 1.36; then the spec's node count changes.
    # Provision scales every cluster and sends eastus its current version, never the spec's older one.
    assert provision(fleet=fleet.path, return_state=True).is_completed()
    eastus = fleet.spec.cluster("eastus")
    managed = fleet.clients.containerservice.managed_clusters.get(fleet.group, eastus.name)
    managed.kubernetes_version = "1.37.2"
    upgraded = fleet.clients.containerservice.managed_clusters.begin_create_or_update(
        fleet.group, eastus.name, managed).result()
    assert upgraded.current_kubernetes_version == "1.37.2"

    document = yaml.safe_load(Path(fleet.path).read_text())
    document["cluster_defaults"]["node_count"] = 3
    scaled_spec = tmp_path / "scaled.yaml"
    scaled_spec.write_text(yaml.safe_dump(document))
    state = provision(fleet=str(scaled_spec), return_state=True)
    assert state.is_completed(), state.message

    clusters = {item["region"]: item for item in state.result() if item["kind"] == "AKS cluster"}
    assert {region: item["action"] for region, item in clusters.items()} == {
        "eastus": "updated", "westus2": "updated", "centralus": "updated"}
    assert clusters["eastus"]["detail"] == "1.37.2"
    after = fleet.clusters()
    assert {name: c.agent_pool_profiles[0].count for name, c in after.items()} == {
        c.name: 3 for c in fleet.spec.clusters()}
    assert after[eastus.name].current_kubernetes_version == "1.37.2"
    assert after[eastus.name].kubernetes_version == "1.37.2"
    assert all(after[c.name].current_kubernetes_version.startswith("1.36.") for c in fleet.spec.clusters()
               if c.region != "eastus")
    assert logged(state, eastus.name, "newer than the spec's 1.36")


def test_validate_agrees_with_provision_ahead_of_the_spec_is_a_notice_behind_fails(
        fleet: FleetUnderTest, tmp_path: Path):
    assert provision(fleet=fleet.path, return_state=True).is_completed()
    assert join(fleet=fleet.path, return_state=True).is_completed()
    # An update run moves every cluster past the spec's 1.36, as a staged upgrade does.
    runs = fleet.clients.fleet.update_runs
    strategy = {"stages": [{"name": "all", "groups": [{"name": "test-group"}, {"name": "prod-group"}]}]}
    runs.begin_create_or_update(fleet.group, fleet.spec.name, "to-137", {"properties": {
        "strategy": strategy, "managedClusterUpdate": {"upgrade": {"type": "Full", "kubernetesVersion": "1.37.2"}}}
    }).result()
    runs.begin_start(fleet.group, fleet.spec.name, "to-137").result()
    deadline = time.monotonic() + 60
    while str(runs.get(fleet.group, fleet.spec.name, "to-137").properties.status.status.state) not in (
            "Completed", "UpdateState.COMPLETED"):
        assert time.monotonic() < deadline, "the update run did not complete"
        time.sleep(0.2)

    ahead = validate(fleet=fleet.path, return_state=True)
    assert ahead.is_completed(), ahead.message
    versions = [c for c in ahead.result() if c["check"] == "kubernetes version"]
    assert [c["result"] for c in versions] == ["notice"] * 3
    assert all("1.37.2, ahead of the spec's 1.36: update run to-137 moved it" in c["detail"] for c in versions)
    assert all('kubernetes_version: "1.37"' in c["detail"] for c in versions)
    assert logged(ahead, "notice: kubernetes version")
    again = provision(fleet=fleet.path, return_state=True)
    assert again.is_completed() and {item["action"] for item in again.result()} == {"unchanged"}

    # A spec asking for more than the clusters run: behind the spec fails, naming each cluster.
    document = yaml.safe_load(Path(fleet.path).read_text())
    document["cluster_defaults"]["kubernetes_version"] = "1.37.9"
    behind_path = tmp_path / "behind.yaml"
    behind_path.write_text(yaml.safe_dump(document))
    behind = validate(fleet=str(behind_path), return_state=True)
    assert behind.is_failed()
    for cluster in fleet.spec.clusters():
        assert f"kubernetes version on {cluster.name}: 1.37.2 (spec 1.37.9): behind the spec" in behind.message
