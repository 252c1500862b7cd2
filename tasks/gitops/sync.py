"""One cluster brought to a commit: render, apply, prune what left Git, wait until healthy, record the commit."""

from __future__ import annotations

import time
from typing import TypedDict

from kubernetes.dynamic import DynamicClient
from prefect import get_run_logger, task

from blocks.git import GitCredentials
from tasks.aks import admin_kubeconfig
from tasks.clients import kubernetes_api_client, load_azure_clients
from tasks.gitops.apply import (
    ApplyError,
    Inventory,
    ObjectRef,
    apply_objects,
    delete_objects,
    dynamic_client,
    present,
    read_inventory,
    read_live,
    write_inventory,
)
from tasks.gitops.health import Health, health_of
from tasks.gitops.render import RenderedObject, cluster_variables, render_cluster
from tasks.gitops.source import GitSource, read_folder, resolve_ref
from tasks.retry import azure_task
from tasks.spec import ClusterSpec, FleetSpec

POLL_SECONDS = 1.0
HEALTHY_STATES = frozenset({"Ready", "Available", "Applied", "Pruned"})


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


@task(task_run_name="resolve-git-ref", retries=3, retry_delay_seconds=5)
def resolve_commit(spec: FleetSpec) -> str:
    """The commit gitops.ref names now (resolved once per run, so every cluster gets the same one)."""
    assert spec.gitops is not None
    return resolve_ref(git_source(spec), spec.gitops.ref)


@task(task_run_name="read-git-tree-{commit:.12}", retries=3, retry_delay_seconds=5)
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


@azure_task(task_run_name="apply-resources-{cluster.region}")
def sync_cluster(spec: FleetSpec, cluster: ClusterSpec, credentials_block: str, commit: str,
                 files: dict[str, bytes]) -> list[ObjectRow]:
    """Apply the commit's objects to one cluster, prune what left Git, wait for health, record the commit."""
    assert spec.gitops is not None
    logger = get_run_logger()
    clients = load_azure_clients(credentials_block)
    principal = clients.principal
    objects = render_for(spec, cluster, files, clients.subscription_id, principal.tenant_id)
    kubeconfig = admin_kubeconfig(clients, spec, cluster)
    timeout = spec.gitops.health_timeout_seconds
    short = commit[:12]
    with kubernetes_api_client(kubeconfig) as api, dynamic_client(api) as dynamic:
        previous = read_inventory(api, cluster.name)
        applied, failures = apply_objects(dynamic, cluster.name, objects)
        wanted = [ObjectRef.of(item) for item in objects]
        if failures:
            # Keep tracking everything (old and new) and prune nothing: a re-run after the fix finishes the job.
            kept = {ref.key: ref for ref in (*previous.objects, *(r for r in wanted if r.key in applied))}
            write_inventory(api, cluster.name, Inventory(previous.commit, tuple(kept.values())))
            listing = "\n".join(f"  - {line}" for line in failures)
            raise ApplyError(f"apply-resources on cluster {cluster.name} at {short}: {len(failures)} object(s) "
                             f"failed, the others were applied; nothing was pruned:\n{listing}",
                             operation="server-side apply", resource_id=cluster.name, region=cluster.region)
        wanted_keys = {ref.key for ref in wanted}
        stale = [ref for ref in previous.objects if ref.key not in wanted_keys]
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
