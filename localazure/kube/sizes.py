"""Azure VM sizes local node pools accept, and the node resources AKS would report for them."""

from __future__ import annotations

from dataclasses import dataclass

GIB = 1024**3
MIB = 1024**2
MAX_PODS = 110  # AKS default for kubenet node pools


@dataclass(frozen=True)
class VmSize:
    """Hardware of one Azure VM size."""

    name: str
    vcpus: int
    memory_gib: float


_SIZES = [
    VmSize("Standard_B2s", 2, 4),
    VmSize("Standard_B2ms", 2, 8),
    VmSize("Standard_B4ms", 4, 16),
    VmSize("Standard_DS2_v2", 2, 7),
    VmSize("Standard_DS3_v2", 4, 14),
    VmSize("Standard_DS4_v2", 8, 28),
    VmSize("Standard_D2s_v3", 2, 8),
    VmSize("Standard_D4s_v3", 4, 16),
    VmSize("Standard_D8s_v3", 8, 32),
    VmSize("Standard_D16s_v3", 16, 64),
    VmSize("Standard_D2s_v5", 2, 8),
    VmSize("Standard_D4s_v5", 4, 16),
    VmSize("Standard_D8s_v5", 8, 32),
    VmSize("Standard_D2ds_v5", 2, 8),
    VmSize("Standard_D4ds_v5", 4, 16),
    VmSize("Standard_E2s_v3", 2, 16),
    VmSize("Standard_E4s_v3", 4, 32),
    VmSize("Standard_F2s_v2", 2, 4),
    VmSize("Standard_F4s_v2", 4, 8),
]
# Azure treats size names case-insensitively.
_BY_NAME = {size.name.lower(): size for size in _SIZES}


class UnknownVmSizeError(ValueError):
    """The VM size is not in the local table."""


def vm_size(name: str) -> VmSize:
    """Look up a VM size by name (case-insensitive); unknown sizes raise UnknownVmSizeError."""
    try:
        return _BY_NAME[name.lower()]
    except KeyError:
        known = ", ".join(size.name for size in _SIZES)
        raise UnknownVmSizeError(f"unknown VM size {name!r} for a local node pool; known sizes: {known}") from None


def _reserved_cpu_millicores(vcpus: int) -> int:
    # AKS kube-reserved CPU by core count.
    table = {1: 60, 2: 100, 4: 140, 8: 180, 16: 260, 32: 420, 64: 740}
    fitting = [cores for cores in table if cores <= vcpus]
    return table[max(fitting)] if fitting else 60


def _reserved_memory_bytes(memory_bytes: int) -> int:
    # AKS kube-reserved memory: a regressive share of each band of memory, plus the 750Mi eviction threshold.
    bands = [(4 * GIB, 0.25), (4 * GIB, 0.20), (8 * GIB, 0.10), (112 * GIB, 0.06), (float("inf"), 0.02)]
    remaining, reserved = float(memory_bytes), 0.0
    for band, share in bands:
        portion = min(remaining, band)
        reserved += portion * share
        remaining -= portion
        if remaining <= 0:
            break
    return int(reserved) + 750 * MIB


def node_resources(name: str) -> tuple[dict[str, str], dict[str, str]]:
    """Return ``(capacity, allocatable)`` resource maps for a node of the given VM size."""
    size = vm_size(name)
    memory_bytes = int(size.memory_gib * GIB)
    capacity = {
        "cpu": str(size.vcpus),
        "memory": f"{memory_bytes // 1024}Ki",
        "pods": str(MAX_PODS),
        "ephemeral-storage": f"{128 * GIB // 1024}Ki",
    }
    allocatable = {
        "cpu": f"{size.vcpus * 1000 - _reserved_cpu_millicores(size.vcpus)}m",
        "memory": f"{(memory_bytes - _reserved_memory_bytes(memory_bytes)) // 1024}Ki",
        "pods": str(MAX_PODS),
        "ephemeral-storage": f"{int(128 * GIB * 0.9) // 1024}Ki",
    }
    return capacity, allocatable
