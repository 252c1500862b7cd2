"""Role definition ids as local Azure shows them (under the subscription of the scope, or at the root), and the
rewrite of assignments an earlier version stored with its own ids for Owner and Reader."""

from __future__ import annotations

import copy
import uuid

import pytest

from localazure.arm.rbac import (
    BUILT_IN_ROLES,
    LEGACY_IDS,
    OWNER,
    READER,
    TABLE,
    Principal,
    Rbac,
    role_definition_body,
    role_definition_prefix,
    role_guid_from_id,
)
from localazure.arm.store import StateStore

SUB = "/subscriptions/0000-sub"
GROUP = f"{SUB}/resourceGroups/app-a"
LEGACY_OWNER = "8e3af657-a8ff-443f-a75c-2fe8c4bcb635"
LEGACY_READER = "acdd72a7-3547-48ad-b1d0-8b4c1bd7a5b7"
PRINCIPAL = Principal(object_id="aaaaaaaa-1111-bbbb-1111-cccccccccccc", app_id="app-id", tenant_id="t")


@pytest.mark.parametrize(("scope", "prefix"), [
    (f"{GROUP}/providers/Microsoft.ContainerService/managedClusters/aks-1", SUB),
    (GROUP, SUB),
    (SUB, SUB),
    (SUB + "/", SUB),
    ("subscriptions/0000-sub/resourceGroups/x", SUB),
    ("/SUBSCRIPTIONS/0000-sub", SUB),
    ("/subscriptions", ""),
    ("/", ""),
    ("", ""),
    ("/providers/Microsoft.Management/managementGroups/mg", ""),
    ("/tenants/subscriptions/x", ""),
])
def test_built_in_roles_are_listed_under_the_subscription_of_the_scope_else_at_the_root(scope: str, prefix: str):
    assert role_definition_prefix(scope) == prefix
    body = role_definition_body(BUILT_IN_ROLES[READER], scope)
    assert body["id"] == f"{prefix}/providers/Microsoft.Authorization/roleDefinitions/{READER}"


def test_the_legacy_ids_of_owner_and_reader_map_to_azures():
    assert LEGACY_IDS == {LEGACY_OWNER: OWNER, LEGACY_READER: READER}
    assert role_guid_from_id(f"{SUB}/providers/Microsoft.Authorization/roleDefinitions/{LEGACY_OWNER.upper()}") == OWNER
    assert role_guid_from_id(LEGACY_READER) == READER
    assert role_guid_from_id(f"/providers/Microsoft.Authorization/roleDefinitions/{OWNER}/") == OWNER


def _stored(rbac_store: StateStore, scope: str, role_id: str) -> str:
    name = str(uuid.uuid4())
    assignment_id = f"{scope}/providers/Microsoft.Authorization/roleAssignments/{name}"
    rbac_store.put(TABLE, assignment_id, {"id": assignment_id, "name": name, "properties": {
        "roleDefinitionId": role_id, "principalId": PRINCIPAL.object_id, "scope": scope}})
    return assignment_id


def test_assignments_stored_with_legacy_ids_are_rewritten_once_and_kept(tmp_path):
    store = StateStore(tmp_path / "state.json")
    rbac = Rbac(store)
    definitions = f"{SUB}/providers/Microsoft.Authorization/roleDefinitions/"
    owner = _stored(store, GROUP, definitions + LEGACY_OWNER)
    reader = _stored(store, SUB, definitions + LEGACY_READER.upper())
    current, _ = rbac.assign(GROUP, str(uuid.uuid4()), definitions + READER, "bbbbbbbb-2222-2222-2222-222222222222")
    before = copy.deepcopy(current)
    assert rbac.migrate_legacy_ids() == 2
    assert rbac.get(owner)["properties"]["roleDefinitionId"] == definitions + OWNER  # type: ignore[index]
    assert rbac.get(reader)["properties"]["roleDefinitionId"] == definitions + READER  # type: ignore[index]
    assert rbac.get(current["id"]) == before
    assert rbac.migrate_legacy_ids() == 0
    reopened = Rbac(StateStore(tmp_path / "state.json"))
    assert reopened.get(owner)["properties"]["roleDefinitionId"] == definitions + OWNER  # type: ignore[index]
    assert sorted(role.name for role in reopened.roles_of(PRINCIPAL.object_id, GROUP)) == ["Owner", "Reader"]


def test_a_store_without_legacy_ids_is_left_as_it_is(tmp_path):
    rbac = Rbac(StateStore(tmp_path / "state.json"))
    assert rbac.migrate_legacy_ids() == 0
    assert rbac.assignments() == []
