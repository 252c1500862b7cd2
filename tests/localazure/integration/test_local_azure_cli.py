"""`fleetflow local up|env|sp create|status|down` implementations (localazure.cli) on their own state directory."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from localazure import LocalAzure, cli

pytestmark = pytest.mark.emulator


@pytest.fixture
def state_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("FLEETFLOW_LOCAL_CLUSTERS", "arm-only")
    yield tmp_path / "local"
    LocalAzure(tmp_path / "local").stop()


def test_up_is_idempotent_env_works_with_environment_credential_and_down_stops(state_dir, monkeypatch, capsys):
    assert cli.up(state_dir) == 0
    pid = LocalAzure(state_dir).endpoint.pid
    assert cli.up(state_dir) == 0
    assert LocalAzure(state_dir).endpoint.pid == pid

    exports = dict(shlex.split(line)[1].split("=", 1) for line in cli.env(state_dir).splitlines())
    assert set(exports) == {"AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET", "AZURE_SUBSCRIPTION_ID",
                            "AZURE_AUTHORITY_HOST", "AZURE_RESOURCE_MANAGER_ENDPOINT", "REQUESTS_CA_BUNDLE",
                            "FLEETFLOW_CA_BUNDLE", "FLEETFLOW_CHART_MIRROR"}
    # The chart mirror bootstrap-aso uses holds local mode's Azure Service Operator chart.
    assert "azure-service-operator" in (Path(exports["FLEETFLOW_CHART_MIRROR"]) / "index.yaml").read_text()
    for name, value in exports.items():
        monkeypatch.setenv(name, value)
    from azure.identity import EnvironmentCredential
    from azure.mgmt.resource.resources import ResourceManagementClient

    # REQUESTS_CA_BUNDLE alone makes the SDK trust the emulator: no connection_verify here.
    credential = EnvironmentCredential(disable_instance_discovery=True)
    client = ResourceManagementClient(credential, exports["AZURE_SUBSCRIPTION_ID"],
                                      base_url=exports["AZURE_RESOURCE_MANAGER_ENDPOINT"])
    assert client.resource_groups.create_or_update("from-env", {"location": "eastus"}).name == "from-env"

    sp = cli.sp_create("ci-bot", state_dir)
    assert set(sp) >= {"appId", "displayName", "password", "tenant", "objectId"}
    assert sp["tenant"] == exports["AZURE_TENANT_ID"]

    capsys.readouterr()
    assert cli.status(state_dir) == 0
    assert '"from-env"' in capsys.readouterr().out
    assert cli.down(state_dir) == 0
    assert cli.status(state_dir) == 1
    assert cli.down(state_dir) == 0
