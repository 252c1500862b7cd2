"""validate: the recipe's checks — fleet and members Succeeded, clusters reachable with nodes Ready, versions."""

from __future__ import annotations

from typing import Literal, TypedDict

from kubernetes import client as kube_client
from prefect import flow, get_run_logger, unmapped

from flows.common import gather, raise_if_failed, region_task_runner
from tasks.aks import (
    NO_KUBERNETES_CODE,
    admin_kubeconfig,
    cluster_state,
    cluster_version,
    read_cluster,
    version_matches,
)
from tasks.artifacts import publish_table
from tasks.clients import kubernetes_api_client, load_azure_clients
from tasks.fleet_members import member_state, read_member
from tasks.fleet_source import resolve_fleet_spec
from tasks.fleets import fleet_state, read_fleet
from tasks.gitops.sync import applied_objects_health
from tasks.registry import has_registry_pull
from tasks.retry import AzureOperationError, azure_task
from tasks.service_operator import is_bootstrapped, service_operator_health
from tasks.spec import ClusterSpec, FleetSpec

Result = Literal["passed", "failed", "skipped"]


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


def _nodes_check(cluster: ClusterSpec, kubeconfig: str) -> list[Check]:
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
        _check("API server version", cluster.name, version_matches(cluster.kubernetes_version, server),
               f"{server} (spec {cluster.kubernetes_version})"),
    ]


@azure_task(task_run_name="check-cluster-{cluster.region}")
def check_cluster(spec: FleetSpec, cluster: ClusterSpec, credentials_block: str) -> list[Check]:
    """A region's cluster: Succeeded, the spec's version, a Succeeded member in its group, reachable, nodes Ready."""
    clients = load_azure_clients(credentials_block)
    managed = read_cluster(clients, spec, cluster)
    state, version = cluster_state(managed), cluster_version(managed)
    member = read_member(clients, spec, cluster.member_name, cluster.region)
    group = member.properties.group if member is not None and member.properties else None
    checks = [
        _check("cluster Succeeded", cluster.name, state == "Succeeded", f"provisioning state {state or 'absent'}"),
        _check("kubernetes version", cluster.name, version_matches(cluster.kubernetes_version, version),
               f"{version or '-'} (spec {cluster.kubernetes_version})"),
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
    return [*checks, *_nodes_check(cluster, kubeconfig),
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


@flow(name="validate", task_runner=region_task_runner(), log_prints=False)
def validate(fleet: str = "fleet.yaml", credentials_block: str = "fleetflow-azure") -> list[Check]:
    """Run every check, publish them as a table artifact, and fail naming each failed check.

    Args:
        fleet: The fleet spec: a YAML path such as fleet.yaml, or block:<name> for a saved fleet-spec block.
        credentials_block: Name of the fleetflow Azure Service Principal block to authenticate with.
    """
    logger = get_run_logger()
    spec = resolve_fleet_spec(fleet)
    futures = [check_fleet.submit(spec, credentials_block),
               *check_cluster.map(unmapped(spec), spec.clusters(), unmapped(credentials_block))]
    results, errors = gather("validate", futures)
    checks: list[Check] = [check for group in results for check in group]
    checks += [Check(check="check ran", target=spec.name, result="failed", detail=error) for error in errors]
    counts = {result: sum(1 for c in checks if c["result"] == result) for result in ("passed", "failed", "skipped")}
    publish_table(f"validate-{spec.name}", list(checks),
                  f"Validation of fleet {spec.name}: {counts['passed']} passed, {counts['failed']} failed, "
                  f"{counts['skipped']} skipped")
    for check in checks:
        if check["result"] == "skipped":
            logger.warning("skipped %s on %s: %s", check["check"], check["target"], check["detail"])
    failed = [f"{c['check']} on {c['target']}: {c['detail']}" for c in checks if c["result"] == "failed"]
    if failed:
        raise_if_failed("validate", failed, spec.name)
    logger.info("validate: %d checks passed, %d skipped", counts["passed"], counts["skipped"])
    return checks

