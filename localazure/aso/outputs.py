"""operatorSpec outputs: ASO's fixed secrets/configMaps and a small subset of its CEL expressions."""

from __future__ import annotations

from typing import Any

from localazure.aso.kinds import AsoKind


class ExpressionError(ValueError):
    """An expression local mode cannot evaluate (ASO would evaluate full CEL)."""


def _path(root: dict[str, Any], path: str) -> Any:
    value: Any = root
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            raise ExpressionError(f"no such field: {path}")
        value = value[part]
    return value


def _split_plus(expression: str) -> list[str]:
    parts, current, quote = [], "", ""
    for char in expression:
        if quote:
            current += char
            if char == quote:
                quote = ""
        elif char in "\"'":
            quote = char
            current += char
        elif char == "+":
            parts.append(current.strip())
            current = ""
        else:
            current += char
    parts.append(current.strip())
    return parts


def evaluate(expression: str, resource: dict[str, Any], secrets: dict[str, str] | None = None) -> str:
    """Evaluate `self.a.b`, `secret.key1`, string literals, and `+` between them (a subset of ASO's CEL)."""
    out = []
    for term in _split_plus(expression):
        if not term:
            raise ExpressionError(f"invalid expression: {expression!r}")
        if term[0] in "\"'" and term[-1] == term[0] and len(term) >= 2:
            out.append(term[1:-1])
        elif term.startswith("self."):
            out.append(str(_path(resource, term[len("self."):])))
        elif term.startswith("secret.") and secrets is not None:
            key = term[len("secret."):]
            if key not in secrets:
                raise ExpressionError(f"no such secret: {key}")
            out.append(secrets[key])
        else:
            raise ExpressionError(f"unsupported expression term {term!r} (local mode evaluates self.<path>, "
                                  "secret.<name>, string literals and +)")
    return "".join(out)


def endpoint_values(kind: AsoKind, status: dict[str, Any]) -> dict[str, str]:
    """Values of a kind's fixed outputs that come from its status (StorageAccount endpoints)."""
    endpoints = status.get("primaryEndpoints") or {}
    names = {"blobEndpoint": "blob", "dfsEndpoint": "dfs", "fileEndpoint": "file", "queueEndpoint": "queue",
             "tableEndpoint": "table", "webEndpoint": "web"}
    return {out: str(endpoints[key]) for out, key in names.items() if key in endpoints}


def plan(kind: AsoKind, resource: dict[str, Any], values: dict[str, str]) -> tuple[dict[str, dict[str, str]],
                                                                                   dict[str, dict[str, str]]]:
    """(secrets, configMaps): name -> {key: value} to write for the resource's operatorSpec."""
    operator_spec = (resource.get("spec") or {}).get("operatorSpec") or {}
    secrets: dict[str, dict[str, str]] = {}
    config_maps: dict[str, dict[str, str]] = {}
    for output, destination in (operator_spec.get("secrets") or {}).items():
        if output not in values:
            raise ExpressionError(f"{kind.kind} has no value for operatorSpec.secrets.{output}")
        secrets.setdefault(destination["name"], {})[destination["key"]] = values[output]
    for output, destination in (operator_spec.get("configMaps") or {}).items():
        if output not in values:
            raise ExpressionError(f"{kind.kind} has no value for operatorSpec.configMaps.{output}")
        config_maps.setdefault(destination["name"], {})[destination["key"]] = values[output]
    for item in operator_spec.get("configMapExpressions") or []:
        if not item.get("key"):
            raise ExpressionError("configMapExpressions without a key (map-valued expressions) are not evaluated")
        config_maps.setdefault(item["name"], {})[item["key"]] = evaluate(item["value"], resource)
    for item in operator_spec.get("secretExpressions") or []:
        if not item.get("key"):
            raise ExpressionError("secretExpressions without a key (map-valued expressions) are not evaluated")
        secrets.setdefault(item["name"], {})[item["key"]] = evaluate(item["value"], resource, values)
    return secrets, config_maps


def needs_keys(resource: dict[str, Any]) -> bool:
    """Whether the outputs ask for account keys (listKeys)."""
    operator_spec = (resource.get("spec") or {}).get("operatorSpec") or {}
    wanted = set((operator_spec.get("secrets") or {}).keys())
    expressions = " ".join(str(e.get("value", "")) for e in operator_spec.get("secretExpressions") or [])
    return bool(wanted & {"key1", "key2"}) or "secret.key" in expressions
