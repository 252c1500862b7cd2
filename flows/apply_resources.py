"""apply-resources: the fleet's desired state from Git at one commit, applied on every cluster through ASO."""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger, unmapped
from prefect.futures import PrefectFuture

from flows.common import StepFailed, fleet_task_runner, gather, raise_if_failed, share_write_budget
from tasks.artifacts import publish_table
from tasks.fleet_source import resolve_fleet_spec
from tasks.gitops.sync import ObjectRow, read_tree, resolve_commit, sync_cluster, unhealthy_rows
from tasks.keyvault import write_key_vault_secrets
from tasks.registry import grant_registry_pull


@flow(name="apply-resources", task_runner=fleet_task_runner(), log_prints=False)
def apply_resources(fleet: str = "fleet.yaml", credentials_block: str = "fleetflow-azure") -> list[ObjectRow]:
    """Apply the commit gitops.ref names on every cluster, prune what left Git, wait until every object is healthy,
    then write the Key Vault secrets from their blocks and grant each cluster pull rights on the registry.

    Args:
        fleet: The fleet spec: a YAML path such as fleet.yaml, or block:<name> for a saved fleet-spec block.
        credentials_block: Name of the fleetflow Azure Service Principal block to authenticate with.
    """
    logger = get_run_logger()
    spec = resolve_fleet_spec(fleet)
    share_write_budget(spec, credentials_block)
    if spec.gitops is None:
        raise StepFailed("apply-resources: the fleet spec has no gitops section; add gitops.repository, ref and path",
                         operation="apply-resources", resource_id=spec.name)
    commit = resolve_commit(spec)
    files = read_tree(spec, commit)
    clusters = spec.clusters()
    logger.info("applying %s at %s (%s) on %d clusters", spec.gitops.repository, commit[:12], spec.gitops.ref,
                len(clusters))
    results, failures = gather("apply-resources", sync_cluster.map(
        unmapped(spec), clusters, unmapped(credentials_block), unmapped(commit), unmapped(files)))
    rows: list[ObjectRow] = [row for cluster_rows in results for row in cluster_rows]
    publish_table(f"apply-resources-{spec.name}", list(rows),
                  f"Fleet {spec.name} at {commit[:12]} ({spec.gitops.ref}): {len(rows)} objects on "
                  f"{len(results)} of {len(clusters)} clusters")
    failures += [f"apply-resources: {line}" for line in unhealthy_rows(rows)]
    raise_if_failed("apply-resources", failures, spec.resource_group_name)

    if any(row["state"] == "Skipped" for row in rows):
        logger.warning("clusters without a Kubernetes API server were skipped: no registry pull rights or Key Vault "
                       "secrets to set")
        return rows
    follow_ups: list[PrefectFuture[Any]] = [grant_registry_pull.submit(spec, cluster, credentials_block)
                                            for cluster in clusters]
    if spec.gitops.key_vault_secrets:
        follow_ups.append(write_key_vault_secrets.submit(spec, credentials_block))
    _, failures = gather("apply-resources", follow_ups)
    raise_if_failed("apply-resources", failures, spec.resource_group_name)
    logger.info("fleet %s is at %s: %d objects healthy", spec.name, commit[:12], len(rows))
    return rows
