"""A fleet spec stored as a Prefect block, so UI runs and deployments need no file on the worker."""

from __future__ import annotations

from prefect.blocks.core import Block
from pydantic import Field

from tasks.spec import FleetSpec, find_problems, parse_spec


class FleetSpecBlock(Block):
    """The desired state of one fleet (the same YAML as fleet.yaml), validated when loaded."""

    _block_type_name = "fleetflow Fleet Spec"
    _block_type_slug = "fleetflow-fleet-spec"
    _description = "A fleetflow fleet spec: regions, clusters, update groups, update strategy."

    spec_yaml: str = Field(description="The fleet spec in YAML, as in fleet.yaml.")

    def to_spec(self) -> FleetSpec:
        """The validated fleet spec; raises FleetSpecError naming every problem."""
        return parse_spec(self.spec_yaml, f"block {self._block_document_name or '(unsaved)'}")

    def problems(self) -> list[str]:
        """Problems in the stored YAML, as printable lines (empty when valid)."""
        import yaml

        return [str(problem) for problem in find_problems(yaml.safe_load(self.spec_yaml))]
