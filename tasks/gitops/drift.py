"""Drift: what differs between the applied commit and what the clusters and Azure hold now.

In-cluster drift is found the way Flux finds it: a server-side-apply dry run of the recorded commit gives
the object as fleetflow's fields would make it; any field it sets that differs from the live object was
changed by someone else. Azure-side drift compares each ASO object's desired fields with the Azure
resource read through Resource Manager (changes ASO has not put back yet).
"""

from __future__ import annotations

import re
from typing import Any, TypedDict

from azure.core.exceptions import ResourceNotFoundError

from tasks.clients import AzureClients
from tasks.gitops.health import is_aso
from tasks.retry import azure_call

# Fields of an ASO spec that are not Azure properties (operator settings) or that Azure never returns.
_NOT_IN_AZURE = frozenset({"azureName", "owner", "operatorSpec", "createMode"})
_TOP_LEVEL = frozenset({"location", "tags", "sku", "kind", "identity", "extendedLocation"})
_ASO_VERSION = re.compile(r"^v1api(\d{4})(\d{2})(\d{2})(preview)?$")


class DriftRow(TypedDict):
    """One drifted field (or a missing object)."""

    cluster: str
    object: str
    kind: str
    where: str
    field: str
    desired: str
    actual: str


def arm_api_version(api_version: str) -> str | None:
    """The Resource Manager api-version an ASO apiVersion stands for: v1api20230701 -> 2023-07-01."""
    match = _ASO_VERSION.match(api_version.rpartition("/")[2])
    if not match:
        return None
    year, month, day, preview = match.groups()
    return f"{year}-{month}-{day}" + ("-preview" if preview else "")


def _text(value: Any) -> str:
    return str(value)[:120]


def _same(desired: Any, actual: Any) -> bool:
    if isinstance(desired, str) and isinstance(actual, str):
        # Azure normalises case and spacing of some values (locations: "East US" / "eastus").
        return desired.replace(" ", "").lower() == actual.replace(" ", "").lower()
    if isinstance(desired, bool) or isinstance(actual, bool):
        return desired is actual
    return bool(desired == actual)


def subset_differences(desired: Any, actual: Any, path: str) -> list[tuple[str, Any, Any]]:
    """(path, desired, actual) for each leaf of `desired` that `actual` does not hold; extra actual fields are fine."""
    if isinstance(desired, dict):
        if not isinstance(actual, dict):
            return [(path, desired, actual)]
        found = []
        for key, value in desired.items():
            found += subset_differences(value, actual.get(key), f"{path}.{key}" if path else key)
        return found
    if isinstance(desired, list):
        if not isinstance(actual, list) or len(actual) != len(desired):
            return [(path, desired, actual)]
        found = []
        for index, (want, have) in enumerate(zip(desired, actual, strict=True)):
            found += subset_differences(want, have, f"{path}[{index}]")
        return found
    return [] if _same(desired, actual) else [(path, desired, actual)]


def cluster_differences(expected: dict[str, Any], live: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """Fields where the live object differs from the dry-run result of applying the commit (status ignored)."""
    found = []
    for key, value in expected.items():
        if key in ("status", "apiVersion", "kind"):
            continue
        if key == "metadata":
            for meta_key in ("labels", "annotations"):
                found += subset_differences(value.get(meta_key) or {}, (live.get("metadata") or {}).get(meta_key)
                                            or {}, f"metadata.{meta_key}")
            continue
        found += subset_differences(value, live.get(key), key)
    return found


def desired_azure_fields(spec: dict[str, Any]) -> dict[str, Any]:
    """An ASO spec as the Azure resource's JSON shape: top-level fields, the rest under properties."""
    shaped: dict[str, Any] = {}
    for key, value in spec.items():
        if key in _NOT_IN_AZURE or key.endswith("FromConfig"):
            continue
        if key in _TOP_LEVEL:
            shaped[key] = value
        elif key == "properties" and isinstance(value, dict):
            properties = {k: v for k, v in value.items() if k not in _NOT_IN_AZURE and not k.endswith("FromConfig")}
            shaped.setdefault("properties", {}).update(properties)
        else:
            shaped.setdefault("properties", {})[key] = value
    return shaped


def azure_differences(clients: AzureClients, live: dict[str, Any]) -> list[tuple[str, Any, Any]] | None:
    """Differences between an ASO object's spec and its Azure resource; None when it has no Azure resource yet."""
    api_version = arm_api_version(str(live.get("apiVersion", "")))
    resource_id = (live.get("status") or {}).get("id")
    if not api_version or not resource_id or not is_aso(str(live.get("apiVersion", ""))):
        return None
    with azure_call("read resource for drift", resource_id):
        try:
            resource = clients.resource.resources.get_by_id(resource_id, api_version=api_version)
        except ResourceNotFoundError:
            return [("(resource)", "exists", "missing in Azure")]
    actual = resource.as_dict()
    actual.setdefault("properties", resource.properties or {})
    return subset_differences(desired_azure_fields(live.get("spec") or {}), actual, "")
