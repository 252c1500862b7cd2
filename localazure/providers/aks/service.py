"""The AKS service: managed clusters as long-running operations, optionally backed by real local clusters.

Routes (`routes.py`) and other providers (Fleet update runs) call this class; it never looks at
HTTP. Every method that changes a cluster starts an operation and returns its record; pass the
record's name to `wait()` to block until it ends.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import logging
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from localazure.arm.common import RESOURCES, normalize_location, require_group_writable
from localazure.arm.envelope import new_etag
from localazure.arm.errors import ArmError, another_operation_in_progress, invalid_parameter, not_found
from localazure.arm.ids import parse_id, resource_id
from localazure.arm.lro import OperationRun
from localazure.arm.store import Record
from localazure.providers.aks import model as aksmodel

if TYPE_CHECKING:
    from localazure.arm.context import Emulator
    from localazure.kube import LocalCluster

log = logging.getLogger(__name__)

NAMESPACE = "Microsoft.ContainerService"
# Versions offered when clusters are ARM-only (no Kubernetes binaries needed).
ARM_ONLY_VERSIONS = ["1.35.6", "1.36.3", "1.37.2"]
TRANSITIONAL = {"Creating", "Updating", "Upgrading", "Deleting", "Scaling", "UpgradingNodeImageVersion",
                "Starting", "Stopping"}


def _same_pool(old: dict[str, Any], new: dict[str, Any]) -> bool:
    # A pool keeps its eTag when an update of its cluster changes nothing a caller sets on it.
    ignored = {*aksmodel.POOL_COMPUTED, "eTag"}
    return {k: v for k, v in old.items() if k not in ignored} == {k: v for k, v in new.items() if k not in ignored}


def _kube() -> Any:
    try:
        import localazure.kube as kube
    except ImportError as exc:
        raise ArmError(409, "KubernetesNotAvailable", f"Local Kubernetes is not available in this installation "
                       f"({exc}); run the emulator with --clusters arm-only.") from exc
    return kube


class AksService:
    """Managed clusters of one emulator (see module docstring)."""

    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator
        self._local: dict[str, LocalCluster] = {}
        self._local_lock = threading.Lock()
        self._stopping = threading.Event()

    # ---- versions and images ----------------------------------------------------------------------

    def available_versions(self) -> list[str]:
        """Kubernetes versions new clusters may use, ascending (`1.36.3` style)."""
        if self.emulator.knobs.current.clusters == "arm-only":
            return list(ARM_ONLY_VERSIONS)
        try:
            kube = _kube()
            return [v.lstrip("v") for v in kube.available_versions()]
        except ArmError:
            return []

    def latest_node_image(self) -> str:
        """The node image version `upgrade_node_image` moves pools to."""
        return self.emulator.knobs.current.node_image_latest

    # ---- reads ------------------------------------------------------------------------------------

    def cluster_id(self, group: str, name: str) -> str:
        """Id of a managed cluster in this subscription."""
        return resource_id(self.emulator.subscription_id, group, NAMESPACE, "managedClusters", name)

    def _record(self, cluster_id: str) -> Record:
        record = self.emulator.store.get(RESOURCES, cluster_id)
        if record is None or record["body"].get("type") != aksmodel.CLUSTER_TYPE:
            parsed = parse_id(cluster_id)
            raise not_found(aksmodel.CLUSTER_TYPE, parsed.name, parsed.group)
        return record

    def get(self, cluster_id: str) -> dict[str, Any]:
        """The cluster's Resource Manager JSON (404 ArmError if absent)."""
        body: dict[str, Any] = self._record(cluster_id)["body"]
        return body

    def exists(self, cluster_id: str) -> bool:
        """Whether the cluster exists."""
        record = self.emulator.store.get(RESOURCES, cluster_id)
        return record is not None and record["body"].get("type") == aksmodel.CLUSTER_TYPE

    def list_clusters(self, group: str | None = None) -> list[dict[str, Any]]:
        """Clusters of a group, or of the whole subscription."""
        prefix = self.emulator.group_id(group) if group else self.emulator.subscription_path
        store = self.emulator.store
        records = [store.get(RESOURCES, key) for key in store.keys_under(RESOURCES, prefix)]
        return [r["body"] for r in records if r is not None and r["body"].get("type") == aksmodel.CLUSTER_TYPE]

    def agent_pool(self, cluster_id: str, pool: str) -> dict[str, Any]:
        """One agentPools sub-resource JSON."""
        body = self.get(cluster_id)
        for profile in body["properties"]["agentPoolProfiles"]:
            if profile["name"].lower() == pool.lower():
                return aksmodel.agent_pool_body(body["id"], profile)
        raise not_found(aksmodel.POOL_TYPE, f"{body['name']}/{pool}", parse_id(cluster_id).group)

    def local_cluster(self, cluster_id: str) -> LocalCluster | None:
        """The local Kubernetes cluster behind a managed cluster (None when ARM-only or not created yet)."""
        record = self._record(cluster_id)
        home = record["internal"].get("localHome")
        if record["internal"].get("backing") != "local" or not home:
            return None
        key = cluster_id.lower()
        with self._local_lock:
            if key not in self._local:
                self._local[key] = _kube().LocalCluster.load(Path(home))
            return self._local[key]

    def kubeconfig(self, cluster_id: str) -> str:
        """Admin kubeconfig YAML of the backing local cluster; 400 for ARM-only clusters."""
        record = self._record(cluster_id)
        name = record["body"]["name"]
        if record["internal"].get("backing") != "local":
            raise ArmError(400, "KubernetesNotAvailable", f"Managed cluster '{name}' is ARM-only (the emulator "
                           "created it with --clusters arm-only): it has no Kubernetes API server, so there are no "
                           "credentials. Use --clusters local to get real clusters.")
        local = self.local_cluster(cluster_id)
        if local is None:
            state = record["body"]["properties"]["provisioningState"]
            raise ArmError(409, "OperationNotAllowed", f"Managed cluster '{name}' is {state}; its Kubernetes API "
                           "server does not exist yet.")
        return local.kubeconfig()

    def credential_result(self, cluster_id: str, kubeconfig_name: str) -> dict[str, Any]:
        """`{"kubeconfigs": [{"name", "value": base64}]}` as listCluster*Credential returns."""
        text = self.kubeconfig(cluster_id)
        return {"kubeconfigs": [{"name": kubeconfig_name, "value": base64.b64encode(text.encode()).decode()}]}

    # ---- writes -----------------------------------------------------------------------------------

    def _require_idle(self, cluster_id: str) -> None:
        running = self.emulator.operations.active_on(cluster_id)
        if running is not None:
            raise another_operation_in_progress(cluster_id, running["kind"])

    def create_or_update(self, group: str, name: str, request_body: dict[str, Any]) -> tuple[Record, int, Record]:
        """PUT semantics: validate, store the Creating/Updating body, start the operation.

        Returns (stored body, HTTP status 201/200, operation record).
        """
        if not aksmodel.CLUSTER_NAME.match(name):
            raise ArmError(400, "InvalidResourceName", f"Resource name '{name}' is invalid: use 1-63 letters, "
                           "digits, '-' or '_', starting and ending with a letter or digit.")
        location = request_body.get("location")
        if not isinstance(location, str) or not location.strip():
            raise invalid_parameter("location", "The 'location' property is required.")
        location = normalize_location(location)
        properties = request_body.get("properties")
        if not isinstance(properties, dict):
            raise invalid_parameter("properties", "The 'properties' object is required.")
        pools = aksmodel.validate_pools(properties.get("agentPoolProfiles"))
        cluster_id = self.cluster_id(group, name)
        store = self.emulator.store
        with store.transaction():
            require_group_writable(self.emulator, group)
            existing = store.get(RESOURCES, cluster_id)
            if existing is None:
                return self._start_create(group, name, cluster_id, location, request_body, properties, pools)
            self._require_idle(cluster_id)
            return self._start_update(existing, location, request_body, properties, pools)

    def _start_create(
        self, group: str, name: str, cluster_id: str, location: str, request_body: dict[str, Any],
        properties: dict[str, Any], pools: list[dict[str, Any]],
    ) -> tuple[Record, int, Record]:
        available = self.available_versions()
        version = aksmodel.resolve_version(properties.get("kubernetesVersion"), available,
                                           "properties.kubernetesVersion")
        knobs = self.emulator.knobs.current
        for index, pool in enumerate(pools):
            pool_version = aksmodel.resolve_version(pool.get("orchestratorVersion") or version, available,
                                                    f"properties.agentPoolProfiles[{index}].orchestratorVersion")
            if aksmodel.version_tuple(pool_version) > aksmodel.version_tuple(version):
                raise invalid_parameter(f"properties.agentPoolProfiles[{index}].orchestratorVersion",
                                        "A node pool cannot run a newer version than the control plane.")
            pool["orchestratorVersion"] = pool.get("orchestratorVersion") or version
            pool.update(provisioningState="Creating", currentOrchestratorVersion=pool_version,
                        nodeImageVersion=knobs.node_image_create, powerState={"code": "Running"})
        props = copy.deepcopy(properties)
        props.update(aksmodel.computed_cluster_fields(subscription_id=self.emulator.subscription_id, group=group,
                                                      name=name, location=location, properties=properties))
        props.update(
            provisioningState="Creating",
            powerState={"code": "Running"},
            kubernetesVersion=properties.get("kubernetesVersion") or version,
            currentKubernetesVersion=version,
            agentPoolProfiles=pools,
        )
        props["networkProfile"] = aksmodel.network_profile(
            properties.get("networkProfile"), None, subscription_id=self.emulator.subscription_id,
            node_resource_group=props["nodeResourceGroup"])
        for pool in pools:
            pool["eTag"] = new_etag()
        internal: dict[str, Any] = {"backing": knobs.clusters, "identityAppIds": []}
        body: dict[str, Any] = {
            "id": cluster_id, "name": name, "type": aksmodel.CLUSTER_TYPE, "location": location, "eTag": new_etag(),
            "tags": request_body.get("tags") or {}, "sku": request_body.get("sku") or {"name": "Base", "tier": "Free"},
            "properties": props,
        }
        identity = request_body.get("identity")
        if isinstance(identity, dict) and str(identity.get("type", "")).lower() == "systemassigned":
            principal = self.emulator.directory.create_managed_identity(name, self.emulator.tenant_id)
            internal["identityAppIds"].append(principal["appId"])
            body["identity"] = {**identity, "type": "SystemAssigned", "principalId": principal["objectId"],
                                "tenantId": self.emulator.tenant_id}
            kubelet = self.emulator.directory.create_managed_identity(f"{name}-agentpool", self.emulator.tenant_id)
            internal["identityAppIds"].append(kubelet["appId"])
            node_group = props["nodeResourceGroup"]
            props["identityProfile"] = {"kubeletidentity": {
                "resourceId": f"/subscriptions/{self.emulator.subscription_id}/resourcegroups/{node_group}/providers/"
                              f"Microsoft.ManagedIdentity/userAssignedIdentities/{name}-agentpool",
                "clientId": kubelet["appId"], "objectId": kubelet["objectId"]}}
        elif isinstance(identity, dict):
            body["identity"] = aksmodel.user_assigned_identities(identity)
        elif identity is not None:
            body["identity"] = identity
        self.emulator.store.put(RESOURCES, cluster_id, {"body": body, "internal": internal})
        op = self.emulator.operations.start(
            kind="aks.create", namespace=NAMESPACE, location=location, resource_id=cluster_id, name=name,
            work=lambda run: self._create_work(cluster_id, run),
            on_failure=lambda error: self._mark_failed(cluster_id, error),
        )
        return body, 201, op

    def _create_work(self, cluster_id: str, run: OperationRun) -> None:
        record = self._record(cluster_id)
        body = record["body"]
        if record["internal"]["backing"] == "local":
            kube = _kube()
            group = parse_id(cluster_id).group or ""
            home = self.emulator.state_dir / "clusters" / f"{group}--{body['name']}".lower()
            self.emulator.store.update(RESOURCES, cluster_id, lambda r: r["internal"].update(localHome=str(home)))
            node_pools = [kube.NodePool(name=p["name"], count=p["count"], vm_size=p["vmSize"],
                                        node_image_version=p["nodeImageVersion"],
                                        orchestrator_version="v" + p["currentOrchestratorVersion"])
                          for p in body["properties"]["agentPoolProfiles"]]
            self._discard_leftover(kube, home)
            try:
                local = kube.LocalCluster.create(
                    body["name"], kubernetes_version="v" + body["properties"]["currentKubernetesVersion"],
                    node_pools=node_pools, region=body["location"], home=home)
            except (ValueError, kube.LocalClusterError) as exc:
                raise ArmError(400, "CreateVMSSAgentPoolFailed" if "pool" in str(exc) else "LocalClusterFailed",
                               f"Creating the local cluster for '{body['name']}' failed: {exc}") from exc
            with self._local_lock:
                self._local[cluster_id.lower()] = local
            self.emulator.store.update(RESOURCES, cluster_id, lambda r: r["internal"].update(localCreated=True))
        run.pace()

        def succeed(r: Record) -> None:
            props = r["body"]["properties"]
            props["provisioningState"] = "Succeeded"
            props.pop("status", None)
            for pool in props["agentPoolProfiles"]:
                pool["provisioningState"] = "Succeeded"

        self.emulator.store.update(RESOURCES, cluster_id, succeed)

    @staticmethod
    def _discard_leftover(kube: Any, home: Path) -> None:
        # A create cut off by a restart may have left a (possibly complete) cluster behind; start clean.
        if not home.exists():
            return
        with contextlib.suppress(kube.ClusterNotFoundError):
            kube.LocalCluster.load(home).delete()

    def _mark_failed(self, cluster_id: str, error: dict[str, Any]) -> None:
        def fail(r: Record) -> None:
            props = r["body"]["properties"]
            props["provisioningState"] = "Failed"
            props["status"] = {"provisioningError": error}
            for pool in props["agentPoolProfiles"]:
                if pool.get("provisioningState") != "Succeeded":
                    pool["provisioningState"] = "Failed"

        self.emulator.store.update(RESOURCES, cluster_id, fail)

    def _start_update(
        self, existing: Record, location: str, request_body: dict[str, Any], properties: dict[str, Any],
        pools: list[dict[str, Any]],
    ) -> tuple[Record, int, Record]:
        body = existing["body"]
        cluster_id = body["id"]
        old_props = body["properties"]
        if location != body["location"]:
            raise invalid_parameter("location", f"The location of managed cluster '{body['name']}' cannot change "
                                    f"from {body['location']} to {location}.")
        available = self.available_versions()
        current = old_props["currentKubernetesVersion"]
        requested = properties.get("kubernetesVersion") or old_props["kubernetesVersion"]
        target = aksmodel.resolve_version(requested, sorted({*available, current}, key=aksmodel.version_tuple),
                                          "properties.kubernetesVersion")
        aksmodel.check_upgrade(current, target, available, "properties.kubernetesVersion")
        old_pools = {p["name"]: p for p in old_props["agentPoolProfiles"]}
        local_backed = existing["internal"].get("backing") == "local"
        if local_backed and ({p["name"] for p in pools} != set(old_pools)
                             or any(p["count"] != old_pools[p["name"]]["count"] for p in pools)):
            raise ArmError(400, "OperationNotSupported", "Adding, removing or scaling agent pools of a cluster backed "
                           "by a local Kubernetes cluster is not supported by the emulator.")
        plan: dict[str, dict[str, str]] = {}
        for index, pool in enumerate(pools):
            prop = f"properties.agentPoolProfiles[{index}].orchestratorVersion"
            old = old_pools.get(pool["name"])
            pool_current = old["currentOrchestratorVersion"] if old else target
            wanted = aksmodel.resolve_version(pool.get("orchestratorVersion") or target,
                                              sorted({*available, pool_current}, key=aksmodel.version_tuple), prop)
            if aksmodel.version_tuple(wanted) > aksmodel.version_tuple(target):
                raise invalid_parameter(prop, "A node pool cannot run a newer version than the control plane.")
            aksmodel.check_upgrade(pool_current, wanted, available, prop)
            for field in aksmodel.POOL_COMPUTED:
                pool.pop(field, None)
            pool["orchestratorVersion"] = pool.get("orchestratorVersion") or target
            if old is None:
                pool.update(provisioningState="Creating", currentOrchestratorVersion=wanted,
                            nodeImageVersion=self.emulator.knobs.current.node_image_create,
                            powerState={"code": "Running"})
            else:
                pool.update(provisioningState="Upgrading" if wanted != pool_current else "Updating",
                            currentOrchestratorVersion=pool_current, nodeImageVersion=old["nodeImageVersion"],
                            powerState=old.get("powerState", {"code": "Running"}))
                if wanted != pool_current:
                    plan[pool["name"]] = {"version": wanted, "image": self.latest_node_image()}
        upgrading = target != current or bool(plan)
        new_props = copy.deepcopy(properties)
        for field in ("fqdn", "azurePortalFQDN", "nodeResourceGroup", "maxAgentPools", "resourceUID", "dnsPrefix",
                      "identityProfile", "powerState", "currentKubernetesVersion", "supportPlan", "enableRBAC"):
            if field in old_props and (field not in properties or field not in ("enableRBAC", "supportPlan")):
                new_props[field] = old_props[field]
        new_props.update(provisioningState="Upgrading" if upgrading else "Updating", kubernetesVersion=requested,
                         agentPoolProfiles=pools)
        new_props["networkProfile"] = aksmodel.network_profile(
            properties.get("networkProfile"), old_props.get("networkProfile"),
            subscription_id=self.emulator.subscription_id, node_resource_group=str(old_props.get("nodeResourceGroup")))
        new_props.pop("status", None)
        for pool in pools:
            old = old_pools.get(pool["name"])
            pool["eTag"] = old["eTag"] if old and old.get("eTag") and _same_pool(old, pool) else new_etag()
        new_body = {**body, "tags": request_body.get("tags", body.get("tags") or {}), "eTag": new_etag(),
                    "sku": request_body.get("sku") or body.get("sku"), "properties": new_props}
        self.emulator.store.put(RESOURCES, cluster_id, {**existing, "body": new_body})
        if local_backed and not existing["internal"].get("localCreated"):
            # The first create failed or was cut off: there is no local cluster to update, so create it now.
            for pool in pools:
                pool.update(currentOrchestratorVersion=plan.get(pool["name"], {}).get(
                    "version", pool["currentOrchestratorVersion"]), provisioningState="Creating")
            new_props.update(provisioningState="Creating", currentKubernetesVersion=target)
            self.emulator.store.put(RESOURCES, cluster_id, {**existing, "body": new_body})
            op = self.emulator.operations.start(
                kind="aks.create", namespace=NAMESPACE, location=location, resource_id=cluster_id,
                name=body["name"], work=lambda run: self._create_work(cluster_id, run),
                on_failure=lambda error: self._mark_failed(cluster_id, error),
            )
            return new_body, 200, op
        op = self.emulator.operations.start(
            kind="aks.upgrade" if upgrading else "aks.update", namespace=NAMESPACE, location=location,
            resource_id=cluster_id, name=body["name"],
            work=lambda run: self._update_work(cluster_id, target if target != current else None, plan, run),
            on_failure=lambda error: self._mark_failed(cluster_id, error),
        )
        return new_body, 200, op

    def _update_work(self, cluster_id: str, control_plane: str | None, pools: dict[str, dict[str, str]],
                     run: OperationRun) -> None:
        local = self.local_cluster(cluster_id)
        if local is not None:
            try:
                if control_plane:
                    local.upgrade_control_plane("v" + control_plane)
                for pool, change in pools.items():
                    local.upgrade_node_image(pool=pool, image_version=change["image"],
                                             kubernetes_version="v" + change["version"])
            except Exception as exc:
                self._record_actual_versions(cluster_id, local)
                raise ArmError(400, "UpgradeFailed", f"Upgrading '{parse_id(cluster_id).name}' failed: {exc}") from exc
        run.pace()

        def succeed(r: Record) -> None:
            props = r["body"]["properties"]
            if control_plane:
                props["currentKubernetesVersion"] = control_plane
            for pool in props["agentPoolProfiles"]:
                change = pools.get(pool["name"])
                if change:
                    pool["currentOrchestratorVersion"] = change["version"]
                    pool["nodeImageVersion"] = change["image"]
                pool["provisioningState"] = "Succeeded"
            props["provisioningState"] = "Succeeded"

        self.emulator.store.update(RESOURCES, cluster_id, succeed)

    def _record_actual_versions(self, cluster_id: str, local: LocalCluster) -> None:
        # After a partial upgrade the truth is whatever the local API server reports.
        version = local.version.lstrip("v")
        self.emulator.store.update(
            RESOURCES, cluster_id, lambda r: r["body"]["properties"].update(currentKubernetesVersion=version))

    def update_tags(self, cluster_id: str, tags: dict[str, str]) -> dict[str, Any]:
        """Replace a cluster's tags (PATCH); answered at once, with a new eTag."""
        with self.emulator.store.transaction():
            self._record(cluster_id)
            self._require_idle(cluster_id)
            updated = self.emulator.store.update(RESOURCES, cluster_id,
                                                 lambda r: r["body"].update(tags=tags, eTag=new_etag()))
        assert updated is not None
        body: dict[str, Any] = updated["body"]
        return body

    def put_pool(self, cluster_id: str, pool: str, properties: dict[str, Any]) -> tuple[int, Record]:
        """Create (201) or update (200) one agent pool through its cluster's update; returns (status, operation).
        Local-backed clusters refuse adding, removing and scaling pools (400 OperationNotSupported)."""
        body = self.get(cluster_id)
        profiles = copy.deepcopy(body["properties"]["agentPoolProfiles"])
        existing = next((p for p in profiles if p["name"].lower() == pool.lower()), None)
        profile = {k: v for k, v in properties.items() if k not in aksmodel.POOL_COMPUTED}
        if existing is None:
            profiles.append({**profile, "name": pool})
        else:
            existing.update(profile)
        props = copy.deepcopy(body["properties"])
        props["agentPoolProfiles"] = profiles
        return (201 if existing is None else 200), self._put_existing(cluster_id, body, props)

    def delete_pool(self, cluster_id: str, pool: str) -> Record | None:
        """Remove one agent pool through its cluster's update (None when it does not exist)."""
        body = self.get(cluster_id)
        profiles = body["properties"]["agentPoolProfiles"]
        if not any(p["name"].lower() == pool.lower() for p in profiles):
            return None
        props = copy.deepcopy(body["properties"])
        props["agentPoolProfiles"] = [p for p in profiles if p["name"].lower() != pool.lower()]
        return self._put_existing(cluster_id, body, props)

    def upgrade_control_plane(self, cluster_id: str, version: str) -> Record:
        """Control-plane-only upgrade (Fleet `ControlPlaneOnly`); returns the operation record."""
        body = self.get(cluster_id)
        props = copy.deepcopy(body["properties"])
        props["kubernetesVersion"] = version
        for pool in props["agentPoolProfiles"]:
            pool["orchestratorVersion"] = pool["currentOrchestratorVersion"]
        return self._put_existing(cluster_id, body, props)

    def upgrade(self, cluster_id: str, version: str) -> Record:
        """Full upgrade (Fleet `Full`): control plane and every pool to `version`, pools onto the latest image."""
        body = self.get(cluster_id)
        props = copy.deepcopy(body["properties"])
        props["kubernetesVersion"] = version
        for pool in props["agentPoolProfiles"]:
            pool["orchestratorVersion"] = version
        return self._put_existing(cluster_id, body, props)

    def _put_existing(self, cluster_id: str, body: dict[str, Any], props: dict[str, Any]) -> Record:
        parsed = parse_id(cluster_id)
        request_body = {"location": body["location"], "tags": body.get("tags"), "sku": body.get("sku"),
                        "properties": props}
        _, _, op = self.create_or_update(parsed.group or "", parsed.name, request_body)
        return op

    def upgrade_node_image(self, cluster_id: str, pool: str, image_version: str | None = None) -> Record:
        """Roll one pool onto the latest (or given) node image; returns the operation record."""
        store = self.emulator.store
        with store.transaction():
            record = self._record(cluster_id)
            self._require_idle(cluster_id)
            profile = self.agent_pool(cluster_id, pool)
            pool_name = profile["name"]
            image = image_version or self.latest_node_image()

            def begin(r: Record) -> None:
                r["body"]["properties"]["provisioningState"] = "Updating"
                for p in r["body"]["properties"]["agentPoolProfiles"]:
                    if p["name"] == pool_name:
                        p["provisioningState"] = "UpgradingNodeImageVersion"

            store.update(RESOURCES, cluster_id, begin)
            surge = str(profile["properties"].get("upgradeSettings", {}).get("maxSurge") or "1")
            return self.emulator.operations.start(
                kind="aks.nodeimage", namespace=NAMESPACE, location=record["body"]["location"],
                resource_id=f"{cluster_id}/agentPools/{pool_name}", name=pool_name,
                work=lambda run: self._node_image_work(cluster_id, pool_name, image, surge, run),
                on_failure=lambda error: self._mark_failed(cluster_id, error),
            )

    def _node_image_work(self, cluster_id: str, pool: str, image: str, surge: str, run: OperationRun) -> None:
        local = self.local_cluster(cluster_id)
        if local is not None:
            max_surge = int(surge) if surge.isdigit() else 1
            try:
                local.upgrade_node_image(pool=pool, image_version=image, max_surge=max_surge,
                                         drain_timeout=max(30.0, self.emulator.knobs.scaled(1800)))
            except Exception as exc:
                raise ArmError(400, "UpgradeFailed", f"Node image upgrade of pool '{pool}' failed: {exc}") from exc
        run.pace()

        def succeed(r: Record) -> None:
            props = r["body"]["properties"]
            for p in props["agentPoolProfiles"]:
                if p["name"] == pool:
                    p.update(nodeImageVersion=image, provisioningState="Succeeded")
            props["provisioningState"] = "Succeeded"

        self.emulator.store.update(RESOURCES, cluster_id, succeed)

    def delete(self, cluster_id: str) -> Record:
        """Start deleting a cluster (and its local cluster); returns the operation record."""
        store = self.emulator.store
        with store.transaction():
            record = self._record(cluster_id)
            self._require_idle(cluster_id)
            store.update(RESOURCES, cluster_id,
                         lambda r: r["body"]["properties"].update(provisioningState="Deleting"))
            return self.emulator.operations.start(
                kind="aks.delete", namespace=NAMESPACE, location=record["body"]["location"], resource_id=cluster_id,
                name=record["body"]["name"], work=lambda run: self._delete_now(cluster_id, run),
                on_failure=lambda error: self._mark_failed(cluster_id, error),
            )

    def _delete_now(self, cluster_id: str, run: OperationRun | None) -> None:
        record = self._record(cluster_id)
        home = record["internal"].get("localHome")
        if record["internal"].get("backing") == "local" and home:
            with self._local_lock:
                local = self._local.pop(cluster_id.lower(), None)
            try:
                if local is None:
                    local = _kube().LocalCluster.load(Path(home))
                local.delete()
            except Exception as exc:
                if type(exc).__name__ != "ClusterNotFoundError":
                    raise ArmError(400, "DeleteFailed", f"Deleting the local cluster of '{record['body']['name']}' "
                                   f"failed: {exc}") from exc
        if run is not None:
            run.pace()
        with self.emulator.store.transaction():
            self.emulator.store.delete(RESOURCES, cluster_id)
            self.emulator.rbac.remove_under(cluster_id)
            for app_id in record["internal"].get("identityAppIds", []):
                self.emulator.directory.delete(app_id)

    def wait(self, operation: Record, timeout: float | None = None) -> Record:
        """Block until an operation this service started has ended; returns its final record."""
        return self.emulator.operations.wait(operation["name"], timeout)

    # ---- lifecycle hooks --------------------------------------------------------------------------

    def delete_group_contents(self, group_id: str) -> None:
        """Delete every cluster of a group now (waiting for operations still running on them)."""
        for body in self.list_clusters(parse_id(group_id).group):
            running = self.emulator.operations.active_on(body["id"])
            if running is not None:
                self.emulator.operations.wait(running["name"], timeout=1800)
            if self.exists(body["id"]):
                self._delete_now(body["id"], None)

    def recover(self) -> None:
        """After a restart: clusters left mid-operation become Failed; local clusters are adopted and started."""
        message = {"code": "OperationInterrupted",
                   "message": "The operation was interrupted because the local Azure emulator stopped."}
        to_adopt = []
        for body in self.list_clusters():
            if body["properties"]["provisioningState"] in TRANSITIONAL:
                self._mark_failed(body["id"], message)
            record = self._record(body["id"])
            if record["internal"].get("backing") == "local" and record["internal"].get("localHome"):
                to_adopt.append(body["id"])
        if to_adopt:
            threading.Thread(target=self._adopt, args=(to_adopt,), name="adopt-local-clusters", daemon=True).start()

    def _adopt(self, cluster_ids: list[str]) -> None:
        for cluster_id in cluster_ids:
            if self._stopping.is_set():
                return  # stopped during start-up: the rest stay as they are for the next start
            try:
                local = self.local_cluster(cluster_id)
                if local is not None:
                    local.start()  # also ends stray processes of the cluster's directory first
            except Exception as exc:
                if self._stopping.is_set():
                    log.warning("adoption of %s cut off by the stop: %s", cluster_id, exc)
                    return
                log.warning("could not adopt the local cluster of %s: %s", cluster_id, exc)
                self._mark_failed(cluster_id, {"code": "LocalClusterLost",
                                               "message": f"The local Kubernetes cluster could not be adopted: {exc}"})

    def stop_local_clusters(self) -> None:
        """Stop every process any local cluster of this emulator started (their data stays for the next start).

        Whatever is in flight -- start-up adoption, a cluster create, a control-plane upgrade, a node roll --
        may be between starting two processes, so nothing waits for it: spawning is closed first, then every
        process whose command line names a cluster directory is ended. A cluster cut off this way is started
        again (or, cut off while being created, cleaned up and its managed cluster left Failed) by the next
        start.
        """
        self._stopping.set()
        with self._local_lock:
            self._local.clear()
        try:
            from localazure.kube import processes
        except ImportError:
            return
        processes.close_spawning()
        ended = processes.terminate_referencing(self.emulator.state_dir / "clusters")
        if ended:
            log.warning("stopped %d local cluster process(es)", len(ended))
