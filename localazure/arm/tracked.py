"""What every provider's tracked resources share: the path of one resource, reads and lists with RBAC, the
GET routes of a type (`add_reads`), cascade deletion with their group, and repair after a restart."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Depends, Request

from localazure.arm.auth import get_caller
from localazure.arm.common import (
    RESOURCES,
    authorize_in_subscription,
    get_group,
    read_json_object,
    require_subscription,
)
from localazure.arm.context import Emulator, get_emulator
from localazure.arm.envelope import delete_records, load, of_type, readable
from localazure.arm.errors import invalid_parameter, not_found
from localazure.arm.rbac import Principal
from localazure.arm.store import Record

TRANSITIONAL = frozenset({"Creating", "Updating", "Deleting", "ResolvingDNS", "RegisteringDns", "Provisioning"})


def resource_id(emulator: Emulator, group: str, resource_type: str, name: str) -> str:
    """Id of a top-level resource `Namespace/type` named `name` in `group`."""
    namespace, short = resource_type.split("/", 1)
    return f"{emulator.group_id(group)}/providers/{namespace}/{short}/{name}"


def require(emulator: Emulator, resource_id: str, resource_type: str, group: str) -> Record:
    """The stored record, or 404 ResourceNotFound naming the type and name."""
    record = load(emulator, resource_id, resource_type)
    if record is None:
        raise not_found(resource_type, resource_id.rsplit("/", 1)[-1], group)
    return record


def authorized(emulator: Emulator, caller: Principal, subscription_id: str, group: str, resource_type: str,
               name: str, verb: str) -> str:
    """The resource's id once the path names this subscription and the caller may `verb` it (`read`,
    `write`, `delete` or `<action>/action`)."""
    return authorize_in_subscription(emulator, caller, subscription_id, f"{resource_type}/{verb}",
                                     resource_id(emulator, group, resource_type, name))


def in_group(emulator: Emulator, resource_id: str, resource_type: str, group: str) -> Record:
    """The stored record; 404 when its group or it does not exist."""
    get_group(emulator, group)
    return require(emulator, resource_id, resource_type, group)


def read(emulator: Emulator, caller: Principal, subscription_id: str, group: str, resource_type: str,
         name: str, verb: str = "read") -> Record:
    """The record of a resource the caller may read (or `verb`, e.g. `listKeys/action`); 404 when it or its
    group does not exist."""
    rid = authorized(emulator, caller, subscription_id, group, resource_type, name, verb)
    return in_group(emulator, rid, resource_type, group)


async def secret_to_regenerate(emulator: Emulator, caller: Principal, subscription_id: str, group: str,
                               resource_type: str, name: str, request: Request, *, action: str, field: str,
                               choices: tuple[str, ...], what: str) -> tuple[str, str]:
    """For a POST that regenerates one of a resource's secrets (registry passwords, storage keys): the resource's
    id and which secret the body's `field` names, once the caller may `action` it; 400 naming the choices."""
    rid = authorized(emulator, caller, subscription_id, group, resource_type, name, action)
    chosen = (await read_json_object(request)).get(field)
    if chosen not in choices:
        raise invalid_parameter(field, f"The {what} must be {' or '.join(repr(c) for c in choices)}.")
    return rid, chosen


def list_in_group(emulator: Emulator, caller: Principal, subscription_id: str, group: str,
                  resource_type: str) -> dict[str, Any]:
    """List answer: resources of a type in a group that the caller may read."""
    require_subscription(emulator, subscription_id)
    get_group(emulator, group)
    return {"value": readable(emulator, caller, resource_type, emulator.group_id(group))}


def list_in_subscription(emulator: Emulator, caller: Principal, subscription_id: str,
                         resource_type: str) -> dict[str, Any]:
    """List answer: resources of a type in the subscription that the caller may read."""
    require_subscription(emulator, subscription_id)
    return {"value": readable(emulator, caller, resource_type, emulator.subscription_path)}


def delete_in_group(emulator: Emulator, group_id: str, resource_type: str) -> None:
    """Delete every resource of a type in a group (cascade of a group deletion)."""
    for record in of_type(emulator, resource_type, group_id):
        delete_records(emulator, record["body"]["id"])


def fail_transitional(emulator: Emulator, resource_type: str) -> None:
    """After a restart: resources left in a transitional provisioning state by a cut-off operation fail."""
    with emulator.store.transaction():
        for record in of_type(emulator, resource_type):
            if record["body"].get("properties", {}).get("provisioningState") in TRANSITIONAL:
                emulator.store.update(RESOURCES, record["body"]["id"],
                                      lambda r: r["body"]["properties"].update(provisioningState="Failed"))


# An answer to a GET: (emulator, caller, the path's parameters) -> the JSON body.
Reader = Callable[[Emulator, Principal, dict[str, str]], dict[str, Any]]


def add_get(router: APIRouter, path: str, answer: Reader, summary: str) -> None:
    """Register `GET path`, answered by `answer(emulator, caller, path parameters)`: the read and list routes
    every provider has, written once."""

    def handler(request: Request, emulator: Emulator = Depends(get_emulator),
                caller: Principal = Depends(get_caller)) -> dict[str, Any]:
        return answer(emulator, caller, dict(request.path_params))

    handler.__doc__ = summary
    router.add_api_route(path, handler, methods=["GET"], name=summary)


def add_reads(router: APIRouter, resource_type: str, item_path: str, *, what: str, plural: str,
              item_param: str = "name", lists: bool = True) -> None:
    """GET one resource of a top-level type (`item_path` names `{subscription_id}`, `{group}` and the item)
    and, with `lists`, the lists of the type by group and by subscription, filtered to what the caller may
    read."""

    def one(emulator: Emulator, caller: Principal, path: dict[str, str]) -> dict[str, Any]:
        body: dict[str, Any] = read(emulator, caller, path["subscription_id"], path["group"], resource_type,
                                    path[item_param])["body"]
        return body

    add_get(router, item_path, one, f"A {what}.")
    if not lists:
        return
    add_get(router, f"/subscriptions/{{subscription_id}}/resourceGroups/{{group}}/providers/{resource_type}",
            lambda emulator, caller, path: list_in_group(emulator, caller, path["subscription_id"], path["group"],
                                                         resource_type),
            f"{plural} of a group that the caller may read.")
    add_get(router, f"/subscriptions/{{subscription_id}}/providers/{resource_type}",
            lambda emulator, caller, path: list_in_subscription(emulator, caller, path["subscription_id"],
                                                                resource_type),
            f"{plural} of the subscription that the caller may read.")
