"""One cluster brought to a commit: render, apply, prune what left Git, wait until healthy, record the commit."""

from __future__ import annotations

import time
from typing import TypedDict

from kubernetes import client as kube_client
from kubernetes.dynamic import DynamicClient
from prefect import get_run_logger

from blocks.git import GitCredentials
from tasks.aks import read_cluster, served_kubeconfig
from tasks.clients import kubernetes_api_client, load_azure_clients
from tasks.gitops.apply import (
    ApplyError,
    Inventory,
    ObjectRef,
    apply_objects,
    delete_objects,
    dynamic_client,
    inventory_after_failure,
    present,
    read_inventory,
    read_live,
    stale_objects,
    write_inventory,
)
from tasks.gitops.drift import DriftRow, azure_differences, cluster_differences
from tasks.gitops.health import Health, health_of
from tasks.gitops.render import RenderedObject, cluster_variables, render_cluster
from tasks.gitops.source import GitSource, read_folder, resolve_ref
from tasks.retry import AzureOperationError, azure_task
from tasks.spec import ClusterSpec, FleetSpec

POLL_SECONDS = 1.0
# "Skipped": local Azure's ARM-only clusters have no API server to apply to (never the case in Azure).
HEALTHY_STATES = frozenset({"Ready", "Available", "Applied", "Pruned", "Skipped"})


class ObjectRow(TypedDict):
    """One object of a cluster in the apply-resources table."""

    cluster: str
    object: str
    kind: str
    state: str
    reason: str
    commit: str


def git_source(spec: FleetSpec) -> GitSource:
    """The spec's repository with the credentials of its Git block, if it names one."""
    assert spec.gitops is not None
    block_name = spec.gitops.credentials_block
    if not block_name:
        return GitSource(spec.gitops.repository)
    credentials: GitCredentials = GitCredentials.load(block_name)  # type: ignore[assignment]
    return GitSource(spec.gitops.repository, credentials.username, credentials.token.get_secret_value())


@azure_task(task_run_name="resolve-git-ref")
def resolve_commit(spec: FleetSpec) -> str:
    """The commit gitops.ref names now (resolved once per run, so every cluster gets the same one)."""
    assert spec.gitops is not None
    return resolve_ref(git_source(spec), spec.gitops.ref)


@azure_task(task_run_name="read-git-tree-{commit:.12}")
def read_tree(spec: FleetSpec, commit: str) -> dict[str, bytes]:
    """The files under gitops.path at `commit`."""
    assert spec.gitops is not None
    return read_folder(git_source(spec), commit, spec.gitops.path)


def render_for(spec: FleetSpec, cluster: ClusterSpec, files: dict[str, bytes], subscription_id: str,
               tenant_id: str) -> list[RenderedObject]:
    """The objects of `cluster` at this tree: regional ones, plus fleet-wide ones on the fleet cluster."""
    assert spec.gitops is not None
    variables = cluster_variables(spec, cluster, subscription_id, tenant_id)
    return render_cluster(files, spec.gitops.path, variables, cluster.name,
                          fleet_wide=cluster.name == spec.fleet_cluster().name)


def _wait_healthy(dynamic: DynamicClient, refs: list[ObjectRef], timeout: float) -> dict[str, Health]:
    deadline = time.monotonic() + timeout
    while True:
        health = {ref.key: health_of(ref.api_version, ref.kind, read_live(dynamic, ref)) for ref in refs}
        if all(item.ready for item in health.values()) or time.monotonic() > deadline:
            return health
        time.sleep(POLL_SECONDS)


def _wait_gone(dynamic: DynamicClient, refs: list[ObjectRef], timeout: float) -> list[str]:
    deadline = time.monotonic() + timeout
    while True:
        left = present(dynamic, refs)
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(POLL_SECONDS)


@azure_task(task_run_name="apply-resources-{cluster.name}")
def sync_cluster(spec: FleetSpec, cluster: ClusterSpec, credentials_block: str, commit: str,
                 files: dict[str, bytes]) -> list[ObjectRow]:
    """Apply the commit's objects to one cluster, prune what left Git, wait for health, record the commit."""
    assert spec.gitops is not None
    logger = get_run_logger()
    clients = load_azure_clients(credentials_block)
    principal = clients.principal
    objects = render_for(spec, cluster, files, clients.subscription_id, principal.tenant_id)
    kubeconfig = served_kubeconfig(clients, spec, cluster, "apply-resources")
    if kubeconfig is None:
        return [ObjectRow(cluster=cluster.name, object=ObjectRef.of(item).display, kind=item.kind, state="Skipped",
                          reason="no Kubernetes API server", commit=commit[:12]) for item in objects]
    timeout = spec.gitops.health_timeout_seconds
    short = commit[:12]
    with kubernetes_api_client(kubeconfig) as api, dynamic_client(api) as dynamic:
        previous = read_inventory(api, cluster.name)
        applied, failures = apply_objects(dynamic, cluster.name, objects)
        wanted = [ObjectRef.of(item) for item in objects]
        if failures:
            # Keep tracking everything (old and new) and prune nothing: a re-run after the fix finishes the job.
            write_inventory(api, cluster.name, inventory_after_failure(previous, wanted, set(applied)))
            listing = "\n".join(f"  - {line}" for line in failures)
            raise ApplyError(f"apply-resources on cluster {cluster.name} at {short}: {len(failures)} object(s) "
                             f"failed, the others were applied; nothing was pruned:\n{listing}",
                             operation="server-side apply", resource_id=cluster.name, region=cluster.region)
        stale = stale_objects(previous, wanted)
        prune_failures = delete_objects(dynamic, cluster.name, stale)
        write_inventory(api, cluster.name, Inventory(commit, tuple(wanted)))
        health = _wait_healthy(dynamic, wanted, timeout)
        lingering = _wait_gone(dynamic, stale, timeout) if stale else []

    rows = [ObjectRow(cluster=cluster.name, object=ref.display, kind=ref.kind, state=health[ref.key].state,
                      reason=health[ref.key].reason, commit=short) for ref in wanted]
    rows += [ObjectRow(cluster=cluster.name, object=ref.display, kind=ref.kind,
                       state="Pruning" if f"{ref.kind} {ref.display}" in lingering else "Pruned",
                       reason="removed from Git", commit=short) for ref in stale]
    logger.info("apply-resources on %s at %s: %d objects applied, %d pruned, %d not healthy", cluster.name, short,
                len(wanted), len(stale), len(unhealthy_rows(rows)))
    rows += [ObjectRow(cluster=cluster.name, object="(prune)", kind="-", state="Failed", reason=line, commit=short)
             for line in prune_failures]
    return rows


def unhealthy_rows(rows: list[ObjectRow]) -> list[str]:
    """A line per object that is not healthy (or a prune that failed), naming cluster, kind, object and reason."""
    return [f"{row['cluster']}: {row['kind']} {row['object']} {row['state']}: {row['reason']}" for row in rows
            if row["state"] not in HEALTHY_STATES]


@azure_task(task_run_name="drift-check-{cluster.name}")
def check_cluster_drift(spec: FleetSpec, cluster: ClusterSpec, credentials_block: str) -> tuple[str | None,
                                                                                             list[DriftRow]]:
    """The commit applied on a cluster and every field (in the cluster or in Azure) that no longer matches it."""
    clients = load_azure_clients(credentials_block)
    kubeconfig = served_kubeconfig(clients, spec, cluster, "drift-check")
    if kubeconfig is None:
        return None, []
    rows: list[DriftRow] = []

    def row(ref: ObjectRef, where: str, field: str, desired: object, actual: object) -> DriftRow:
        return DriftRow(cluster=cluster.name, object=ref.display, kind=ref.kind, where=where, field=field,
                        desired=str(desired)[:120], actual=str(actual)[:120])

    with kubernetes_api_client(kubeconfig) as api, dynamic_client(api) as dynamic:
        inventory = read_inventory(api, cluster.name)
        if inventory.commit is None:
            return None, [DriftRow(cluster=cluster.name, object="-", kind="-", where="cluster", field="-",
                                   desired="an applied commit", actual="apply-resources never ran here")]
        files = read_folder(git_source(spec), inventory.commit, spec.gitops.path if spec.gitops else "gitops")
        objects = render_for(spec, cluster, files, clients.subscription_id, clients.principal.tenant_id)
        expected, failures = apply_objects(dynamic, cluster.name, objects, dry_run=True)
        for line in failures:
            rows.append(DriftRow(cluster=cluster.name, object="-", kind="-", where="cluster", field="dry run",
                                 desired="applies", actual=line))
        for rendered in objects:
            ref = ObjectRef.of(rendered)
            live = read_live(dynamic, ref)
            if live is None:
                rows.append(row(ref, "cluster", "(object)", "exists", "missing"))
                continue
            if rendered.key in expected:
                rows += [row(ref, "cluster", path, want, have)
                         for path, want, have in cluster_differences(expected[rendered.key], live)]
            rows += [row(ref, "azure", path or "(resource)", want, have)
                     for path, want, have in (azure_differences(clients, live) or [])]
    return inventory.commit, rows


@azure_task(task_run_name="remove-git-objects-{cluster.name}")
def remove_cluster_objects(spec: FleetSpec, cluster: ClusterSpec, credentials_block: str) -> list[ObjectRow]:
    """Delete every object apply-resources made on a cluster and wait until ASO has removed their Azure resources.

    A cluster that no longer exists, or that local Azure serves without Kubernetes, has nothing to remove.
    """
    logger = get_run_logger()
    clients = load_azure_clients(credentials_block)
    if read_cluster(clients, spec, cluster) is None:
        return []
    try:
        kubeconfig = served_kubeconfig(clients, spec, cluster, "removing Git-managed objects")
    except AzureOperationError as error:
        if error.status == 404:  # the cluster went between the read and the credentials
            return []
        raise
    if kubeconfig is None:
        return []
    timeout = spec.gitops.health_timeout_seconds if spec.gitops else 900
    with kubernetes_api_client(kubeconfig) as api, dynamic_client(api) as dynamic:
        inventory = read_inventory(api, cluster.name)
        refs = list(inventory.objects)
        failures = delete_objects(dynamic, cluster.name, refs)
        left = _wait_gone(dynamic, refs, timeout)
        if failures or left:
            problems = "\n".join(f"  - {line}" for line in [*failures, *(f"still present: {item}" for item in left)])
            raise ApplyError(f"removing the Git-managed objects of cluster {cluster.name} did not finish within "
                             f"{timeout}s (ASO deletes their Azure resources first):\n{problems}",
                             operation="delete Git-managed objects", resource_id=cluster.name,
                             region=cluster.region, retryable=True)
        write_inventory(api, cluster.name, Inventory(None, ()))
    logger.info("removed %d Git-managed objects from %s", len(refs), cluster.name)
    return [ObjectRow(cluster=cluster.name, object=ref.display, kind=ref.kind, state="Deleted", reason="teardown",
                      commit=(inventory.commit or "")[:12]) for ref in refs]


def applied_objects_health(api: kube_client.ApiClient, cluster: str) -> tuple[str | None, list[str]]:
    """For validate: the commit applied on a cluster and a line per applied object that is not healthy."""
    with dynamic_client(api) as dynamic:
        inventory = read_inventory(api, cluster)
        problems = []
        for ref in inventory.objects:
            health = health_of(ref.api_version, ref.kind, read_live(dynamic, ref))
            if not health.ready:
                problems.append(f"{ref.kind} {ref.display}: {health.state} {health.reason}")
    return inventory.commit, problems
