"""What Resource Manager answers about itself: cloud metadata (`az cloud register`), subscriptions and tenants
(`az login`, `az account`), locations, and resource providers (`az provider list/show/register`).

Provider metadata is derived from the registered providers: each namespace's resource types come from the paths
its routes serve, with the api-versions the front door accepts for them and local Azure's locations.
Registration state is kept per subscription (table `providerRegistrations`); every served namespace starts
Registered, as the namespaces a subscription uses are, except those the `unregistered` knob names (NotRegistered,
as in a new subscription). Requests to a namespace that is not Registered are refused by the front door
(`missing_registration`) with Resource Manager's 409 MissingSubscriptionRegistration.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from localazure.arm.auth import get_caller
from localazure.arm.context import Emulator, get_emulator
from localazure.arm.errors import ArmError
from localazure.arm.rbac import Principal

router = APIRouter()

REGISTRATIONS = "providerRegistrations"

# Locations local Azure offers (name -> display name, region pair), as `az account list-locations` shows them.
LOCATIONS: dict[str, tuple[str, str, str]] = {
    "eastus": ("East US", "US", "westus"),
    "eastus2": ("East US 2", "US", "centralus"),
    "westus": ("West US", "US", "eastus"),
    "westus2": ("West US 2", "US", "westcentralus"),
    "westus3": ("West US 3", "US", "eastus"),
    "centralus": ("Central US", "US", "eastus2"),
    "northcentralus": ("North Central US", "US", "southcentralus"),
    "southcentralus": ("South Central US", "US", "northcentralus"),
    "westcentralus": ("West Central US", "US", "westus2"),
    "canadacentral": ("Canada Central", "Canada", "canadaeast"),
    "northeurope": ("North Europe", "Europe", "westeurope"),
    "westeurope": ("West Europe", "Europe", "northeurope"),
    "uksouth": ("UK South", "UK", "ukwest"),
    "francecentral": ("France Central", "France", "francesouth"),
    "germanywestcentral": ("Germany West Central", "Germany", "germanynorth"),
    "swedencentral": ("Sweden Central", "Sweden", "swedensouth"),
    "japaneast": ("Japan East", "Asia Pacific", "japanwest"),
    "australiaeast": ("Australia East", "Australia", "australiasoutheast"),
    "southeastasia": ("Southeast Asia", "Asia Pacific", "eastasia"),
    "centralindia": ("Central India", "India", "southindia"),
    "brazilsouth": ("Brazil South", "Brazil", "southcentralus"),
}

# Namespaces whose paths carry no `providers` segment, or that Resource Manager itself serves.
_ALWAYS_REGISTERED = ("microsoft.resources", "microsoft.authorization")
# Microsoft.Resources' paths carry no namespace, so its types are listed here.
_RESOURCES_TYPES = ("resourceGroups", "subscriptions", "subscriptions/resourceGroups", "subscriptions/providers",
                    "subscriptions/locations", "subscriptions/resources", "subscriptions/resourceGroups/resources",
                    "subscriptions/operationresults", "tenants", "providers", "operationresults")


# ---- cloud metadata -------------------------------------------------------------------------------


def cloud_metadata(emulator: Emulator, *, name: str = "fleetflow-local") -> dict[str, Any]:
    """One cloud in the shape of Resource Manager's `/metadata/endpoints` (api-version 2022-09-01 and later):
    every endpoint is local Azure's; suffixes keep Azure's names (nothing resolves them: resources answer with
    loopback URLs)."""
    base = emulator.base_url + "/"
    return {
        "name": name,
        "portal": base,
        "resourceManager": base,
        # az takes the first audience as the resource of its tokens (scope `<audience>/.default`), as in Azure.
        "authentication": {"loginEndpoint": base, "audiences": ["https://management.core.windows.net/",
                                                                   "https://management.azure.com/", base],
                           "tenant": "common", "identityProvider": "AAD"},
        "media": base,
        "graphAudience": base,
        "graph": base,
        "batch": base,
        "microsoftGraphResourceId": base,
        "activeDirectoryDataLake": base,
        "sqlManagement": base,
        "gallery": base,
        "logAnalyticsResourceId": base,
        "appInsightsResourceId": base,
        "appInsightsTelemetryChannelResourceId": base,
        "synapseAnalyticsResourceId": base,
        "attestationResourceId": base,
        "ossrDbmsResourceId": base,
        "suffixes": {"acrLoginServer": "azurecr.io", "keyVaultDns": "vault.azure.net",
                     "storage": "core.windows.net", "sqlServerHostname": "database.windows.net",
                     "mhsmDns": "managedhsm.azure.net", "mysqlServerEndpoint": "mysql.database.azure.com",
                     "postgresqlServerEndpoint": "postgres.database.azure.com",
                     "mariadbServerEndpoint": "mariadb.database.azure.com",
                     "synapseAnalytics": "dev.azuresynapse.net", "attestationEndpoint": "attest.azure.net",
                     "azureDataLakeStoreFileSystem": "azuredatalakestore.net",
                     "azureDataLakeAnalyticsCatalogAndJob": "azuredatalakeanalytics.net",
                     "storageSyncEndpointSuffix": "afs.azure.net", "acrLoginServerEndpoint": "azurecr.io"},
    }


def legacy_cloud_metadata(emulator: Emulator) -> dict[str, Any]:
    """The pre-2022 `/metadata/endpoints` shape (api-version 2015-01-01, 2019-05-01, ...)."""
    base = emulator.base_url + "/"
    return {
        "galleryEndpoint": base,
        "graphEndpoint": base,
        "portalEndpoint": base,
        "authentication": {"loginEndpoint": base, "audiences": ["https://management.core.windows.net/",
                                                                   "https://management.azure.com/", base]},
    }


@router.get("/metadata/endpoints", include_in_schema=False)
def metadata_endpoints(request: Request, emulator: Emulator = Depends(get_emulator)) -> JSONResponse:
    """Cloud metadata for `az cloud register --endpoint-resource-manager` (no token needed, as in Azure).

    api-version 2022-09-01 (what az sends) and later answer this cloud; 2019-05-01 up to it the list of clouds;
    older ones (and none) the legacy object."""
    version = request.query_params.get("api-version", "")
    if version >= "2022-09-01":
        return JSONResponse(cloud_metadata(emulator))
    if version >= "2019-05-01":
        return JSONResponse([cloud_metadata(emulator)])
    return JSONResponse(legacy_cloud_metadata(emulator))


# ---- subscriptions, tenants, locations ------------------------------------------------------------


def subscription_body(emulator: Emulator) -> dict[str, Any]:
    """The subscription as `GET /subscriptions/{id}` answers it."""
    return {
        "id": emulator.subscription_path,
        "authorizationSource": "RoleBased",
        "managedByTenants": [],
        "subscriptionId": emulator.subscription_id,
        "tenantId": emulator.tenant_id,
        "displayName": emulator.subscription_name,
        "state": "Enabled",
        "subscriptionPolicies": {"locationPlacementId": "Public_2014-09-01", "quotaId": "PayAsYouGo_2014-09-01",
                                 "spendingLimit": "Off"},
        "tags": {},
    }


def _visible(emulator: Emulator, caller: Principal) -> bool:
    # Azure lists the subscriptions on which the caller holds any role (at the subscription or below it).
    sub = emulator.subscription_path.lower()
    return any(a["properties"]["principalId"].lower() == caller.object_id.lower()
               and a["properties"]["scope"].lower().startswith(sub) for a in emulator.rbac.assignments())


@router.get("/subscriptions")
def list_subscriptions(emulator: Emulator = Depends(get_emulator),
                       caller: Principal = Depends(get_caller)) -> dict[str, Any]:
    """The subscriptions the caller holds a role in (local Azure has one)."""
    return {"value": [subscription_body(emulator)] if _visible(emulator, caller) else []}


@router.get("/subscriptions/{subscription_id}")
def get_subscription(subscription_id: str, emulator: Emulator = Depends(get_emulator),
                     caller: Principal = Depends(get_caller)) -> dict[str, Any]:
    """One subscription; 404 SubscriptionNotFound for any other id (or one the caller holds no role in)."""
    if subscription_id.lower() != emulator.subscription_id.lower() or not _visible(emulator, caller):
        raise ArmError(404, "SubscriptionNotFound", f"The subscription '{subscription_id}' could not be found.")
    return subscription_body(emulator)


@router.get("/tenants")
def list_tenants(emulator: Emulator = Depends(get_emulator),
                 _caller: Principal = Depends(get_caller)) -> dict[str, Any]:
    """The caller's tenant."""
    return {"value": [{
        "id": f"/tenants/{emulator.tenant_id}", "tenantId": emulator.tenant_id, "countryCode": "US",
        "displayName": "fleetflow local tenant", "domains": ["fleetflow.local"], "tenantCategory": "Home",
        "defaultDomain": "fleetflow.local", "tenantType": "AAD",
    }]}


def _require_subscription(emulator: Emulator, subscription_id: str) -> None:
    if subscription_id.lower() != emulator.subscription_id.lower():
        raise ArmError(404, "SubscriptionNotFound", f"The subscription '{subscription_id}' could not be found.")


@router.get("/subscriptions/{subscription_id}/locations")
def list_locations(subscription_id: str, emulator: Emulator = Depends(get_emulator),
                   _caller: Principal = Depends(get_caller)) -> dict[str, Any]:
    """The locations local Azure offers (`az account list-locations`)."""
    _require_subscription(emulator, subscription_id)
    return {"value": [
        {"id": f"{emulator.subscription_path}/locations/{name}", "name": name, "displayName": display,
         "regionalDisplayName": f"({geo}) {display}", "type": "Region",
         "metadata": {"regionType": "Physical", "regionCategory": "Recommended", "geographyGroup": geo,
                      "pairedRegion": [{"name": pair, "id": f"{emulator.subscription_path}/locations/{pair}"}]}}
        for name, (display, geo, pair) in LOCATIONS.items()
    ]}


# ---- resource providers ---------------------------------------------------------------------------

# Where Resource Manager's registration errors send the reader.
_HOW_TO_REGISTER = "See https://aka.ms/rps-not-found for how to register subscriptions."


def registration_state(emulator: Emulator, namespace: str) -> str:
    """`Registered`, `NotRegistered` (never registered: the `unregistered` knob) or `Unregistered` (unregistered
    through `POST .../unregister`) for a namespace in the subscription."""
    low = namespace.lower()
    if low in _ALWAYS_REGISTERED:
        return "Registered"
    record = emulator.store.get(REGISTRATIONS, low)
    if record:
        return str(record["state"])
    if low in {name.lower() for name in emulator.knobs.current.unregistered}:
        return "NotRegistered"
    return "Registered"


def missing_registration(emulator: Emulator, namespace: str) -> ArmError | None:
    """Resource Manager's refusal of a request to a namespace the subscription has not registered: 409
    MissingSubscriptionRegistration naming the namespace (also as `details[].target`, where the SDKs' automatic
    registration reads it); None when the namespace is Registered."""
    state = registration_state(emulator, namespace)
    if state == "Registered":
        return None
    if state == "NotRegistered":
        message = f"The subscription is not registered to use namespace '{namespace}'. {_HOW_TO_REGISTER}"
    else:
        message = (f"The subscription registration is in '{state}' state. The subscription must be registered to "
                   f"use namespace '{namespace}'. {_HOW_TO_REGISTER}")
    return ArmError(409, "MissingSubscriptionRegistration", message, details=[
        {"code": "MissingSubscriptionRegistration", "target": namespace, "message": message}])


_TYPE_PATH = re.compile(r"/providers/([A-Za-z]+\.[A-Za-z.]+)/(.+)$")


def _resource_types(paths: list[str], namespace: str) -> list[str]:
    """Resource types (`managedClusters`, `managedClusters/agentPools`, `locations/operations`) the route paths of
    a namespace serve: the fixed words after `providers/<namespace>/`, one per name segment."""
    types: list[str] = []
    for path in paths:
        match = _TYPE_PATH.search(path)
        if match is None or match.group(1).lower() != namespace.lower():
            continue
        words = match.group(2).split("/")
        names = [w for i, w in enumerate(words) if i % 2 == 0 and not w.startswith("{")]
        for depth in range(1, len(names) + 1):
            parts = names[:depth]
            # Actions (POST words) are not types; a type's segment is followed by a name parameter or ends a list.
            if depth * 2 - 1 < len(words) and not words[depth * 2 - 1].startswith("{"):
                break
            candidate = "/".join(parts)
            if candidate not in types:
                types.append(candidate)
    return types


class ProviderCatalog:
    """Provider metadata of one emulator (types from its routes, versions from its registry)."""

    def __init__(self, emulator: Emulator, paths_by_namespace: dict[str, tuple[str, list[str]]]) -> None:
        self.emulator = emulator
        self._namespaces = paths_by_namespace  # lower-cased namespace -> (namespace, route paths)

    def namespaces(self) -> list[str]:
        """Namespaces local Azure serves, as registered."""
        return sorted(ns for ns, _ in self._namespaces.values())

    def state(self, namespace: str) -> str:
        """`Registered`, `NotRegistered` or `Unregistered` in this subscription."""
        return registration_state(self.emulator, namespace)

    def set_state(self, namespace: str, state: str) -> None:
        """Record the registration state of a namespace."""
        self.emulator.store.put(REGISTRATIONS, namespace.lower(), {"namespace": namespace, "state": state})

    def known(self, namespace: str) -> str:
        """The namespace as registered; 404 for a namespace local Azure does not serve."""
        entry = self._namespaces.get(namespace.lower())
        if entry is None:
            raise ArmError(404, "InvalidResourceNamespace", f"The resource namespace '{namespace}' is invalid "
                           "(local Azure does not serve it).")
        return entry[0]

    def body(self, namespace: str) -> dict[str, Any]:
        """The provider resource as `GET /subscriptions/{s}/providers/{namespace}` answers it."""
        name, paths = self._namespaces[namespace.lower()]
        locations = [display for display, _, _ in LOCATIONS.values()]
        resource_types = []
        types = list(_RESOURCES_TYPES) if name.lower() == "microsoft.resources" else _resource_types(paths, name)
        for resource_type in types:
            top = resource_type.split("/", 1)[0]
            versions = self.emulator.providers.accepted_versions(name, top if "." not in top else None) or frozenset()
            located = not top.lower().startswith(("locations", "operations", "checknameavailability"))
            resource_types.append({
                "resourceType": resource_type,
                "locations": locations if located else [],
                "apiVersions": sorted(versions, reverse=True),
                "defaultApiVersion": max((v for v in versions if "preview" not in v), default=None),
                "aliases": [],
                "capabilities": "SupportsTags, SupportsLocation" if located and "/" not in resource_type else "None",
            })
        return {
            "id": f"{self.emulator.subscription_path}/providers/{name}",
            "namespace": name,
            "registrationState": self.state(name),
            "registrationPolicy": "RegistrationFree" if name.lower() in _ALWAYS_REGISTERED else "RegistrationRequired",
            "resourceTypes": resource_types,
        }


def catalog_of(emulator: Emulator, request: Request) -> ProviderCatalog:
    """The provider catalog built by `create_app` (route paths per namespace)."""
    paths: dict[str, tuple[str, list[str]]] = request.app.state.provider_paths
    return ProviderCatalog(emulator, paths)


@router.get("/subscriptions/{subscription_id}/providers")
def list_providers(subscription_id: str, request: Request, emulator: Emulator = Depends(get_emulator),
                   _caller: Principal = Depends(get_caller)) -> dict[str, Any]:
    """Every namespace local Azure serves, with its resource types (`az provider list`)."""
    _require_subscription(emulator, subscription_id)
    catalog = catalog_of(emulator, request)
    return {"value": [catalog.body(ns) for ns in catalog.namespaces()]}


@router.get("/subscriptions/{subscription_id}/providers/{namespace}")
def get_provider(subscription_id: str, namespace: str, request: Request, emulator: Emulator = Depends(get_emulator),
                 _caller: Principal = Depends(get_caller)) -> dict[str, Any]:
    """One namespace (`az provider show`)."""
    _require_subscription(emulator, subscription_id)
    catalog = catalog_of(emulator, request)
    return catalog.body(catalog.known(namespace))


def _change_registration(subscription_id: str, namespace: str, request: Request, emulator: Emulator,
                         caller: Principal, state: str) -> dict[str, Any]:
    _require_subscription(emulator, subscription_id)
    emulator.rbac.authorize(caller, f"{namespace}/register/action", emulator.subscription_path)
    catalog = catalog_of(emulator, request)
    name = catalog.known(namespace)
    if name.lower() not in _ALWAYS_REGISTERED:
        catalog.set_state(name, state)
    return catalog.body(name)


@router.post("/subscriptions/{subscription_id}/providers/{namespace}/register")
def register_provider(subscription_id: str, namespace: str, request: Request,
                      emulator: Emulator = Depends(get_emulator),
                      caller: Principal = Depends(get_caller)) -> dict[str, Any]:
    """Register a namespace in the subscription (at once: `az provider register --wait` sees Registered)."""
    return _change_registration(subscription_id, namespace, request, emulator, caller, "Registered")


@router.post("/subscriptions/{subscription_id}/providers/{namespace}/unregister")
def unregister_provider(subscription_id: str, namespace: str, request: Request,
                        emulator: Emulator = Depends(get_emulator),
                        caller: Principal = Depends(get_caller)) -> dict[str, Any]:
    """Unregister a namespace: requests to its resource types are refused (409 MissingSubscriptionRegistration) until
    it is registered again. Local Azure does not refuse to unregister a namespace whose resources still exist."""
    return _change_registration(subscription_id, namespace, request, emulator, caller, "Unregistered")
