"""The fleet spec: the typed desired state of a fleet, loaded from YAML, and every name derived from it.

Names are derived deterministically from the spec (fleet name, regions and a stable suffix) so that a
re-run finds the resources an earlier run created. Validation collects every problem with its field
path and the fix, so an operator can correct a spec in one pass before anything touches Azure.
"""

from __future__ import annotations

import difflib
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

OWNER_TAG = "fleetflow-fleet"
MANAGED_TAG = "fleetflow-managed"

# Public Azure regions fleetflow accepts; a spec naming anything else is almost always a typo.
AZURE_REGIONS = frozenset(
    """
    eastus eastus2 westus westus2 westus3 centralus northcentralus southcentralus westcentralus
    canadacentral canadaeast brazilsouth mexicocentral northeurope westeurope uksouth ukwest
    francecentral germanywestcentral norwayeast swedencentral switzerlandnorth polandcentral
    italynorth spaincentral uaenorth qatarcentral israelcentral southafricanorth centralindia
    southindia westindia eastasia southeastasia japaneast japanwest koreacentral koreasouth
    australiaeast australiasoutheast australiacentral newzealandnorth indonesiacentral malaysiawest
    """.split()
)

UpgradeType = Literal["Full", "ControlPlaneOnly", "NodeImageOnly"]
NodeImageSelection = Literal["Latest", "Consistent"]

_KUBERNETES_VERSION = re.compile(r"^(\d+)\.(\d+)(?:\.(\d+))?$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_RESOURCE_GROUP = re.compile(r"^[-\w._()]+$")
_AKS_NAME = re.compile(r"^[a-zA-Z0-9]([-_a-zA-Z0-9]*[a-zA-Z0-9])?$")
_ACR_NAME = re.compile(r"^[a-zA-Z0-9]{5,50}$")
_KEY_VAULT_NAME = re.compile(r"^[a-zA-Z](?!.*--)[-a-zA-Z0-9]{1,22}[a-zA-Z0-9]$")
_STORAGE_NAME = re.compile(r"^[a-z0-9]{3,24}$")
_SUFFIX = re.compile(r"^[a-z0-9]{3,8}$")
_VM_SIZE = re.compile(r"^Standard_[A-Za-z0-9_]+$")
_CRD_PATTERN_ITEM = re.compile(r"^[a-z0-9.-]+\.azure\.com/(\*|[A-Z][A-Za-z0-9]*)$")
_TAG_KEY_FORBIDDEN = set("<>%&\\?/")
_VARIABLE = re.compile(r"^[A-Z_][A-Z0-9_]*$")
_KEY_VAULT_SECRET = re.compile(r"^[0-9a-zA-Z-]{1,127}$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ClusterSettings(_Strict):
    """AKS settings for a cluster; region entries override the fleet-wide defaults."""

    node_count: int = Field(2, description="Nodes in the system node pool (1-1000).")
    vm_size: str = Field("Standard_DS2_v2", description="Azure VM size of the nodes.")
    kubernetes_version: str = Field("1.36", description="Kubernetes version, MAJOR.MINOR or MAJOR.MINOR.PATCH.")
    network_plugin: Literal["azure", "kubenet", "none"] = "azure"
    network_policy: Literal["azure", "calico", "cilium", "none"] = "azure"


class ClusterEntrySpec(_Strict):
    """One of several clusters in a region: its own name, update group and setting overrides."""

    name: str = Field(description="Short name of the cluster, unique in its region (e.g. team-a); the AKS name "
                      "defaults to aks-<fleet>-<region>-<name>.")
    update_group: str | None = Field(None, description="Fleet update group; default the region's update_group.")
    cluster_name: str | None = Field(None, description="AKS cluster name; default aks-<fleet>-<region>-<name>.")
    member_name: str | None = Field(None, description="Fleet member name; default the cluster name.")
    node_count: int | None = None
    vm_size: str | None = None
    kubernetes_version: str | None = None
    network_plugin: Literal["azure", "kubenet", "none"] | None = None
    network_policy: Literal["azure", "calico", "cilium", "none"] | None = None


class RegionSpec(_Strict):
    """One region of the fleet: its cluster (or several clusters), update group and any setting overrides."""

    name: str = Field(description="Azure region, e.g. eastus.")
    update_group: str | None = Field(None, description="Fleet update group of this region's cluster(s), e.g. "
                                     "test-group; required unless every entry of clusters names its own.")
    cluster_name: str | None = Field(None, description="AKS cluster name; default aks-<fleet>-<region>.")
    member_name: str | None = Field(None, description="Fleet member name; default the cluster name.")
    clusters: list[ClusterEntrySpec] | None = Field(None, description="Several clusters in this region, each with "
                                                    "its own name, update group and overrides.")
    node_count: int | None = None
    vm_size: str | None = None
    kubernetes_version: str | None = None
    network_plugin: Literal["azure", "kubenet", "none"] | None = None
    network_policy: Literal["azure", "calico", "cilium", "none"] | None = None


class StageSpec(_Strict):
    """A stage of the update strategy: groups upgraded together, then an optional wait."""

    name: str
    groups: list[str]
    after_stage_wait_seconds: int = Field(0, description="Seconds to wait after the stage (0-3600).")


class UpdateStrategySpec(_Strict):
    """The staged rollout used by update runs."""

    name: str = "staged-rollout"
    stages: list[StageSpec]
    approval_between_stages: bool = Field(True, description="Require a human approval before each next stage.")
    upgrade_type: UpgradeType = "Full"
    node_image_selection: NodeImageSelection = "Latest"


class ChartSpec(_Strict):
    """A Helm chart pinned to one version, and where it comes from."""

    name: str = Field(description="Chart name in its repository.")
    version: str = Field(description="Chart version, pinned (e.g. v1.21.1).")
    repository: str = Field(
        description="An https:// chart repository, an oci:// registry path, or a local chart archive (.tgz). "
        "A chart mirror (charts_mirror, or FLEETFLOW_CHART_MIRROR) takes precedence over https repositories."
    )


CERT_MANAGER_CHART = ChartSpec(name="cert-manager", version="v1.21.1", repository="https://charts.jetstack.io")
SERVICE_OPERATOR_CHART = ChartSpec(
    name="azure-service-operator",
    version="2.17.0",
    repository="https://raw.githubusercontent.com/Azure/azure-service-operator/main/v2/charts",
)


class ServiceOperatorSpec(_Strict):
    """Azure Service Operator settings: what bootstrap-aso installs on every cluster."""

    crd_pattern: str = Field(
        "resources.azure.com/ResourceGroup;containerregistry.azure.com/Registry;keyvault.azure.com/Vault;"
        "storage.azure.com/StorageAccount",
        description="ASO's crdPattern: the CRD groups/kinds installed, group.azure.com/* or group.azure.com/Kind, "
        "separated by semicolons. Every CRD costs API server memory: list only the kinds used.",
    )
    credentials_block: str = Field(
        "fleetflow-aso", description="Name of the service-principal block ASO authenticates with."
    )
    chart: ChartSpec = Field(default_factory=lambda: SERVICE_OPERATOR_CHART,
                             description="The Azure Service Operator v2 chart.")
    cert_manager_chart: ChartSpec = Field(default_factory=lambda: CERT_MANAGER_CHART,
                                          description="The cert-manager chart ASO needs for its certificates.")
    namespace: str = Field("azureserviceoperator-system", description="Namespace of the ASO release.")
    cert_manager_namespace: str = Field("cert-manager", description="Namespace of the cert-manager release.")
    ready_timeout_seconds: int = Field(600, description="How long to wait for a release to become Available.")


class GitOpsSpec(_Strict):
    """Where the fleet's desired Kubernetes and Azure Service Operator objects live in Git, and how to apply them."""

    repository: str = Field(description="Git repository: an https:// URL or a local path (absolute, or "
                            "relative to the flow run's working directory).")
    ref: str = Field("main", description="Branch, tag or commit to apply; resolved to one commit per run.")
    path: str = Field("gitops", description="Folder of the repository holding fleet/ (applied once, on the fleet "
                      "cluster) and regional/ (applied on every cluster).")
    credentials_block: str | None = Field(None, description="fleetflow Git Credentials block for a private "
                                          "repository; empty for public or local repositories.")
    fleet_cluster_region: str | None = Field(None, description="Region whose (first) cluster holds the fleet-wide "
                                             "objects (registry, key vault); default the first region.")
    fleet_cluster: str | None = Field(None, description="Name of the cluster holding the fleet-wide objects; "
                                      "takes precedence over fleet_cluster_region.")
    variables: dict[str, str] = Field(default_factory=dict, description="Extra ${VAR} substitutions.")
    key_vault_secrets: dict[str, str] = Field(
        default_factory=dict, description="Key Vault secret name -> name of the Prefect Secret block holding "
        "its value; written once the vault is Ready.")
    health_timeout_seconds: int = Field(900, description="How long to wait for every object to be Ready.")


class UpgradeHealthSpec(_Strict):
    """staged-upgrade's health checks after each stage, its auto-approve policy and who is told a stage waits."""

    max_pod_restarts: int = Field(3, description="Most container restarts a pod may have since its stage began.")
    settle_seconds: int = Field(120, description="How long failing checks are repeated after a stage before they "
                                "count (pods rescheduled by a node-image roll need a moment).")
    auto_approve: list[UpgradeType] = Field(
        default_factory=list, description="Upgrade types whose gates are approved without a human when every "
        "health check of the previous stage passed, e.g. [NodeImageOnly]; empty: a human approves every gate.")
    notification_block: str | None = Field(
        None, description="Prefect notification block, <block-type-slug>/<name> (e.g. custom-webhook/approvers), "
        "that `fleetflow automations apply` sends to when a stage waits for an approval.")


class ConcurrencySpec(_Strict):
    """How hard the flows may drive Resource Manager: one write budget per subscription, shared by every flow."""

    max_parallel_writes: int = Field(200, description="Resource Manager writes (PUT, PATCH, POST, DELETE) sent at "
                                     "once, at most, by every fleetflow flow on the subscription together: the "
                                     "burst of a Prefect global concurrency limit named after the subscription. "
                                     "Default: Azure's write bucket of a subscription (200).")
    writes_per_second: float = Field(10.0, description="Writes per second once the burst is spent (the limit's "
                                     "slot decay). Default: Azure's refill rate of a subscription's write bucket "
                                     "(10 per second).")


class FleetSpec(_Strict):
    """The desired state of a fleet."""

    name: str = Field(description="Fleet Manager name (lowercase letters, digits, hyphens; 1-63).")
    location: str = Field(description="Region of the resource group and the Fleet Manager.")
    resource_group: str | None = Field(None, description="Resource group; default rg-<fleet>-<suffix>.")
    suffix: str | None = Field(
        None, description="Stable suffix for globally unique names (3-8 lowercase letters or digits)."
    )
    tags: dict[str, str] = Field(default_factory=dict)
    cluster_defaults: ClusterSettings = Field(default_factory=lambda: ClusterSettings())
    regions: list[RegionSpec]
    update_strategy: UpdateStrategySpec
    service_operator: ServiceOperatorSpec = Field(default_factory=lambda: ServiceOperatorSpec())
    concurrency: ConcurrencySpec = Field(default_factory=lambda: ConcurrencySpec(),
                                         description="Resource Manager write budget shared by the flows.")
    gitops: GitOpsSpec | None = Field(None, description="The fleet's desired state in Git (apply-resources).")
    upgrade_health: UpgradeHealthSpec = Field(default_factory=lambda: UpgradeHealthSpec(),
                                              description="Health checks and approvals between upgrade stages.")
    charts_mirror: str | None = Field(
        None, description="A chart mirror used instead of the public chart repositories: a directory or https:// "
        "URL holding a Helm repository index.yaml. Default: the FLEETFLOW_CHART_MIRROR setting, else none.",
    )

    # --- derived names -------------------------------------------------------------------------
    @property
    def stable_suffix(self) -> str:
        """The spec's suffix, or one derived from the fleet name and location (never random)."""
        if self.suffix:
            return self.suffix
        return hashlib.sha256(f"{self.name}/{self.location}".encode()).hexdigest()[:6]

    @property
    def resource_group_name(self) -> str:
        """The fleet's resource group."""
        return self.resource_group or f"rg-{self.name}-{self.stable_suffix}"

    @property
    def ownership_tags(self) -> dict[str, str]:
        """Tags that mark a resource as created by fleetflow for this fleet; teardown keys on them."""
        return {**self.tags, OWNER_TAG: self.name, MANAGED_TAG: "true"}

    @property
    def registry_name(self) -> str:
        """Container registry name (alphanumeric, globally unique)."""
        return re.sub(r"[^a-z0-9]", "", f"acr{self.name}{self.stable_suffix}".lower())[:50]

    @property
    def key_vault_name(self) -> str:
        """Key Vault name (3-24, globally unique)."""
        stem = re.sub(r"-+", "-", f"kv-{self.name}".lower())[: 24 - len(self.stable_suffix) - 1].rstrip("-")
        return f"{stem}-{self.stable_suffix}"

    def cluster_entries(self) -> list[tuple[str, RegionSpec, ClusterEntrySpec | None]]:
        """(field path, region, cluster entry or None for a one-cluster region) for every cluster, in spec order."""
        entries: list[tuple[str, RegionSpec, ClusterEntrySpec | None]] = []
        for region_index, region in enumerate(self.regions):
            if region.clusters is None:
                entries.append((f"regions[{region_index}]", region, None))
                continue
            for index, entry in enumerate(region.clusters):
                entries.append((f"regions[{region_index}].clusters[{index}]", region, entry))
        return entries

    def clusters(self) -> list[ClusterSpec]:
        """Every cluster of every region resolved into a full cluster spec (defaults applied, names derived)."""
        return [self._resolve(index, region, entry)
                for index, (_, region, entry) in enumerate(self.cluster_entries())]

    def fleet_cluster(self) -> ClusterSpec:
        """The cluster holding fleet-wide GitOps objects (registry, key vault): gitops.fleet_cluster, else the first
        cluster of gitops.fleet_cluster_region, else the first cluster."""
        if self.gitops is not None and self.gitops.fleet_cluster:
            return self.cluster(self.gitops.fleet_cluster)
        region = self.gitops.fleet_cluster_region if self.gitops else None
        if region:
            return next(cluster for cluster in self.clusters() if cluster.region == region)
        return self.clusters()[0]

    def cluster(self, name: str) -> ClusterSpec:
        """One resolved cluster by its name; a region's name is accepted when the region holds one cluster only."""
        clusters = self.clusters()
        for cluster in clusters:
            if cluster.name == name:
                return cluster
        in_region = [cluster for cluster in clusters if cluster.region == name]
        if len(in_region) == 1:
            return in_region[0]
        if in_region:
            raise KeyError(f"region {name!r} of fleet {self.name!r} holds {len(in_region)} clusters "
                           f"({', '.join(c.name for c in in_region)}): name one")
        raise KeyError(f"no cluster or region {name!r} in fleet {self.name!r}")

    def _storage_account_name(self, tail_id: str) -> str:
        # The suffix and the id must survive truncation or two clusters would share one name.
        tail = f"{self.stable_suffix}{tail_id}".lower()
        stem = re.sub(r"[^a-z0-9]", "", f"st{self.name}".lower())[: 24 - len(tail)]
        return f"{stem}{tail}"

    def _resolve(self, index: int, region: RegionSpec, entry: ClusterEntrySpec | None = None) -> ClusterSpec:
        defaults = self.cluster_defaults

        def setting(name: str) -> Any:
            for source in (entry, region):
                value = getattr(source, name, None) if source is not None else None
                if value is not None:
                    return value
            return getattr(defaults, name)

        if entry is None:
            cluster_name = region.cluster_name or f"aks-{self.name}-{region.name}"
            member_name = region.member_name
            # One cluster per region keeps the names it always had: the region's position.
            storage = self._storage_account_name(str(index))
        else:
            cluster_name = entry.cluster_name or f"aks-{self.name}-{region.name}-{entry.name}"
            member_name = entry.member_name
            # A digest of the cluster name: adding or reordering clusters renames no other cluster's account.
            storage = self._storage_account_name(_base36(cluster_name, 5))
        return ClusterSpec(
            region=region.name,
            index=index,
            name=cluster_name,
            member_name=member_name or cluster_name.lower(),
            update_group=(entry.update_group if entry is not None else None) or region.update_group or "",
            node_count=setting("node_count"),
            vm_size=setting("vm_size"),
            kubernetes_version=setting("kubernetes_version"),
            network_plugin=setting("network_plugin"),
            network_policy=setting("network_policy"),
            storage_account_name=storage,
            tags={**self.ownership_tags, "region": region.name},
        )


def _base36(text: str, length: int) -> str:
    """A short, stable lowercase digest of `text` (letters and digits)."""
    number = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")
    digits = ""
    for _ in range(length):
        number, rest = divmod(number, 36)
        digits += "0123456789abcdefghijklmnopqrstuvwxyz"[rest]
    return digits


class ClusterSpec(_Strict):
    """A fully resolved cluster: what provision creates and join enrolls."""

    region: str
    index: int
    name: str
    member_name: str
    update_group: str
    node_count: int
    vm_size: str
    kubernetes_version: str
    network_plugin: str
    network_policy: str
    storage_account_name: str
    tags: dict[str, str]


# --- validation ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SpecProblem:
    """One thing wrong with a spec: where, what, and how to fix it."""

    path: str
    message: str
    fix: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message} (fix: {self.fix})"


class FleetSpecError(ValueError):
    """A fleet spec that cannot be used; carries every problem found."""

    def __init__(self, source: str, problems: list[SpecProblem]):
        self.source = source
        self.problems = problems
        listing = "\n".join(f"  - {problem}" for problem in problems)
        super().__init__(f"fleet spec {source} has {len(problems)} problem(s):\n{listing}")


def parse_kubernetes_version(version: str) -> tuple[int, int, int | None]:
    """Split MAJOR.MINOR[.PATCH] (an optional leading v is tolerated) into numbers."""
    match = _KUBERNETES_VERSION.match(version.lstrip("v"))
    if not match:
        raise ValueError(f"{version!r} is not a Kubernetes version like 1.36 or 1.36.3")
    major, minor, patch = match.groups()
    return int(major), int(minor), int(patch) if patch is not None else None


def _loc_to_path(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "(root)"


def _spec_field_names() -> list[str]:
    """Every key a fleet spec may hold, at any level (for spelling hints)."""
    models: list[type[BaseModel]] = [FleetSpec, ClusterSettings, RegionSpec, ClusterEntrySpec, StageSpec,
                                     UpdateStrategySpec, ChartSpec, ServiceOperatorSpec, GitOpsSpec, UpgradeHealthSpec,
                                     ConcurrencySpec]
    return sorted({name for model in models for name in model.model_fields})


def _structural_problems(error: ValidationError) -> list[SpecProblem]:
    problems = []
    for item in error.errors():
        path = _loc_to_path(tuple(item["loc"]))
        kind = item["type"]
        message = item["msg"]
        if kind == "missing":
            fix = f"add {path.rsplit('.', 1)[-1]}"
        elif kind == "extra_forbidden":
            near = difflib.get_close_matches(str(item["loc"][-1]), _spec_field_names(), n=1)
            fix = (f"did you mean {near[0]!r}? " if near else "") + \
                "remove it or check its spelling against docs/fleet-spec.md"
        elif kind == "literal_error":
            fix = f"use one of the allowed values ({item.get('ctx', {}).get('expected', '')})"
        elif str(item["loc"][-1]) == "kubernetes_version" and isinstance(item.get("input"), int | float):
            message = f"{item['input']!r} is a number in YAML, not a version (1.30 would read as 1.3)"
            fix = 'quote it, e.g. kubernetes_version: "1.36"'
        else:
            fix = "give a value of the expected type (see docs/fleet-spec.md)"
        problems.append(SpecProblem(path, message, fix))
    return problems


def _name_problem(path: str, value: str, pattern: re.Pattern[str], limits: str, min_len: int,
                  max_len: int) -> SpecProblem | None:
    if min_len <= len(value) <= max_len and pattern.match(value):
        return None
    return SpecProblem(path, f"{value!r} breaks Azure's naming rule", f"rename it; {limits}")


def _semantic_problems(spec: FleetSpec) -> list[SpecProblem]:
    problems: list[SpecProblem] = []

    def check(problem: SpecProblem | None) -> None:
        if problem:
            problems.append(problem)

    dns_rule = "lowercase letters, digits and hyphens, starting and ending with a letter or digit"
    check(_name_problem("name", spec.name, _DNS_LABEL, f"1-63 characters, {dns_rule}", 1, 63))
    if spec.location not in AZURE_REGIONS:
        problems.append(SpecProblem("location", f"unknown Azure region {spec.location!r}",
                                    "use a region name such as eastus, westus2 or westeurope"))
    if spec.suffix is not None and not _SUFFIX.match(spec.suffix):
        problems.append(SpecProblem("suffix", f"{spec.suffix!r} is not 3-8 lowercase letters or digits",
                                    "use something like 7f3a2c"))
    rg = spec.resource_group_name
    rg_path = "resource_group" if spec.resource_group else "name (derived resource group)"
    if not (1 <= len(rg) <= 90 and _RESOURCE_GROUP.match(rg)) or rg.endswith("."):
        problems.append(SpecProblem(rg_path, f"resource group name {rg!r} breaks Azure's rule",
                                    "1-90 letters, digits, underscores, hyphens, periods, parentheses; "
                                    "not ending in a period"))
    check(_name_problem("name (derived registry name)", spec.registry_name, _ACR_NAME,
                        "container registry names are 5-50 letters or digits", 5, 50))
    check(_name_problem("name (derived key vault name)", spec.key_vault_name, _KEY_VAULT_NAME,
                        "key vault names are 3-24 letters, digits and single hyphens, starting with a letter "
                        "and globally unique (keep the suffix)", 3, 24))
    for key, value in spec.tags.items():
        if not key or len(key) > 512 or _TAG_KEY_FORBIDDEN & set(key):
            problems.append(SpecProblem(f"tags.{key}", "tag names are 1-512 characters without < > % & \\ ? /",
                                        "rename the tag"))
        if len(value) > 256:
            problems.append(SpecProblem(f"tags.{key}", "tag values are at most 256 characters", "shorten it"))
        if key in (OWNER_TAG, MANAGED_TAG):
            problems.append(SpecProblem(f"tags.{key}", "this tag is reserved for fleetflow's ownership marks",
                                        "remove it; fleetflow sets it"))

    if not spec.regions:
        problems.append(SpecProblem("regions", "a fleet needs at least one region", "add a region entry"))
    seen_regions: dict[str, int] = {}
    groups_with_clusters: set[str] = set()
    _check_cluster_settings("cluster_defaults", spec.cluster_defaults.model_dump(), problems)
    for index, region in enumerate(spec.regions):
        path = f"regions[{index}]"
        if region.name not in AZURE_REGIONS:
            problems.append(SpecProblem(f"{path}.name", f"unknown Azure region {region.name!r}",
                                        "use a region name such as eastus, westus2 or centralus"))
        if region.name in seen_regions:
            problems.append(SpecProblem(f"{path}.name", f"region {region.name!r} is already regions"
                                        f"[{seen_regions[region.name]}]", "list each region once (several "
                                        "clusters of a region go under its clusters)"))
        seen_regions.setdefault(region.name, index)
        if region.update_group is not None:
            check(_name_problem(f"{path}.update_group", region.update_group, _DNS_LABEL,
                                f"update group names are 1-50 characters, {dns_rule}", 1, 50))
        overrides = {k: v for k, v in region.model_dump(exclude={"clusters"}).items() if v is not None}
        _check_cluster_settings(path, overrides, problems)
        if region.clusters is None:
            if region.update_group is None:
                problems.append(SpecProblem(f"{path}.update_group", "Field required", "add update_group"))
            continue
        if not region.clusters:
            problems.append(SpecProblem(f"{path}.clusters", "clusters is empty", "list at least one cluster, or "
                                        "remove clusters for the region's single cluster"))
        for field_name in ("cluster_name", "member_name"):
            if getattr(region, field_name) is not None:
                problems.append(SpecProblem(f"{path}.{field_name}", f"{field_name} names a region's single "
                                            "cluster, but this region lists clusters",
                                            f"set {field_name} on an entry of clusters instead"))
        short_names: dict[str, int] = {}
        for entry_index, listed in enumerate(region.clusters):
            entry_path = f"{path}.clusters[{entry_index}]"
            check(_name_problem(f"{entry_path}.name", listed.name, _DNS_LABEL,
                                f"cluster short names are 1-40 characters, {dns_rule}", 1, 40))
            if listed.name in short_names:
                problems.append(SpecProblem(f"{entry_path}.name", f"cluster {listed.name!r} is already "
                                            f"{path}.clusters[{short_names[listed.name]}]",
                                            "give each cluster of a region its own name"))
            short_names.setdefault(listed.name, entry_index)
            if listed.update_group is None and region.update_group is None:
                problems.append(SpecProblem(f"{entry_path}.update_group", "Field required", "add update_group "
                                            f"here or on {path}"))
            elif listed.update_group is not None:
                check(_name_problem(f"{entry_path}.update_group", listed.update_group, _DNS_LABEL,
                                    f"update group names are 1-50 characters, {dns_rule}", 1, 50))
            _check_cluster_settings(entry_path, {k: v for k, v in listed.model_dump().items() if v is not None},
                                    problems)

    # Names must be unique across the whole fleet, not only within a region.
    seen: dict[str, dict[str, str]] = {"cluster": {}, "member": {}, "storage account": {}}
    for flat_index, (path, region, entry) in enumerate(spec.cluster_entries()):
        cluster = spec._resolve(flat_index, region, entry)
        name_path = f"{path}.name" if entry is not None and entry.cluster_name is None else f"{path}.cluster_name"
        member_path = f"{path}.member_name"
        storage_path = f"{path} (derived storage account name)"
        for kind, value, where, fix in (
                ("cluster", cluster.name, name_path, "give each cluster its own name"),
                ("member", cluster.member_name, member_path, "give each member its own name"),
                ("storage account", cluster.storage_account_name, storage_path,
                 "rename one of the clusters (the name is derived from the cluster's name)")):
            first = seen[kind].get(value)
            if first is not None:
                problems.append(SpecProblem(where, f"{kind} name {value!r} is also used by {first}", fix))
            seen[kind].setdefault(value, path)
        check(_name_problem(name_path, cluster.name, _AKS_NAME,
                            "AKS names are 1-63 letters, digits, hyphens and underscores, starting and ending "
                            "with a letter or digit", 1, 63))
        check(_name_problem(member_path, cluster.member_name, _DNS_LABEL,
                            f"fleet member names are 1-50 characters, {dns_rule}", 1, 50))
        check(_name_problem(storage_path, cluster.storage_account_name,
                            _STORAGE_NAME, "storage account names are 3-24 lowercase letters or digits", 3, 24))
        if cluster.update_group:
            groups_with_clusters.add(cluster.update_group)

    strategy = spec.update_strategy
    if not strategy.stages:
        problems.append(SpecProblem("update_strategy.stages", "the update strategy has no stages",
                                    "add at least one stage listing update groups"))
    staged_groups: dict[str, str] = {}
    stage_names: set[str] = set()
    for index, stage in enumerate(strategy.stages):
        path = f"update_strategy.stages[{index}]"
        check(_name_problem(f"{path}.name", stage.name, _DNS_LABEL, f"stage names are 1-50 characters, {dns_rule}",
                            1, 50))
        if stage.name in stage_names:
            problems.append(SpecProblem(f"{path}.name", f"stage name {stage.name!r} is used twice",
                                        "give each stage its own name"))
        stage_names.add(stage.name)
        if not stage.groups:
            problems.append(SpecProblem(f"{path}.groups", "a stage needs at least one group",
                                        "list update groups, e.g. [test-group]"))
        if stage.after_stage_wait_seconds < 0 or stage.after_stage_wait_seconds > 3600:
            problems.append(SpecProblem(f"{path}.after_stage_wait_seconds",
                                        f"{stage.after_stage_wait_seconds} is outside 0-3600 seconds",
                                        "use a wait between 0 and 3600 seconds"))
        for group_index, group in enumerate(stage.groups):
            group_path = f"{path}.groups[{group_index}]"
            if group not in groups_with_clusters:
                problems.append(SpecProblem(group_path, f"no cluster is in update group {group!r}",
                                            "set update_group on a region to it, or remove it from the stage"))
            if group in staged_groups:
                problems.append(SpecProblem(group_path, f"group {group!r} is already in stage "
                                            f"{staged_groups[group]!r}", "put each group in one stage"))
            staged_groups.setdefault(group, stage.name)
    unstaged: set[str] = set()
    for flat_index, (path, region, entry) in enumerate(spec.cluster_entries()):
        cluster = spec._resolve(flat_index, region, entry)
        own = entry is None or entry.update_group is not None
        group_path = f"{path if own else path.rsplit('.', 1)[0]}.update_group"
        if strategy.stages and cluster.update_group and cluster.update_group not in staged_groups \
                and group_path not in unstaged:
            unstaged.add(group_path)
            problems.append(SpecProblem(group_path,
                                        f"group {cluster.update_group!r} is in no stage, so cluster "
                                        f"{cluster.name!r} would never be upgraded",
                                        "add the group to a stage of update_strategy"))

    for index, item in enumerate(spec.service_operator.crd_pattern.split(";")):
        if not _CRD_PATTERN_ITEM.match(item.strip()):
            problems.append(SpecProblem(f"service_operator.crd_pattern[{index}]",
                                        f"{item!r} is not a CRD pattern", "use group.azure.com/* or "
                                        "group.azure.com/Kind, separated by semicolons"))
    operator = spec.service_operator
    for field_name, chart in (("chart", operator.chart), ("cert_manager_chart", operator.cert_manager_chart)):
        path = f"service_operator.{field_name}"
        if not chart.repository.startswith(("https://", "http://", "oci://")) and not chart.repository.endswith(
                (".tgz", ".tar.gz")):
            problems.append(SpecProblem(f"{path}.repository", f"{chart.repository!r} is not a chart source",
                                        "use an https:// repository, an oci:// reference or a .tgz chart archive"))
        if not chart.version.strip():
            problems.append(SpecProblem(f"{path}.version", "the chart version is empty",
                                        "pin a version, e.g. v1.21.1"))
    budget = spec.concurrency
    if not 1 <= budget.max_parallel_writes <= 10000:
        problems.append(SpecProblem("concurrency.max_parallel_writes", f"{budget.max_parallel_writes} is outside "
                                    "1-10000", "use a burst between 1 and 10000 writes, e.g. 200"))
    if not 0.01 <= budget.writes_per_second <= 1000:
        problems.append(SpecProblem("concurrency.writes_per_second", f"{budget.writes_per_second:g} is outside "
                                    "0.01-1000", "use a rate between 0.01 and 1000 writes per second, e.g. 10"))
    if not 30 <= operator.ready_timeout_seconds <= 7200:
        problems.append(SpecProblem("service_operator.ready_timeout_seconds",
                                    f"{operator.ready_timeout_seconds} is outside 30-7200 seconds",
                                    "use a timeout between 30 and 7200 seconds"))
    if spec.gitops is not None:
        gitops = spec.gitops
        if gitops.fleet_cluster_region is not None and gitops.fleet_cluster_region not in seen_regions:
            problems.append(SpecProblem("gitops.fleet_cluster_region", f"{gitops.fleet_cluster_region!r} is not a "
                                        "region of the fleet", "name one of the regions listed under regions"))
        if gitops.fleet_cluster is not None and gitops.fleet_cluster not in seen["cluster"]:
            problems.append(SpecProblem("gitops.fleet_cluster", f"{gitops.fleet_cluster!r} is not a cluster of "
                                        "the fleet", "name one of the clusters `fleetflow spec show` lists"))
        if not 30 <= gitops.health_timeout_seconds <= 7200:
            problems.append(SpecProblem("gitops.health_timeout_seconds", f"{gitops.health_timeout_seconds} is "
                                        "outside 30-7200 seconds", "use a timeout between 30 and 7200 seconds"))
        if gitops.path.startswith("/") or ".." in Path(gitops.path).parts:
            problems.append(SpecProblem("gitops.path", f"{gitops.path!r} leaves the repository",
                                        "give a folder inside the repository, e.g. gitops"))
        for variable in gitops.variables:
            if not _VARIABLE.match(variable):
                problems.append(SpecProblem(f"gitops.variables.{variable}", "not a variable name",
                                            "use capital letters, digits and underscores, e.g. APP_REPLICAS"))
        for secret_name in gitops.key_vault_secrets:
            if not _KEY_VAULT_SECRET.match(secret_name):
                problems.append(SpecProblem(f"gitops.key_vault_secrets.{secret_name}",
                                            "Key Vault secret names are 1-127 letters, digits and hyphens",
                                            "rename the secret"))
    health = spec.upgrade_health
    if not 0 <= health.max_pod_restarts <= 1000:
        problems.append(SpecProblem("upgrade_health.max_pod_restarts", f"{health.max_pod_restarts} is outside 0-1000",
                                    "use a number of restarts between 0 and 1000"))
    if not 0 <= health.settle_seconds <= 3600:
        problems.append(SpecProblem("upgrade_health.settle_seconds", f"{health.settle_seconds} is outside 0-3600 "
                                    "seconds", "use a time between 0 and 3600 seconds"))
    if health.notification_block is not None and not re.fullmatch(r"[a-z0-9-]+/[-\w]+", health.notification_block):
        problems.append(SpecProblem("upgrade_health.notification_block", f"{health.notification_block!r} is not "
                                    "<block-type-slug>/<name>", "name the block as Prefect does, e.g. "
                                    "custom-webhook/approvers or slack-webhook/ops"))
    for field_name, namespace in (("namespace", operator.namespace),
                                  ("cert_manager_namespace", operator.cert_manager_namespace)):
        check(_name_problem(f"service_operator.{field_name}", namespace, _DNS_LABEL,
                            f"Kubernetes namespaces are 1-63 characters, {dns_rule}", 1, 63))
    return problems


def crd_pattern_items(pattern: str) -> list[tuple[str, str]]:
    """(group, kind or '*') for each item of an ASO crdPattern such as 'resources.azure.com/*;storage.azure.com/X'."""
    items = []
    for item in pattern.split(";"):
        group, _, kind = item.strip().partition("/")
        items.append((group, kind or "*"))
    return items


def _check_cluster_settings(path: str, settings: dict[str, Any], problems: list[SpecProblem]) -> None:
    count = settings.get("node_count")
    if count is not None and not 1 <= count <= 1000:
        problems.append(SpecProblem(f"{path}.node_count", f"{count} nodes is outside 1-1000",
                                    "use a node count between 1 and 1000"))
    vm_size = settings.get("vm_size")
    if vm_size is not None and not _VM_SIZE.match(vm_size):
        problems.append(SpecProblem(f"{path}.vm_size", f"{vm_size!r} is not an Azure VM size",
                                    "use a size like Standard_DS2_v2"))
    version = settings.get("kubernetes_version")
    if version is not None:
        try:
            parse_kubernetes_version(version)
        except ValueError as error:
            problems.append(SpecProblem(f"{path}.kubernetes_version", str(error),
                                        "write MAJOR.MINOR or MAJOR.MINOR.PATCH, e.g. 1.36 or 1.36.3"))
    if settings.get("network_policy") == "azure" and settings.get("network_plugin") not in (None, "azure"):
        problems.append(SpecProblem(f"{path}.network_policy", "network policy azure needs network plugin azure",
                                    "set network_plugin: azure or pick another policy"))


def find_problems(document: Any) -> list[SpecProblem]:
    """Every problem in a parsed spec document; empty when the spec is usable."""
    if not isinstance(document, dict):
        return [SpecProblem("(root)", "the spec is not a YAML mapping", "start from fleet.yaml in the repository")]
    try:
        spec = FleetSpec.model_validate(document)
    except ValidationError as error:
        return _structural_problems(error)
    return _semantic_problems(spec)


def _yaml_error_problem(error: yaml.YAMLError) -> SpecProblem:
    """One line for a YAML syntax error: where (line, column) and what."""
    mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else "(root)"
    what = " ".join(str(part) for part in (getattr(error, "context", None), getattr(error, "problem", None))
                    if part) or str(error).splitlines()[0]
    if "constructor for the tag" in what:
        return SpecProblem(where, f"not valid YAML: {what}", "remove the tag: a fleet spec holds plain strings, "
                           "numbers, lists and mappings")
    return SpecProblem(where, f"not valid YAML: {what}", "fix the YAML syntax at that place (indent with spaces, "
                       "quote values holding ': ' or '#')")


def _duplicate_keys(node: yaml.Node | None, path: str = "") -> list[SpecProblem]:
    """Mapping keys given twice anywhere in the document (YAML would silently keep the last one)."""
    problems: list[SpecProblem] = []
    if isinstance(node, yaml.MappingNode):
        first_line: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value) if isinstance(key_node, yaml.ScalarNode) else None
            child = f"{path}.{key}" if path else str(key)
            if key is not None and key in first_line:
                problems.append(SpecProblem(child, f"key {key!r} is given twice (lines {first_line[key]} and "
                                            f"{key_node.start_mark.line + 1}); YAML would silently keep the last",
                                            "keep one of them"))
            elif key is not None:
                first_line[key] = key_node.start_mark.line + 1
            problems.extend(_duplicate_keys(value_node, child))
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            problems.extend(_duplicate_keys(item, f"{path}[{index}]"))
    return problems


def parse_spec(text: str, source: str = "<text>") -> FleetSpec:
    """Parse and validate YAML text; raises FleetSpecError listing every problem."""
    try:
        duplicates = _duplicate_keys(yaml.compose(text, Loader=yaml.SafeLoader))
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise FleetSpecError(source, [_yaml_error_problem(error)]) from error
    if duplicates:
        raise FleetSpecError(source, duplicates)
    problems = find_problems(document)
    if problems:
        raise FleetSpecError(source, problems)
    return FleetSpec.model_validate(document)


def decode_spec(data: bytes, source: str) -> str:
    """The text of a spec file, which must be UTF-8 (a UTF-8 byte-order mark is allowed)."""
    for bom, encoding in ((b"\xff\xfe\x00\x00", "UTF-32"), (b"\x00\x00\xfe\xff", "UTF-32"),
                          (b"\xff\xfe", "UTF-16"), (b"\xfe\xff", "UTF-16")):
        if data.startswith(bom):
            raise FleetSpecError(source, [SpecProblem("(file)", f"the file is {encoding} text; fleet specs are UTF-8",
                                                      "save it as UTF-8 (e.g. iconv -f "
                                                      f"{encoding} -t UTF-8), or re-create it from fleet.yaml")])
    if b"\x00" in data[:4096]:
        guess = "UTF-16 text without a byte-order mark" if data[1:200:2].count(0) > 20 else "a binary file"
        raise FleetSpecError(source, [SpecProblem("(file)", f"the file holds NUL bytes: it looks like {guess}, "
                                                  "not a YAML fleet spec", "pass the fleet spec YAML file (UTF-8 "
                                                  "text), e.g. fleet.yaml")])
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise FleetSpecError(source, [SpecProblem("(file)", f"byte 0x{data[error.start]:02x} on line {line} is not "
                                                  "UTF-8: the file is not UTF-8 text", "save it as UTF-8, or pass "
                                                  "the fleet spec YAML file, e.g. fleet.yaml")]) from None


def load_spec(path: str | Path) -> FleetSpec:
    """Load and validate a fleet spec file; raises FleetSpecError listing every problem."""
    spec_path = Path(path)
    try:
        data = spec_path.read_bytes()
    except OSError as error:
        raise FleetSpecError(str(spec_path), [SpecProblem("(file)", f"cannot read: {error.strerror}",
                                                          "pass the path of an existing fleet spec")]) from error
    return parse_spec(decode_spec(data, str(spec_path)), str(spec_path))
