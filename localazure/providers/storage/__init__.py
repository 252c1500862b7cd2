"""Microsoft.Storage: storage accounts (Resource Manager only; no blob/queue/table/file data plane)."""

from localazure.providers.storage.accounts import provider

__all__ = ["provider"]
