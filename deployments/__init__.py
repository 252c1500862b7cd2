"""Deployments: prefect.yaml is the source of truth; this package reads and checks it."""
