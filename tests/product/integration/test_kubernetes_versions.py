"""Kubernetes versions are checked against what AKS offers in each region: by `fleetflow spec validate` when
it reaches Azure, and by provision's preflight before anything is created."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from console.local_mode import save_local_blocks
from flows.provision import provision
from tasks.clients import load_azure_clients
from tasks.spec import load_spec
from tests.paths import REPO

pytestmark = [pytest.mark.emulator]
OFFERED = "1.35 (1.35.6), 1.36 (1.36.3), 1.37 (1.37.2)"  # ARM-only local Azure


def _spec(tmp_path: Path, name: str, version: str, region_version: str | None = None) -> Path:
    document = yaml.safe_load((REPO / "tests" / "product" / "specs" / "valid.yaml").read_text())
    document.update(name=name, resource_group=f"rg-{name}", suffix=name[-6:])
    document["cluster_defaults"]["kubernetes_version"] = version
    if region_version:
        document["regions"][1]["kubernetes_version"] = region_version
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def _validate(local_azure, path: Path) -> subprocess.CompletedProcess[str]:
    endpoint = local_azure.endpoint
    env = {**os.environ, "AZURE_TENANT_ID": endpoint.tenant_id, "AZURE_CLIENT_ID": endpoint.client_id,
           "AZURE_CLIENT_SECRET": endpoint.client_secret, "AZURE_SUBSCRIPTION_ID": endpoint.subscription_id,
           "AZURE_AUTHORITY_HOST": endpoint.authority_host,
           "AZURE_RESOURCE_MANAGER_ENDPOINT": endpoint.resource_manager_endpoint,
           "FLEETFLOW_CA_BUNDLE": endpoint.ca_bundle}
    return subprocess.run([sys.executable, "-m", "console.cli", "spec", "validate", str(path)], capture_output=True,
                          text=True, cwd=REPO, env=env, timeout=120)


@pytest.mark.parametrize("version", ["1.3", "1.99", "1.36.9"])
def test_spec_validate_refuses_a_version_the_region_does_not_offer_with_the_offered_list(
        local_azure, tmp_path, fresh_name, version):
    done = _validate(local_azure, _spec(tmp_path, f"kv{fresh_name}", version))
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    assert f"cluster_defaults.kubernetes_version: Kubernetes {version} is not offered in eastus" in done.stderr
    assert f"AKS offers {OFFERED}" in done.stderr


def test_spec_validate_names_the_region_entry_that_overrides_the_version(local_azure, tmp_path, fresh_name):
    done = _validate(local_azure, _spec(tmp_path, f"kv{fresh_name}", "1.36", region_version="1.99"))
    assert done.returncode == 1
    assert "regions[1].kubernetes_version: Kubernetes 1.99 is not offered in westus2" in done.stderr
    assert "eastus" not in done.stderr.split("regions[1]")[0].split("problem(s):")[1]


def test_spec_validate_accepts_offered_versions_and_says_it_checked(local_azure, tmp_path, fresh_name):
    done = _validate(local_azure, _spec(tmp_path, f"kv{fresh_name}", "1.37"))
    assert done.returncode == 0, done.stderr
    assert "Kubernetes versions offered in eastus, westus2" in done.stdout


def test_spec_validate_with_azure_unreachable_is_a_note_not_a_failure(tmp_path, fresh_name):
    env = {**os.environ, "AZURE_TENANT_ID": "t", "AZURE_CLIENT_ID": "c", "AZURE_CLIENT_SECRET": "s",
           "AZURE_SUBSCRIPTION_ID": "00000000-0000-0000-0000-000000000000",
           "AZURE_AUTHORITY_HOST": "https://127.0.0.1:9", "AZURE_RESOURCE_MANAGER_ENDPOINT": "https://127.0.0.1:9"}
    done = subprocess.run([sys.executable, "-m", "console.cli", "spec", "validate",
                           str(_spec(tmp_path, f"kv{fresh_name}", "1.99"))], capture_output=True, text=True,
                          cwd=REPO, env=env, timeout=120)
    assert done.returncode == 0
    assert "not checked against Azure" in done.stdout and "connection refused" in done.stdout
    assert "Traceback" not in done.stderr


def test_provision_refuses_an_unoffered_version_before_creating_anything(local_azure, prefect_server, tmp_path,
                                                                        fresh_name, monkeypatch):
    monkeypatch.setenv("FLEETFLOW_TIME_SCALE", "0.001")
    path = _spec(tmp_path, f"kv{fresh_name}", "1.99")
    save_local_blocks(local_azure.state_dir, fleet=str(path))
    state = provision(fleet=str(path), return_state=True)
    assert state.is_failed()
    assert "preflight: nothing was created" in state.message
    assert "Kubernetes 1.99 is not offered in eastus" in state.message and OFFERED in state.message
    clients = load_azure_clients("fleetflow-azure")
    assert not clients.resource.resource_groups.check_existence(load_spec(path).resource_group_name)
