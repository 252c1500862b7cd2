"""The Azure service-principal credentials block."""

from __future__ import annotations

from prefect.blocks.core import Block
from pydantic import Field, SecretStr

PUBLIC_AUTHORITY_HOST = "https://login.microsoftonline.com"
PUBLIC_RESOURCE_MANAGER = "https://management.azure.com"


class AzureServicePrincipal(Block):
    """A service principal fleetflow authenticates to Azure Resource Manager with.

    The client secret is a SecretStr: it shows as ********** in reprs, the UI and logs. The optional
    endpoints and CA bundle point the same flows at a sovereign cloud or at local Azure.
    """

    _block_type_name = "fleetflow Azure Service Principal"
    _block_type_slug = "fleetflow-azure-service-principal"
    _description = "Service-principal credentials and endpoints for Azure Resource Manager."

    tenant_id: str = Field(description="Microsoft Entra tenant (directory) id.")
    client_id: str = Field(description="Application (client) id of the service principal.")
    client_secret: SecretStr = Field(description="Client secret of the service principal.")
    subscription_id: str = Field(description="Subscription fleetflow manages.")
    object_id: str | None = Field(
        None,
        description="Object id of the service principal (az ad sp show --id <client id> --query id); "
        "needed when fleetflow grants this principal a role, e.g. for Azure Service Operator.",
    )
    authority_host: str | None = Field(
        None, description="Entra authority host; empty for the public cloud (login.microsoftonline.com)."
    )
    resource_manager_endpoint: str | None = Field(
        None, description="Resource Manager endpoint; empty for the public cloud (management.azure.com)."
    )
    ca_bundle: str | None = Field(
        None, description="PEM CA certificates to trust for these endpoints (local Azure, private clouds)."
    )

    @property
    def effective_authority_host(self) -> str:
        """The authority host to request tokens from."""
        return (self.authority_host or PUBLIC_AUTHORITY_HOST).rstrip("/")

    @property
    def effective_resource_manager_endpoint(self) -> str:
        """The Resource Manager endpoint to call."""
        return (self.resource_manager_endpoint or PUBLIC_RESOURCE_MANAGER).rstrip("/")

    @property
    def is_public_cloud(self) -> bool:
        """True when both endpoints are Azure's public ones."""
        return (
            self.effective_authority_host == PUBLIC_AUTHORITY_HOST
            and self.effective_resource_manager_endpoint == PUBLIC_RESOURCE_MANAGER
        )
