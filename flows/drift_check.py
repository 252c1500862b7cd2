"""drift-check: compare every cluster and its Azure resources with the commit apply-resources applied."""

from __future__ import annotations

from prefect import flow, get_run_logger, unmapped

from flows.common import StepFailed, fleet_task_runner, gather, raise_if_failed, share_write_budget
from tasks.artifacts import publish_markdown
from tasks.fleet_source import resolve_fleet_spec
from tasks.gitops.drift import DriftRow
from tasks.gitops.sync import check_cluster_drift, read_tree, sync_cluster


class DriftFound(StepFailed):
    """Clusters or Azure resources differ from the applied commit."""


def drift_report(fleet: str, commits: dict[str, str | None], rows: list[DriftRow]) -> str:
    """The markdown report: the commit of each cluster, then one line per drifted field."""
    lines = [f"# Drift of fleet {fleet}", "", "| cluster | applied commit |", "|---|---|"]
    lines += [f"| {cluster} | {(commit or 'none')[:12]} |" for cluster, commit in commits.items()]
    lines += ["", f"**{len(rows)} drifted field(s)**" if rows else "**No drift**: every object matches its commit.",
              ""]
    if rows:
        lines += ["| cluster | object | kind | where | field | desired | actual |", "|---|---|---|---|---|---|---|"]
        lines += [f"| {r['cluster']} | {r['object']} | {r['kind']} | {r['where']} | `{r['field']}` | "
                  f"{r['desired']} | {r['actual']} |" for r in rows]
    return "\n".join(lines)


@flow(name="drift-check", task_runner=fleet_task_runner(), log_prints=False)
def drift_check(fleet: str = "fleet.yaml", credentials_block: str = "fleetflow-azure",
                correct: bool = False) -> list[DriftRow]:
    """Report every field that drifted from the applied commit (in the clusters and in Azure); with `correct`,
    re-apply that commit where the clusters drifted. Fails when drift remains, so automations can notify.

    Args:
        fleet: The fleet spec: a YAML path such as fleet.yaml, or block:<name> for a saved fleet-spec block.
        credentials_block: Name of the fleetflow Azure Service Principal block to authenticate with.
        correct: Re-apply the applied commit on clusters that drifted (Azure-side drift is put back by ASO).
    """
    logger = get_run_logger()
    spec = resolve_fleet_spec(fleet)
    share_write_budget(spec, credentials_block)
    clusters = spec.clusters()
    results, failures = gather("drift-check", check_cluster_drift.map(unmapped(spec), clusters,
                                                                      unmapped(credentials_block)))
    raise_if_failed("drift-check", failures, spec.name)
    commits = {cluster.name: commit for cluster, (commit, _) in zip(clusters, results, strict=True)}
    rows = [row for _, cluster_rows in results for row in cluster_rows]
    if correct and rows:
        drifted = {row["cluster"] for row in rows if row["where"] == "cluster"}
        for cluster in clusters:
            commit = commits[cluster.name]
            if cluster.name in drifted and commit:
                sync_cluster(spec, cluster, credentials_block, commit, read_tree(spec, commit))
                logger.info("re-applied %s on %s", commit[:12], cluster.name)
        rows = [row for row in rows if row["cluster"] not in drifted or row["where"] != "cluster"]
    publish_markdown(f"drift-{spec.name}", drift_report(spec.name, commits, rows),
                     f"Drift of fleet {spec.name}: {len(rows)} field(s)")
    if rows:
        listing = "\n".join(f"  - {r['cluster']}: {r['kind']} {r['object']} ({r['where']}) {r['field']}: "
                            f"{r['desired']} != {r['actual']}" for r in rows[:50])
        raise DriftFound(f"drift-check: {len(rows)} field(s) drifted from the applied commit:\n{listing}",
                         operation="drift-check", resource_id=spec.name)
    logger.info("drift-check: no drift on %d clusters", len(clusters))
    return rows
