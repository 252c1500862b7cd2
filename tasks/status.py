"""The fleet status table: what Azure reports for every region's cluster and member, as a Prefect artifact."""

from __future__ import annotations

from prefect import get_run_logger

from tasks.aks import cluster_state, cluster_version, list_clusters
from tasks.artifacts import publish_table
from tasks.clients import load_azure_clients
from tasks.fleet_members import list_members, member_state
from tasks.fleets import fleet_state, read_fleet
from tasks.retry import azure_task
from tasks.spec import FleetSpec

StatusRow = dict[str, str]


def fleet_status_rows(spec: FleetSpec, credentials_block: str) -> list[StatusRow]:
    """One row per region: cluster, Kubernetes version, update group and provisioning states, read from Azure."""
    clients = load_azure_clients(credentials_block)
    members = {str(member.name): member for member in list_members(clients, spec)}
    managed_clusters = {str(managed.name).lower(): managed for managed in list_clusters(clients, spec)}
    rows = []
    for cluster in spec.clusters():
        managed = managed_clusters.get(cluster.name.lower())
        member = members.get(cluster.member_name)
        group = (member.properties.group if member is not None and member.properties else None)
        rows.append({
            "region": cluster.region,
            "cluster": cluster.name,
            "kubernetes version": cluster_version(managed) or "-",
            "update group": group or f"{cluster.update_group} (not joined)",
            "provisioning state": cluster_state(managed) or "absent",
            "member state": member_state(member) or "not a member",
        })
    return rows


@azure_task(task_run_name="publish-fleet-status-{stage}")
def publish_fleet_status(spec: FleetSpec, credentials_block: str, stage: str) -> list[StatusRow]:
    """Publish the fleet status table (artifact key fleet-status-<fleet>) after a lifecycle stage; returns the rows."""
    clients = load_azure_clients(credentials_block)
    rows = fleet_status_rows(spec, credentials_block)
    fleet = read_fleet(clients, spec)
    description = (f"Fleet {spec.name} after {stage}: fleet {fleet_state(fleet) or 'absent'}, "
                   f"resource group {spec.resource_group_name}")
    publish_table(f"fleet-status-{spec.name}", rows, description)
    get_run_logger().info("%s", description)
    return rows
