"""fleets/members: AKS clusters joined to a fleet, each in an update group."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response

from localazure.arm.auth import get_caller
from localazure.arm.common import RESOURCES, read_json_object, require_group_writable
from localazure.arm.context import Emulator, get_emulator
from localazure.arm.errors import ArmError, another_operation_in_progress, invalid_parameter
from localazure.arm.ids import parse_id
from localazure.arm.rbac import Principal
from localazure.arm.store import Record
from localazure.providers.aks import aks_of
from localazure.providers.fleet.resources import (
    CLUSTER_TYPE,
    FLEET_PATH,
    MEMBER_TYPE,
    accepted_write,
    add_child_reads,
    authorize_child,
    check_etag,
    delete_child,
    finish_delete,
    finish_write,
    load,
    mark_modified,
    new_etag,
    operation_status_id,
    properties_of,
    require,
    set_state,
    start_operation,
    system_data,
)

router = APIRouter()

MEMBER_PATH = FLEET_PATH + "/members/{member}"
JOIN_ACTION = "Microsoft.ContainerService/managedClusters/join/action"


def _labels(value: Any) -> dict[str, str] | None:
    if value is None:
        return None
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise invalid_parameter("properties.labels", "Labels must be an object whose values are strings.")
    return dict(value)


def _group(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value or len(value) > 50:
        raise invalid_parameter("properties.group", "The update group must be a name of 1-50 characters.")
    return value


def member_owning(emulator: Emulator, cluster_id: str) -> Record | None:
    """The fleet member (in any fleet of the subscription) whose cluster is `cluster_id`."""
    low = cluster_id.lower().rstrip("/")
    found = emulator.store.values(
        RESOURCES, lambda r: r["body"].get("type") == MEMBER_TYPE
        and r["body"]["properties"]["clusterResourceId"].lower().rstrip("/") == low)
    return found[0] if found else None


def _check_cluster(emulator: Emulator, caller: Principal, cluster_id: Any, member_id: str) -> str:
    prop = "properties.clusterResourceId"
    if not isinstance(cluster_id, str) or not cluster_id:
        raise invalid_parameter(prop, "clusterResourceId (the id of the AKS cluster to join) is required.")
    try:
        parsed = parse_id(cluster_id)
    except ValueError as exc:
        raise invalid_parameter(prop, f"'{cluster_id}' is not an Azure resource id.") from exc
    if parsed.full_type.lower() != CLUSTER_TYPE.lower() or len(parsed.names) != 1:
        raise invalid_parameter(prop, f"'{cluster_id}' is not the id of a managed cluster "
                                f"({CLUSTER_TYPE}).")
    if parsed.subscription_id.lower() != emulator.subscription_id.lower() or not aks_of(emulator).exists(cluster_id):
        raise ArmError(400, "ClusterNotFound", f"The managed cluster '{cluster_id}' given as clusterResourceId "
                       "does not exist; create the AKS cluster before joining it to the fleet.",
                       details=[{"code": "ClusterNotFound", "message": "The member cluster does not exist.",
                                 "target": prop}])
    emulator.rbac.authorize(caller, JOIN_ACTION, cluster_id)
    owner = member_owning(emulator, cluster_id)
    if owner is not None and owner["body"]["id"].lower() != member_id.lower():
        raise ArmError(409, "MemberAlreadyExists", f"The managed cluster '{cluster_id}' is already a member of a "
                       f"fleet as '{owner['body']['id']}'; a cluster can belong to one fleet only.")
    return str(aks_of(emulator).get(cluster_id)["id"])


@router.put(MEMBER_PATH)
async def create_member(
    subscription_id: str, group: str, fleet: str, member: str, request: Request,
    emulator: Emulator = Depends(get_emulator), caller: Principal = Depends(get_caller),
) -> Response:
    """Join a cluster to the fleet (201, long-running); a re-PUT of the same member updates group and labels."""
    fleet_record, member_id = authorize_child(emulator, caller, subscription_id, group, fleet, MEMBER_TYPE, member,
                                              "write", new_name_of="fleet member")
    props = properties_of(await read_json_object(request))
    update_group = _group(props.get("group"))
    labels = _labels(props.get("labels"))
    with emulator.store.transaction():
        require_group_writable(emulator, group)
        existing = load(emulator, member_id, MEMBER_TYPE)
        check_etag(request, existing)
        if existing is not None:
            running = emulator.operations.active_on(member_id)
            if running is not None:
                raise another_operation_in_progress(member_id, running["kind"])
            current = existing["body"]["properties"]["clusterResourceId"]
            if str(props.get("clusterResourceId", "")).lower() != current.lower():
                raise invalid_parameter("properties.clusterResourceId", f"The cluster of member '{member}' cannot "
                                        f"be changed (it is '{current}'); delete the member and create it again.")
        cluster_id = _check_cluster(emulator, caller, props.get("clusterResourceId"), member_id)
        stored: dict[str, Any] = {
            "id": member_id,
            "name": member,
            "type": MEMBER_TYPE,
            "eTag": new_etag(),
            "systemData": system_data(caller, existing["body"]["systemData"] if existing else None),
            "properties": {
                "clusterResourceId": cluster_id,
                "group": update_group,
                "labels": labels or {},
                "provisioningState": "Updating" if existing else "Joining",
                "status": {"lastOperationId": None, "lastOperationError": None},
            },
        }
        emulator.store.put(RESOURCES, member_id, {"body": stored, "internal": {}})
        op = start_operation(emulator, kind="fleet.member.update" if existing else "fleet.member.create",
                             resource_id=member_id, location=fleet_record["body"]["location"],
                             work=lambda run: finish_write(emulator, member_id, run),
                             on_failure=lambda error: set_state(emulator, member_id, "Failed", error))
        stored["properties"]["status"]["lastOperationId"] = operation_status_id(emulator, op)
        emulator.store.update(RESOURCES, member_id, lambda r: r["body"]["properties"].update(
            status=dict(stored["properties"]["status"])))
    return accepted_write(emulator, request, op, stored, 200 if existing else 201)


@router.patch(MEMBER_PATH)
async def update_member(
    subscription_id: str, group: str, fleet: str, member: str, request: Request,
    emulator: Emulator = Depends(get_emulator), caller: Principal = Depends(get_caller),
) -> Response:
    """Change a member's update group or labels (answered at once: 200, Succeeded)."""
    _, member_id = authorize_child(emulator, caller, subscription_id, group, fleet, MEMBER_TYPE, member, "write")
    props = properties_of(await read_json_object(request), required=False)
    with emulator.store.transaction():
        require_group_writable(emulator, group)
        record = require(emulator, member_id, MEMBER_TYPE, group)
        check_etag(request, record)
        if record["body"]["properties"]["provisioningState"] in ("Joining", "Leaving"):
            raise another_operation_in_progress(member_id, record["body"]["properties"]["provisioningState"])
        new_group = _group(props.get("group")) if "group" in props else None
        labels = _labels(props.get("labels"))

        def change(stored: Record) -> None:
            body = stored["body"]
            if "group" in props:
                body["properties"]["group"] = new_group
            if labels is not None:
                body["properties"]["labels"] = labels
            mark_modified(body, caller)

        updated = emulator.store.update(RESOURCES, member_id, change)
    assert updated is not None
    return JSONResponse(updated["body"], status_code=200)


add_child_reads(router, MEMBER_TYPE, "member", what="fleet member", plural="Members")


@router.delete(MEMBER_PATH)
def delete_member(
    subscription_id: str, group: str, fleet: str, member: str, request: Request,
    emulator: Emulator = Depends(get_emulator), caller: Principal = Depends(get_caller),
) -> Response:
    """Remove a cluster from the fleet (202, long-running; the cluster itself stays); 204 if absent."""
    fleet_record, member_id = authorize_child(emulator, caller, subscription_id, group, fleet, MEMBER_TYPE, member,
                                              "delete")
    return delete_child(emulator, request, fleet_record, member_id, MEMBER_TYPE, kind="fleet.member.delete",
                        work=lambda run: finish_delete(emulator, member_id, run), deleting_state="Leaving",
                        on_failure=lambda error: set_state(emulator, member_id, "Failed", error))
