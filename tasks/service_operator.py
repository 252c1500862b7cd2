"""Azure Service Operator on one cluster: cert-manager, the operator's settings Secret, the ASO release.

The operator's client secret reaches the cluster only as the Secret ASO reads (aso-controller-settings),
written through the Kubernetes API; the ASO release is installed with createAzureOperatorSecret=false so
that no secret is ever a Helm value (and `helm get values` shows none).
"""

from __future__ import annotations

from typing import Any, TypedDict

from kubernetes import client as kube_client
from kubernetes.client.rest import ApiException
from prefect import get_run_logger

from blocks.azure import AzureServicePrincipal
from tasks.aks import served_kubeconfig
from tasks.charts import chart_mirror, resolve_chart
from tasks.clients import kubernetes_api_client, load_azure_clients
from tasks.helm import ReleaseOutcome, ensure_release
from tasks.kube_objects import (
    crds_matching,
    ensure_namespace,
    pending_crds,
    restart_deployment,
    sync_secret,
    unavailable_deployments,
    wait_deployments_available,
    wait_for,
)
from tasks.retry import azure_task
from tasks.spec import ClusterSpec, FleetSpec, crd_pattern_items

SETTINGS_SECRET = "aso-controller-settings"
CONTROLLER = "azureserviceoperator-controller-manager"
CERT_MANAGER_RELEASE = "cert-manager"
ASO_RELEASE = "aso2"


class BootstrapRow(TypedDict):
    """What bootstrap-aso found and did on one cluster."""

    cluster: str
    region: str
    cert_manager: str
    service_operator: str
    crd_pattern: str
    crds_established: str
    controller_available: str
    changed: str


def operator_settings(principal: AzureServicePrincipal) -> dict[str, str]:
    """The keys ASO reads from aso-controller-settings; endpoints only for clouds other than Azure's public one."""
    settings = {
        "AZURE_SUBSCRIPTION_ID": principal.subscription_id,
        "AZURE_TENANT_ID": principal.tenant_id,
        "AZURE_CLIENT_ID": principal.client_id,
        "AZURE_CLIENT_SECRET": principal.client_secret.get_secret_value(),
    }
    if not principal.is_public_cloud:
        endpoint = principal.effective_resource_manager_endpoint
        settings |= {
            "AZURE_RESOURCE_MANAGER_ENDPOINT": endpoint,
            "AZURE_RESOURCE_MANAGER_AUDIENCE": endpoint,
            "AZURE_AUTHORITY_HOST": principal.effective_authority_host,
        }
    return settings


def cert_manager_values() -> dict[str, Any]:
    """cert-manager's values: its CRDs installed with the release."""
    return {"crds": {"enabled": True}}


def service_operator_values(spec: FleetSpec, principal: AzureServicePrincipal) -> dict[str, Any]:
    """ASO's values: the crdPattern and the operator's identifiers, never its secret."""
    values: dict[str, Any] = {
        "crdPattern": spec.service_operator.crd_pattern,
        "createAzureOperatorSecret": False,
        "azureSubscriptionID": principal.subscription_id,
        "azureTenantID": principal.tenant_id,
        "azureClientID": principal.client_id,
    }
    if not principal.is_public_cloud:
        values |= {
            "azureResourceManagerEndpoint": principal.effective_resource_manager_endpoint,
            "azureResourceManagerAudience": principal.effective_resource_manager_endpoint,
            "azureAuthorityHost": principal.effective_authority_host,
        }
    return values


def _describe(outcome: ReleaseOutcome) -> str:
    return f"{outcome.chart} {outcome.version} ({outcome.action}, revision {outcome.revision})"


@azure_task(task_run_name="bootstrap-aso-{cluster.name}")
def bootstrap_cluster(spec: FleetSpec, cluster: ClusterSpec, credentials_block: str) -> BootstrapRow:
    """cert-manager then Azure Service Operator on one cluster, each upgraded only when its chart or values changed."""
    logger = get_run_logger()
    operator = spec.service_operator
    principal: AzureServicePrincipal = AzureServicePrincipal.load(operator.credentials_block)  # type: ignore[assignment]
    kubeconfig = served_kubeconfig(load_azure_clients(credentials_block), spec, cluster, "bootstrap-aso")
    if kubeconfig is None:
        skipped = "skipped (no Kubernetes API server)"
        return BootstrapRow(cluster=cluster.name, region=cluster.region, cert_manager=skipped,
                            service_operator=skipped, crd_pattern=operator.crd_pattern, crds_established="0",
                            controller_available="-", changed="nothing")
    mirror = chart_mirror(spec)
    timeout = operator.ready_timeout_seconds
    changes: list[str] = []

    cert_manager = ensure_release(
        kubeconfig, cluster=cluster.name, release=CERT_MANAGER_RELEASE, namespace=operator.cert_manager_namespace,
        chart=resolve_chart(operator.cert_manager_chart, mirror), values=cert_manager_values(),
        timeout_seconds=timeout)
    if cert_manager.action != "unchanged":
        changes.append(f"cert-manager {cert_manager.action}")
    with kubernetes_api_client(kubeconfig) as api:
        wait_deployments_available(api, cluster.name, operator.cert_manager_namespace, timeout)
        ensure_namespace(api, cluster.name, operator.namespace)
        settings_changed = sync_secret(api, cluster.name, operator.namespace, SETTINGS_SECRET,
                                       operator_settings(principal))
        if settings_changed:
            changes.append("operator settings written")

    service_operator = ensure_release(
        kubeconfig, cluster=cluster.name, release=ASO_RELEASE, namespace=operator.namespace,
        chart=resolve_chart(operator.chart, mirror), values=service_operator_values(spec, principal),
        timeout_seconds=timeout)
    if service_operator.action != "unchanged":
        changes.append(f"azure-service-operator {service_operator.action}")

    items = crd_pattern_items(operator.crd_pattern)
    with kubernetes_api_client(kubeconfig) as api:
        if settings_changed and service_operator.action == "unchanged":
            # A rotated secret: the running controller must start again to read it.
            restart_deployment(api, cluster.name, operator.namespace, CONTROLLER)
            changes.append("controller restarted")
        wait_deployments_available(api, cluster.name, operator.namespace, timeout)
        wait_for("the CRDs of the crdPattern to be Established", cluster.name,
                 lambda: pending_crds(api, cluster.name, items), timeout)
        established = sum(crds_matching(api, cluster.name, items).values())
    logger.info("bootstrap-aso on %s: cert-manager %s, ASO %s, %d CRDs established%s", cluster.name,
                cert_manager.action, service_operator.action, established,
                f"; changed: {', '.join(changes)}" if changes else "; nothing changed")
    return BootstrapRow(
        cluster=cluster.name, region=cluster.region, cert_manager=_describe(cert_manager),
        service_operator=_describe(service_operator), crd_pattern=operator.crd_pattern,
        crds_established=str(established), controller_available="yes", changed=", ".join(changes) or "nothing",
    )


def service_operator_health(api: kube_client.ApiClient, spec: FleetSpec, cluster: ClusterSpec) -> dict[str, str]:
    """For validate: what is not Available or Established on a bootstrapped cluster (empty lists when healthy)."""
    operator = spec.service_operator
    items = crd_pattern_items(operator.crd_pattern)
    return {
        "cert-manager Available": ", ".join(unavailable_deployments(api, cluster.name,
                                                                    operator.cert_manager_namespace)),
        "ASO controller Available": ", ".join(unavailable_deployments(api, cluster.name, operator.namespace)),
        "ASO CRDs Established": ", ".join(pending_crds(api, cluster.name, items)),
    }


def is_bootstrapped(api: kube_client.ApiClient, spec: FleetSpec) -> bool:
    """Whether bootstrap-aso has run on the cluster (its operator settings Secret exists)."""
    try:
        kube_client.CoreV1Api(api).read_namespaced_secret(SETTINGS_SECRET, spec.service_operator.namespace,
                                                         _request_timeout=30)
    except ApiException as error:
        if error.status == 404:
            return False
        raise
    return True
