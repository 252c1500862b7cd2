"""Ownership marks and provisioning states: what lets a task change or delete a resource, and when it waits."""

from __future__ import annotations

from enum import Enum

import pytest

from tasks.ownership import (
    is_failed,
    is_owned,
    is_terminal,
    outcome,
    owner_of,
    require_owned,
    state_text,
    summary,
    tags_missing,
)
from tasks.retry import OwnershipError
from tasks.spec import load_spec
from tests.paths import REPO

SPEC = load_spec(REPO / "fleet.yaml")
RESOURCE = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/aks-1"
OURS = {"fleetflow-managed": "true", "fleetflow-fleet": SPEC.name}


class SdkState(str, Enum):  # noqa: UP042 - shaped as the Azure SDK's enums, whose str() is not the value
    """An SDK provisioning state enum: str() gives the member name, .value the text."""

    SUCCEEDED = "Succeeded"


def test_owner_needs_the_managed_mark_and_names_the_fleet():
    assert owner_of(OURS) == SPEC.name
    assert owner_of({**OURS, "fleetflow-managed": "false"}) is None
    assert owner_of({**OURS, "fleetflow-managed": "True"}) is None  # the exact mark fleetflow writes, nothing else
    assert owner_of({"fleetflow-fleet": SPEC.name}) is None
    assert owner_of({"fleetflow-managed": "true"}) is None
    assert owner_of(None) is None and owner_of({}) is None


def test_only_this_fleets_tags_own_a_resource():
    assert is_owned(OURS, SPEC)
    assert not is_owned({**OURS, "fleetflow-fleet": SPEC.name + "-2"}, SPEC)
    assert not is_owned({**OURS, "fleetflow-fleet": SPEC.name[:-1]}, SPEC)
    assert not is_owned({"team": "someone-else"}, SPEC)
    assert not is_owned(None, SPEC)


def test_require_owned_passes_for_this_fleet_and_names_the_owner_otherwise():
    require_owned(OURS, SPEC, kind="AKS cluster", resource_id=RESOURCE, operation="reconcile AKS cluster")

    with pytest.raises(OwnershipError) as other:
        require_owned({**OURS, "fleetflow-fleet": "another-fleet"}, SPEC, kind="AKS cluster", resource_id=RESOURCE,
                      operation="reconcile AKS cluster", region="westus2")
    error = other.value
    assert (error.operation, error.resource_id, error.region, error.retryable) == (
        "reconcile AKS cluster", RESOURCE, "westus2", False)
    assert str(error) == (
        f"reconcile AKS cluster {RESOURCE}: the AKS cluster already exists and belongs to fleet 'another-fleet'; "
        f"fleetflow only changes resources tagged fleetflow-fleet={SPEC.name}. Rename it in the spec or remove "
        "the existing one.")

    with pytest.raises(OwnershipError) as hand_made:
        require_owned({"team": "x"}, SPEC, kind="fleet", resource_id=RESOURCE, operation="reconcile fleet")
    assert "belongs to no fleetflow fleet (it has no ownership tags)" in str(hand_made.value)
    assert hand_made.value.region is None


@pytest.mark.parametrize(("state", "terminal", "failed"), [
    ("Succeeded", True, False), ("succeeded", True, False), ("Failed", True, True), ("FAILED", True, True),
    ("Canceled", True, True), ("canceled", True, True), ("Creating", False, False), ("Updating", False, False),
    ("Deleting", False, False), ("Upgrading", False, False), (None, True, False),
])
def test_terminal_and_failed_states(state, terminal, failed):
    # No state at all means no operation runs (terminal) and none failed.
    assert is_terminal(state) is terminal
    assert is_failed(state) is failed


def test_state_text_reads_sdk_enums_by_value():
    assert state_text(SdkState.SUCCEEDED) == "Succeeded"
    assert state_text("Creating") == "Creating"
    assert state_text(None) is None


def test_tags_missing_lists_absent_and_different_tags_and_ignores_extras():
    desired = {"a": "1", "b": "2"}
    assert tags_missing({"a": "1", "b": "2", "extra": "kept"}, desired) == {}
    assert tags_missing({"a": "1", "b": "3"}, desired) == {"b": "2"}
    assert tags_missing(None, desired) == desired
    assert tags_missing({}, {}) == {}


def test_outcome_records_every_field():
    assert outcome(RESOURCE, "AKS cluster", "kept", "not owned", "eastus") == {
        "resource_id": RESOURCE, "kind": "AKS cluster", "region": "eastus", "action": "kept", "detail": "not owned"}
    assert outcome(RESOURCE, "fleet", "absent") == {
        "resource_id": RESOURCE, "kind": "fleet", "region": None, "action": "absent", "detail": ""}


def test_a_summary_counts_outcomes_of_one_kind_and_action_in_first_seen_order():
    outcomes = [outcome("/g", "resource group", "created"), outcome("/f", "fleet", "unchanged"),
                *[outcome(f"/c{i}", "AKS cluster", "created") for i in range(100)],
                outcome("/r", "role assignment", "created"), outcome("/c", "AKS cluster", "updated")]
    assert summary(outcomes) == ("resource group created, fleet unchanged, 100 AKS cluster created, "
                                 "role assignment created, AKS cluster updated")
    assert summary([]) == ""
