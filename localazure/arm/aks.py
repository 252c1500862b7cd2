"""Placeholder replaced below."""
from fastapi import APIRouter

from localazure.arm.providers import ResourceProvider

provider = ResourceProvider(namespace="Microsoft.ContainerService", api_versions=frozenset({"2026-08-01"}),
                            router=APIRouter())


class AksService:
    """Filled in by the AKS provider."""
