"""Pure logic of the local Azure Service Operator: CRD selection and shape, settings, ARM mapping, outputs."""

from __future__ import annotations

import base64

import pytest

from localazure.aso.crds import all_crds, crd_manifest, parse_crd_pattern, selected_kinds
from localazure.aso.kinds import KINDS, REGISTRY, RESOURCE_GROUP, STORAGE_ACCOUNT, VAULT
from localazure.aso.outputs import ExpressionError, evaluate, plan
from localazure.aso.reconcile import Backoff, make_condition, policy_of
from localazure.aso.settings import (
    Credential,
    OperatorSettings,
    SettingsError,
    decode_secret,
    is_loopback_url,
    parse_duration,
)

RECIPE_PATTERN = "resources.azure.com/*;containerservice.azure.com/*;containerregistry.azure.com/*;storage.azure.com/*"


def test_crd_pattern_selects_group_kind_globs() -> None:
    assert parse_crd_pattern(" a/*; ;b/C ") == ["a/*", "b/C"]
    names = [k.kind for k in selected_kinds(RECIPE_PATTERN)]
    assert names == ["ResourceGroup", "Registry", "StorageAccount"]  # no keyvault.azure.com → no Vault
    assert [k.kind for k in selected_kinds("keyvault.azure.com/Vault")] == ["Vault"]
    assert [k.kind for k in selected_kinds("*")] == [k.kind for k in KINDS]
    assert selected_kinds("") == []
    # CRDs already installed are kept (and updated) even when the pattern no longer names them.
    assert [k.kind for k in selected_kinds("", {VAULT.crd_name})] == ["Vault"]


def test_crds_serve_aso_versions_without_conversion_webhooks() -> None:
    versions = {c["spec"]["names"]["kind"]: [v["name"] for v in c["spec"]["versions"]] for c in all_crds("v2.17.0")}
    assert versions == {
        "ResourceGroup": ["v1api20200601"],
        "Registry": ["v1api20230701", "v1api20210901"],
        "Vault": ["v1api20230701", "v1api20210401preview"],
        "StorageAccount": ["v1api20230101", "v1api20210401"],
    }
    for crd in all_crds("v2.17.0"):
        assert crd["spec"]["conversion"] == {"strategy": "None"}
        assert "webhook" not in str(crd)
        stored = [v for v in crd["spec"]["versions"] if v["storage"]]
        assert len(stored) == 1 and stored[0]["name"] == crd["spec"]["versions"][0]["name"]
        assert crd["spec"]["scope"] == "Namespaced"


def test_schemas_carry_asos_fields() -> None:
    rg = crd_manifest(RESOURCE_GROUP, "v")["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    assert rg["required"] == ["location"] and "owner" not in rg["properties"]
    reg = REGISTRY.spec
    assert reg["required"] == ["owner", "sku"]
    assert reg["properties"]["sku"]["properties"]["name"]["enum"] == ["Basic", "Classic", "Premium", "Standard"]
    assert reg["properties"]["owner"]["x-kubernetes-validations"][0]["rule"] == "has(self.name) != has(self.armId)"
    assert set(VAULT.spec["properties"]["properties"]["properties"]) >= {"tenantId", "sku", "accessPolicies"}
    assert "tenantID" not in VAULT.spec["properties"]["properties"]["properties"]
    sa = STORAGE_ACCOUNT.spec["properties"]
    assert "properties" not in sa  # StorageAccount's spec is flattened, unlike the recipe's manifest
    assert set(sa["operatorSpec"]["properties"]["secrets"]["properties"]) >= {"key1", "key2", "blobEndpoint"}


def test_arm_bodies() -> None:
    spec = {"owner": {"name": "rg"}, "azureName": "acr1", "location": "eastus", "sku": {"name": "Standard"},
            "adminUserEnabled": False, "tags": {"a": "b"}, "operatorSpec": {}}
    assert REGISTRY.to_arm(spec) == {"location": "eastus", "sku": {"name": "Standard"}, "tags": {"a": "b"},
                                     "properties": {"adminUserEnabled": False}}
    sa = STORAGE_ACCOUNT.to_arm({"owner": {"armId": "/x"}, "location": "eastus", "kind": "StorageV2",
                                 "sku": {"name": "Standard_LRS"}, "accessTier": "Hot"})
    assert sa == {"location": "eastus", "kind": "StorageV2", "sku": {"name": "Standard_LRS"},
                  "properties": {"accessTier": "Hot"}}
    vault = VAULT.to_arm({"owner": {"name": "rg"}, "location": "eastus",
                          "properties": {"createMode": "createOrRecover", "sku": {"family": "A", "name": "standard"}}})
    assert vault == {"location": "eastus", "properties": {"createMode": "default",
                                                          "sku": {"family": "A", "name": "standard"}}}
    assert RESOURCE_GROUP.to_arm({"location": "eastus", "azureName": "x"}) == {"location": "eastus"}
    assert REGISTRY.to_status({"id": "i", "properties": {"loginServer": "l"}}) == {"id": "i", "loginServer": "l"}
    assert VAULT.to_status({"properties": {"vaultUri": "u"}}) == {"properties": {"vaultUri": "u"}}


def test_settings_and_credentials() -> None:
    secret = {"data": {"AZURE_CLIENT_ID": base64.b64encode(b"c").decode()}, "stringData": {"AZURE_TENANT_ID": "t"}}
    assert decode_secret(secret) == {"AZURE_CLIENT_ID": "c", "AZURE_TENANT_ID": "t"}
    values = {"AZURE_SUBSCRIPTION_ID": "s", "AZURE_TENANT_ID": "t", "AZURE_CLIENT_ID": "c",
              "AZURE_CLIENT_SECRET": "hidden", "AZURE_SYNC_PERIOD": "1m30s",
              "AZURE_RESOURCE_MANAGER_ENDPOINT": "https://127.0.0.1:8443/", "AZURE_AUTHORITY_HOST": "https://127.0.0.1:8443",
              "AZURE_TARGET_NAMESPACES": "a, b"}
    settings = OperatorSettings.from_secret(values)
    assert settings.sync_period == 90 and settings.target_namespaces == ("a", "b")
    assert settings.global_credential is not None and "hidden" not in repr(settings.global_credential)
    settings.check_loopback()
    assert settings.watches("a") and not settings.watches("c")
    public = OperatorSettings.from_secret({k: v for k, v in values.items() if "ENDPOINT" not in k})
    with pytest.raises(SettingsError, match="loopback"):
        public.check_loopback()
    with pytest.raises(SettingsError, match="AZURE_CLIENT_SECRET"):
        Credential.from_values({"AZURE_SUBSCRIPTION_ID": "s", "AZURE_TENANT_ID": "t", "AZURE_CLIENT_ID": "c"}, "x")
    assert OperatorSettings.from_secret({}).global_credential is None
    assert parse_duration("15m") == 900 and parse_duration("2s") == 2 and parse_duration("500ms") == 0.5
    with pytest.raises(ValueError):
        parse_duration("5 minutes")
    assert is_loopback_url("https://127.0.0.5:1/") and is_loopback_url("https://localhost:9")
    assert not is_loopback_url("https://management.azure.com/") and not is_loopback_url("https://10.0.0.1/")


def test_outputs() -> None:
    resource = {"spec": {"operatorSpec": {
        "secrets": {"key1": {"name": "sa-secret", "key": "key"}, "blobEndpoint": {"name": "sa-secret", "key": "blob"}},
        "configMaps": {"blobEndpoint": {"name": "sa-cm", "key": "blob"}},
        "configMapExpressions": [{"name": "sa-cm", "key": "loc", "value": "'in ' + self.status.location"}],
        "secretExpressions": [{"name": "conn", "key": "c", "value": "'Key=' + secret.key1"}],
    }}, "status": {"location": "eastus"}}
    secrets, config_maps = plan(STORAGE_ACCOUNT, resource, {"key1": "K", "blobEndpoint": "https://b/"})
    assert secrets == {"sa-secret": {"key": "K", "blob": "https://b/"}, "conn": {"c": "Key=K"}}
    assert config_maps == {"sa-cm": {"blob": "https://b/", "loc": "in eastus"}}
    assert evaluate("self.status.loginServer", {"status": {"loginServer": "x.azurecr.io"}}) == "x.azurecr.io"
    with pytest.raises(ExpressionError):
        evaluate("self.status.missing", {"status": {}})
    with pytest.raises(ExpressionError):
        evaluate("size(self.spec)", {})


def test_conditions_policy_and_backoff() -> None:
    first = make_condition(None, False, "Reconciling", "m", "Info", 1)
    assert first["severity"] == "Info" and first["observedGeneration"] == 1
    ready = make_condition(first, True, "Succeeded", "", "Warning", 2)
    assert "severity" not in ready and ready["status"] == "True"
    again = make_condition(dict(ready, lastTransitionTime="2000-01-01T00:00:00Z"), True, "Succeeded", "", "", 2)
    assert again["lastTransitionTime"] == "2000-01-01T00:00:00Z"
    annotated = {"metadata": {"annotations": {"serviceoperator.azure.com/reconcile-policy": "skip"}}}
    assert policy_of(annotated) == "skip"
    assert policy_of({"metadata": {"annotations": {"serviceoperator.azure.com/reconcile-policy": "Skip"}}}) == "manage"
    now = [0.0]
    backoff = Backoff(base=1, maximum=4, clock=lambda: now[0])
    assert [backoff.failed("k") for _ in range(4)] == [1, 2, 4, 4]
    assert not backoff.due("k")
    now[0] = 5
    assert backoff.due("k") and backoff.failing("k")
    assert backoff.failed("k", hint=10) == 10
    backoff.succeeded("k")
    assert backoff.due("k") and not backoff.failing("k")
