"""Real local Kubernetes clusters (etcd, kube-apiserver, controller-manager, scheduler, kwok nodes)
that stand in for AKS clusters in local Azure."""

from localazure.kube.cluster import LocalCluster
from localazure.kube.errors import ClusterNotFoundError, DrainTimeoutError, LocalClusterError
from localazure.kube.sizes import UnknownVmSizeError, node_resources, vm_size
from localazure.kube.state import NodePool
from localazure.kube.tools import ToolsMissingError, available_versions, helm_binary, tools_dir

__all__ = [
    "ClusterNotFoundError",
    "DrainTimeoutError",
    "LocalCluster",
    "LocalClusterError",
    "NodePool",
    "ToolsMissingError",
    "UnknownVmSizeError",
    "available_versions",
    "helm_binary",
    "node_resources",
    "tools_dir",
    "vm_size",
]
