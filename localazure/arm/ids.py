"""Building and taking apart Resource Manager ids."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

# Resource names: what Resource Manager accepts for groups (a superset of what most providers allow).
GROUP_NAME = re.compile(r"^[-\w._()]{1,90}$")


def utc_now() -> str:
    """Current time in the ISO-8601 form Resource Manager uses."""
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def subscription_id_path(subscription_id: str) -> str:
    """`/subscriptions/{id}`."""
    return f"/subscriptions/{subscription_id}"


def group_id(subscription_id: str, group: str) -> str:
    """Id of a resource group."""
    return f"/subscriptions/{subscription_id}/resourceGroups/{group}"


def resource_id(subscription_id: str, group: str, namespace: str, *type_name_pairs: str) -> str:
    """Id of a (possibly nested) resource: pass type, name, subtype, subname, ..."""
    return f"{group_id(subscription_id, group)}/providers/{namespace}/" + "/".join(type_name_pairs)


@dataclass(frozen=True)
class ParsedId:
    """The parts of a resource id that authorization and cleanup care about."""

    subscription_id: str
    group: str | None
    namespace: str | None
    types: tuple[str, ...]
    names: tuple[str, ...]

    @property
    def name(self) -> str:
        """The last name in the id (the group name for a group id)."""
        if self.names:
            return self.names[-1]
        return self.group or self.subscription_id

    @property
    def full_type(self) -> str:
        """`Namespace/type/subtype`, or the group / subscription type."""
        if self.namespace:
            return "/".join((self.namespace, *self.types))
        return "Microsoft.Resources/resourceGroups" if self.group else "Microsoft.Resources/subscriptions"


def parse_id(value: str) -> ParsedId:
    """Parse `/subscriptions/s[/resourceGroups/g[/providers/ns/type/name[/type/name...]]]`."""
    parts = [p for p in value.split("/") if p]
    if len(parts) < 2 or parts[0].lower() != "subscriptions":
        raise ValueError(f"not a subscription-scoped resource id: {value!r}")
    subscription = parts[1]
    group = None
    namespace = None
    types: list[str] = []
    names: list[str] = []
    rest = parts[2:]
    if len(rest) >= 2 and rest[0].lower() == "resourcegroups":
        group = rest[1]
        rest = rest[2:]
    if len(rest) >= 2 and rest[0].lower() == "providers":
        namespace = rest[1]
        rest = rest[2:]
        while rest:
            types.append(rest[0])
            if len(rest) > 1:
                names.append(rest[1])
            rest = rest[2:]
    return ParsedId(subscription, group, namespace, tuple(types), tuple(names))


def is_at_or_below(scope: str, ancestor: str) -> bool:
    """Whether `scope` equals `ancestor` or lies below it (case-insensitive; `/` is the root)."""
    low_scope = scope.lower().rstrip("/")
    low_ancestor = ancestor.lower().rstrip("/")
    if low_ancestor == "":
        return True
    return low_scope == low_ancestor or low_scope.startswith(low_ancestor + "/")
