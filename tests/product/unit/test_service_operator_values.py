"""What bootstrap-aso hands to Helm and to the settings Secret: the secret only ever in the Secret."""

from __future__ import annotations

import json

from blocks.azure import AzureServicePrincipal
from tasks.service_operator import cert_manager_values, operator_settings, service_operator_values
from tasks.spec import crd_pattern_items, load_spec
from tests.paths import REPO

SECRET = "aso-secret-canary-7f1c"


def _principal(**endpoints: str) -> AzureServicePrincipal:
    return AzureServicePrincipal(tenant_id="t-1", client_id="c-1", client_secret=SECRET, subscription_id="s-1",
                                 **endpoints)


def test_helm_values_carry_the_pattern_and_ids_but_never_the_secret() -> None:
    spec = load_spec(REPO / "fleet.yaml")
    values = service_operator_values(spec, _principal())
    assert values["createAzureOperatorSecret"] is False
    assert values["crdPattern"] == spec.service_operator.crd_pattern
    assert (values["azureSubscriptionID"], values["azureTenantID"], values["azureClientID"]) == ("s-1", "t-1", "c-1")
    assert SECRET not in json.dumps(values) and "azureClientSecret" not in values
    assert "azureResourceManagerEndpoint" not in values  # public cloud: ASO's defaults
    assert cert_manager_values() == {"crds": {"enabled": True}}


def test_a_custom_cloud_gets_its_endpoints_in_values_and_settings() -> None:
    spec = load_spec(REPO / "fleet.yaml")
    principal = _principal(resource_manager_endpoint="https://127.0.0.1:8443", authority_host="https://127.0.0.1:8443")
    values = service_operator_values(spec, principal)
    assert values["azureResourceManagerEndpoint"] == "https://127.0.0.1:8443"
    settings = operator_settings(principal)
    assert settings["AZURE_CLIENT_SECRET"] == SECRET
    assert settings["AZURE_RESOURCE_MANAGER_ENDPOINT"] == "https://127.0.0.1:8443"
    assert settings["AZURE_AUTHORITY_HOST"] == "https://127.0.0.1:8443"


def test_public_cloud_settings_hold_only_the_four_identity_keys() -> None:
    assert sorted(operator_settings(_principal())) == ["AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET",
                                                       "AZURE_SUBSCRIPTION_ID", "AZURE_TENANT_ID"]


def test_crd_pattern_items_split_groups_and_kinds() -> None:
    assert crd_pattern_items("resources.azure.com/*;storage.azure.com/StorageAccount") == [
        ("resources.azure.com", "*"), ("storage.azure.com", "StorageAccount")]
