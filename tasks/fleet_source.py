"""Where a flow gets its fleet spec: a YAML file path or a saved fleet-spec block."""

from __future__ import annotations

from tasks.spec import FleetSpec, load_spec

BLOCK_PREFIX = "block:"


def resolve_fleet_spec(reference: str) -> FleetSpec:
    """Load the spec named by a flow parameter: `fleet.yaml` (a path) or `block:<name>` (a saved block)."""
    if reference.startswith(BLOCK_PREFIX):
        from blocks.fleet_spec import FleetSpecBlock

        block = FleetSpecBlock.load(reference.removeprefix(BLOCK_PREFIX))
        return block.to_spec()  # type: ignore[union-attr]
    return load_spec(reference)
