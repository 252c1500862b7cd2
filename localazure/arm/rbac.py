"""Role-based access control: built-in role definitions, role assignments, and the authorization check."""

from __future__ import annotations

import fnmatch
import re
import uuid
from dataclasses import dataclass
from typing import Any

from localazure.arm.errors import ArmError
from localazure.arm.ids import is_at_or_below, utc_now
from localazure.arm.store import Record, StateStore

TABLE = "roleAssignments"

# Azure's published ids of the built-in roles (the same in every subscription and at every scope).
OWNER = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635"
CONTRIBUTOR = "b24988ac-6180-42a0-ab88-20f7382dd24c"
READER = "acdd72a7-3385-48ef-bd42-f606fba81ae7"
USER_ACCESS_ADMINISTRATOR = "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9"
AKS_CLUSTER_ADMIN = "0ab0b1a8-8aac-4efd-b8c2-3ee1fb270be8"
AKS_CLUSTER_USER = "4abbcc35-e782-43d8-92c5-2d3f1bd2253f"
ACR_PULL = "7f951dda-4ed3-4680-a7ca-43fe172d538d"
ACR_PUSH = "8311e382-0749-4cb8-b61a-304f252e45ec"
KEY_VAULT_SECRETS_OFFICER = "b86a8fe4-44ce-4948-aee5-eccb2c155cd7"
KEY_VAULT_SECRETS_USER = "4633458b-17de-408a-b874-0445c86b69e6"
STORAGE_BLOB_DATA_CONTRIBUTOR = "ba92f5b4-2d11-453d-a403-e96b0029c9fe"
# Ids earlier versions of local Azure gave Owner and Reader; assignments stored with them are rewritten at start.
LEGACY_IDS = {"8e3af657-a8ff-443f-a75c-2fe8c4bcb635": OWNER, "acdd72a7-3547-48ad-b1d0-8b4c1bd7a5b7": READER}
PRINCIPAL_TYPES = ("User", "Group", "ServicePrincipal", "ForeignGroup", "Device")


@dataclass(frozen=True)
class RoleDefinition:
    """A built-in role: allowed and excluded action patterns, for the control plane (actions) and the
    data plane (dataActions, e.g. reading a Key Vault secret)."""

    guid: str
    name: str
    description: str
    actions: tuple[str, ...]
    not_actions: tuple[str, ...] = ()
    data_actions: tuple[str, ...] = ()
    not_data_actions: tuple[str, ...] = ()

    def allows(self, action: str) -> bool:
        """Whether this role grants `action` (Resource Manager wildcard semantics, case-insensitive)."""
        return _granted(action, self.actions, self.not_actions)

    def allows_data(self, data_action: str) -> bool:
        """Whether this role grants the data action `data_action` (same wildcard semantics)."""
        return _granted(data_action, self.data_actions, self.not_data_actions)


def _granted(action: str, allowed: tuple[str, ...], excluded: tuple[str, ...]) -> bool:
    low = action.lower()

    def hit(patterns: tuple[str, ...]) -> bool:
        return any(fnmatch.fnmatchcase(low, p.lower()) for p in patterns)

    return hit(allowed) and not hit(excluded)


# Actions Key Vault's data roles share (Azure's built-in definitions).
_KEY_VAULT_READ_ACTIONS = (
    "Microsoft.Authorization/*/read", "Microsoft.Insights/alertRules/*", "Microsoft.Resources/deployments/*",
    "Microsoft.Resources/subscriptions/resourceGroups/read", "Microsoft.Support/*",
    "Microsoft.KeyVault/checkNameAvailability/read", "Microsoft.KeyVault/deletedVaults/read",
    "Microsoft.KeyVault/locations/*/read", "Microsoft.KeyVault/vaults/*/read", "Microsoft.KeyVault/operations/read",
)


BUILT_IN_ROLES: dict[str, RoleDefinition] = {
    role.guid: role
    for role in (
        RoleDefinition(OWNER, "Owner", "Grants full access to manage all resources, including the ability to "
                       "assign roles in Azure RBAC.", ("*",)),
        RoleDefinition(CONTRIBUTOR, "Contributor", "Grants full access to manage all resources, but does not "
                       "allow you to assign roles in Azure RBAC.", ("*",),
                       ("Microsoft.Authorization/*/Delete", "Microsoft.Authorization/*/Write",
                        "Microsoft.Authorization/elevateAccess/Action")),
        RoleDefinition(READER, "Reader", "View all resources, but does not allow you to make any changes.",
                       ("*/read",)),
        RoleDefinition(USER_ACCESS_ADMINISTRATOR, "User Access Administrator",
                       "Lets you manage user access to Azure resources.",
                       ("*/read", "Microsoft.Authorization/*", "Microsoft.Support/*")),
        RoleDefinition(AKS_CLUSTER_ADMIN, "Azure Kubernetes Service Cluster Admin Role",
                       "List cluster admin credential action.",
                       ("Microsoft.ContainerService/managedClusters/listClusterAdminCredential/action",
                        "Microsoft.ContainerService/managedClusters/listClusterUserCredential/action",
                        "Microsoft.ContainerService/managedClusters/read")),
        RoleDefinition(AKS_CLUSTER_USER, "Azure Kubernetes Service Cluster User Role",
                       "List cluster user credential action.",
                       ("Microsoft.ContainerService/managedClusters/listClusterUserCredential/action",
                        "Microsoft.ContainerService/managedClusters/read")),
        RoleDefinition(ACR_PULL, "AcrPull", "acr pull", ("Microsoft.ContainerRegistry/registries/pull/read",)),
        RoleDefinition(ACR_PUSH, "AcrPush", "acr push", ("Microsoft.ContainerRegistry/registries/pull/read",
                                                         "Microsoft.ContainerRegistry/registries/push/write")),
        RoleDefinition(KEY_VAULT_SECRETS_OFFICER, "Key Vault Secrets Officer",
                       "Perform any action on the secrets of a key vault, except manage permissions. Only works "
                       "for key vaults that use the 'Azure role-based access control' permission model.",
                       _KEY_VAULT_READ_ACTIONS, data_actions=("Microsoft.KeyVault/vaults/secrets/*",)),
        RoleDefinition(KEY_VAULT_SECRETS_USER, "Key Vault Secrets User",
                       "Read secret contents. Only works for key vaults that use the 'Azure role-based access "
                       "control' permission model.", (),
                       data_actions=("Microsoft.KeyVault/vaults/secrets/getSecret/action",
                                     "Microsoft.KeyVault/vaults/secrets/readMetadata/action")),
        RoleDefinition(STORAGE_BLOB_DATA_CONTRIBUTOR, "Storage Blob Data Contributor",
                       "Allows for read, write and delete access to Azure Storage blob containers and data",
                       ("Microsoft.Storage/storageAccounts/blobServices/containers/delete",
                        "Microsoft.Storage/storageAccounts/blobServices/containers/read",
                        "Microsoft.Storage/storageAccounts/blobServices/containers/write",
                        "Microsoft.Storage/storageAccounts/blobServices/generateUserDelegationKey/action"),
                       data_actions=("Microsoft.Storage/storageAccounts/blobServices/containers/blobs/delete",
                                     "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read",
                                     "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/move/action",
                                     "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/write",
                                     "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/add/action")),
    )
}

GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def role_definition_prefix(scope: str) -> str:
    """Where the id of a built-in role definition seen at `scope` lives: the subscription of the scope (Azure
    lists built-ins with their subscription-level id at a group or resource scope), or the root."""
    parts = scope.strip("/").split("/")
    if len(parts) >= 2 and parts[0].lower() == "subscriptions":
        return f"/subscriptions/{parts[1]}"
    return ""


def role_definition_body(role: RoleDefinition, scope: str) -> dict[str, Any]:
    """The Resource Manager JSON of a built-in role definition seen at `scope` (id under its subscription)."""
    prefix = role_definition_prefix(scope)
    return {
        "id": f"{prefix}/providers/Microsoft.Authorization/roleDefinitions/{role.guid}",
        "name": role.guid,
        "type": "Microsoft.Authorization/roleDefinitions",
        "properties": {
            "roleName": role.name,
            "type": "BuiltInRole",
            "description": role.description,
            "assignableScopes": ["/"],
            "permissions": [
                {"actions": list(role.actions), "notActions": list(role.not_actions),
                 "dataActions": list(role.data_actions), "notDataActions": list(role.not_data_actions)}
            ],
            "createdOn": "2015-02-02T21:55:09.8806423Z",
            "updatedOn": "2024-01-01T00:00:00.0000000Z",
            "createdBy": None,
            "updatedBy": None,
        },
    }


def role_guid_from_id(role_definition_id: str) -> str:
    """The GUID at the end of a role definition id (legacy local ids mapped to Azure's)."""
    guid = role_definition_id.rstrip("/").rsplit("/", 1)[-1].lower()
    return LEGACY_IDS.get(guid, guid)


@dataclass(frozen=True)
class Principal:
    """Who is calling: from a verified token."""

    object_id: str
    app_id: str
    tenant_id: str


class Rbac:
    """Role assignments (persisted) and authorization decisions."""

    def __init__(self, store: StateStore) -> None:
        self._store = store

    def assignments(self) -> list[Record]:
        """All role assignment bodies."""
        return self._store.values(TABLE)

    def get(self, assignment_id: str) -> Record | None:
        """One role assignment body by id."""
        return self._store.get(TABLE, assignment_id)

    def assign(
        self, scope: str, name: str, role_definition_id: str, principal_id: str, *,
        principal_type: str = "ServicePrincipal", created_by: str | None = None, description: str | None = None,
    ) -> tuple[Record, bool]:
        """Create (or return the identical existing) assignment; returns (body, created)."""
        scope = scope.rstrip("/") or "/"
        if not GUID.match(name):
            raise ArmError(400, "InvalidRoleAssignmentId",
                           f"The role assignment ID '{name}' is not valid. The role assignment ID must be a GUID.")
        guid = role_guid_from_id(role_definition_id)
        if guid not in BUILT_IN_ROLES:
            raise ArmError(400, "RoleDefinitionDoesNotExist", "The specified role definition with ID "
                           f"'{guid}' does not exist.")
        assignment_id = f"{scope.rstrip('/')}/providers/Microsoft.Authorization/roleAssignments/{name}"
        with self._store.transaction():
            existing = self._store.get(TABLE, assignment_id)
            if existing is not None:
                props = existing["properties"]
                same_principal = props["principalId"].lower() == principal_id.lower()
                if role_guid_from_id(props["roleDefinitionId"]) == guid and same_principal:
                    return existing, False
                raise ArmError(409, "RoleAssignmentUpdateNotPermitted",
                               "Tenant ID, application ID, principal ID, and scope are not allowed to be updated.")
            for other in self._store.values(TABLE):
                p = other["properties"]
                if (p["scope"].lower() == scope.lower() and p["principalId"].lower() == principal_id.lower()
                        and role_guid_from_id(p["roleDefinitionId"]) == guid):
                    raise ArmError(409, "RoleAssignmentExists", "The role assignment already exists. The ID of "
                                   f"the existing role assignment is {other['name']}.")
            now = utc_now()
            in_subscription = scope.lower().startswith("/subscriptions/")
            subscription_prefix = "/".join(scope.split("/")[:3]) if in_subscription else ""
            role_id = f"{subscription_prefix}/providers/Microsoft.Authorization/roleDefinitions/{guid}"
            body: Record = {
                "id": assignment_id,
                "name": name,
                "type": "Microsoft.Authorization/roleAssignments",
                "properties": {
                    "roleDefinitionId": role_id,
                    "principalId": principal_id,
                    "principalType": principal_type,
                    "scope": scope,
                    "condition": None,
                    "conditionVersion": None,
                    "createdOn": now,
                    "updatedOn": now,
                    "createdBy": created_by,
                    "updatedBy": created_by,
                    "delegatedManagedIdentityResourceId": None,
                    "description": description,
                },
            }
            self._store.put(TABLE, assignment_id, body)
            return body, True

    def migrate_legacy_ids(self) -> int:
        """Rewrite assignments stored with a legacy role id to Azure's id; returns how many changed."""
        changed = 0
        with self._store.transaction():
            for body in self._store.values(TABLE):
                role_id = body["properties"]["roleDefinitionId"]
                old = role_id.rstrip("/").rsplit("/", 1)[-1].lower()
                if old in LEGACY_IDS:
                    body["properties"]["roleDefinitionId"] = role_id[: -len(old)] + LEGACY_IDS[old]
                    self._store.put(TABLE, body["id"], body)
                    changed += 1
        return changed

    def remove(self, assignment_id: str) -> Record | None:
        """Delete one assignment; returns it, or None if there was none."""
        return self._store.delete(TABLE, assignment_id)

    def remove_under(self, scope: str) -> None:
        """Delete the assignments at or below a scope (the scope itself is being deleted)."""
        with self._store.transaction():
            for key in self._store.keys_under(TABLE, scope):
                self._store.delete(TABLE, key)

    def roles_of(self, principal_id: str, scope: str) -> list[RoleDefinition]:
        """Roles a principal holds at `scope` or inherits from above it."""
        low = principal_id.lower()
        roles = []
        for body in self._store.values(TABLE):
            p = body["properties"]
            if p["principalId"].lower() == low and is_at_or_below(scope, p["scope"]):
                role = BUILT_IN_ROLES.get(role_guid_from_id(p["roleDefinitionId"]))
                if role:
                    roles.append(role)
        return roles

    def allowed(self, principal: Principal, action: str, scope: str) -> bool:
        """Whether the principal may perform `action` on `scope`."""
        return any(role.allows(action) for role in self.roles_of(principal.object_id, scope))

    def allowed_data(self, principal: Principal, data_action: str, scope: str) -> bool:
        """Whether the principal may perform the data action `data_action` on `scope` (e.g. a secret)."""
        return any(role.allows_data(data_action) for role in self.roles_of(principal.object_id, scope))

    def authorize(self, principal: Principal, action: str, scope: str) -> None:
        """Raise 403 AuthorizationFailed unless the principal may perform `action` on `scope`."""
        if not self.allowed(principal, action, scope):
            raise ArmError(
                403,
                "AuthorizationFailed",
                f"The client '{principal.app_id}' with object id '{principal.object_id}' does not have "
                f"authorization to perform action '{action}' over scope '{scope}' or the scope is invalid. "
                "If access was recently granted, please refresh your credentials.",
            )


def new_assignment_name() -> str:
    """A fresh role assignment name (GUID)."""
    return str(uuid.uuid4())
