"""Fleet members: every cluster of the spec joined with its update group; members not in the spec reported."""

from __future__ import annotations

import contextlib
from typing import Any

from azure.core.exceptions import ResourceNotFoundError
from azure.mgmt.containerservicefleet.models import FleetMember, FleetMemberUpdate
from prefect import get_run_logger

from tasks.aks import cluster_id
from tasks.clients import AzureClients, load_azure_clients
from tasks.fleets import fleet_id, read_fleet
from tasks.ownership import Outcome, is_failed, is_owned, is_terminal, outcome, state_text
from tasks.retry import FleetflowError, azure_call, azure_task, wait_until
from tasks.spec import ClusterSpec, FleetSpec

KIND = "fleet member"


def member_id(subscription_id: str, spec: FleetSpec, member_name: str) -> str:
    """Resource id of a fleet member."""
    return f"{fleet_id(subscription_id, spec)}/members/{member_name}"


def read_member(clients: AzureClients, spec: FleetSpec, member_name: str, region: str | None = None) -> Any | None:
    """A fleet member as Azure reports it, or None when it does not exist."""
    with azure_call("read fleet member", member_id(clients.subscription_id, spec, member_name), region):
        try:
            return clients.fleet.fleet_members.get(spec.resource_group_name, spec.name, member_name)
        except ResourceNotFoundError as error:
            if getattr(error.error, "code", None) in ("ResourceGroupNotFound", "ParentResourceNotFound"):
                raise
            return None


def member_state(member: Any) -> str | None:
    """Provisioning state of a fleet-member model."""
    return state_text(member.properties.provisioning_state) if member is not None and member.properties else None


def list_members(clients: AzureClients, spec: FleetSpec) -> list[Any]:
    """Every member of the fleet (empty when the fleet does not exist)."""
    with azure_call("list fleet members", fleet_id(clients.subscription_id, spec), spec.location):
        try:
            return list(clients.fleet.fleet_members.list_by_fleet(spec.resource_group_name, spec.name))
        except ResourceNotFoundError:
            return []


def _wait_for_terminal(clients: AzureClients, spec: FleetSpec, name: str, region: str | None) -> Any | None:
    wait_until(lambda: member_state(read_member(clients, spec, name, region)), is_terminal,
               what="member operation", operation="wait for fleet member",
               resource_id=member_id(clients.subscription_id, spec, name), region=region)
    return read_member(clients, spec, name, region)


@azure_task(task_run_name="ensure-member-{cluster.name}")
def ensure_member(spec: FleetSpec, cluster: ClusterSpec, credentials_block: str) -> Outcome:
    """Join a region's cluster to the fleet in its update group, or move an existing member to the right group."""
    logger = get_run_logger()
    clients = load_azure_clients(credentials_block)
    resource_id = member_id(clients.subscription_id, spec, cluster.member_name)
    target = cluster_id(clients.subscription_id, spec, cluster)
    member = read_member(clients, spec, cluster.member_name, cluster.region)
    if member is not None and not is_terminal(member_state(member)):
        logger.info("member %s is %s from an earlier run; waiting", cluster.member_name, member_state(member))
        member = _wait_for_terminal(clients, spec, cluster.member_name, cluster.region)
    if member is not None:
        joined = member.properties.cluster_resource_id or ""
        if joined.lower() != target.lower():
            raise FleetflowError(
                f"join {resource_id}: member {cluster.member_name} already joins {joined}, not {target}; the "
                "cluster of a member cannot change, so remove the member or rename it in the spec",
                operation="join", resource_id=resource_id, region=cluster.region)
        if not is_failed(member_state(member)):
            if member.properties.group == cluster.update_group:
                logger.info("member %s unchanged: joined in group %s", cluster.member_name, cluster.update_group)
                return outcome(resource_id, KIND, "unchanged", cluster.update_group, cluster.region)
            with azure_call("update fleet member group", resource_id, cluster.region):
                clients.fleet.fleet_members.begin_update(
                    spec.resource_group_name, spec.name, cluster.member_name,
                    FleetMemberUpdate({"properties": {"group": cluster.update_group}})).result()
            logger.info("member %s moved from group %s to %s", cluster.member_name, member.properties.group,
                        cluster.update_group)
            return outcome(resource_id, KIND, "updated", cluster.update_group, cluster.region)
    action = "created" if member is None else "recreated"
    body = {"properties": {"clusterResourceId": target, "group": cluster.update_group}}
    with azure_call("create fleet member", resource_id, cluster.region):
        result = clients.fleet.fleet_members.begin_create(
            spec.resource_group_name, spec.name, cluster.member_name, FleetMember(body)).result()
    logger.info("member %s %s in group %s (%s)", cluster.member_name, action, cluster.update_group,
                member_state(result))
    return outcome(resource_id, KIND, action, cluster.update_group, cluster.region)  # type: ignore[arg-type]


@azure_task(task_run_name="find-unlisted-members")
def unlisted_members(spec: FleetSpec, credentials_block: str) -> list[str]:
    """Names of fleet members the spec does not list."""
    clients = load_azure_clients(credentials_block)
    wanted = {cluster.member_name for cluster in spec.clusters()}
    return sorted(str(member.name) for member in list_members(clients, spec) if member.name not in wanted)


@azure_task(task_run_name="delete-member-{member_name}")
def delete_member(spec: FleetSpec, member_name: str, credentials_block: str) -> Outcome:
    """Remove a member from the fleet (the cluster stays); an absent member is already done."""
    logger = get_run_logger()
    clients = load_azure_clients(credentials_block)
    resource_id = member_id(clients.subscription_id, spec, member_name)
    try:
        member = read_member(clients, spec, member_name)
    except FleetflowError as error:
        if getattr(error, "status", None) == 404:
            return outcome(resource_id, KIND, "absent", "fleet is gone")
        raise
    if member is None:
        logger.info("member %s is already gone", member_name)
        return outcome(resource_id, KIND, "absent")
    if not is_terminal(member_state(member)) and (member_state(member) or "").lower() != "deleting":
        _wait_for_terminal(clients, spec, member_name, None)
    with azure_call("delete fleet member", resource_id), contextlib.suppress(ResourceNotFoundError):
        clients.fleet.fleet_members.begin_delete(spec.resource_group_name, spec.name, member_name).result()
    logger.info("removed member %s from fleet %s", member_name, spec.name)
    return outcome(resource_id, KIND, "deleted")


@azure_task(task_run_name="find-members-to-remove")
def owned_fleet_members(spec: FleetSpec, credentials_block: str) -> list[str]:
    """Names of every member of the fleet when this fleet spec owns the fleet (empty if absent or not owned)."""
    clients = load_azure_clients(credentials_block)
    fleet = read_fleet(clients, spec)
    if fleet is None or not is_owned(fleet.tags, spec):
        return []
    return sorted(str(member.name) for member in list_members(clients, spec))
