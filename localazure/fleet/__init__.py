"""Local Azure Kubernetes Fleet Manager: fleets, members, update strategies, update runs and gates.

`provider` is picked up by `localazure.arm.app.default_providers()`.
"""

from localazure.fleet.provider import provider

__all__ = ["provider"]
