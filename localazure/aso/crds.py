"""CustomResourceDefinitions of the served ASO kinds, and ASO's --crd-pattern matching."""

from __future__ import annotations

import fnmatch
from typing import Any

from localazure.aso.kinds import KINDS, AsoKind, status_schema

VERSION_ANNOTATION = "serviceoperator.azure.com/version"
LOCAL_LABEL = "fleetflow.io/local-aso"


def parse_crd_pattern(pattern: str) -> list[str]:
    """ASO's --crd-pattern: `;`-separated `group/Kind` globs (`resources.azure.com/*`); blanks dropped."""
    return [part.strip() for part in pattern.split(";") if part.strip()]


def matches(kind: AsoKind, patterns: list[str]) -> bool:
    """Whether a kind is selected by any pattern (case-insensitive glob on `group/Kind`, as ASO does)."""
    name = f"{kind.group}/{kind.kind}".lower()
    return any(fnmatch.fnmatchcase(name, p.lower()) for p in patterns)


def selected_kinds(pattern: str, installed: set[str] | None = None) -> list[AsoKind]:
    """Kinds to install for a --crd-pattern; CRDs already installed (names in `installed`) are kept up to date."""
    patterns = parse_crd_pattern(pattern)
    return [k for k in KINDS if matches(k, patterns) or (installed is not None and k.crd_name in installed)]


def _printer_columns() -> list[dict[str, Any]]:
    ready = ".status.conditions[?(@.type=='Ready')]"
    return [
        {"jsonPath": f"{ready}.status", "name": "Ready", "type": "string"},
        {"jsonPath": f"{ready}.severity", "name": "Severity", "type": "string"},
        {"jsonPath": f"{ready}.reason", "name": "Reason", "type": "string"},
        {"jsonPath": f"{ready}.message", "name": "Message", "type": "string"},
    ]


def crd_manifest(kind: AsoKind, app_version: str) -> dict[str, Any]:
    """The CRD of one kind: every served version with the kind's schema, the newest stored; no conversion webhook."""
    schema = {
        "type": "object",
        "description": f"{kind.kind} (Azure Service Operator, ARM api-version {kind.arm_api_version})",
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": kind.spec,
            "status": status_schema(),
        },
    }
    versions = [
        {
            "name": version,
            "served": True,
            "storage": version == kind.storage_version,
            "schema": {"openAPIV3Schema": schema},
            "subresources": {"status": {}},
            "additionalPrinterColumns": _printer_columns(),
        }
        for version in kind.versions
    ]
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": kind.crd_name,
            "annotations": {VERSION_ANNOTATION: app_version},
            "labels": {"app.kubernetes.io/name": "azure-service-operator", LOCAL_LABEL: "true"},
        },
        "spec": {
            "group": kind.group,
            "names": {
                "kind": kind.kind,
                "listKind": f"{kind.kind}List",
                "plural": kind.plural,
                "singular": kind.kind.lower(),
                "categories": ["azure", kind.short_category],
            },
            "scope": "Namespaced",
            "conversion": {"strategy": "None"},
            "versions": versions,
        },
    }


def all_crds(app_version: str) -> list[dict[str, Any]]:
    """Every served kind's CRD."""
    return [crd_manifest(k, app_version) for k in KINDS]
