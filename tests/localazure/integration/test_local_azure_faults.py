"""Fault knobs: throttling and server errors are retried by the SDK's own retry policy."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.emulator

# The SDK's default allows 3 status retries; more keeps these probabilistic faults from failing a test.
PATIENT = {"retry_status": 12, "retry_backoff_factor": 0.01}


def _get_until_fault_seen(clients, group, fault_status):
    """GET the group until at least one attempt met the fault; returns all statuses and call results."""
    statuses: list[int] = []
    results = []
    for _ in range(40):
        results.append(clients.resource.resource_groups.get(
            group, raw_response_hook=lambda r: statuses.append(r.http_response.status_code)))
        if fault_status in statuses:
            break
    return statuses, results


def test_throttled_requests_are_retried_after_retry_after_and_succeed(local_azure, azure_clients, knobs_restored,
                                                                      fresh_name):
    azure_clients.resource.resource_groups.create_or_update(fresh_name, {"location": "eastus"})
    knobs_restored.set_knobs(throttle_rate=0.5, retry_after=0.05)
    statuses, results = _get_until_fault_seen(local_azure.clients(**PATIENT), fresh_name, 429)
    assert 429 in statuses
    assert all(group.name == fresh_name for group in results)
    assert statuses[-1] == 200


def test_server_errors_are_retried_and_the_call_succeeds(local_azure, azure_clients, knobs_restored, fresh_name):
    azure_clients.resource.resource_groups.create_or_update(fresh_name, {"location": "eastus"})
    knobs_restored.set_knobs(error_rate=0.5)
    statuses, results = _get_until_fault_seen(local_azure.clients(**PATIENT), fresh_name, 500)
    assert 500 in statuses
    assert all(group.name == fresh_name for group in results)
    assert statuses[-1] == 200


def test_knobs_change_at_run_time_and_read_back(knobs_restored):
    changed = knobs_restored.set_knobs(latency="aks.create=12", time_scale=0.5, fail=["aks.delete:*-prod-*"])
    assert changed["latency"]["aks.create"] == 12
    assert changed["time_scale"] == 0.5
    assert changed["fail"] == ["aks.delete:*-prod-*"]
    assert knobs_restored.knobs() == changed
