"""AKS managed clusters: one per region, reconciled to the spec; admin kubeconfigs fetched at run time."""

from __future__ import annotations

import contextlib
from typing import Any

from azure.core.exceptions import ResourceNotFoundError
from azure.mgmt.containerservice.models import ManagedCluster
from prefect import get_run_logger

from tasks.clients import AzureClients, load_azure_clients
from tasks.ownership import (
    Outcome,
    is_failed,
    is_owned,
    is_terminal,
    outcome,
    require_owned,
    state_text,
    tags_missing,
)
from tasks.retry import AzureOperationError, FleetflowError, azure_call, azure_task, wait_until
from tasks.spec import ClusterSpec, FleetSpec, parse_kubernetes_version

KIND = "AKS cluster"
SYSTEM_POOL = "nodepool1"


# Local Azure's answer when a cluster has no Kubernetes API server (ARM-only mode): not a pass, not a failure.
NO_KUBERNETES_CODE = "KubernetesNotAvailable"

def cluster_id(subscription_id: str, spec: FleetSpec, cluster: ClusterSpec) -> str:
    """Resource id of a region's cluster."""
    return (f"/subscriptions/{subscription_id}/resourceGroups/{spec.resource_group_name}"
            f"/providers/Microsoft.ContainerService/managedClusters/{cluster.name}")


KubernetesVersion = tuple[int, int, int | None]


def _spec_and_cluster_versions(desired: str, actual: str | None) -> tuple[KubernetesVersion, KubernetesVersion] | None:
    # None when the cluster reports no version or one that does not parse: it then neither matches nor is newer.
    # The spec's version was validated when the spec was loaded, so a bad one is a bug and raises.
    if not actual:
        return None
    wanted = parse_kubernetes_version(desired)
    try:
        return wanted, parse_kubernetes_version(actual)
    except ValueError:
        return None


def version_matches(desired: str, actual: str | None) -> bool:
    """Whether a cluster version satisfies the spec: "1.36" matches any 1.36.x, "1.36.3" only itself."""
    versions = _spec_and_cluster_versions(desired, actual)
    if versions is None:
        return False
    (want_major, want_minor, want_patch), (major, minor, patch) = versions
    return (major, minor) == (want_major, want_minor) and (want_patch is None or patch == want_patch)


def runs_newer(desired: str, actual: str | None) -> bool:
    """Whether a cluster already runs a newer version than the spec asks for (a staged upgrade got there first)."""
    versions = _spec_and_cluster_versions(desired, actual)
    if versions is None:
        return False
    (want_major, want_minor, want_patch), (major, minor, patch) = versions
    return (major, minor, patch or 0) > (want_major, want_minor, want_patch if want_patch is not None else 10**6)


def desired_cluster(cluster: ClusterSpec) -> dict[str, Any]:
    """The managed-cluster body the spec asks for (the recipe's az aks create flags, as Resource Manager JSON)."""
    return {
        "location": cluster.region,
        "tags": cluster.tags,
        "identity": {"type": "SystemAssigned"},
        "properties": {
            "kubernetesVersion": cluster.kubernetes_version,
            "dnsPrefix": cluster.name[:54],
            "enableRBAC": True,
            "agentPoolProfiles": [{
                "name": SYSTEM_POOL,
                "mode": "System",
                "count": cluster.node_count,
                "vmSize": cluster.vm_size,
                "osType": "Linux",
                "type": "VirtualMachineScaleSets",
            }],
            "networkProfile": {"networkPlugin": cluster.network_plugin, "networkPolicy": cluster.network_policy},
        },
    }


def read_cluster(clients: AzureClients, spec: FleetSpec, cluster: ClusterSpec) -> Any | None:
    """The managed cluster as Azure reports it, or None when it does not exist."""
    with azure_call("read AKS cluster", cluster_id(clients.subscription_id, spec, cluster), cluster.region):
        try:
            return clients.containerservice.managed_clusters.get(spec.resource_group_name, cluster.name)
        except ResourceNotFoundError:
            return None


def list_clusters(clients: AzureClients, spec: FleetSpec) -> list[Any]:
    """Every managed cluster in the fleet's resource group (empty when the group does not exist)."""
    group_id = f"/subscriptions/{clients.subscription_id}/resourceGroups/{spec.resource_group_name}"
    with azure_call("list AKS clusters", group_id, spec.location):
        try:
            return list(clients.containerservice.managed_clusters.list_by_resource_group(spec.resource_group_name))
        except ResourceNotFoundError:
            return []


def cluster_state(managed: Any) -> str | None:
    """Provisioning state of a managed-cluster model."""
    return state_text(managed.properties.provisioning_state) if managed is not None and managed.properties else None


def cluster_version(managed: Any) -> str | None:
    """The Kubernetes version the control plane runs (current, else requested)."""
    if managed is None or managed.properties is None:
        return None
    return managed.properties.current_kubernetes_version or managed.properties.kubernetes_version


def drift(cluster: ClusterSpec, managed: Any) -> list[str]:
    """What differs between the spec and an existing cluster, in words (empty when it matches)."""
    differences = []
    props = managed.properties
    if (managed.location or "").replace(" ", "").lower() != cluster.region:
        differences.append(f"location {managed.location} (spec {cluster.region})")
    # Upgrades belong to staged-upgrade: a cluster ahead of the spec is not drift, and is never downgraded.
    if not version_matches(cluster.kubernetes_version, cluster_version(managed)) and \
            not runs_newer(cluster.kubernetes_version, cluster_version(managed)):
        differences.append(f"kubernetes {cluster_version(managed)} (spec {cluster.kubernetes_version})")
    pools = {pool.name: pool for pool in (props.agent_pool_profiles or [])}
    pool = pools.get(SYSTEM_POOL) or next(iter(pools.values()), None)
    if pool is None:
        differences.append("no agent pool")
    else:
        if pool.count != cluster.node_count:
            differences.append(f"node count {pool.count} (spec {cluster.node_count})")
        if (pool.vm_size or "").lower() != cluster.vm_size.lower():
            differences.append(f"vm size {pool.vm_size} (spec {cluster.vm_size})")
    network = props.network_profile
    plugin = network.network_plugin if network else None
    policy = network.network_policy if network else None
    if plugin != cluster.network_plugin or policy != cluster.network_policy:
        differences.append(f"network {plugin}/{policy} (spec {cluster.network_plugin}/{cluster.network_policy})")
    identity = (managed.identity.type if managed.identity else None) or "None"
    if identity != "SystemAssigned":
        differences.append(f"identity {identity} (spec SystemAssigned)")
    missing = tags_missing(managed.tags, cluster.tags)
    if missing:
        differences.append(f"tags {sorted(missing)}")
    return differences


def _wait_for_terminal(clients: AzureClients, spec: FleetSpec, cluster: ClusterSpec) -> Any | None:
    resource_id = cluster_id(clients.subscription_id, spec, cluster)
    wait_until(lambda: cluster_state(read_cluster(clients, spec, cluster)), is_terminal, what="cluster operation",
               operation="wait for AKS cluster", resource_id=resource_id, region=cluster.region,
               timeout_azure_seconds=5400)
    return read_cluster(clients, spec, cluster)


@azure_task(task_run_name="ensure-cluster-{cluster.name}")
def ensure_cluster(spec: FleetSpec, cluster: ClusterSpec, credentials_block: str) -> Outcome:
    """Create a region's AKS cluster, finish or repair one left Creating/Failed, or update drift from the spec."""
    logger = get_run_logger()
    clients = load_azure_clients(credentials_block)
    resource_id = cluster_id(clients.subscription_id, spec, cluster)
    managed = read_cluster(clients, spec, cluster)
    if managed is not None and not is_terminal(cluster_state(managed)):
        logger.info("cluster %s is %s from an earlier run; waiting for it to finish", cluster.name,
                    cluster_state(managed))
        managed = _wait_for_terminal(clients, spec, cluster)
    body = desired_cluster(cluster)
    if managed is None:
        action, reason = "created", ""
    else:
        if runs_newer(cluster.kubernetes_version, cluster_version(managed)):
            logger.warning("cluster %s runs kubernetes %s, newer than the spec's %s (a staged upgrade moved it); "
                           "provision never downgrades: set kubernetes_version in the spec to match",
                           cluster.name, cluster_version(managed), cluster.kubernetes_version)
        require_owned(managed.tags, spec, kind=KIND, resource_id=resource_id, operation="reconcile AKS cluster",
                      region=cluster.region)
        differences = drift(cluster, managed)
        if not differences and not is_failed(cluster_state(managed)):
            logger.info("cluster %s unchanged: it matches the spec (%s, kubernetes %s)", cluster.name,
                        cluster_state(managed), cluster_version(managed))
            return outcome(resource_id, KIND, "unchanged", str(cluster_version(managed)), cluster.region)
        if is_failed(cluster_state(managed)):
            action, reason = "recreated", f"last operation {cluster_state(managed)}"
        else:
            action, reason = "updated", "; ".join(differences)
        # Keep what Azure set and the spec does not speak about (dnsPrefix is immutable, extra tags stay).
        body["properties"]["dnsPrefix"] = managed.properties.dns_prefix or body["properties"]["dnsPrefix"]
        body["tags"] = {**(managed.tags or {}), **cluster.tags}
        if version_matches(cluster.kubernetes_version, cluster_version(managed)) or \
                runs_newer(cluster.kubernetes_version, cluster_version(managed)):
            # "1.36" must not be re-sent when the cluster already runs a 1.36 patch, nor an older version
            # to a cluster a staged upgrade has moved on.
            body["properties"]["kubernetesVersion"] = cluster_version(managed)
    logger.info("cluster %s: %s %s", cluster.name, "creating" if action == "created" else "updating", reason)
    operation = "create AKS cluster" if action == "created" else "update AKS cluster"
    with azure_call(operation, resource_id, cluster.region):
        result = clients.containerservice.managed_clusters.begin_create_or_update(
            spec.resource_group_name, cluster.name, ManagedCluster(body)).result()
    logger.info("cluster %s %s: %s, kubernetes %s", cluster.name, action, cluster_state(result),
                cluster_version(result))
    return outcome(resource_id, KIND, action, str(cluster_version(result)), cluster.region)  # type: ignore[arg-type]


@azure_task(task_run_name="delete-cluster-{cluster.name}")
def delete_cluster(spec: FleetSpec, cluster: ClusterSpec, credentials_block: str) -> Outcome:
    """Delete a region's cluster if this fleet owns it; an absent cluster is already done."""
    logger = get_run_logger()
    clients = load_azure_clients(credentials_block)
    resource_id = cluster_id(clients.subscription_id, spec, cluster)
    managed = read_cluster(clients, spec, cluster)
    if managed is None:
        logger.info("cluster %s is already gone", cluster.name)
        return outcome(resource_id, KIND, "absent", region=cluster.region)
    if not is_owned(managed.tags, spec):
        logger.warning("cluster %s is not tagged as owned by fleet %s; kept", cluster.name, spec.name)
        return outcome(resource_id, KIND, "kept", "not owned by this fleet", cluster.region)
    if not is_terminal(cluster_state(managed)) and (cluster_state(managed) or "").lower() != "deleting":
        _wait_for_terminal(clients, spec, cluster)
    with azure_call("delete AKS cluster", resource_id, cluster.region), contextlib.suppress(ResourceNotFoundError):
        clients.containerservice.managed_clusters.begin_delete(spec.resource_group_name, cluster.name).result()
    logger.info("deleted cluster %s", cluster.name)
    return outcome(resource_id, KIND, "deleted", region=cluster.region)


def served_kubeconfig(clients: AzureClients, spec: FleetSpec, cluster: ClusterSpec, purpose: str) -> str | None:
    """The admin kubeconfig, or None (logged) for a cluster local Azure serves without a Kubernetes API server
    (ARM-only mode: never the case in Azure), which `purpose` then skips."""
    try:
        return admin_kubeconfig(clients, spec, cluster)
    except AzureOperationError as error:
        if error.code != NO_KUBERNETES_CODE:
            raise
        get_run_logger().warning("%s skipped %s: %s", purpose, cluster.name, error.azure_message)
        return None


def admin_kubeconfig(clients: AzureClients, spec: FleetSpec, cluster: ClusterSpec) -> str:
    """The cluster's admin kubeconfig (YAML), fetched through the SDK and kept in memory only."""
    resource_id = cluster_id(clients.subscription_id, spec, cluster)
    with azure_call("list cluster admin credentials", resource_id, cluster.region):
        credentials = clients.containerservice.managed_clusters.list_cluster_admin_credentials(
            spec.resource_group_name, cluster.name)
    if not credentials.kubeconfigs:
        raise FleetflowError(f"list cluster admin credentials {resource_id}: Azure returned no kubeconfig",
                             operation="list cluster admin credentials", resource_id=resource_id,
                             region=cluster.region)
    value = credentials.kubeconfigs[0].value
    return value.decode() if isinstance(value, bytes | bytearray) else str(value)
