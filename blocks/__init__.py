"""Prefect blocks fleetflow registers: `prefect block register -m blocks`."""

from blocks.azure import AzureServicePrincipal
from blocks.fleet_spec import FleetSpecBlock
from blocks.git import GitCredentials

__all__ = ["AzureServicePrincipal", "FleetSpecBlock", "GitCredentials"]
