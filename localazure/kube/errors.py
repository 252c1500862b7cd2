"""Errors of local clusters (shared by the cluster, its launch and its node rolls)."""

from __future__ import annotations


class LocalClusterError(RuntimeError):
    """A local cluster operation failed; the message says which cluster and what to look at."""


class ClusterNotFoundError(LocalClusterError):
    """No (live or stopped) cluster state exists in the given home."""


class DrainTimeoutError(LocalClusterError):
    """A node could not be drained in time; names the node and the blocking PodDisruptionBudgets."""

    def __init__(self, message: str, node: str, blocking_pdbs: list[str]) -> None:
        super().__init__(message)
        self.node = node
        self.blocking_pdbs = blocking_pdbs
