"""The `fleetflow` console script and local mode: what Prefect's own CLI does not cover (spec checks,
stage approvals) and running the flows against local Azure on this machine.

The only part of the product that may import `localazure` (an import-linter contract checks it); flows,
tasks and blocks never import this package.
"""
