"""Node manifests of a local cluster: kwok-managed Nodes labelled, named and sized the way AKS names and
labels the VMs of a node pool."""

from __future__ import annotations

import uuid
from typing import Any

from localazure.kube.sizes import node_resources
from localazure.kube.state import PoolState

# Nodes kwok manages carry this annotation; kwok is started with the matching selector.
KWOK_NODE_ANNOTATION = ("kwok.x-k8s.io/node", "fake")


def node_name(pool_state: PoolState, instance: int) -> str:
    """AKS's name of a pool's VM instance: `aks-<pool>-<8 digits>-vmss<base36 instance>`."""
    return f"aks-{pool_state.pool.name}-{pool_state.name_digits}-vmss{_base36(instance, 6)}"


def new_node_manifest(pool_state: PoolState, *, cluster: str, region: str, version: str,
                      system: bool) -> dict[str, Any]:
    """Manifest of the pool's next node (advances the pool's instance counter). `version` is the control
    plane's, reported by nodes of a pool without an orchestrator version; `system` marks the first pool."""
    pool = pool_state.pool
    instance = pool_state.next_instance
    pool_state.next_instance += 1
    name = node_name(pool_state, instance)
    capacity, allocatable = node_resources(pool.vm_size)
    zone = f"{region}-{instance % 3 + 1}"
    vmss = f"aks-{pool.name}-{pool_state.name_digits}-vmss"
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {
                KWOK_NODE_ANNOTATION[0]: KWOK_NODE_ANNOTATION[1],
                "node.alpha.kubernetes.io/ttl": "0",
            },
            "labels": {
                "agentpool": pool.name,
                "kubernetes.azure.com/agentpool": pool.name,
                "kubernetes.azure.com/mode": "system" if system else "user",
                "kubernetes.azure.com/node-image-version": pool.node_image_version,
                "kubernetes.azure.com/cluster": f"MC_{cluster}_{region}",
                "kubernetes.azure.com/os-sku": "Ubuntu",
                "kubernetes.azure.com/role": "agent",
                "node.kubernetes.io/instance-type": pool.vm_size,
                "beta.kubernetes.io/instance-type": pool.vm_size,
                "topology.kubernetes.io/region": region,
                "topology.kubernetes.io/zone": zone,
                "failure-domain.beta.kubernetes.io/region": region,
                "failure-domain.beta.kubernetes.io/zone": zone,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "beta.kubernetes.io/os": "linux",
                "beta.kubernetes.io/arch": "amd64",
                "kubernetes.io/hostname": name,
                "kubernetes.io/role": "agent",
                "node-role.kubernetes.io/agent": "",
                "type": "kwok",
            },
        },
        "spec": {
            "providerID": (
                f"azure:///subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/"
                f"mc_{cluster}_{region}/providers/Microsoft.Compute/virtualMachineScaleSets/"
                f"{vmss}/virtualMachines/{instance}"
            ),
        },
        "status": {
            "capacity": capacity,
            "allocatable": allocatable,
            "nodeInfo": {
                "architecture": "amd64",
                "operatingSystem": "linux",
                "osImage": "Ubuntu 22.04.5 LTS",
                "kernelVersion": "5.15.0-1089-azure",
                "containerRuntimeVersion": "containerd://1.7.28-1",
                "kubeletVersion": pool.orchestrator_version or version,
                "kubeProxyVersion": pool.orchestrator_version or version,
                "machineID": uuid.uuid5(uuid.NAMESPACE_URL, f"machine/{cluster}/{name}").hex,
                "systemUUID": str(uuid.uuid5(uuid.NAMESPACE_URL, f"system/{cluster}/{name}")),
                "bootID": str(uuid.uuid4()),
            },
        },
    }


def _base36(number: int, width: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    text = ""
    while True:
        number, remainder = divmod(number, 36)
        text = digits[remainder] + text
        if number == 0:
            break
    return text.rjust(width, "0")
