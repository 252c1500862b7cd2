"""ARM's subscription throttling as a knob: a write and a read budget per window, answered 429 with Retry-After
beyond it, with the x-ms-ratelimit-remaining-subscription-writes/reads headers Azure sends."""

from __future__ import annotations

from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError

pytestmark = pytest.mark.emulator


def _hooked(headers: list[dict[str, str]], statuses: list[int]) -> Any:
    def hook(response: Any) -> None:
        headers.append({k.lower(): v for k, v in response.http_response.headers.items()})
        statuses.append(response.http_response.status_code)
    return hook


def test_writes_beyond_the_budget_are_throttled_with_retry_after_and_remaining_headers(local_azure, knobs_restored,
                                                                                        fresh_name):
    # Three writes and four reads per 3600 Azure seconds (3.6 s wall at the session's time scale 0.001).
    knobs_restored.set_knobs(write_budget=3, read_budget=4, budget_window=3600)
    strict = local_azure.clients(retry_total=0)
    headers: list[dict[str, str]] = []
    statuses: list[int] = []
    for index in range(3):
        strict.resource.resource_groups.create_or_update(f"{fresh_name}{index}", {"location": "eastus"},
                                                         raw_response_hook=_hooked(headers, statuses))
    assert [h["x-ms-ratelimit-remaining-subscription-writes"] for h in headers] == ["2", "1", "0"]
    with pytest.raises(HttpResponseError) as refused:
        strict.resource.resource_groups.create_or_update(f"{fresh_name}x", {"location": "eastus"})
    assert refused.value.status_code == 429
    assert refused.value.error is not None and refused.value.error.code == "SubscriptionRequestsThrottled"
    answer: Any = refused.value.response.headers  # type: ignore[union-attr]
    assert answer["x-ms-ratelimit-remaining-subscription-writes"] == "0"
    assert "retry-after-ms" in answer or "Retry-After" in answer
    # Reads have their own budget.
    headers.clear()
    strict.resource.resource_groups.get(f"{fresh_name}0", raw_response_hook=_hooked(headers, statuses))
    assert headers[-1]["x-ms-ratelimit-remaining-subscription-reads"] == "3"
    assert "x-ms-ratelimit-remaining-subscription-writes" not in headers[-1]


def test_the_sdk_waits_out_the_throttling_and_every_write_succeeds(local_azure, knobs_restored, fresh_name):
    knobs_restored.set_knobs(write_budget=2, budget_window=1000)  # 2 writes per second of wall time
    patient = local_azure.clients()
    headers: list[dict[str, str]] = []
    statuses: list[int] = []
    for index in range(6):
        group = patient.resource.resource_groups.create_or_update(f"{fresh_name}{index}", {"location": "eastus"},
                                                                  raw_response_hook=_hooked(headers, statuses))
        assert group.name == f"{fresh_name}{index}"
    assert 429 in statuses and statuses[-1] == 201


def test_without_a_budget_no_remaining_headers_are_sent(local_azure, azure_clients, fresh_name):
    headers: list[dict[str, str]] = []
    azure_clients.resource.resource_groups.create_or_update(fresh_name, {"location": "eastus"},
                                                            raw_response_hook=_hooked(headers, []))
    assert "x-ms-ratelimit-remaining-subscription-writes" not in headers[-1]
