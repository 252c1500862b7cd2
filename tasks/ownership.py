"""What reconcile tasks share: ownership checks on tags, provisioning states, and the record of what a task did."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal, TypedDict

from tasks.retry import OwnershipError
from tasks.spec import MANAGED_TAG, OWNER_TAG, FleetSpec

TERMINAL_STATES = frozenset({"succeeded", "failed", "canceled"})

Action = Literal["unchanged", "created", "updated", "recreated", "deleted", "absent", "kept", "skipped"]


class Outcome(TypedDict):
    """What one reconcile step found and did, returned by every task so flows can summarise a run."""

    resource_id: str
    kind: str
    region: str | None
    action: Action
    detail: str


def outcome(resource_id: str, kind: str, action: Action, detail: str = "", region: str | None = None) -> Outcome:
    """Build an Outcome."""
    return Outcome(resource_id=resource_id, kind=kind, region=region, action=action, detail=detail)


def summary(outcomes: list[Outcome]) -> str:
    """Outcomes counted by kind and action, in first-seen order: "resource group created, 100 AKS cluster
    created" (a hundred clusters make one phrase, not a hundred)."""
    counts: dict[tuple[str, str], int] = {}
    for item in outcomes:
        key = (item["kind"], item["action"])
        counts[key] = counts.get(key, 0) + 1
    return ", ".join(f"{count} {kind} {action}" if count > 1 else f"{kind} {action}"
                     for (kind, action), count in counts.items())


def state_text(provisioning_state: object) -> str | None:
    """A provisioning state as plain text (the SDKs return str enums, whose str() is the member name)."""
    if provisioning_state is None:
        return None
    return str(getattr(provisioning_state, "value", provisioning_state))


def is_terminal(provisioning_state: str | None) -> bool:
    """True when no operation is running on the resource (Succeeded, Failed, Canceled)."""
    return (provisioning_state or "succeeded").lower() in TERMINAL_STATES


def is_failed(provisioning_state: str | None) -> bool:
    """True when the last operation on the resource failed or was canceled, so it needs another PUT."""
    return (provisioning_state or "").lower() in {"failed", "canceled"}


def owner_of(tags: Mapping[str, str] | None) -> str | None:
    """The fleet that owns a resource according to its tags, if any."""
    tags = tags or {}
    if tags.get(MANAGED_TAG) != "true":
        return None
    return tags.get(OWNER_TAG)


def is_owned(tags: Mapping[str, str] | None, spec: FleetSpec) -> bool:
    """Whether the tags mark the resource as created by fleetflow for this fleet."""
    return owner_of(tags) == spec.name


def require_owned(tags: Mapping[str, str] | None, spec: FleetSpec, *, kind: str, resource_id: str,
                  operation: str, region: str | None = None) -> None:
    """Refuse to touch an existing resource that this fleet does not own (another fleet's, or hand-made)."""
    owner = owner_of(tags)
    if owner == spec.name:
        return
    whose = f"fleet {owner!r}" if owner else "no fleetflow fleet (it has no ownership tags)"
    raise OwnershipError(
        f"{operation} {resource_id}: the {kind} already exists and belongs to {whose}; fleetflow only changes "
        f"resources tagged {OWNER_TAG}={spec.name}. Rename it in the spec or remove the existing one.",
        operation=operation, resource_id=resource_id, region=region,
    )


def tags_missing(actual: Mapping[str, str] | None, desired: Mapping[str, str]) -> dict[str, str]:
    """Desired tags that are absent or different on the resource (extra tags on it are left alone)."""
    actual = actual or {}
    return {key: value for key, value in desired.items() if actual.get(key) != value}
