"""Registry pull rights: each cluster's kubelet identity gets AcrPull on the fleet's registry, and nothing more."""

from __future__ import annotations

from azure.core.exceptions import ResourceNotFoundError

from tasks.aks import read_cluster
from tasks.clients import AzureClients, load_azure_clients
from tasks.ownership import Outcome
from tasks.rbac import ACR_PULL_ROLE, assignment_name, grant_role, role_definition_id
from tasks.resource_groups import group_id
from tasks.retry import FleetflowError, azure_task
from tasks.spec import ClusterSpec, FleetSpec


def registry_id(subscription_id: str, spec: FleetSpec) -> str:
    """Resource id of the fleet's container registry."""
    return f"{group_id(subscription_id, spec)}/providers/Microsoft.ContainerRegistry/registries/{spec.registry_name}"


def kubelet_object_id(clients: AzureClients, spec: FleetSpec, cluster: ClusterSpec) -> str:
    """Object id of the cluster's kubelet identity (the identity that pulls images)."""
    managed = read_cluster(clients, spec, cluster)
    profile = (managed.identity_profile or {}) if managed is not None else {}
    kubelet = profile.get("kubeletidentity")
    if kubelet is None or not kubelet.object_id:
        raise FleetflowError(f"cluster {cluster.name} has no kubelet identity; it must use a managed identity "
                             "(provision creates it so)", operation="read kubelet identity",
                             resource_id=cluster.name, region=cluster.region)
    return str(kubelet.object_id)


def has_registry_pull(clients: AzureClients, spec: FleetSpec, cluster: ClusterSpec) -> bool:
    """Whether fleetflow's AcrPull assignment for the cluster's kubelet identity exists (for validate)."""
    scope = registry_id(clients.subscription_id, spec)
    name = assignment_name(scope, kubelet_object_id(clients, spec, cluster),
                           role_definition_id(clients.subscription_id, ACR_PULL_ROLE))
    try:
        clients.authorization.role_assignments.get(scope, name)
    except ResourceNotFoundError:
        return False
    return True


@azure_task(task_run_name="grant-registry-pull-{cluster.name}")
def grant_registry_pull(spec: FleetSpec, cluster: ClusterSpec, credentials_block: str) -> Outcome:
    """AcrPull on the fleet's registry for the cluster's kubelet identity (idempotent; least privilege)."""
    clients = load_azure_clients(credentials_block)
    return grant_role(clients, scope=registry_id(clients.subscription_id, spec),
                      principal_id=kubelet_object_id(clients, spec, cluster), role=ACR_PULL_ROLE,
                      region=cluster.region, what=f"the kubelet identity of {cluster.name}")
