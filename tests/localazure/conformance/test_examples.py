"""Azure's published REST examples (`x-ms-examples` of azure-rest-api-specs), replayed against local Azure.

Each file under examples/<area>/ is one example as Azure publishes it, plus what replaying it needs:
`_source` (repository, path, commit it was taken from), `_request` (method and path template of its operation
in the spec, and which parameter is the body), `_setup` (requests creating what the example presupposes; their
bodies may use `{parameter}` placeholders and `{tenantId}`), `_unique` (parameters naming globally unique resources,
given the run's random suffix as the resource group is given a random name), `_body` (property paths of the request
body replaced before sending, e.g. a tenant id set to local Azure's tenant) and `_departures` (property paths local
Azure leaves out on purpose, each with its reason). The replay checks the
status code is one the example lists and that every property path of the example's response body for that
status is present in local Azure's answer (values may differ; list items are compared as the union of their
paths).
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from azure.core.rest import HttpRequest

pytestmark = pytest.mark.emulator

EXAMPLES = sorted((Path(__file__).parent / "examples").glob("*/*.json"))


def property_paths(value: Any, prefix: str = "") -> set[str]:
    """Every property path of a JSON value: `a.b`, `a[].c` (list items pooled)."""
    paths: set[str] = set()
    if isinstance(value, dict):
        for key, item in value.items():
            path = f"{prefix}.{key}" if prefix else key
            paths.add(path)
            paths |= property_paths(item, path)
    elif isinstance(value, list):
        for item in value:
            paths |= property_paths(item, f"{prefix}[]")
    return paths


def test_property_paths_pool_list_items_and_nest():
    assert property_paths({"a": {"b": 1}, "c": [{"d": 1}, {"e": 2}]}) == {"a", "a.b", "c", "c[].d", "c[].e"}


def _fill(template: str, values: dict[str, str]) -> str:
    for name, value in values.items():
        template = template.replace("{" + name + "}", value)
    return template


def _adapt(value: Any, path: list[str], replacement: Any) -> Any:
    """Set `path` (`a.b`, `a[].c` for every item of list `a`) in a copy of `value` to `replacement`."""
    if not path:
        return replacement
    head, rest = path[0], path[1:]
    if head.endswith("[]"):
        key = head[:-2]
        if not isinstance(value, dict) or not isinstance(value.get(key), list):
            return value
        return {**value, key: [_adapt(item, rest, replacement) for item in value[key]]}
    if not isinstance(value, dict) or head not in value:
        return value
    return {**value, head: _adapt(value[head], rest, replacement)}


def test_adapt_sets_nested_and_pooled_list_paths():
    body = {"p": {"t": "x", "l": [{"t": "x"}, {"t": "y", "o": 1}]}}
    assert _adapt(_adapt(body, ["p", "t"], "T"), ["p", "l[]", "t"], "T") == \
        {"p": {"t": "T", "l": [{"t": "T"}, {"t": "T", "o": 1}]}}
    assert body["p"]["t"] == "x"


def _send(client: Any, method: str, path: str, version: str, body: Any = None) -> Any:
    request = HttpRequest(method, f"{path}?api-version={version}", json=body)
    response = client.send_request(request)
    _wait_for_operation(client, response)
    return response


def _wait_for_operation(client: Any, response: Any) -> None:
    url = response.headers.get("Azure-AsyncOperation")
    deadline = time.monotonic() + 60
    while url and time.monotonic() < deadline:
        status = client.send_request(HttpRequest("GET", url)).json().get("status")
        if status in ("Succeeded", "Failed", "Canceled"):
            return
        time.sleep(0.05)


@pytest.mark.parametrize("example_file", EXAMPLES, ids=[f"{p.parent.name}/{p.stem}" for p in EXAMPLES])
def test_published_example_replays_against_local_azure(example_file, local_azure, azure_clients):
    example = json.loads(example_file.read_text())
    assert {"repository", "path", "commit"} <= set(example["_source"]), "every example records where it came from"
    client = azure_clients.resource
    parameters = example["parameters"]
    values = {name: str(value) for name, value in parameters.items() if isinstance(value, str)}
    values["subscriptionId"] = local_azure.endpoint.subscription_id
    values["tenantId"] = local_azure.endpoint.tenant_id
    suffix = uuid.uuid4().hex[:8]
    if "resourceGroupName" in values:
        values["resourceGroupName"] = f"conf-{suffix}"
    for name in example.get("_unique", []):
        values[name] += suffix
    for step in example.get("_setup", []):
        setup_body = json.loads(_fill(json.dumps(step["body"]), values)) if "body" in step else None
        done = _send(client, step["method"], _fill(step["path"], values), step["api-version"], setup_body)
        assert done.status_code < 300, f"setup {step['method']} {step['path']}: {done.text()}"
    request = example["_request"]
    body = parameters.get(request["body"]) if "body" in request else None
    for path, replacement in example.get("_body", {}).items():
        body = _adapt(body, path.split("."), _fill(replacement, values))
    answer = _send(client, request["method"], _fill(request["path"], values), parameters["api-version"], body)
    responses = example["responses"]
    assert str(answer.status_code) in responses, f"status {answer.status_code} not in {sorted(responses)}: " \
                                                 f"{answer.text()}"
    expected = responses[str(answer.status_code)].get("body")
    if expected is None:
        return
    missing = property_paths(expected) - property_paths(answer.json())
    departures = example.get("_departures", {})
    unexplained = sorted(p for p in missing if not any(p == d or p.startswith(d + ".") or p.startswith(d + "[")
                                                       for d in departures))
    assert not unexplained, f"{example_file.name}: property paths missing from local Azure's answer: {unexplained}"
