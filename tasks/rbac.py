"""The service operator's role: Contributor on the fleet's resource group only, under a deterministic name.

Role assignments carry no tags, so ownership is the name: uuid5 of scope, principal and role. A re-run
computes the same name and finds the assignment; teardown deletes exactly that one and nothing else.
"""

from __future__ import annotations

import uuid
from typing import NamedTuple

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.mgmt.authorization.v2022_04_01.models import RoleAssignmentCreateParameters
from prefect import get_run_logger

from tasks.clients import AzureClients, load_azure_clients, load_credentials_block
from tasks.ownership import Outcome, outcome
from tasks.resource_groups import group_id
from tasks.retry import FleetflowError, azure_call, azure_task
from tasks.spec import FleetSpec

KIND = "role assignment"
CONTRIBUTOR_ROLE = "b24988ac-6180-42a0-ab88-20f7382dd24c"
# Namespace of fleetflow's role-assignment names (any fixed UUID works; this one must never change).
ASSIGNMENT_NAMESPACE = uuid.UUID("6f1c2a3e-8d4b-5e6f-9a0b-1c2d3e4f5a6b")


def role_definition_id(subscription_id: str, role: str = CONTRIBUTOR_ROLE) -> str:
    """Subscription-level id of a built-in role definition."""
    return f"/subscriptions/{subscription_id}/providers/Microsoft.Authorization/roleDefinitions/{role}"


def assignment_name(scope: str, principal_id: str, role_definition: str) -> str:
    """The deterministic role-assignment name for (scope, principal, role)."""
    key = "|".join(part.lower().rstrip("/") for part in (scope, principal_id, role_definition))
    return str(uuid.uuid5(ASSIGNMENT_NAMESPACE, key))


def service_operator_object_id(spec: FleetSpec) -> str:
    """Object id of the service operator's principal, from its own credentials block."""
    block_name = spec.service_operator.credentials_block
    try:
        principal = load_credentials_block(block_name)
    except ValueError as error:
        raise FleetflowError(f"load credentials block {block_name!r}: {error}; save the service operator's "
                             "principal as an AzureServicePrincipal block with its object_id",
                             operation="read service operator principal", resource_id=block_name) from error
    object_id = principal.object_id
    if not object_id:
        raise FleetflowError(f"credentials block {block_name!r} has no object_id; set it to the principal's object "
                             "id (az ad sp show --id <client id> --query id)",
                             operation="read service operator principal", resource_id=block_name)
    return str(object_id)


class OperatorAssignment(NamedTuple):
    """Where, and under which deterministic name, the service operator's Contributor assignment lives."""

    scope: str
    principal_id: str
    role_definition_id: str
    name: str
    resource_id: str


def operator_assignment(spec: FleetSpec, subscription_id: str) -> OperatorAssignment:
    """The service operator's Contributor assignment on the fleet's resource group (reads its credentials block)."""
    principal_id = service_operator_object_id(spec)
    scope = group_id(subscription_id, spec)
    role = role_definition_id(subscription_id)
    name = assignment_name(scope, principal_id, role)
    return OperatorAssignment(scope, principal_id, role, name,
                              f"{scope}/providers/Microsoft.Authorization/roleAssignments/{name}")


ACR_PULL_ROLE = "7f951dda-4ed3-4680-a7ca-43fe172d538d"
KEY_VAULT_SECRETS_OFFICER_ROLE = "b86a8fe4-44ce-4948-aee5-eccb2c155cd7"
ROLE_NAMES = {CONTRIBUTOR_ROLE: "Contributor", ACR_PULL_ROLE: "AcrPull",
              KEY_VAULT_SECRETS_OFFICER_ROLE: "Key Vault Secrets Officer"}


def grant_role(clients: AzureClients, *, scope: str, principal_id: str, role: str, region: str | None,
               what: str) -> Outcome:
    """Make sure `principal_id` holds built-in `role` on `scope`, under fleetflow's deterministic name."""
    logger = get_run_logger()
    role_id = role_definition_id(clients.subscription_id, role)
    name = assignment_name(scope, principal_id, role_id)
    resource_id = f"{scope}/providers/Microsoft.Authorization/roleAssignments/{name}"
    role_name = ROLE_NAMES.get(role, role)
    with azure_call("read role assignment", resource_id, region):
        try:
            existing = clients.authorization.role_assignments.get(scope, name)
        except ResourceNotFoundError:
            existing = None
    if existing is not None:
        logger.info("role assignment %s unchanged: %s for %s on %s", name, role_name, what, scope)
        return outcome(resource_id, KIND, "unchanged", f"{role_name} for {what}", region)
    parameters = RoleAssignmentCreateParameters(role_definition_id=role_id, principal_id=principal_id,
                                                principal_type="ServicePrincipal")
    with azure_call("create role assignment", resource_id, region):
        try:
            clients.authorization.role_assignments.create(scope, name, parameters)
        except ResourceExistsError:
            # RoleAssignmentExists: the same grant exists under another name (made by hand); it is not ours.
            logger.info("%s for %s on %s already exists under another name; left as it is", role_name, what, scope)
            return outcome(resource_id, KIND, "unchanged", "granted by another assignment", region)
    logger.info("granted %s on %s to %s (%s)", role_name, scope, what, principal_id)
    return outcome(resource_id, KIND, "created", f"{role_name} for {what}", region)


@azure_task(task_run_name="ensure-operator-role")
def ensure_operator_role(spec: FleetSpec, credentials_block: str) -> Outcome:
    """Give the service operator's principal Contributor on the fleet's resource group (not the subscription)."""
    clients = load_azure_clients(credentials_block)
    return grant_role(clients, scope=group_id(clients.subscription_id, spec),
                      principal_id=service_operator_object_id(spec), role=CONTRIBUTOR_ROLE, region=spec.location,
                      what="the service operator")


@azure_task(task_run_name="delete-operator-role")
def delete_operator_role(spec: FleetSpec, credentials_block: str) -> Outcome:
    """Delete the role assignment fleetflow made (found by its deterministic name); absent is done."""
    logger = get_run_logger()
    clients = load_azure_clients(credentials_block)
    scope, _, _, name, resource_id = operator_assignment(spec, clients.subscription_id)
    with azure_call("delete role assignment", resource_id, spec.location):
        try:
            deleted = clients.authorization.role_assignments.delete(scope, name)
        except ResourceNotFoundError:
            deleted = None
    if deleted is None:
        logger.info("role assignment %s is already gone", name)
        return outcome(resource_id, KIND, "absent")
    logger.info("deleted role assignment %s", name)
    return outcome(resource_id, KIND, "deleted")
