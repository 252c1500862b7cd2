"""validate's checks: the fleet and members Succeeded, clusters reachable with nodes Ready, versions as the
spec says, Azure Service Operator and the Git-managed objects healthy, registry pull rights."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, TypedDict

from kubernetes import client as kube_client

from tasks.aks import (
    NO_KUBERNETES_CODE,
    admin_kubeconfig,
    cluster_state,
    cluster_version,
    read_cluster,
    runs_newer,
    version_matches,
)
from tasks.clients import AzureClients, kubernetes_api_client, load_azure_clients
from tasks.fleet_members import member_state, read_member
from tasks.fleets import fleet_state, read_fleet
from tasks.gitops.sync import applied_objects_health
from tasks.registry import has_registry_pull
from tasks.retry import AzureOperationError, azure_task
from tasks.service_operator import is_bootstrapped, service_operator_health
from tasks.spec import ClusterSpec, FleetSpec
from tasks.update_runs import list_runs

# "notice": not a failure, but something to act on (a cluster an update run moved ahead of the spec).
Result = Literal["passed", "failed", "skipped", "notice"]


class Check(TypedDict):
    """One validation check and its result."""

    check: str
    target: str
    result: Result
    detail: str


def _check(name: str, target: str, passed: bool, detail: str) -> Check:
    return Check(check=name, target=target, result="passed" if passed else "failed", detail=detail)


@azure_task(task_run_name="check-fleet")
def check_fleet(spec: FleetSpec, credentials_block: str) -> list[Check]:
    """The fleet exists and is Succeeded."""
    state = fleet_state(read_fleet(load_azure_clients(credentials_block), spec))
    return [_check("fleet Succeeded", spec.name, state == "Succeeded", f"provisioning state {state or 'absent'}")]


def _run_that_moved(clients: AzureClients, spec: FleetSpec, cluster: ClusterSpec, version: str) -> str | None:
    """The newest update run that took this cluster's member to (the minor of) `version`, if one did."""
    try:
        runs = list_runs(clients, spec.resource_group_name, spec.name)
    except Exception:  # naming the run is a courtesy; the version check itself stands without it
        return None
    found: list[tuple[str, str]] = []
    for run in runs:
        props = run.properties
        upgrade = props.managed_cluster_update.upgrade if props and props.managed_cluster_update else None
        target = upgrade.kubernetes_version if upgrade else None
        if props is None or not target or not version_matches(target, version):
            continue
        for stage in (props.status.stages if props.status else None) or []:
            for group in stage.groups or []:
                for member in group.members or []:
                    status = member.status
                    state = status.state if status else None
                    if (status is not None and member.name == cluster.member_name
                            and str(getattr(state, "value", state)) == "Completed"):
                        found.append((str(status.completed_time or ""), str(run.name)))
    return max(found)[1] if found else None


def version_check(name: str, cluster: ClusterSpec, actual: str | None,
                  moved_by: Callable[[], str | None]) -> Check:
    """The spec's version check, as provision applies it: the spec's version passes; a newer one (an update run
    moved the cluster on, and provision never downgrades) is a notice naming the run; an older one fails."""
    wanted = cluster.kubernetes_version
    if version_matches(wanted, actual):
        return _check(name, cluster.name, True, f"{actual} (spec {wanted})")
    if actual and runs_newer(wanted, actual):
        run = moved_by()
        who = f"update run {run} moved it" if run else "an update run (or a change outside fleetflow) moved it"
        minor = ".".join(actual.lstrip("v").split(".")[:2])
        return Check(check=name, target=cluster.name, result="notice",
                     detail=f"{actual}, ahead of the spec's {wanted}: {who}; provision never downgrades - set "
                     f"kubernetes_version: \"{minor}\" in the spec to match")
    return _check(name, cluster.name, False, f"{actual or '-'} (spec {wanted}): behind the spec; provision or "
                  "staged-upgrade brings it to the spec's version")


def _nodes_check(cluster: ClusterSpec, kubeconfig: str, moved_by: Callable[[], str | None]) -> list[Check]:
    try:
        with kubernetes_api_client(kubeconfig) as api:
            nodes = kube_client.CoreV1Api(api).list_node(_request_timeout=30).items
            server = kube_client.VersionApi(api).get_code(_request_timeout=30).git_version
    except Exception as error:  # any failure to talk to the API server means "not reachable"
        return [_check("reachable", cluster.name, False, f"{type(error).__name__}: {error}")]
    not_ready = [node.metadata.name if node.metadata else "?" for node in nodes
                 if not any(c.type == "Ready" and c.status == "True"
                            for c in ((node.status.conditions if node.status else None) or []))]
    return [
        _check("reachable", cluster.name, True, f"API server {server}"),
        _check("nodes Ready", cluster.name, bool(nodes) and not not_ready,
               f"{len(nodes) - len(not_ready)}/{len(nodes)} Ready"
               + (f"; not Ready: {not_ready}" if not_ready else "")),
        version_check("API server version", cluster, server, moved_by),
    ]


@azure_task(task_run_name="check-cluster-{cluster.name}")
def check_cluster(spec: FleetSpec, cluster: ClusterSpec, credentials_block: str) -> list[Check]:
    """A region's cluster: Succeeded, the spec's version, a Succeeded member in its group, reachable, nodes Ready."""
    clients = load_azure_clients(credentials_block)
    managed = read_cluster(clients, spec, cluster)
    state, version = cluster_state(managed), cluster_version(managed)
    member = read_member(clients, spec, cluster.member_name, cluster.region)
    group = member.properties.group if member is not None and member.properties else None
    moved: list[str | None] = []

    def moved_by() -> str | None:  # looked up once, only for a cluster ahead of the spec
        if not moved:
            moved.append(_run_that_moved(clients, spec, cluster, version or ""))
        return moved[0]

    checks = [
        _check("cluster Succeeded", cluster.name, state == "Succeeded", f"provisioning state {state or 'absent'}"),
        version_check("kubernetes version", cluster, version, moved_by),
        _check("member Succeeded", cluster.member_name, member_state(member) == "Succeeded",
               f"provisioning state {member_state(member) or 'not a member'}"),
        _check("member update group", cluster.member_name, group == cluster.update_group,
               f"{group or '-'} (spec {cluster.update_group})"),
    ]
    if managed is None:
        return [*checks, _check("reachable", cluster.name, False, "the cluster does not exist")]
    try:
        kubeconfig = admin_kubeconfig(clients, spec, cluster)
    except AzureOperationError as error:
        if error.code == NO_KUBERNETES_CODE:
            return [*checks, Check(check="reachable", target=cluster.name, result="skipped",
                                   detail=error.azure_message)]
        if error.retryable:
            raise
        return [*checks, _check("reachable", cluster.name, False, str(error))]
    return [*checks, *_nodes_check(cluster, kubeconfig, moved_by),
            *_platform_checks(spec, cluster, kubeconfig, credentials_block)]


def _platform_checks(spec: FleetSpec, cluster: ClusterSpec, kubeconfig: str, credentials_block: str) -> list[Check]:
    """Azure Service Operator (once bootstrap-aso ran), the Git-managed objects and registry pull rights."""
    checks: list[Check] = []
    try:
        with kubernetes_api_client(kubeconfig) as api:
            if not is_bootstrapped(api, spec):
                return [Check(check="Azure Service Operator", target=cluster.name, result="skipped",
                              detail="not bootstrapped yet (run bootstrap-aso)")]
            for name, pending in service_operator_health(api, spec, cluster).items():
                checks.append(_check(name, cluster.name, not pending, pending or "all"))
            if spec.gitops is not None:
                commit, problems = applied_objects_health(api, cluster.name)
                checks.append(_check("Git objects healthy", cluster.name, commit is not None and not problems,
                                     f"commit {commit[:12]}" if commit and not problems
                                     else "; ".join(problems) or "apply-resources never ran here"))
    except Exception as error:  # an unreachable API server was already reported by _nodes_check
        return [_check("Azure Service Operator", cluster.name, False, f"{type(error).__name__}: {error}")]
    if spec.gitops is not None:
        clients = load_azure_clients(credentials_block)
        granted = has_registry_pull(clients, spec, cluster)
        checks.append(_check("registry pull (AcrPull)", cluster.name, granted,
                             f"kubelet identity {'has' if granted else 'lacks'} AcrPull on {spec.registry_name}"))
    return checks
