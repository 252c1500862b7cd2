"""Local Azure: a Resource Manager + token emulator whose AKS clusters are real local Kubernetes clusters."""

from localazure.local import Endpoint, LocalAzure, LocalAzureError, default_state_dir

__all__ = ["Endpoint", "LocalAzure", "LocalAzureError", "default_state_dir"]
