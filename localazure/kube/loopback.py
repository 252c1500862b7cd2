"""Walls that keep a local cluster's traffic on loopback, and a probe that proves it.

A kube-apiserver dials out on its own in three ways: admission webhooks, CRD conversion webhooks and
aggregated APIs (APIService objects backed by a Service). Each dials a Service's ClusterIP or a pod IP,
addresses that are not on this machine. Local clusters therefore run without the webhook admission
plugins (kwok runs no webhook server that could answer anyway), and an in-process
ValidatingAdmissionPolicy refuses CRDs with a conversion webhook and APIServices backed by a Service,
so that nothing can make the apiserver leave loopback later.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Admission plugins local clusters turn off: TaintNodesByCondition because no node-lifecycle controller
# would lift its taint; the two webhook plugins because every call would dial a non-loopback address.
DISABLED_ADMISSION_PLUGINS = ("TaintNodesByCondition", "MutatingAdmissionWebhook", "ValidatingAdmissionWebhook")

POLICY_NAME = "fleetflow-local-loopback-only"

LOOPBACK_POLICY: dict[str, Any] = {
    "apiVersion": "admissionregistration.k8s.io/v1",
    "kind": "ValidatingAdmissionPolicy",
    "metadata": {"name": POLICY_NAME, "labels": {"app.kubernetes.io/managed-by": "fleetflow-local"}},
    "spec": {
        "failurePolicy": "Fail",
        "matchConstraints": {
            "resourceRules": [
                {
                    "apiGroups": ["apiextensions.k8s.io"],
                    "apiVersions": ["*"],
                    "operations": ["CREATE", "UPDATE"],
                    "resources": ["customresourcedefinitions"],
                },
                {
                    "apiGroups": ["apiregistration.k8s.io"],
                    "apiVersions": ["*"],
                    "operations": ["CREATE", "UPDATE"],
                    "resources": ["apiservices"],
                },
            ]
        },
        "validations": [
            {
                "expression": "object.kind != 'CustomResourceDefinition' || !has(object.spec.conversion) "
                "|| object.spec.conversion.strategy != 'Webhook'",
                "message": "local clusters refuse CRDs with a conversion webhook: the apiserver would dial a "
                "Service outside loopback; use strategy None (local mode installs such CRDs without it)",
                "reason": "Forbidden",
            },
            {
                "expression": "object.kind != 'APIService' || !has(object.spec.service)",
                "message": "local clusters refuse APIServices backed by a Service: the aggregator would dial "
                "a Service outside loopback",
                "reason": "Forbidden",
            },
        ],
    },
}

LOOPBACK_POLICY_BINDING: dict[str, Any] = {
    "apiVersion": "admissionregistration.k8s.io/v1",
    "kind": "ValidatingAdmissionPolicyBinding",
    "metadata": {"name": POLICY_NAME, "labels": {"app.kubernetes.io/managed-by": "fleetflow-local"}},
    "spec": {"policyName": POLICY_NAME, "validationActions": ["Deny"]},
}

# (collection path, object) in creation order: the policy before the binding that names it.
LOOPBACK_OBJECTS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicies", LOOPBACK_POLICY),
    ("/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicybindings", LOOPBACK_POLICY_BINDING),
)

# A CRD the policy must refuse; sent as a dry run after start-up until it is refused, because a new policy
# takes a moment to reach the apiserver's admission chain.
POLICY_PROBE: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "probes.loopback.fleetflow.local"},
    "spec": {
        "group": "loopback.fleetflow.local",
        "names": {"kind": "Probe", "plural": "probes", "singular": "probe", "listKind": "ProbeList"},
        "scope": "Namespaced",
        "versions": [{"name": "v1", "served": True, "storage": True,
                      "schema": {"openAPIV3Schema": {"type": "object"}}}],
        "conversion": {"strategy": "Webhook", "webhook": {
            "conversionReviewVersions": ["v1"],
            "clientConfig": {"service": {"name": "probe", "namespace": "default", "path": "/convert"}}}},
    },
}
POLICY_PROBE_PATH = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions?dryRun=All"

_TCP_STATES = {
    "01": "ESTABLISHED", "02": "SYN_SENT", "03": "SYN_RECV", "04": "FIN_WAIT1", "05": "FIN_WAIT2",
    "06": "TIME_WAIT", "07": "CLOSE", "08": "CLOSE_WAIT", "09": "LAST_ACK", "0A": "LISTEN", "0B": "CLOSING",
}


@dataclass(frozen=True)
class SocketPeer:
    """A socket of a process whose remote end is not on loopback."""

    pid: int
    protocol: str
    local: str
    remote: str
    state: str

    def __str__(self) -> str:
        return f"pid {self.pid} {self.protocol} {self.local} -> {self.remote} ({self.state})"


def _decode_address(hex_address: str) -> tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, int]:
    host, port = hex_address.split(":")
    raw = bytes.fromhex(host)
    if len(raw) == 4:
        address: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.IPv4Address(raw[::-1])
    else:
        # /proc prints an IPv6 address as four host-order 32-bit words.
        words = b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4))
        address = ipaddress.IPv6Address(words)
    return address, int(port, 16)


def _is_local(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback or address.is_unspecified


def _socket_inodes(pid: int) -> set[str]:
    inodes: set[str] = set()
    try:
        entries = os.listdir(f"/proc/{pid}/fd")
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return inodes
    for entry in entries:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{entry}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    return inodes


def non_loopback_peers(pids: list[int]) -> list[SocketPeer]:
    """Sockets of these processes (TCP and UDP, IPv4 and IPv6) connected or connecting beyond loopback."""
    found: list[SocketPeer] = []
    for pid in pids:
        inodes = _socket_inodes(pid)
        if not inodes:
            continue
        for protocol in ("tcp", "tcp6", "udp", "udp6"):
            try:
                lines = Path(f"/proc/{pid}/net/{protocol}").read_text().splitlines()[1:]
            except (FileNotFoundError, ProcessLookupError, PermissionError):
                continue
            for line in lines:
                fields = line.split()
                if len(fields) < 10 or fields[9] not in inodes:
                    continue
                remote, remote_port = _decode_address(fields[2])
                if _is_local(remote):
                    continue
                local, local_port = _decode_address(fields[1])
                state = _TCP_STATES.get(fields[3], fields[3]) if protocol.startswith("tcp") else "UDP"
                found.append(SocketPeer(pid, protocol, f"{local}:{local_port}", f"{remote}:{remote_port}", state))
    return found
