"""Local Azure's resource ids and RBAC decisions, on the real Rbac over a state file (no server needed)."""

from __future__ import annotations

import re
import uuid

import pytest

from localazure.arm import rbac as rbac_module
from localazure.arm.errors import ArmError
from localazure.arm.ids import (
    GROUP_NAME,
    group_id,
    is_at_or_below,
    parse_id,
    resource_id,
    subscription_id_path,
    utc_now,
)
from localazure.arm.rbac import (
    ACR_PULL,
    BUILT_IN_ROLES,
    CONTRIBUTOR,
    KEY_VAULT_SECRETS_OFFICER,
    KEY_VAULT_SECRETS_USER,
    OWNER,
    READER,
    Principal,
    Rbac,
    new_assignment_name,
    role_definition_body,
    role_guid_from_id,
)
from localazure.arm.store import StateStore

SUB = "/subscriptions/0000-sub"
APP_A = f"{SUB}/resourceGroups/app-a"
APP_AB = f"{SUB}/resourceGroups/app-ab"
CLUSTER_IN_A = f"{APP_A}/providers/Microsoft.ContainerService/managedClusters/aks-1"
# Letters in the ids, so that a comparison that forgets to fold case is seen.
PRINCIPAL = Principal(object_id="aaaaaaaa-1111-bbbb-1111-cccccccccccc", app_id="app-id", tenant_id="t")


def role_id(guid: str) -> str:
    return f"{SUB}/providers/Microsoft.Authorization/roleDefinitions/{guid}"


@pytest.fixture
def rbac(tmp_path) -> Rbac:
    return Rbac(StateStore(tmp_path / "state.json"))


# --- ids ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("scope", "ancestor", "below"), [
    (APP_A, APP_A, True),
    (APP_A.upper(), APP_A, True),
    (APP_A + "/", APP_A, True),
    (CLUSTER_IN_A, APP_A, True),
    (CLUSTER_IN_A, APP_A + "/", True),
    (CLUSTER_IN_A, SUB, True),
    (APP_A, "/", True),
    (APP_A, "", True),
    (APP_AB, APP_A, False),  # a bare prefix is not an ancestor
    (f"{APP_AB}/providers/Microsoft.ContainerService/managedClusters/aks-1", APP_A, False),
    (APP_A, CLUSTER_IN_A, False),  # below is not above
    (SUB, APP_A, False),
    ("/subscriptions/0000-sub2", SUB, False),
])
def test_scope_is_at_or_below_only_by_whole_segments(scope, ancestor, below):
    assert is_at_or_below(scope, ancestor) is below


def test_ids_are_built_from_their_parts():
    assert subscription_id_path("s1") == "/subscriptions/s1"
    assert group_id("s1", "g") == "/subscriptions/s1/resourceGroups/g"
    assert resource_id("s1", "g", "Microsoft.ContainerService", "fleets", "f", "members", "m") == (
        "/subscriptions/s1/resourceGroups/g/providers/Microsoft.ContainerService/fleets/f/members/m")


def test_parse_id_of_a_nested_resource():
    parsed = parse_id("/subscriptions/s1/resourceGroups/g/providers/Microsoft.ContainerService/fleets/f/members/m")
    assert (parsed.subscription_id, parsed.group, parsed.namespace) == ("s1", "g", "Microsoft.ContainerService")
    assert (parsed.types, parsed.names) == (("fleets", "members"), ("f", "m"))
    assert parsed.name == "m"
    assert parsed.full_type == "Microsoft.ContainerService/fleets/members"


def test_parse_id_of_groups_subscriptions_and_a_type_without_name():
    group = parse_id("/SUBSCRIPTIONS/s1/RESOURCEGROUPS/g/")
    assert (group.subscription_id, group.group, group.namespace, group.types) == ("s1", "g", None, ())
    assert group.name == "g" and group.full_type == "Microsoft.Resources/resourceGroups"
    subscription = parse_id("/subscriptions/s1")
    assert subscription.group is None and subscription.name == "s1"
    assert subscription.full_type == "Microsoft.Resources/subscriptions"
    listing = parse_id("/subscriptions/s1/resourceGroups/g/providers/Microsoft.KeyVault/vaults")
    assert (listing.types, listing.names, listing.name) == (("vaults",), (), "g")
    provider = parse_id("/subscriptions/s1/providers/Microsoft.ContainerService")
    assert (provider.namespace, provider.types, provider.full_type) == ("Microsoft.ContainerService", (),
                                                                       "Microsoft.ContainerService")
    at_subscription = parse_id("/subscriptions/s1/providers/Microsoft.Authorization/roleDefinitions/r1")
    assert at_subscription.group is None and at_subscription.full_type == "Microsoft.Authorization/roleDefinitions"
    assert at_subscription.name == "r1"


@pytest.mark.parametrize("value", ["", "/", "/subscriptions", "/tenants/t/subscriptions/s", "subscription/s"])
def test_parse_id_refuses_what_is_not_subscription_scoped(value):
    with pytest.raises(ValueError, match="not a subscription-scoped resource id"):
        parse_id(value)


def test_group_names_and_timestamps():
    assert GROUP_NAME.match("rg-fleet_1.(x)") and GROUP_NAME.match("a" * 90)
    assert not GROUP_NAME.match("a" * 91) and not GROUP_NAME.match("") and not GROUP_NAME.match("rg/x")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", utc_now())


# --- role definitions -----------------------------------------------------------------------------


@pytest.mark.parametrize(("role", "action", "allowed"), [
    (OWNER, "Microsoft.Authorization/roleAssignments/write", True),
    (CONTRIBUTOR, "Microsoft.ContainerService/managedClusters/write", True),
    (CONTRIBUTOR, "microsoft.containerservice/managedclusters/WRITE", True),
    (CONTRIBUTOR, "Microsoft.Authorization/roleAssignments/write", False),
    (CONTRIBUTOR, "Microsoft.Authorization/roleAssignments/delete", False),
    (CONTRIBUTOR, "Microsoft.Authorization/elevateAccess/Action", False),
    (CONTRIBUTOR, "Microsoft.Authorization/roleAssignments/read", True),
    (READER, "Microsoft.Resources/subscriptions/resourceGroups/read", True),
    (READER, "Microsoft.Resources/subscriptions/resourceGroups/write", False),
    (ACR_PULL, "Microsoft.ContainerRegistry/registries/pull/read", True),
    (ACR_PULL, "Microsoft.ContainerRegistry/registries/push/write", False),
    (KEY_VAULT_SECRETS_USER, "Microsoft.KeyVault/vaults/read", False),
])
def test_role_actions_follow_wildcards_and_exclusions(role, action, allowed):
    assert BUILT_IN_ROLES[role].allows(action) is allowed


def test_data_actions_are_granted_separately_from_actions():
    officer, user = BUILT_IN_ROLES[KEY_VAULT_SECRETS_OFFICER], BUILT_IN_ROLES[KEY_VAULT_SECRETS_USER]
    assert officer.allows_data("Microsoft.KeyVault/vaults/secrets/setSecret/action")
    assert user.allows_data("Microsoft.KeyVault/vaults/secrets/getSecret/action")
    assert not user.allows_data("Microsoft.KeyVault/vaults/secrets/setSecret/action")
    assert not BUILT_IN_ROLES[OWNER].allows_data("Microsoft.KeyVault/vaults/secrets/getSecret/action")


def test_role_definition_body_and_guid():
    body = role_definition_body(BUILT_IN_ROLES[CONTRIBUTOR], SUB + "/")
    assert body["id"] == role_id(CONTRIBUTOR) and body["name"] == CONTRIBUTOR
    assert body["type"] == "Microsoft.Authorization/roleDefinitions"
    assert body["properties"] == {
        "roleName": "Contributor", "type": "BuiltInRole",
        "description": "Grants full access to manage all resources, but does not allow you to assign roles in Azure "
                       "RBAC.",
        "assignableScopes": ["/"],
        "permissions": [{"actions": ["*"], "notActions": [
            "Microsoft.Authorization/*/Delete", "Microsoft.Authorization/*/Write",
            "Microsoft.Authorization/elevateAccess/Action"], "dataActions": [], "notDataActions": []}],
        "createdOn": "2015-02-02T21:55:09.8806423Z", "updatedOn": "2024-01-01T00:00:00.0000000Z",
        "createdBy": None, "updatedBy": None,
    }
    upper = role_definition_body(BUILT_IN_ROLES[READER], "/subscriptions/SUBX/")
    assert upper["id"] == f"/subscriptions/SUBX/providers/Microsoft.Authorization/roleDefinitions/{READER}"
    assert role_guid_from_id(role_id(READER.upper()) + "/") == READER
    assert role_guid_from_id(READER.upper()) == READER
    assert uuid.UUID(new_assignment_name()) and new_assignment_name() != new_assignment_name()


# --- assignments and decisions --------------------------------------------------------------------


def test_a_grant_reaches_its_scope_and_what_lies_below_only(rbac):
    rbac.assign(APP_A, str(uuid.uuid4()), role_id(CONTRIBUTOR), PRINCIPAL.object_id)
    write = "Microsoft.ContainerService/managedClusters/write"
    assert rbac.allowed(PRINCIPAL, write, APP_A)
    assert rbac.allowed(PRINCIPAL, write, CLUSTER_IN_A)
    assert not rbac.allowed(PRINCIPAL, write, APP_AB)
    assert not rbac.allowed(PRINCIPAL, write, SUB)
    other = Principal(object_id="22222222-2222-2222-2222-222222222222", app_id="other", tenant_id="t")
    assert not rbac.allowed(other, write, APP_A)
    assert [role.name for role in rbac.roles_of(PRINCIPAL.object_id.upper(), CLUSTER_IN_A)] == ["Contributor"]
    assert rbac.roles_of(PRINCIPAL.object_id, APP_AB) == []


def test_authorize_refuses_with_the_client_object_action_and_scope(rbac):
    rbac.assign(APP_A, str(uuid.uuid4()), role_id(READER), PRINCIPAL.object_id)
    rbac.authorize(PRINCIPAL, "Microsoft.Resources/subscriptions/resourceGroups/read", APP_A)
    with pytest.raises(ArmError) as refused:
        rbac.authorize(PRINCIPAL, "Microsoft.Resources/subscriptions/resourceGroups/write", APP_A)
    assert (refused.value.status, refused.value.code) == (403, "AuthorizationFailed")
    assert refused.value.message == (
        f"The client 'app-id' with object id '{PRINCIPAL.object_id}' does not have authorization to perform action "
        f"'Microsoft.Resources/subscriptions/resourceGroups/write' over scope '{APP_A}' or the scope is invalid. "
        "If access was recently granted, please refresh your credentials.")


def test_data_actions_follow_the_scope_too(rbac):
    vault = f"{APP_A}/providers/Microsoft.KeyVault/vaults/kv1"
    rbac.assign(vault, str(uuid.uuid4()), role_id(KEY_VAULT_SECRETS_USER), PRINCIPAL.object_id)
    get = "Microsoft.KeyVault/vaults/secrets/getSecret/action"
    assert rbac.allowed_data(PRINCIPAL, get, vault + "/secrets/db")
    assert not rbac.allowed_data(PRINCIPAL, "Microsoft.KeyVault/vaults/secrets/setSecret/action", vault)
    assert not rbac.allowed_data(PRINCIPAL, get, f"{APP_A}/providers/Microsoft.KeyVault/vaults/kv10")
    assert not rbac.allowed(PRINCIPAL, "Microsoft.KeyVault/vaults/read", vault)


def test_assign_records_the_assignment_as_resource_manager_shows_it(rbac):
    name = str(uuid.uuid4())
    body, created = rbac.assign(APP_A + "/", name, role_id(CONTRIBUTOR), PRINCIPAL.object_id,
                                principal_type="User", created_by="admin", description="why")
    assert created
    assert body["id"] == f"{APP_A}/providers/Microsoft.Authorization/roleAssignments/{name}"
    assert (body["name"], body["type"]) == (name, "Microsoft.Authorization/roleAssignments")
    props = body["properties"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", props["createdOn"])
    assert props == {
        "roleDefinitionId": role_id(CONTRIBUTOR), "principalId": PRINCIPAL.object_id, "principalType": "User",
        "scope": APP_A, "condition": None, "conditionVersion": None, "createdOn": props["createdOn"],
        "updatedOn": props["createdOn"], "createdBy": "admin", "updatedBy": "admin",
        "delegatedManagedIdentityResourceId": None, "description": "why",
    }
    assert rbac.get(body["id"].upper()) == body
    assert rbac.assignments() == [body]
    assert rbac.assign(APP_A, name, role_id(CONTRIBUTOR), PRINCIPAL.object_id.upper()) == (body, False)
    # A scope ending in a capital X keeps it; the principal type defaults to ServicePrincipal.
    odd, _ = rbac.assign(f"{SUB}/resourceGroups/APPX/", str(uuid.uuid4()), role_id(READER), PRINCIPAL.object_id)
    assert odd["properties"]["scope"] == f"{SUB}/resourceGroups/APPX"
    assert odd["id"].startswith(f"{SUB}/resourceGroups/APPX/providers/Microsoft.Authorization/roleAssignments/")
    assert odd["properties"]["principalType"] == "ServicePrincipal"


def test_root_scope_assignments_have_a_tenant_level_role_id(rbac):
    body, _ = rbac.assign("/", str(uuid.uuid4()), role_id(READER), PRINCIPAL.object_id)
    assert body["properties"]["scope"] == "/"
    assert body["properties"]["roleDefinitionId"] == f"/providers/Microsoft.Authorization/roleDefinitions/{READER}"
    assert rbac.allowed(PRINCIPAL, "Microsoft.Resources/subscriptions/resourceGroups/read", APP_AB)


def test_assign_refuses_bad_names_unknown_roles_changes_and_duplicates(rbac):
    with pytest.raises(ArmError) as bad_name:
        rbac.assign(APP_A, "not-a-guid", role_id(READER), PRINCIPAL.object_id)
    assert (bad_name.value.status, bad_name.value.code) == (400, "InvalidRoleAssignmentId")
    assert "'not-a-guid' is not valid" in bad_name.value.message
    unknown = str(uuid.uuid4())
    with pytest.raises(ArmError) as bad_role:
        rbac.assign(APP_A, str(uuid.uuid4()), role_id(unknown), PRINCIPAL.object_id)
    assert (bad_role.value.status, bad_role.value.code) == (400, "RoleDefinitionDoesNotExist")
    assert bad_role.value.message == f"The specified role definition with ID '{unknown}' does not exist."

    name = str(uuid.uuid4())
    rbac.assign(APP_A, name, role_id(READER), PRINCIPAL.object_id)
    with pytest.raises(ArmError) as changed_role:
        rbac.assign(APP_A, name, role_id(CONTRIBUTOR), PRINCIPAL.object_id)
    assert (changed_role.value.status, changed_role.value.code) == (409, "RoleAssignmentUpdateNotPermitted")
    assert changed_role.value.message == ("Tenant ID, application ID, principal ID, and scope are not allowed to be "
                                          "updated.")
    with pytest.raises(ArmError) as changed_principal:
        rbac.assign(APP_A, name, role_id(READER), "33333333-3333-3333-3333-333333333333")
    assert changed_principal.value.code == "RoleAssignmentUpdateNotPermitted"
    with pytest.raises(ArmError) as duplicate:
        rbac.assign(APP_A.upper(), str(uuid.uuid4()), role_id(READER), PRINCIPAL.object_id.upper())
    assert (duplicate.value.status, duplicate.value.code) == (409, "RoleAssignmentExists")
    assert duplicate.value.message == ("The role assignment already exists. The ID of the existing role assignment "
                                       f"is {name}.")
    # The principal's id in another case is the same principal.
    assert rbac.assign(APP_A, name, role_id(READER), PRINCIPAL.object_id.upper())[1] is False
    # The same role for another principal, or another role for the same one, is a new assignment.
    assert rbac.assign(APP_A, str(uuid.uuid4()), role_id(READER), "44444444-4444-4444-4444-444444444444")[1]
    assert rbac.assign(APP_A, str(uuid.uuid4()), role_id(ACR_PULL), PRINCIPAL.object_id)[1]
    assert rbac.assign(APP_AB, str(uuid.uuid4()), role_id(READER), PRINCIPAL.object_id)[1]


def test_remove_and_remove_under_a_deleted_scope(rbac):
    in_a, _ = rbac.assign(APP_A, str(uuid.uuid4()), role_id(READER), PRINCIPAL.object_id)
    on_cluster, _ = rbac.assign(CLUSTER_IN_A, str(uuid.uuid4()), role_id(CONTRIBUTOR), PRINCIPAL.object_id)
    in_ab, _ = rbac.assign(APP_AB, str(uuid.uuid4()), role_id(READER), PRINCIPAL.object_id)
    rbac.remove_under(APP_A)
    assert [body["id"] for body in rbac.assignments()] == [in_ab["id"]]
    assert rbac.get(in_a["id"]) is None and rbac.get(on_cluster["id"]) is None
    assert rbac.remove(in_ab["id"]) == in_ab
    assert rbac.remove(in_ab["id"]) is None
    assert rbac.assignments() == []


def test_every_built_in_role_is_keyed_by_its_own_guid():
    assert all(guid == role.guid and rbac_module.GUID.match(guid) for guid, role in BUILT_IN_ROLES.items())
