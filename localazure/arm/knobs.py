"""Behaviour knobs: latencies, time scale, injected throttling/errors/failures, subscription budgets, cluster mode.

Set from `serve` flags, FLEETFLOW_LOCAL_* environment variables, or at run time through
`POST /_local/knobs`.
"""

from __future__ import annotations

import fnmatch
import os
import random
import threading
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

ClusterMode = Literal["local", "arm-only"]

# Typical Azure durations (seconds) of each operation type; multiplied by time_scale.
DEFAULT_LATENCY: dict[str, float] = {
    "group.delete": 30,
    "aks.create": 240,
    "aks.update": 60,
    "aks.upgrade": 300,
    "aks.nodeimage": 180,
    "aks.delete": 60,
    "fleet.create": 30,
    "fleet.delete": 30,
    "fleet.member.create": 60,
    "fleet.member.delete": 30,
    "acr.create": 20,
    "acr.delete": 20,
    "keyvault.create": 15,
    "keyvault.purge": 10,
    "storage.create": 25,
}

DEFAULT_NODE_IMAGE_CREATE = "AKSUbuntu-2204gen2containerd-202610.15.0"
DEFAULT_NODE_IMAGE_LATEST = "AKSUbuntu-2204gen2containerd-202611.20.0"


@dataclass(frozen=True)
class FailRule:
    """Forces operations of kind `operation` (glob, e.g. `aks.create`, `aks.*`) to fail.

    `target` (glob, case-insensitive) must match the resource name, its location, or its id;
    empty matches everything.
    """

    operation: str
    target: str = ""

    def matches(self, operation: str, name: str, location: str, resource_id: str) -> bool:
        """Whether this rule applies to one operation on one resource."""
        if not fnmatch.fnmatchcase(operation.lower(), self.operation.lower()):
            return False
        if not self.target:
            return True
        pattern = self.target.lower()
        return any(fnmatch.fnmatchcase(value.lower(), pattern) for value in (name, location, resource_id) if value)

    def __str__(self) -> str:
        return f"{self.operation}:{self.target}" if self.target else self.operation


@dataclass(frozen=True)
class Knobs:
    """One immutable snapshot of all knobs."""

    latency: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_LATENCY))
    time_scale: float = 0.01
    throttle_rate: float = 0.0
    error_rate: float = 0.0
    retry_after: float = 1.0
    # Resource Manager's subscription throttling: requests per window (Azure seconds, scaled), 0 = unlimited.
    write_budget: int = 0
    read_budget: int = 0
    budget_window: float = 3600.0
    fail: tuple[FailRule, ...] = ()
    clusters: ClusterMode = "local"
    node_image_create: str = DEFAULT_NODE_IMAGE_CREATE
    node_image_latest: str = DEFAULT_NODE_IMAGE_LATEST
    # Namespaces the subscription has never registered (NotRegistered): requests to them are refused with 409
    # MissingSubscriptionRegistration until `POST .../providers/{namespace}/register`.
    unregistered: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """JSON form (as accepted by `from_json` / `POST /_local/knobs`)."""
        data = asdict(self)
        data["fail"] = [str(rule) for rule in self.fail]
        return data


def parse_latency(text: str) -> dict[str, float]:
    """Parse `aks.create=240,aks.delete=60` into a dict."""
    result: dict[str, float] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"latency item {item!r} is not NAME=SECONDS")
        result[name.strip()] = float(value)
    return result


def parse_fail(text: str) -> tuple[FailRule, ...]:
    """Parse `aks.create:eastus,aks.delete:*-prod-*` into fail rules."""
    rules = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        operation, _, target = item.partition(":")
        rules.append(FailRule(operation.strip(), target.strip()))
    return tuple(rules)


def apply_changes(base: Knobs, changes: dict[str, Any]) -> Knobs:
    """A new Knobs with `changes` applied; latency entries merge, other fields replace.

    Values may be strings in the flag syntax (`"aks.create=5"`, `"aks.create:eastus"`) or JSON values.
    """
    updates: dict[str, Any] = {}
    for key, value in changes.items():
        name = key.replace("-", "_")
        if name == "latency":
            merged = dict(base.latency)
            merged.update(parse_latency(value) if isinstance(value, str) else {k: float(v) for k, v in value.items()})
            updates["latency"] = merged
        elif name == "fail":
            if isinstance(value, str):
                updates["fail"] = parse_fail(value)
            else:
                updates["fail"] = tuple(parse_fail(",".join(str(v) for v in value)))
        elif name in {"time_scale", "throttle_rate", "error_rate", "retry_after"}:
            number = float(value)
            if number < 0 or (name.endswith("_rate") and number > 1):
                raise ValueError(f"knob {key}={value} is out of range")
            updates[name] = number
        elif name in {"write_budget", "read_budget"}:
            count = int(value)
            if count < 0:
                raise ValueError(f"knob {key}={value} is out of range (0 = unlimited)")
            updates[name] = count
        elif name == "budget_window":
            window = float(value)
            if window <= 0:
                raise ValueError(f"knob {key}={value} must be a positive number of Azure seconds")
            updates[name] = window
        elif name == "clusters":
            if value not in ("local", "arm-only"):
                raise ValueError(f"knob clusters must be 'local' or 'arm-only', not {value!r}")
            updates[name] = value
        elif name in {"node_image_create", "node_image_latest"}:
            updates[name] = str(value)
        elif name == "unregistered":
            items = value.split(",") if isinstance(value, str) else [str(v) for v in value]
            updates[name] = tuple(item.strip() for item in items if item.strip())
        else:
            raise ValueError(f"unknown knob {key!r}")
    return replace(base, **updates)


ENV_PREFIX = "FLEETFLOW_LOCAL_"
ENV_KNOBS = ("LATENCY", "TIME_SCALE", "THROTTLE_RATE", "ERROR_RATE", "RETRY_AFTER", "FAIL", "CLUSTERS",
             "NODE_IMAGE_CREATE", "NODE_IMAGE_LATEST", "WRITE_BUDGET", "READ_BUDGET", "BUDGET_WINDOW",
             "UNREGISTERED")


def from_environment(base: Knobs, environ: dict[str, str] | None = None) -> Knobs:
    """Apply FLEETFLOW_LOCAL_<KNOB> environment variables to `base`."""
    env = os.environ if environ is None else environ
    changes = {name.lower(): env[ENV_PREFIX + name] for name in ENV_KNOBS if env.get(ENV_PREFIX + name)}
    return apply_changes(base, changes) if changes else base


class KnobBoard:
    """The live knobs of a running emulator, swapped atomically, plus the decisions derived from them."""

    def __init__(self, knobs: Knobs) -> None:
        self._knobs = knobs
        self._lock = threading.Lock()
        self._random = random.Random()  # noqa: S311 - fault injection, not security
        # (kind, subscription) -> (tokens, monotonic time of the last update, budget they were counted against)
        self._buckets: dict[tuple[str, str], tuple[float, float, int]] = {}

    @property
    def current(self) -> Knobs:
        """The current snapshot."""
        return self._knobs

    def change(self, changes: dict[str, Any]) -> Knobs:
        """Apply changes (see `apply_changes`) and return the new snapshot."""
        with self._lock:
            self._knobs = apply_changes(self._knobs, changes)
            return self._knobs

    def scaled(self, azure_seconds: float) -> float:
        """Wall-clock seconds that stand for `azure_seconds` of Azure time."""
        return max(0.0, azure_seconds * self._knobs.time_scale)

    def duration(self, operation: str) -> float:
        """Wall-clock seconds an operation of this kind takes."""
        return self.scaled(self._knobs.latency.get(operation, 0.0))

    def sleep_azure(self, azure_seconds: float) -> None:
        """Sleep for a scaled Azure duration."""
        time.sleep(self.scaled(azure_seconds))

    def should_fail(self, operation: str, *, name: str = "", location: str = "", resource_id: str = "") -> bool:
        """Whether a forced-failure rule covers this operation."""
        return any(rule.matches(operation, name, location, resource_id) for rule in self._knobs.fail)

    def roll_throttle(self) -> bool:
        """Whether this request is answered 429."""
        rate = self._knobs.throttle_rate
        return rate > 0 and self._random.random() < rate

    def take_budget(self, kind: Literal["writes", "reads"], subscription: str) -> tuple[bool, int, float]:
        """Take one request from a subscription's write or read budget, a token bucket as Resource Manager keeps:
        `budget` requests at once, refilled evenly over `budget_window` (Azure seconds, scaled).

        Returns (allowed, requests remaining, wall seconds until the next one is allowed); remaining is -1 when
        the budget is off."""
        knobs = self._knobs
        budget = knobs.write_budget if kind == "writes" else knobs.read_budget
        if budget <= 0:
            return True, -1, 0.0
        rate = budget / max(1e-9, self.scaled(knobs.budget_window))  # requests per wall second
        now = time.monotonic()
        with self._lock:
            tokens, stamp, counted = self._buckets.get((kind, subscription), (float(budget), now, budget))
            tokens = float(budget) if counted != budget else min(float(budget), tokens + (now - stamp) * rate)
            allowed = tokens >= 1.0
            if allowed:
                tokens -= 1.0
            self._buckets[(kind, subscription)] = (tokens, now, budget)
        return allowed, int(tokens), 0.0 if allowed else (1.0 - tokens) / rate

    def roll_error(self) -> bool:
        """Whether this request is answered with a 5xx."""
        rate = self._knobs.error_rate
        return rate > 0 and self._random.random() < rate
