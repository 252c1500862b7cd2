"""Prefect blocks fleetflow registers: `prefect block register -m blocks`."""

from blocks.azure import AzureServicePrincipal
from blocks.fleet_spec import FleetSpecBlock

__all__ = ["AzureServicePrincipal", "FleetSpecBlock"]
