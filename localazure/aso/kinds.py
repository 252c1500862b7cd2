"""The ASO kinds local mode serves: CRD schemas (ASO's documented fields) and their Resource Manager mapping.

Each kind lists the CRD versions ASO serves for it (the newest is the storage version) and the ARM
api-version the controller uses. Schemas follow ASO's generated CRDs closely enough that the real
apiserver refuses what ASO's CRDs (and, through CEL rules, ASO's webhooks) refuse: required fields,
enums, name patterns, and unknown fields (structural schemas prune or, with strict field validation,
reject them).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Schema = dict[str, Any]

# Resource Manager ids ASO accepts in owner.armId (its KnownResourceReference pattern).
ARM_ID_PATTERN = (
    r"(?i)(^(/subscriptions/([^/]+)(/resourcegroups/([^/]+))?)?/providers/([^/]+)/([^/]+/[^/]+)(/([^/]+/[^/]+))*$"
    r"|^/subscriptions/([^/]+)(/resourcegroups/([^/]+))?$)"
)
GUID_PATTERN = r"^[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}$"


# ---- schema helpers ------------------------------------------------------------------------------

def s(description: str = "", **extra: Any) -> Schema:
    """A string."""
    out: Schema = {"type": "string", **extra}
    if description:
        out["description"] = description
    return out


def b() -> Schema:
    """A boolean."""
    return {"type": "boolean"}


def i(**extra: Any) -> Schema:
    """An integer."""
    return {"type": "integer", **extra}


def enum(*values: str) -> Schema:
    """A string enum."""
    return {"type": "string", "enum": list(values)}


def obj(properties: dict[str, Schema], required: list[str] | None = None, description: str = "",
        rules: list[dict[str, str]] | None = None) -> Schema:
    """An object with known properties (anything else is unknown to the apiserver)."""
    out: Schema = {"type": "object", "properties": properties}
    if required:
        out["required"] = required
    if description:
        out["description"] = description
    if rules:
        out["x-kubernetes-validations"] = rules
    return out


def arr(items: Schema) -> Schema:
    """An array."""
    return {"type": "array", "items": items}


def string_map() -> Schema:
    """map[string]string."""
    return {"type": "object", "additionalProperties": {"type": "string"}}


def free_object() -> Schema:
    """An object whose fields local mode passes through unchecked."""
    return {"type": "object", "x-kubernetes-preserve-unknown-fields": True}


def destination() -> Schema:
    """genruntime.SecretDestination / ConfigMapDestination."""
    return obj({"key": s("Key is the key in the Kubernetes object being referenced"),
                "name": s("Name is the name of the Kubernetes object being referenced; it is in the resource's "
                          "namespace")}, ["key", "name"])


def reference() -> Schema:
    """genruntime.ResourceReference (ARM id or a Kubernetes group/kind/name)."""
    return obj({"armId": s(pattern=ARM_ID_PATTERN), "group": s(), "kind": s(), "name": s()})


def known_owner() -> Schema:
    """genruntime.KnownResourceReference: the resource group owning the resource."""
    return obj(
        {"armId": s("ARM id of the owner", pattern=ARM_ID_PATTERN),
         "name": s("Kubernetes name of the owner, in the same namespace")},
        description="The owner of the resource. The owner controls where the resource goes when it is deployed. "
                    "Owner is expected to be a reference to a resources.azure.com/ResourceGroup resource",
        rules=[{"rule": "has(self.name) != has(self.armId)",
                "message": "exactly one of owner.name and owner.armId must be set"}],
    )


def expression() -> Schema:
    """core.DestinationExpression (configMapExpressions / secretExpressions)."""
    return obj({"key": s(), "name": s(), "value": s()}, ["name", "value"])


def operator_spec(secrets: list[str] = (), config_maps: list[str] = ()) -> Schema:  # type: ignore[assignment]
    """operatorSpec: expressions everywhere, fixed secrets/configMaps where ASO has them."""
    props: dict[str, Schema] = {"configMapExpressions": arr(expression()), "secretExpressions": arr(expression())}
    if secrets:
        props["secrets"] = obj({name: destination() for name in secrets})
    if config_maps:
        props["configMaps"] = obj({name: destination() for name in config_maps})
    return obj(props, description="The specification for configuring operator behavior. This field is interpreted "
                                  "by the operator and not passed directly to Azure")


def status_schema() -> Schema:
    """Status: ASO's conditions typed, the resource's Azure fields kept as Azure returns them."""
    condition = obj({
        "lastTransitionTime": s(format="date-time"),
        "message": s(),
        "observedGeneration": i(format="int64"),
        "reason": s(),
        "severity": s(),
        "status": s(),
        "type": s(),
    }, ["lastTransitionTime", "status", "type"])
    return {"type": "object", "x-kubernetes-preserve-unknown-fields": True,
            "properties": {"conditions": arr(condition), "id": s()}}


# ---- kinds ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class AsoKind:
    """One ASO kind served by local mode."""

    group: str
    kind: str
    plural: str
    versions: tuple[str, ...]  # CRD versions served, newest (the storage version) first
    arm_api_version: str
    arm_type: str  # "Microsoft.Resources/resourceGroups", "Microsoft.KeyVault/vaults", ...
    spec: Schema
    to_arm: Callable[[dict[str, Any]], dict[str, Any]]
    to_status: Callable[[dict[str, Any]], dict[str, Any]]
    owned: bool = True  # has spec.owner (a resource group)
    secrets: tuple[str, ...] = ()  # operatorSpec.secrets this kind exports
    config_maps: tuple[str, ...] = ()
    short_category: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def crd_name(self) -> str:
        """`<plural>.<group>`."""
        return f"{self.plural}.{self.group}"

    @property
    def storage_version(self) -> str:
        """The version objects are stored in (and the controller reads)."""
        return self.versions[0]


OPERATOR_FIELDS = ("azureName", "owner", "operatorSpec")


def _split(spec: dict[str, Any], top: tuple[str, ...]) -> dict[str, Any]:
    """ARM body of a flattened ASO spec: `top` fields stay at the top, the rest go under properties."""
    body: dict[str, Any] = {}
    properties: dict[str, Any] = {}
    for key, value in spec.items():
        if key in OPERATOR_FIELDS:
            continue
        if key in top:
            body[key] = value
        else:
            properties[key] = value
    if properties:
        body["properties"] = properties
    return body


def _flatten_status(arm: dict[str, Any]) -> dict[str, Any]:
    """ASO status of a flattened kind: ARM `properties` lifted to the top."""
    out = {k: v for k, v in arm.items() if k != "properties"}
    out.update(arm.get("properties") or {})
    return out


def _nested_status(arm: dict[str, Any]) -> dict[str, Any]:
    return dict(arm)


def _plain_body(spec: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in spec.items() if k not in OPERATOR_FIELDS}


def _vault_body(spec: dict[str, Any]) -> dict[str, Any]:
    body = _plain_body(spec)
    props = dict(body.get("properties") or {})
    # ASO's own create modes: createOrRecover / purgeThenCreate are decided by the operator; ARM gets default.
    if props.get("createMode") in ("createOrRecover", "purgeThenCreate"):
        props["createMode"] = "default"
    props.pop("tenantIdFromConfig", None)
    body["properties"] = props
    return body


RESOURCE_GROUP = AsoKind(
    group="resources.azure.com", kind="ResourceGroup", plural="resourcegroups",
    versions=("v1api20200601",), arm_api_version="2020-06-01", arm_type="Microsoft.Resources/resourceGroups",
    owned=False, short_category="resources",
    spec=obj({
        "azureName": s("The name of the resource in Azure. This is often the same as the name of the resource in "
                       "Kubernetes but it doesn't have to be.", maxLength=90, minLength=1, pattern=r"^[-\w\._\(\)]+$"),
        "location": s("The location of the resource group. It cannot be changed after the resource group has been "
                      "created.", **{"x-kubernetes-validations": [
                          {"rule": "self == oldSelf", "message": "location is immutable"}]}),
        "managedBy": s("The ID of the resource that manages this resource group."),
        "operatorSpec": operator_spec(),
        "tags": string_map(),
    }, ["location"]),
    to_arm=_plain_body, to_status=_nested_status,
)

REGISTRY = AsoKind(
    group="containerregistry.azure.com", kind="Registry", plural="registries",
    versions=("v1api20230701", "v1api20210901"), arm_api_version="2023-07-01",
    arm_type="Microsoft.ContainerRegistry/registries", short_category="containerregistry",
    spec=obj({
        "adminUserEnabled": b(),
        "anonymousPullEnabled": b(),
        "azureName": s(maxLength=50, minLength=5, pattern=r"^[a-zA-Z0-9]*$"),
        "dataEndpointEnabled": b(),
        "encryption": obj({"keyVaultProperties": obj({"identity": s(), "keyIdentifier": s()}),
                           "status": enum("disabled", "enabled")}),
        "identity": obj({"type": enum("None", "SystemAssigned", "SystemAssigned, UserAssigned", "UserAssigned"),
                         "userAssignedIdentities": arr(obj({"reference": reference()}))}),
        "location": s(),
        "networkRuleBypassOptions": enum("AzureServices", "None"),
        "networkRuleSet": obj({"defaultAction": enum("Allow", "Deny"),
                               "ipRules": arr(obj({"action": enum("Allow"), "value": s()}, ["value"]))},
                              ["defaultAction"]),
        "operatorSpec": operator_spec(),
        "owner": known_owner(),
        "policies": obj({
            "azureADAuthenticationAsArmPolicy": obj({"status": enum("disabled", "enabled")}),
            "exportPolicy": obj({"status": enum("disabled", "enabled")}),
            "quarantinePolicy": obj({"status": enum("disabled", "enabled")}),
            "retentionPolicy": obj({"days": i(), "status": enum("disabled", "enabled")}),
            "softDeletePolicy": obj({"retentionDays": i(), "status": enum("disabled", "enabled")}),
            "trustPolicy": obj({"status": enum("disabled", "enabled"), "type": enum("Notary")}),
        }),
        "publicNetworkAccess": enum("Disabled", "Enabled"),
        "sku": obj({"name": enum("Basic", "Classic", "Premium", "Standard")}, ["name"]),
        "tags": string_map(),
        "zoneRedundancy": enum("Disabled", "Enabled"),
    }, ["owner", "sku"]),
    to_arm=lambda spec: _split(spec, ("location", "tags", "sku", "identity")), to_status=_flatten_status,
)

_PERMISSIONS = {
    "certificates": ("all", "backup", "create", "delete", "deleteissuers", "get", "getissuers", "import", "list",
                     "listissuers", "managecontacts", "manageissuers", "purge", "recover", "restore", "setissuers",
                     "update"),
    "keys": ("all", "backup", "create", "decrypt", "delete", "encrypt", "get", "getrotationpolicy", "import",
             "list", "purge", "recover", "release", "restore", "rotate", "setrotationpolicy", "sign", "unwrapKey",
             "update", "verify", "wrapKey"),
    "secrets": ("all", "backup", "delete", "get", "list", "purge", "recover", "restore", "set"),
    "storage": ("all", "backup", "delete", "deletesas", "get", "getsas", "list", "listsas", "purge", "recover",
                "regeneratekey", "restore", "set", "setsas", "update"),
}

VAULT = AsoKind(
    group="keyvault.azure.com", kind="Vault", plural="vaults",
    versions=("v1api20230701", "v1api20210401preview"), arm_api_version="2023-07-01",
    arm_type="Microsoft.KeyVault/vaults", short_category="keyvault",
    spec=obj({
        "azureName": s(pattern=r"^[a-zA-Z0-9-]{3,24}$"),
        "location": s("The supported Azure location where the key vault should be created."),
        "operatorSpec": operator_spec(),
        "owner": known_owner(),
        "properties": obj({
            "accessPolicies": arr(obj({
                "applicationId": s(pattern=GUID_PATTERN),
                "applicationIdFromConfig": destination(),
                "objectId": s(),
                "objectIdFromConfig": destination(),
                "permissions": obj({k: arr(enum(*v)) for k, v in _PERMISSIONS.items()}),
                "tenantId": s(pattern=GUID_PATTERN),
                "tenantIdFromConfig": destination(),
            })),
            "createMode": enum("createOrRecover", "default", "purgeThenCreate", "recover"),
            "enablePurgeProtection": b(),
            "enableRbacAuthorization": b(),
            "enableSoftDelete": b(),
            "enabledForDeployment": b(),
            "enabledForDiskEncryption": b(),
            "enabledForTemplateDeployment": b(),
            "networkAcls": obj({
                "bypass": enum("AzureServices", "None"),
                "defaultAction": enum("Allow", "Deny"),
                "ipRules": arr(obj({"value": s()})),
                "virtualNetworkRules": arr(obj({"ignoreMissingVnetServiceEndpoint": b(), "reference": reference()})),
            }),
            "provisioningState": enum("RegisteringDns", "Succeeded"),
            "publicNetworkAccess": s(),
            "sku": obj({"family": enum("A"), "name": enum("premium", "standard")}, ["family", "name"]),
            "softDeleteRetentionInDays": i(),
            "tenantId": s(pattern=GUID_PATTERN),
            "tenantIdFromConfig": destination(),
            "vaultUri": s(),
        }, description="Properties of the vault"),
        "tags": string_map(),
    }, ["location", "owner", "properties"]),
    to_arm=_vault_body, to_status=_nested_status,
)

_ENDPOINTS = ("blobEndpoint", "dfsEndpoint", "fileEndpoint", "queueEndpoint", "tableEndpoint", "webEndpoint")
_SERVICE = obj({"enabled": b(), "keyType": enum("Account", "Service")})

STORAGE_ACCOUNT = AsoKind(
    group="storage.azure.com", kind="StorageAccount", plural="storageaccounts",
    versions=("v1api20230101", "v1api20210401"), arm_api_version="2023-01-01",
    arm_type="Microsoft.Storage/storageAccounts", short_category="storage",
    secrets=(*_ENDPOINTS, "key1", "key2"), config_maps=_ENDPOINTS,
    spec=obj({
        "accessTier": enum("Cool", "Hot", "Premium"),
        "allowBlobPublicAccess": b(),
        "allowCrossTenantReplication": b(),
        "allowSharedKeyAccess": b(),
        "allowedCopyScope": enum("AAD", "PrivateLink"),
        "azureFilesIdentityBasedAuthentication": free_object(),
        "azureName": s(maxLength=24, minLength=3),
        "customDomain": obj({"name": s(), "useSubDomainName": b()}, ["name"]),
        "defaultToOAuthAuthentication": b(),
        "dnsEndpointType": enum("AzureDnsZone", "Standard"),
        "encryption": obj({
            "identity": obj({"federatedIdentityClientId": s(), "userAssignedIdentityReference": reference()}),
            "keySource": enum("Microsoft.Keyvault", "Microsoft.Storage"),
            "keyvaultproperties": obj({"keyname": s(), "keyvaulturi": s(), "keyversion": s()}),
            "requireInfrastructureEncryption": b(),
            "services": obj({"blob": _SERVICE, "file": _SERVICE, "queue": _SERVICE, "table": _SERVICE}),
        }),
        "extendedLocation": obj({"name": s(), "type": enum("EdgeZone")}),
        "identity": obj({"type": enum("None", "SystemAssigned", "SystemAssigned,UserAssigned", "UserAssigned"),
                         "userAssignedIdentities": arr(obj({"reference": reference()}))}, ["type"]),
        "immutableStorageWithVersioning": free_object(),
        "isHnsEnabled": b(),
        "isLocalUserEnabled": b(),
        "isNfsV3Enabled": b(),
        "isSftpEnabled": b(),
        "keyPolicy": obj({"keyExpirationPeriodInDays": i()}, ["keyExpirationPeriodInDays"]),
        "kind": enum("BlobStorage", "BlockBlobStorage", "FileStorage", "Storage", "StorageV2"),
        "largeFileSharesState": enum("Disabled", "Enabled"),
        "location": s(),
        "minimumTlsVersion": enum("TLS1_0", "TLS1_1", "TLS1_2"),
        "networkAcls": obj({
            "bypass": s(),
            "defaultAction": enum("Allow", "Deny"),
            "ipRules": arr(obj({"action": enum("Allow"), "value": s()}, ["value"])),
            "resourceAccessRules": arr(obj({"resourceReference": reference(), "tenantId": s()})),
            "virtualNetworkRules": arr(obj({"action": enum("Allow"), "reference": reference(),
                                            "state": s()}, ["reference"])),
        }, ["defaultAction"]),
        "operatorSpec": operator_spec(secrets=[*_ENDPOINTS, "key1", "key2"], config_maps=list(_ENDPOINTS)),
        "owner": known_owner(),
        "publicNetworkAccess": enum("Disabled", "Enabled", "SecuredByPerimeter"),
        "routingPreference": free_object(),
        "sasPolicy": obj({"expirationAction": enum("Log"), "sasExpirationPeriod": s()},
                         ["expirationAction", "sasExpirationPeriod"]),
        "sku": obj({"name": enum("Premium_LRS", "Premium_ZRS", "Standard_GRS", "Standard_GZRS", "Standard_LRS",
                                 "Standard_RAGRS", "Standard_RAGZRS", "Standard_ZRS"),
                    "tier": enum("Premium", "Standard")}, ["name"]),
        "supportsHttpsTrafficOnly": b(),
        "tags": string_map(),
    }, ["kind", "location", "owner", "sku"]),
    to_arm=lambda spec: _split(spec, ("location", "tags", "sku", "kind", "identity", "extendedLocation")),
    to_status=_flatten_status,
)

KINDS: tuple[AsoKind, ...] = (RESOURCE_GROUP, REGISTRY, VAULT, STORAGE_ACCOUNT)


def kind_by_group_kind(group: str, kind: str) -> AsoKind | None:
    """The served kind of a group/Kind, if any."""
    for candidate in KINDS:
        if candidate.group == group and candidate.kind == kind:
            return candidate
    return None
