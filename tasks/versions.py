"""Kubernetes versions checked against what AKS offers in each region, before anything is created.

The spec's syntax check (tasks/spec.py) accepts any MAJOR.MINOR[.PATCH]; whether AKS runs that version in
a region is only known to Azure: `GET .../locations/{region}/kubernetesVersions` lists the minors and
patches a region offers (end-of-support versions are no longer listed). provision's preflight asks for
every region of the spec and refuses the whole run, before the resource group exists, when one is not
offered; `fleetflow spec validate` does the same when it can reach Azure.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from prefect import get_run_logger

from tasks.clients import load_azure_clients
from tasks.retry import FleetflowError, azure_call, azure_task, classify
from tasks.spec import FleetSpec, FleetSpecError, SpecProblem, parse_kubernetes_version


def offered_versions(containerservice: Any, location: str) -> list[str]:
    """Every patch version AKS offers in a location, ascending (e.g. ['1.35.6', '1.36.3', '1.37.2'])."""
    result = containerservice.managed_clusters.list_kubernetes_versions(location)
    versions: set[str] = set()
    minors = getattr(result, "values_property", None)  # the SDK's name for the wire field "values"
    if minors is None and isinstance(result, dict):
        minors = result.get("values")
    for minor in minors or []:
        patches = getattr(minor, "patch_versions", None) or {}
        versions.update(patches)
        if not patches and getattr(minor, "version", None):
            versions.add(str(minor.version))
    return sorted(versions, key=_sort_key)


def _sort_key(version: str) -> tuple[int, int, int]:
    try:
        major, minor, patch = parse_kubernetes_version(version)
    except ValueError:
        return (0, 0, 0)
    return major, minor, patch or 0


def is_offered(wanted: str, offered: list[str]) -> bool:
    """Whether a spec version is offered: "1.36" by any 1.36.x, "1.36.3" only by itself."""
    want_major, want_minor, want_patch = parse_kubernetes_version(wanted)
    for version in offered:
        try:
            major, minor, patch = parse_kubernetes_version(version)
        except ValueError:
            continue
        if (major, minor) == (want_major, want_minor) and (want_patch is None or patch == want_patch):
            return True
    return False


def describe_offer(offered: list[str]) -> str:
    """'1.35 (1.35.6), 1.36 (1.36.3), 1.37 (1.37.2)': minors with their patches."""
    minors: dict[str, list[str]] = {}
    for version in offered:
        minors.setdefault(".".join(version.split(".")[:2]), []).append(version)
    return ", ".join(f"{minor} ({', '.join(patches)})" for minor, patches in minors.items()) or "no versions"


def version_problems(spec: FleetSpec, offered: Mapping[str, list[str]]) -> list[SpecProblem]:
    """A problem for every region whose Kubernetes version its location does not offer (regions missing from
    `offered` were not checked)."""
    problems = []
    for (where, region, entry), cluster in zip(spec.cluster_entries(), spec.clusters(), strict=True):
        versions = offered.get(cluster.region)
        if versions is None or is_offered(cluster.kubernetes_version, versions):
            continue
        region_path = where.split(".", 1)[0]
        path = (f"{where}.kubernetes_version" if entry is not None and entry.kubernetes_version
                else f"{region_path}.kubernetes_version" if region.kubernetes_version
                else "cluster_defaults.kubernetes_version")
        newest = ".".join(versions[-1].split(".")[:2]) if versions else None
        problems.append(SpecProblem(
            path, f"Kubernetes {cluster.kubernetes_version} is not offered in {cluster.region} "
            f"({where}); AKS offers {describe_offer(versions)}",
            f"use an offered version, e.g. \"{newest}\"" if newest else "pick another region"))
    return problems


def locations_path(subscription_id: str, location: str) -> str:
    """The resource path of a location's version list (named in errors)."""
    return f"/subscriptions/{subscription_id}/providers/Microsoft.ContainerService/locations/{location}"


# ---- `fleetflow spec validate`: the same check when Azure can be reached ------------------------------


AZURE_ENVIRONMENT = ("AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET", "AZURE_SUBSCRIPTION_ID")


def principal_from_environment() -> dict[str, str] | None:
    """Credentials for the check from the AZURE_* environment (as `fleetflow local env` sets it), if complete."""
    env = os.environ
    if not all(env.get(name) for name in AZURE_ENVIRONMENT):
        return None
    values = {name: env[name] for name in AZURE_ENVIRONMENT}
    values["AZURE_AUTHORITY_HOST"] = env.get("AZURE_AUTHORITY_HOST", "")
    values["AZURE_RESOURCE_MANAGER_ENDPOINT"] = env.get("AZURE_RESOURCE_MANAGER_ENDPOINT", "")
    values["CA_BUNDLE"] = env.get("FLEETFLOW_CA_BUNDLE") or env.get("REQUESTS_CA_BUNDLE") or ""
    return values


def check_against_azure(spec: FleetSpec, source: str, found: tuple[dict[str, str], str] | None) -> str:
    """Check the spec's versions against Azure when it can be reached; returns a line saying what was checked.

    `found` is (credentials as AZURE_* names plus CA_BUNDLE, where they come from), or None when there are none.
    Raises FleetSpecError for versions a region does not offer. Azure that cannot be reached (or refuses the
    credentials) is a note, not a spec problem: provision's preflight checks again before creating anything.
    """
    if found is None:
        return ("note: Kubernetes versions not checked against Azure (no AZURE_* credentials and no local Azure "
                "running); provision checks them before creating anything")
    values, origin = found
    from azure.identity import ClientSecretCredential
    from azure.mgmt.containerservice import ContainerServiceClient

    authority = values["AZURE_AUTHORITY_HOST"] or None
    transport: dict[str, Any] = {"connection_timeout": 10, "read_timeout": 30}
    if values["CA_BUNDLE"]:
        transport["connection_verify"] = values["CA_BUNDLE"]
    endpoint = (values["AZURE_RESOURCE_MANAGER_ENDPOINT"] or "https://management.azure.com").rstrip("/")
    credential_options: dict[str, Any] = dict(transport)
    if authority:
        credential_options.update(authority=authority, disable_instance_discovery=True)
    credential = ClientSecretCredential(values["AZURE_TENANT_ID"], values["AZURE_CLIENT_ID"],
                                        values["AZURE_CLIENT_SECRET"], **credential_options)
    client = ContainerServiceClient(credential, values["AZURE_SUBSCRIPTION_ID"], base_url=endpoint,
                                    credential_scopes=[f"{endpoint}/.default"], retry_total=1, **transport)
    offered: dict[str, list[str]] = {}
    try:
        for region in sorted({cluster.region for cluster in spec.clusters()}):
            offered[region] = offered_versions(client, region)
    except Exception as error:  # any failure to ask is a note: the spec itself may be fine
        verdict = classify(error)
        return (f"note: Kubernetes versions not checked against Azure ({origin}, {endpoint}): {verdict.reason}; "
                "provision checks them before creating anything")
    finally:
        client.close()
        credential.close()
    problems = version_problems(spec, offered)
    if problems:
        raise FleetSpecError(source, problems)
    return f"Kubernetes versions offered in {', '.join(offered)} ({origin}, {endpoint})"


# ---- provision's preflight ------------------------------------------------------------------------------


@azure_task(task_run_name="check-kubernetes-versions")
def check_kubernetes_versions(spec: FleetSpec, credentials_block: str) -> dict[str, list[str]]:
    """Every region's Kubernetes version must be one AKS offers there; fails (not retried) before anything is
    created otherwise, listing what each region offers."""
    logger = get_run_logger()
    clients = load_azure_clients(credentials_block)
    offered: dict[str, list[str]] = {}
    for region in sorted({cluster.region for cluster in spec.clusters()}):
        with azure_call("list Kubernetes versions", locations_path(clients.subscription_id, region), region):
            offered[region] = offered_versions(clients.containerservice, region)
    problems = version_problems(spec, offered)
    if problems:
        listing = "; ".join(str(problem) for problem in problems)
        raise FleetflowError(f"preflight: nothing was created: {listing}", operation="preflight",
                             resource_id=locations_path(clients.subscription_id, spec.location))
    for region, versions in offered.items():
        logger.info("Kubernetes versions offered in %s: %s", region, describe_offer(versions))
    return offered
