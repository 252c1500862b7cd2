"""Managed-cluster JSON: validating what callers send and filling in what AKS computes."""

from __future__ import annotations

import copy
import hashlib
import re
import uuid
from typing import Any

from localazure.arm.errors import invalid_parameter

CLUSTER_TYPE = "Microsoft.ContainerService/managedClusters"
POOL_TYPE = "Microsoft.ContainerService/managedClusters/agentPools"
CLUSTER_NAME = re.compile(r"^[a-zA-Z0-9]$|^[a-zA-Z0-9][-_a-zA-Z0-9]{0,61}[a-zA-Z0-9]$")
POOL_NAME = re.compile(r"^[a-z][a-z0-9]{0,11}$")
DEFAULT_VM_SIZE = "Standard_DS2_v2"
# What AKS fills in when a pool's upgradeSettings.maxSurge is not given (new clusters since 2024).
DEFAULT_MAX_SURGE = "10%"
SERVICE_CIDR = "10.0.0.0/16"
DNS_SERVICE_IP = "10.0.0.10"
POD_CIDR = "10.244.0.0/16"
# Agent-pool fields AKS computes; values sent by a caller are replaced.
POOL_COMPUTED = ("provisioningState", "currentOrchestratorVersion", "nodeImageVersion", "powerState")


def version_tuple(version: str) -> tuple[int, ...]:
    """`1.36.3` -> (1, 36, 3)."""
    return tuple(int(p) for p in version.lstrip("v").split("."))


def minor_of(version: str) -> str:
    """`1.36.3` -> `1.36`."""
    return ".".join(version.lstrip("v").split(".")[:2])


def resolve_version(requested: Any, available: list[str], prop: str) -> str:
    """Full patch version for `1.36` / `1.36.3` among `available` (ascending); 400 InvalidParameter otherwise."""
    if not available:
        raise invalid_parameter(prop, "No Kubernetes version is available: build them (`make tools`) or run the "
                                "emulator with --clusters arm-only.")
    if requested in (None, ""):
        return available[0]
    text = str(requested).lstrip("v")
    if text in available:
        return text
    patches = [v for v in available if minor_of(v) == text]
    if re.fullmatch(r"\d+\.\d+", text) and patches:
        return patches[-1]
    raise invalid_parameter(prop, f"Version {requested} is not supported in this region. Supported versions: "
                            f"{', '.join(available)}.")


def upgrades_from(current: str, available: list[str], ceiling: str | None = None) -> list[str]:
    """Versions one may upgrade to: newer, at most one minor ahead, not above `ceiling`."""
    cur = version_tuple(current)
    result = []
    for version in available:
        v = version_tuple(version)
        if v <= cur or v[1] > cur[1] + 1 or v[0] != cur[0]:
            continue
        if ceiling is not None and v > version_tuple(ceiling):
            continue
        result.append(version)
    return result


def check_upgrade(current: str, target: str, available: list[str], prop: str) -> None:
    """400 unless `target` is `current` or a permitted upgrade of it."""
    if version_tuple(target) < version_tuple(current):
        raise invalid_parameter(prop, f"Downgrading Kubernetes from {current} to {target} is not allowed.")
    if target != current and target not in upgrades_from(current, available):
        raise invalid_parameter(prop, f"Upgrading Kubernetes from {current} to {target} is not allowed: upgrade "
                                "one minor version at a time.")


def validate_pools(pools: Any) -> list[dict[str, Any]]:
    """Check agentPoolProfiles; returns copies with defaults (vmSize, mode, osType, type) filled in."""
    prop = "properties.agentPoolProfiles"
    if not isinstance(pools, list) or not pools:
        raise invalid_parameter(prop, "At least one agent pool profile is required.")
    seen: set[str] = set()
    result = []
    for index, raw in enumerate(pools):
        where = f"{prop}[{index}]"
        if not isinstance(raw, dict):
            raise invalid_parameter(where, "An agent pool profile must be an object.")
        pool = copy.deepcopy(raw)
        name = pool.get("name")
        if not isinstance(name, str) or not POOL_NAME.match(name):
            raise invalid_parameter(f"{where}.name", f"Agent pool name {name!r} must be 1-12 lowercase letters or "
                                    "digits, starting with a letter.")
        if name in seen:
            raise invalid_parameter(f"{where}.name", f"Agent pool name '{name}' is used twice.")
        seen.add(name)
        count = pool.get("count", 1)
        if not isinstance(count, int) or isinstance(count, bool) or count < 1 or count > 1000:
            raise invalid_parameter(f"{where}.count", f"Agent pool '{name}' count {count!r} is invalid: it must be "
                                    "an integer from 1 to 1000.")
        pool["count"] = count
        # Unset, null or empty (az aks create sends `"vmSize": ""` and lets AKS choose): AKS's defaults.
        defaults = {"vmSize": DEFAULT_VM_SIZE, "mode": "System" if index == 0 else "User", "osType": "Linux",
                    "osSKU": "Ubuntu", "type": "VirtualMachineScaleSets", "maxPods": 110}
        for key, default in defaults.items():
            if pool.get(key) in (None, ""):
                pool[key] = default
        sent_settings = pool.get("upgradeSettings")
        settings: dict[str, Any] = sent_settings if isinstance(sent_settings, dict) else {}
        pool["upgradeSettings"] = {**settings, "maxSurge": settings.get("maxSurge") or DEFAULT_MAX_SURGE}
        result.append(pool)
    if not any(p["mode"] == "System" for p in result):
        raise invalid_parameter(prop, "At least one agent pool must have mode System.")
    return result


def short_hash(*parts: str) -> str:
    """Stable 8-hex-digit suffix, like the one in AKS FQDNs."""
    return hashlib.sha256("/".join(parts).lower().encode()).hexdigest()[:8]


def computed_cluster_fields(
    *, subscription_id: str, group: str, name: str, location: str, properties: dict[str, Any]
) -> dict[str, Any]:
    """Fields AKS derives at creation (kept for the cluster's life)."""
    dns_prefix = properties.get("dnsPrefix") or f"{name[:10]}-{group[:16]}-{subscription_id[:6]}"
    suffix = short_hash(subscription_id, group, name)
    return {
        "dnsPrefix": dns_prefix,
        "fqdn": f"{dns_prefix}-{suffix}.hcp.{location}.azmk8s.io",
        "azurePortalFQDN": f"{dns_prefix}-{suffix}.portal.hcp.{location}.azmk8s.io",
        "nodeResourceGroup": properties.get("nodeResourceGroup") or f"MC_{group}_{name}_{location}",
        "maxAgentPools": 100,
        "resourceUID": uuid.uuid4().hex[:24],
        "enableRBAC": properties.get("enableRBAC", True),
        "supportPlan": properties.get("supportPlan", "KubernetesOfficial"),
    }


def agent_pool_body(cluster_id: str, profile: dict[str, Any]) -> dict[str, Any]:
    """The agentPools sub-resource JSON for one profile of a cluster."""
    properties = {k: v for k, v in profile.items() if k != "name"}
    return {"id": f"{cluster_id}/agentPools/{profile['name']}", "name": profile["name"], "type": POOL_TYPE,
            "properties": properties}


def network_profile(sent: Any, previous: dict[str, Any] | None, *, subscription_id: str,
                    node_resource_group: str) -> dict[str, Any]:
    """networkProfile with what AKS fills in: the plugin (kubenet unless sent), service CIDR 10.0.0.0/16 and DNS
    service IP 10.0.0.10, a pod CIDR for kubenet and Azure CNI overlay, IPv4, a standard load balancer with one
    managed outbound IP (its effective id under the node resource group) and outbound type loadBalancer.
    Values sent win; an update keeps what it does not send."""
    profile: dict[str, Any] = copy.deepcopy(previous or {})
    if isinstance(sent, dict):
        profile.update(copy.deepcopy(sent))
    profile.setdefault("networkPlugin", "kubenet")
    profile["serviceCidr"] = profile.get("serviceCidr") or SERVICE_CIDR
    profile["serviceCidrs"] = profile.get("serviceCidrs") or [profile["serviceCidr"]]
    profile["dnsServiceIP"] = profile.get("dnsServiceIP") or DNS_SERVICE_IP
    overlay = str(profile.get("networkPluginMode") or "").lower() == "overlay"
    if str(profile["networkPlugin"]).lower() == "kubenet" or overlay:
        profile["podCidr"] = profile.get("podCidr") or POD_CIDR
        profile["podCidrs"] = profile.get("podCidrs") or [profile["podCidr"]]
    profile["ipFamilies"] = profile.get("ipFamilies") or ["IPv4"]
    profile["loadBalancerSku"] = str(profile.get("loadBalancerSku") or "standard").lower()
    profile["outboundType"] = profile.get("outboundType") or "loadBalancer"
    if profile["outboundType"] == "loadBalancer":
        sent_balancer = profile.get("loadBalancerProfile")
        balancer: dict[str, Any] = copy.deepcopy(sent_balancer) if isinstance(sent_balancer, dict) else {}
        balancer.setdefault("managedOutboundIPs", {"count": 1})
        balancer.setdefault("backendPoolType", "nodeIPConfiguration")
        balancer.setdefault("allocatedOutboundPorts", 0)  # 0: Azure allocates ports per node by pool size
        balancer.setdefault("idleTimeoutInMinutes", 30)
        if not balancer.get("effectiveOutboundIPs"):
            ip_name = short_hash(subscription_id, node_resource_group, "outbound")
            balancer["effectiveOutboundIPs"] = [{
                "id": f"/subscriptions/{subscription_id}/resourceGroups/{node_resource_group}/providers/"
                      f"Microsoft.Network/publicIPAddresses/{ip_name}-0000-4000-8000-{ip_name}{ip_name[:4]}"}]
        profile["loadBalancerProfile"] = balancer
    return profile


def user_assigned_identities(identity: dict[str, Any]) -> dict[str, Any]:
    """`identity` with each of its `userAssignedIdentities` showing `clientId` and `principalId`, as Azure reads them
    from the identity resource. Local Azure does not serve Microsoft.ManagedIdentity: both are GUIDs derived from the
    identity's resource id, the same for every cluster that uses it."""
    assigned = identity.get("userAssignedIdentities")
    if not isinstance(assigned, dict):
        return identity
    filled = {}
    for identity_id, sent in assigned.items():
        seed = str(identity_id).lower()
        filled[identity_id] = {**(sent if isinstance(sent, dict) else {}),
                               "clientId": str(uuid.uuid5(uuid.NAMESPACE_URL, "client:" + seed)),
                               "principalId": str(uuid.uuid5(uuid.NAMESPACE_URL, "principal:" + seed))}
    return {**identity, "userAssignedIdentities": filled}
