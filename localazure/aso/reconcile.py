"""Reconciling one ASO object into local Azure, as ASO v2 does: owner, credential, PUT (or GET for skip),
status and the Ready condition, annotations, finalizer, deletion, outputs."""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kubernetes.client import CoreV1Api, CustomObjectsApi
from kubernetes.client.exceptions import ApiException

from localazure.aso import outputs
from localazure.aso.arm import ArmClient, AzureError
from localazure.aso.kinds import RESOURCE_GROUP, STORAGE_ACCOUNT, AsoKind
from localazure.aso.settings import (
    CREDENTIAL_FROM,
    NAMESPACE_CREDENTIAL_SECRET,
    Credential,
    OperatorSettings,
    SettingsError,
    decode_secret,
)

log = logging.getLogger(__name__)

FINALIZER = "serviceoperator.azure.com/finalizer"
RESOURCE_ID = "serviceoperator.azure.com/resource-id"
RECONCILE_POLICY = "serviceoperator.azure.com/reconcile-policy"
POLICIES = ("manage", "skip", "detach-on-delete")

RECONCILING = "The resource is in the process of being reconciled by the operator"


class Blocked(Exception):
    """Reconciliation cannot proceed yet (e.g. WaitingForOwner); reported as a Warning and retried."""

    def __init__(self, reason: str, message: str, severity: str = "Warning") -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.severity = severity


@dataclass
class Outcome:
    """What a reconcile did: ready or not, and when to look again (None = at the next sync period)."""

    ready: bool
    retry_in: float | None = None
    deleted: bool = False


def now_iso() -> str:
    """RFC 3339 UTC, seconds precision (metav1.Time)."""
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def ready_condition(obj: dict[str, Any]) -> dict[str, Any] | None:
    """The object's Ready condition, if any."""
    for condition in (obj.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready":
            return dict(condition)
    return None


def make_condition(previous: dict[str, Any] | None, status: bool, reason: str, message: str, severity: str,
                   generation: int) -> dict[str, Any]:
    """A Ready condition; lastTransitionTime kept while the status does not change."""
    value = "True" if status else "False"
    condition: dict[str, Any] = {
        "type": "Ready", "status": value, "reason": reason, "observedGeneration": generation,
        "lastTransitionTime": now_iso(),
    }
    if message:
        condition["message"] = message
    if not status and severity:
        condition["severity"] = severity
    if previous and previous.get("status") == value:
        condition["lastTransitionTime"] = previous.get("lastTransitionTime") or condition["lastTransitionTime"]
    return condition


def policy_of(obj: dict[str, Any]) -> str:
    """The reconcile policy annotation; unknown values mean manage."""
    value = ((obj.get("metadata") or {}).get("annotations") or {}).get(RECONCILE_POLICY, "manage")
    return value if value in POLICIES else "manage"


def azure_name(obj: dict[str, Any]) -> str:
    """spec.azureName, defaulting to metadata.name."""
    return str((obj.get("spec") or {}).get("azureName") or obj["metadata"]["name"])


class Reconciler:
    """Reconciles the ASO objects of one cluster into local Azure."""

    def __init__(self, custom: CustomObjectsApi, core: CoreV1Api, arm: ArmClient,
                 settings: Callable[[], OperatorSettings]) -> None:
        # The kubernetes client's stubs type custom objects as `object`; they are JSON dicts.
        self.custom: Any = custom
        self.core: Any = core
        self.arm = arm
        self.settings = settings

    # ---- kube helpers ----------------------------------------------------------------------------

    def _patch(self, kind: AsoKind, obj: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
        meta = obj["metadata"]
        result: dict[str, Any] = self.custom.patch_namespaced_custom_object(
            kind.group, kind.storage_version, meta["namespace"], kind.plural, meta["name"], body)
        return result

    def _write_status(self, kind: AsoKind, obj: dict[str, Any], status: dict[str, Any]) -> None:
        meta = obj["metadata"]
        current = obj.get("status") or {}
        if current == status:
            return
        body = dict(obj)
        body["status"] = status
        try:
            self.custom.replace_namespaced_custom_object_status(
                kind.group, kind.storage_version, meta["namespace"], kind.plural, meta["name"], body)
        except ApiException as exc:
            if exc.status == 409:  # changed meanwhile: write without the resourceVersion precondition
                body["metadata"] = {k: v for k, v in meta.items() if k != "resourceVersion"}
                self.custom.patch_namespaced_custom_object_status(
                    kind.group, kind.storage_version, meta["namespace"], kind.plural, meta["name"],
                    {"status": status})
            elif exc.status != 404:
                raise

    def _set_condition(self, kind: AsoKind, obj: dict[str, Any], status: bool, reason: str, message: str,
                       severity: str, base: dict[str, Any] | None = None) -> None:
        previous = ready_condition(obj)
        new_status = dict(base if base is not None else (obj.get("status") or {}))
        condition = make_condition(previous, status, reason, message, severity, int(obj["metadata"]["generation"]))
        others = [c for c in new_status.get("conditions") or [] if c.get("type") != "Ready"]
        new_status["conditions"] = [*others, condition]
        self._write_status(kind, obj, new_status)

    def _read_secret(self, namespace: str, name: str) -> dict[str, str] | None:
        try:
            return decode_secret(self.core.read_namespaced_secret(name, namespace))
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    # ---- credential and owner --------------------------------------------------------------------

    def credential(self, obj: dict[str, Any], settings: OperatorSettings) -> Credential:
        """Per-resource secret (annotation) > namespace secret aso-credential > global credential."""
        meta = obj["metadata"]
        namespace = meta["namespace"]
        named = (meta.get("annotations") or {}).get(CREDENTIAL_FROM)
        if named:
            values = self._read_secret(namespace, named)
            if values is None:
                raise SettingsError("CredentialNotFound", f'Credential secret "{namespace}/{named}" named by '
                                    f"{CREDENTIAL_FROM} does not exist")
            return Credential.from_values(values, f"secret {namespace}/{named}")
        values = self._read_secret(namespace, NAMESPACE_CREDENTIAL_SECRET)
        if values is not None:
            return Credential.from_values(values, f"secret {namespace}/{NAMESPACE_CREDENTIAL_SECRET}")
        if settings.global_credential is None:
            raise SettingsError("CredentialNotFound", "No credential: aso-controller-settings has no global "
                                f"credential and namespace {namespace} has no {NAMESPACE_CREDENTIAL_SECRET} secret")
        return settings.global_credential

    def owner_id(self, kind: AsoKind, obj: dict[str, Any]) -> str:
        """ARM id of the owner (owner.armId, or the ResourceGroup named in the same namespace)."""
        owner = (obj.get("spec") or {}).get("owner") or {}
        if owner.get("armId"):
            return str(owner["armId"]).rstrip("/")
        name = owner.get("name")
        namespace = obj["metadata"]["namespace"]
        if not name:
            raise Blocked("InvalidOwner", "spec.owner needs name or armId", "Error")
        group, owner_kind = owner.get("group") or RESOURCE_GROUP.group, owner.get("kind") or RESOURCE_GROUP.kind
        if (group, owner_kind) != (RESOURCE_GROUP.group, RESOURCE_GROUP.kind):
            raise Blocked("InvalidOwner", f"{kind.kind} must be owned by a {RESOURCE_GROUP.group}/"
                          f"{RESOURCE_GROUP.kind}", "Error")
        waiting = (f'Owner "{RESOURCE_GROUP.group}/{RESOURCE_GROUP.kind}, {namespace}/{name}" cannot be found. '
                   "Progress is blocked until the owner is created.")
        try:
            parent = self.custom.get_namespaced_custom_object(
                RESOURCE_GROUP.group, RESOURCE_GROUP.storage_version, namespace, RESOURCE_GROUP.plural, name)
        except ApiException as exc:
            if exc.status == 404:
                raise Blocked("WaitingForOwner", waiting) from exc
            raise
        parent_id = ((parent.get("metadata") or {}).get("annotations") or {}).get(RESOURCE_ID)
        if not parent_id:
            raise Blocked("WaitingForOwner", f'Owner "{namespace}/{name}" is not ready yet: it has no '
                          "resource id. Progress is blocked until the owner is reconciled.")
        self._ensure_owner_reference(kind, obj, parent)
        return str(parent_id)

    def _ensure_owner_reference(self, kind: AsoKind, obj: dict[str, Any], parent: dict[str, Any]) -> None:
        refs = list(obj["metadata"].get("ownerReferences") or [])
        uid = parent["metadata"]["uid"]
        if any(r.get("uid") == uid for r in refs):
            return
        refs.append({"apiVersion": f"{RESOURCE_GROUP.group}/{RESOURCE_GROUP.storage_version}",
                     "kind": RESOURCE_GROUP.kind, "name": parent["metadata"]["name"], "uid": uid})
        patched = self._patch(kind, obj, {"metadata": {"ownerReferences": refs}})
        obj["metadata"] = patched["metadata"]

    def resource_id(self, kind: AsoKind, obj: dict[str, Any], credential: Credential) -> str:
        """The ARM id the object stands for."""
        if kind is RESOURCE_GROUP:
            return f"/subscriptions/{credential.subscription_id}/resourceGroups/{azure_name(obj)}"
        namespace, type_name = kind.arm_type.split("/", 1)
        return f"{self.owner_id(kind, obj)}/providers/{namespace}/{type_name}/{azure_name(obj)}"

    # ---- reconcile -------------------------------------------------------------------------------

    def reconcile(self, kind: AsoKind, obj: dict[str, Any]) -> Outcome:
        """One pass over one object; never raises for Azure or credential problems (they become conditions)."""
        settings = self.settings()
        meta = obj["metadata"]
        if meta.get("deletionTimestamp"):
            return self._delete(kind, obj, settings)
        if FINALIZER not in (meta.get("finalizers") or []):
            patched = self._patch(kind, obj, {"metadata": {"finalizers": [*(meta.get("finalizers") or []), FINALIZER]}})
            obj["metadata"] = meta = patched["metadata"]
        previous = ready_condition(obj)
        generation = int(meta["generation"])
        if previous is None or previous.get("observedGeneration") != generation:
            self._set_condition(kind, obj, False, "Reconciling", RECONCILING, "Info")
            obj = self._reload(kind, obj) or obj
        policy = policy_of(obj)
        try:
            settings.check_loopback()
            credential = self.credential(obj, settings)
            resource_id = self.resource_id(kind, obj, credential)
            if (meta.get("annotations") or {}).get(RESOURCE_ID) != resource_id:
                patched = self._patch(kind, obj, {"metadata": {"annotations": {RESOURCE_ID: resource_id}}})
                obj["metadata"] = patched["metadata"]
            if policy == "skip":
                try:
                    arm = self.arm.get(settings, credential, resource_id, kind.arm_api_version)
                except AzureError as exc:
                    if exc.not_found:
                        raise Blocked("AzureResourceNotFound", f"{kind.kind} {resource_id} does not exist in Azure "
                                      f"(reconcile-policy skip: the operator only reads it): {exc.message}") from exc
                    raise
            else:
                body = kind.to_arm(dict(obj.get("spec") or {}))
                arm = self.arm.put(settings, credential, resource_id, kind.arm_api_version, body)
            status = kind.to_status(arm)
            self._write_outputs(kind, obj, status, settings, credential, resource_id)
        except SettingsError as exc:
            self._set_condition(kind, obj, False, exc.reason, str(exc), "Warning")
            return Outcome(False, retry_in=-1)
        except Blocked as exc:
            self._set_condition(kind, obj, False, exc.reason, exc.message, exc.severity)
            return Outcome(False, retry_in=-1)
        except AzureError as exc:
            severity = "Warning" if exc.retryable else "Error"
            self._set_condition(kind, obj, False, exc.code, exc.message, severity)
            return Outcome(False, retry_in=exc.retry_after if exc.retry_after else -1)
        except outputs.ExpressionError as exc:
            self._set_condition(kind, obj, False, "InvalidOperatorSpec", str(exc), "Error")
            return Outcome(False, retry_in=-1)
        self._set_condition(kind, obj, True, "Succeeded", "", "", base=status)
        return Outcome(True)

    def _reload(self, kind: AsoKind, obj: dict[str, Any]) -> dict[str, Any] | None:
        meta = obj["metadata"]
        try:
            result: dict[str, Any] = self.custom.get_namespaced_custom_object(
                kind.group, kind.storage_version, meta["namespace"], kind.plural, meta["name"])
            return result
        except ApiException:
            return None

    def _write_outputs(self, kind: AsoKind, obj: dict[str, Any], status: dict[str, Any],
                       settings: OperatorSettings, credential: Credential, resource_id: str) -> None:
        operator_spec = (obj.get("spec") or {}).get("operatorSpec") or {}
        if not any(operator_spec.get(k) for k in ("secrets", "configMaps", "secretExpressions",
                                                   "configMapExpressions")):
            return
        values = outputs.endpoint_values(kind, status)
        if kind is STORAGE_ACCOUNT and outputs.needs_keys(obj):
            keys = self.arm.post(settings, credential, resource_id, kind.arm_api_version, "listKeys")
            for index, key in enumerate(keys.get("keys") or [], start=1):
                values[f"key{index}"] = str(key.get("value", ""))
        view = dict(obj)
        view["status"] = status
        secrets, config_maps = outputs.plan(kind, view, values)
        owner = {"apiVersion": f"{kind.group}/{kind.storage_version}", "kind": kind.kind,
                 "name": obj["metadata"]["name"], "uid": obj["metadata"]["uid"], "controller": True}
        namespace = obj["metadata"]["namespace"]
        for name, data in secrets.items():
            self._apply_output(namespace, name, data, owner, secret=True)
        for name, data in config_maps.items():
            self._apply_output(namespace, name, data, owner, secret=False)

    def _apply_output(self, namespace: str, name: str, data: dict[str, str], owner: dict[str, Any],
                      secret: bool) -> None:
        metadata = {"name": name, "namespace": namespace, "ownerReferences": [owner],
                    "labels": {"app.kubernetes.io/managed-by": "azure-service-operator"}}
        body: dict[str, Any] = {"metadata": metadata}
        read: Any
        create: Any
        patch: Any
        if secret:
            body.update({"apiVersion": "v1", "kind": "Secret", "type": "Opaque", "stringData": data})
            read, create, patch = (self.core.read_namespaced_secret, self.core.create_namespaced_secret,
                                   self.core.patch_namespaced_secret)
        else:
            body.update({"apiVersion": "v1", "kind": "ConfigMap", "data": data})
            read, create, patch = (self.core.read_namespaced_config_map, self.core.create_namespaced_config_map,
                                   self.core.patch_namespaced_config_map)
        try:
            existing = read(name, namespace)
        except ApiException as exc:
            if exc.status != 404:
                raise
            create(namespace, body)
            return
        current = decode_secret(existing) if secret else dict(existing.data or {})
        if all(current.get(k) == v for k, v in data.items()):
            return
        patch(name, namespace, body)

    # ---- delete ----------------------------------------------------------------------------------

    def _delete(self, kind: AsoKind, obj: dict[str, Any], settings: OperatorSettings) -> Outcome:
        meta = obj["metadata"]
        finalizers = list(meta.get("finalizers") or [])
        if FINALIZER not in finalizers:
            return Outcome(False, deleted=True)
        resource_id = (meta.get("annotations") or {}).get(RESOURCE_ID)
        if policy_of(obj) == "manage" and resource_id:
            try:
                settings.check_loopback()
                credential = self.credential(obj, settings)
                self._set_condition(kind, obj, False, "Deleting", "The resource is being deleted", "Info")
                self.arm.delete(settings, credential, resource_id, kind.arm_api_version)
            except SettingsError as exc:
                self._set_condition(kind, obj, False, exc.reason, str(exc), "Warning")
                return Outcome(False, retry_in=-1)
            except AzureError as exc:
                self._set_condition(kind, obj, False, exc.code, exc.message, "Warning")
                return Outcome(False, retry_in=exc.retry_after if exc.retry_after else -1)
        finalizers.remove(FINALIZER)
        try:
            self._patch(kind, obj, {"metadata": {"finalizers": finalizers, "resourceVersion":
                                                 meta.get("resourceVersion")}})
        except ApiException as exc:
            if exc.status not in (404, 409):
                raise
            if exc.status == 409:
                return Outcome(False, retry_in=0.2)
        return Outcome(False, deleted=True)


class Backoff:
    """ASO-like exponential backoff per object: 1 s doubling up to `maximum`."""

    def __init__(self, base: float = 1.0, maximum: float = 30.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.base = base
        self.maximum = maximum
        self.clock = clock
        self._attempts: dict[str, int] = {}
        self._due: dict[str, float] = {}

    def failed(self, key: str, hint: float | None = None) -> float:
        """Record a failure; returns the delay before the next attempt."""
        attempts = self._attempts.get(key, 0) + 1
        self._attempts[key] = attempts
        delay = min(self.base * (2 ** (attempts - 1)), self.maximum)
        if hint is not None and hint > 0:
            delay = max(delay, hint)
        self._due[key] = self.clock() + delay
        return delay

    def succeeded(self, key: str) -> None:
        """Forget the failures of a key."""
        self._attempts.pop(key, None)
        self._due.pop(key, None)

    def due(self, key: str) -> bool:
        """Whether a failed key may be tried again (True for keys without failures)."""
        return self.clock() >= self._due.get(key, 0.0)

    def failing(self, key: str) -> bool:
        """Whether the key is in backoff."""
        return key in self._due
