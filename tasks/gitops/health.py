"""Health of applied objects: ASO resources Ready for their current generation, workloads Available.

An ASO object is healthy when its Ready condition is True for the object's current generation; while it is
not, ASO's own reason and message (WaitingForOwner, AuthorizationFailed, …) are what the operator reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

ASO_GROUP_SUFFIX = ".azure.com"


@dataclass(frozen=True)
class Health:
    """One object's health: ready or not, and why."""

    ready: bool
    state: str
    reason: str


def is_aso(api_version: str) -> bool:
    """Whether an apiVersion belongs to Azure Service Operator (group *.azure.com)."""
    return api_version.rpartition("/")[0].endswith(ASO_GROUP_SUFFIX)


def _condition(live: dict[str, Any], kind: str) -> dict[str, Any] | None:
    for condition in (live.get("status") or {}).get("conditions") or []:
        if condition.get("type") == kind:
            return dict(condition)
    return None


def aso_health(live: dict[str, Any]) -> Health:
    """Ready=True at the current generation; otherwise ASO's reason and message."""
    ready = _condition(live, "Ready")
    generation = (live.get("metadata") or {}).get("generation")
    if ready is None:
        return Health(False, "Pending", "no Ready condition yet (is Azure Service Operator running?)")
    observed = ready.get("observedGeneration")
    if ready.get("status") == "True":
        if generation is not None and observed is not None and observed < generation:
            return Health(False, "Reconciling", f"Ready for generation {observed}, object is at {generation}")
        return Health(True, "Ready", ready.get("reason") or "Succeeded")
    reason = ready.get("reason") or "Unknown"
    message = " ".join(str(ready.get("message") or "").split())[:300]
    severity = ready.get("severity") or ""
    return Health(False, "NotReady", f"{reason}{f' ({severity})' if severity else ''}: {message}".rstrip(": "))


def workload_health(live: dict[str, Any]) -> Health:
    """Deployments/StatefulSets: available at the desired count; DaemonSets: every scheduled pod available."""
    kind = live.get("kind")
    status = live.get("status") or {}
    spec = live.get("spec") or {}
    if kind == "DaemonSet":
        wanted, have = status.get("desiredNumberScheduled", 0), status.get("numberAvailable", 0)
    else:
        wanted = spec.get("replicas", 1)
        have = status.get("availableReplicas", 0) if kind == "Deployment" else status.get("readyReplicas", 0)
        if (status.get("updatedReplicas") or 0) < wanted:
            return Health(False, "Progressing", f"{status.get('updatedReplicas') or 0}/{wanted} updated")
    if have >= wanted:
        return Health(True, "Available", f"{have}/{wanted} available")
    return Health(False, "Progressing", f"{have}/{wanted} available")


def health_of(api_version: str, kind: str, live: dict[str, Any] | None) -> Health:
    """The health of any applied object (None: it does not exist)."""
    if live is None:
        return Health(False, "Missing", "the object does not exist on the cluster")
    if is_aso(api_version):
        return aso_health(live)
    if kind in ("Deployment", "StatefulSet", "DaemonSet"):
        return workload_health(live)
    return Health(True, "Applied", "exists")
