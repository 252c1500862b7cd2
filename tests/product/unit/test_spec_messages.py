"""Every spec problem fleetflow reports, whole: the field path, what is wrong and the fix, one case per rule and
the values at each limit that must still pass. An operator corrects a spec from these lines alone."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from tasks.spec import (
    FleetSpec,
    FleetSpecError,
    SpecProblem,
    _base36,
    _loc_to_path,
    _yaml_error_problem,
    crd_pattern_items,
    decode_spec,
    find_problems,
    load_spec,
    parse_kubernetes_version,
    parse_spec,
)

BASE: dict[str, Any] = {
    "name": "demo", "location": "eastus", "suffix": "abc123",
    "regions": [{"name": "eastus", "update_group": "test-group"}, {"name": "westus2", "update_group": "prod-group"}],
    "update_strategy": {"stages": [{"name": "stage1", "groups": ["test-group"]},
                                   {"name": "stage2", "groups": ["prod-group"]}]},
}
MULTI: dict[str, Any] = {
    "name": "big", "location": "eastus", "suffix": "m1lt1",
    "regions": [
        {"name": "eastus", "update_group": "prod-group", "clusters": [
            {"name": "team-a", "update_group": "test-group"},
            {"name": "team-b"},
            {"name": "team-c", "cluster_name": "aks-custom", "member_name": "custom"}]},
        {"name": "westus2", "update_group": "prod-group"},
        {"name": "centralus", "clusters": [{"name": "team-a", "update_group": "prod-group"}]},
    ],
    "update_strategy": {"stages": [{"name": "stage1", "groups": ["test-group"]},
                                   {"name": "stage2", "groups": ["prod-group"]}]},
}
DELETE = object()

DNS = "lowercase letters, digits and hyphens, starting and ending with a letter or digit"
FLEET_NAME = f"rename it; 1-63 characters, {DNS}"
MEMBER = f"rename it; fleet member names are 1-50 characters, {DNS}"
AKS = ("rename it; AKS names are 1-63 letters, digits, hyphens and underscores, starting and ending with a letter or "
       "digit")
GROUP = f"rename it; update group names are 1-50 characters, {DNS}"
STAGE = f"rename it; stage names are 1-50 characters, {DNS}"
SHORT = f"rename it; cluster short names are 1-40 characters, {DNS}"
NAMESPACE = f"rename it; Kubernetes namespaces are 1-63 characters, {DNS}"
VAULT = ("rename it; key vault names are 3-24 letters, digits and single hyphens, starting with a letter and globally "
         "unique (keep the suffix)")
STORAGE = "rename it; storage account names are 3-24 lowercase letters or digits"
RG_RULE = "1-90 letters, digits, underscores, hyphens, periods, parentheses; not ending in a period"
TAG_NAME = ("tag names are 1-512 characters without < > % & \\ ? /", "rename the tag")
RESERVED = ("this tag is reserved for fleetflow's ownership marks", "remove it; fleetflow sets it")
NODES = "use a node count between 1 and 1000"
NO_CLUSTER_FIX = "set update_group on a region to it, or remove it from the stage"
UNSTAGED_FIX = "add the group to a stage of update_strategy"
CRD_FIX = "use group.azure.com/* or group.azure.com/Kind, separated by semicolons"
CHART_FIX = "use an https:// repository, an oci:// reference or a .tgz chart archive"
TIMEOUT_FIX = "use a timeout between 30 and 7200 seconds"
VARIABLE = ("not a variable name", "use capital letters, digits and underscores, e.g. APP_REPLICAS")
SECRET = ("Key Vault secret names are 1-127 letters, digits and hyphens", "rename the secret")
NOTIFY_FIX = "name the block as Prefect does, e.g. custom-webhook/approvers or slack-webhook/ops"
STORAGE_DUP_FIX = "rename one of the clusters (the name is derived from the cluster's name)"


def breaks(value: str) -> str:
    return f"{value!r} breaks Azure's naming rule"


def no_cluster(path: str, group: str) -> tuple[str, str, str]:
    return path, f"no cluster is in update group {group!r}", NO_CLUSTER_FIX


def unstaged(path: str, group: str, cluster: str) -> tuple[str, str, str]:
    return path, f"group {group!r} is in no stage, so cluster {cluster!r} would never be upgraded", UNSTAGED_FIX


def gitops(**fields: Any) -> dict[str, Any]:
    return {"repository": ".", **fields}


def edited(base: dict[str, Any], edits: dict[str, Any]) -> dict[str, Any]:
    """A copy of `base` with each "a/0/b" path set to its value (DELETE removes the key)."""
    document = copy.deepcopy(base)
    for path, value in edits.items():
        *parents, last = path.split("/")
        node: Any = document
        for key in parents:
            node = node[int(key)] if key.isdigit() else node.setdefault(key, {})
        if value is DELETE:
            del node[last]
        else:
            node[int(last) if last.isdigit() else last] = value
    return document


F64, R91, D85 = "f" * 64, "r" * 91, "d" * 85
CASES: list[tuple[str, dict[str, Any], dict[str, Any], list[tuple[str, str, str]]]] = [
    ("fleet name with capitals and underscore", BASE, {"name": "Demo_1"}, [
        ("name", breaks("Demo_1"), FLEET_NAME),
        ("name (derived key vault name)", breaks("kv-demo_1-abc123"), VAULT),
        ("regions[0].member_name", breaks("aks-demo_1-eastus"), MEMBER),
        ("regions[1].member_name", breaks("aks-demo_1-westus2"), MEMBER)]),
    ("fleet name of 64 characters", BASE, {"name": F64}, [
        ("name", breaks(F64), FLEET_NAME),
        ("regions[0].cluster_name", breaks(f"aks-{F64}-eastus"), AKS),
        ("regions[0].member_name", breaks(f"aks-{F64}-eastus"), MEMBER),
        ("regions[1].cluster_name", breaks(f"aks-{F64}-westus2"), AKS),
        ("regions[1].member_name", breaks(f"aks-{F64}-westus2"), MEMBER)]),
    ("fleet name of 63 characters passes", BASE,
     {"name": "f" * 63, "regions/0/cluster_name": "aks-1", "regions/1/cluster_name": "aks-2"}, []),
    ("fleet, resource group, update group, stage, short, AKS and member names of one character pass", MULTI,
     {"name": "a", "resource_group": "r", "regions/1/update_group": "g", "regions/0/clusters/1/name": "b",
      "regions/0/clusters/1/update_group": "h", "update_strategy/stages/1/groups": ["prod-group", "g", "h"],
      "update_strategy/stages/0/name": "s", "regions/0/clusters/0/cluster_name": "c",
      "regions/0/clusters/0/member_name": "m"}, []),
    ("registry name of 5 characters passes", BASE, {"name": "a", "suffix": "b"},
     [("suffix", "'b' is not 3-8 lowercase letters or digits", "use something like 7f3a2c")]),
    ("listed cluster update group of 51 characters", MULTI,
     {"regions/0/clusters/0/update_group": "t" * 51, "update_strategy/stages/0/groups": ["t" * 51]},
     [("regions[0].clusters[0].update_group", breaks("t" * 51), GROUP)]),
    ("unknown location", BASE, {"location": "mars"},
     [("location", "unknown Azure region 'mars'", "use a region name such as eastus, westus2 or westeurope")]),
    ("suffix with capitals", BASE, {"suffix": "AB"},
     [("suffix", "'AB' is not 3-8 lowercase letters or digits", "use something like 7f3a2c")]),
    ("suffix with an underscore breaks the derived vault and storage names", BASE, {"suffix": "a_b"}, [
        ("suffix", "'a_b' is not 3-8 lowercase letters or digits", "use something like 7f3a2c"),
        ("name (derived key vault name)", breaks("kv-demo-a_b"), VAULT),
        ("regions[0] (derived storage account name)", breaks("stdemoa_b0"), STORAGE),
        ("regions[1] (derived storage account name)", breaks("stdemoa_b1"), STORAGE)]),
    ("derived registry name shorter than 5", BASE, {"name": "", "suffix": "a"}, [
        ("name", breaks(""), FLEET_NAME),
        ("suffix", "'a' is not 3-8 lowercase letters or digits", "use something like 7f3a2c"),
        ("name (derived registry name)", breaks("acra"),
         "rename it; container registry names are 5-50 letters or digits")]),
    ("resource group of 91 characters", BASE, {"resource_group": R91},
     [("resource_group", f"resource group name {R91!r} breaks Azure's rule", RG_RULE)]),
    ("resource group of 90 characters passes", BASE, {"resource_group": "r" * 90}, []),
    ("resource group ending in a period", BASE, {"resource_group": "rg."},
     [("resource_group", "resource group name 'rg.' breaks Azure's rule", RG_RULE)]),
    ("resource group with a hash", BASE, {"resource_group": "rg#1"},
     [("resource_group", "resource group name 'rg#1' breaks Azure's rule", RG_RULE)]),
    ("resource group with parentheses and periods passes", BASE, {"resource_group": "rg.(a)_b-1"}, []),
    ("derived resource group too long", BASE,
     {"name": D85, "regions/0/cluster_name": "aks-1", "regions/1/cluster_name": "aks-2"}, [
         ("name", breaks(D85), FLEET_NAME),
         ("name (derived resource group)", f"resource group name {'rg-' + D85 + '-abc123'!r} breaks Azure's rule",
          RG_RULE)]),
    ("empty tag name", BASE, {"tags": {"": "x"}}, [("tags.", *TAG_NAME)]),
    ("tag name of 513 characters", BASE, {"tags": {"k" * 513: "x"}}, [(f"tags.{'k' * 513}", *TAG_NAME)]),
    ("tag name of 512 and value of 256 characters pass", BASE, {"tags": {"k" * 512: "v" * 256}}, []),
    ("tag names with forbidden characters", BASE,
     {"tags": {"a?b": "x", "c/d": "y", "e<": "z", "f>": "z", "g%": "z", "h&": "z", "i\\": "z", "j:k.l": "z"}},
     [(f"tags.{key}", *TAG_NAME) for key in ("a?b", "c/d", "e<", "f>", "g%", "h&", "i\\")]),
    ("tag value of 257 characters", BASE, {"tags": {"k": "v" * 257}},
     [("tags.k", "tag values are at most 256 characters", "shorten it")]),
    ("reserved ownership tags", BASE, {"tags": {"fleetflow-fleet": "x", "fleetflow-managed": "true"}},
     [("tags.fleetflow-fleet", *RESERVED), ("tags.fleetflow-managed", *RESERVED)]),
    ("no regions", BASE, {"regions": []}, [
        ("regions", "a fleet needs at least one region", "add a region entry"),
        no_cluster("update_strategy.stages[0].groups[0]", "test-group"),
        no_cluster("update_strategy.stages[1].groups[0]", "prod-group")]),
    ("zero nodes", BASE, {"cluster_defaults": {"node_count": 0}},
     [("cluster_defaults.node_count", "0 nodes is outside 1-1000", NODES)]),
    ("1001 nodes", BASE, {"cluster_defaults": {"node_count": 1001}},
     [("cluster_defaults.node_count", "1001 nodes is outside 1-1000", NODES)]),
    ("1 and 1000 nodes pass", BASE, {"cluster_defaults": {"node_count": 1}, "regions/1/node_count": 1000}, []),
    ("VM size without Standard_", BASE, {"cluster_defaults": {"vm_size": "DS2"}},
     [("cluster_defaults.vm_size", "'DS2' is not an Azure VM size", "use a size like Standard_DS2_v2")]),
    ("Kubernetes version that is a word", BASE, {"cluster_defaults": {"kubernetes_version": "latest"}},
     [("cluster_defaults.kubernetes_version", "'latest' is not a Kubernetes version like 1.36 or 1.36.3",
       "write MAJOR.MINOR or MAJOR.MINOR.PATCH, e.g. 1.36 or 1.36.3")]),
    ("network policy azure on kubenet", BASE,
     {"cluster_defaults": {"network_plugin": "kubenet", "network_policy": "azure"}},
     [("cluster_defaults.network_policy", "network policy azure needs network plugin azure",
       "set network_plugin: azure or pick another policy")]),
    ("network policy calico on kubenet passes", BASE,
     {"cluster_defaults": {"network_plugin": "kubenet", "network_policy": "calico"}}, []),
    ("network policy azure on a region without its own plugin passes", BASE,
     {"regions/0/network_policy": "azure"}, []),
    ("unknown region", BASE, {"regions/1/name": "westus9"},
     [("regions[1].name", "unknown Azure region 'westus9'", "use a region name such as eastus, westus2 or centralus")]),
    ("region listed twice", BASE, {"regions/1/name": "eastus"}, [
        ("regions[1].name", "region 'eastus' is already regions[0]",
         "list each region once (several clusters of a region go under its clusters)"),
        ("regions[1].cluster_name", "cluster name 'aks-demo-eastus' is also used by regions[0]",
         "give each cluster its own name"),
        ("regions[1].member_name", "member name 'aks-demo-eastus' is also used by regions[0]",
         "give each member its own name")]),
    ("region update group with capitals", BASE, {"regions/1/update_group": "Prod_Group"}, [
        ("regions[1].update_group", breaks("Prod_Group"), GROUP),
        no_cluster("update_strategy.stages[1].groups[0]", "prod-group"),
        unstaged("regions[1].update_group", "Prod_Group", "aks-demo-westus2")]),
    ("update group of 51 characters", BASE,
     {"regions/1/update_group": "g" * 51, "update_strategy/stages/1/groups": ["g" * 51]},
     [("regions[1].update_group", breaks("g" * 51), GROUP)]),
    ("update group of 50 characters passes", BASE,
     {"regions/1/update_group": "g" * 50, "update_strategy/stages/1/groups": ["g" * 50]}, []),
    ("region overrides checked like the defaults", BASE, {"regions/1/node_count": 0, "regions/1/vm_size": "x"}, [
        ("regions[1].node_count", "0 nodes is outside 1-1000", NODES),
        ("regions[1].vm_size", "'x' is not an Azure VM size", "use a size like Standard_DS2_v2")]),
    ("one-cluster region without an update group", BASE, {"regions/1/update_group": DELETE}, [
        ("regions[1].update_group", "Field required", "add update_group"),
        no_cluster("update_strategy.stages[1].groups[0]", "prod-group")]),
    ("empty clusters list", MULTI, {"regions/1/clusters": []},
     [("regions[1].clusters", "clusters is empty",
       "list at least one cluster, or remove clusters for the region's single cluster")]),
    ("region-level names on a region listing clusters", MULTI,
     {"regions/0/cluster_name": "aks-x", "regions/0/member_name": "m-x"}, [
         ("regions[0].cluster_name", "cluster_name names a region's single cluster, but this region lists clusters",
          "set cluster_name on an entry of clusters instead"),
         ("regions[0].member_name", "member_name names a region's single cluster, but this region lists clusters",
          "set member_name on an entry of clusters instead")]),
    ("cluster short name with capitals", MULTI, {"regions/0/clusters/1/name": "Team_B"}, [
        ("regions[0].clusters[1].name", breaks("Team_B"), SHORT),
        ("regions[0].clusters[1].member_name", breaks("aks-big-eastus-team_b"), MEMBER)]),
    ("cluster short name of 41 characters", MULTI,
     {"regions/0/clusters/1/name": "t" * 41, "regions/0/clusters/1/member_name": "m-t"},
     [("regions[0].clusters[1].name", breaks("t" * 41), SHORT)]),
    ("cluster short name of 40 characters passes", MULTI,
     {"regions/0/clusters/1/name": "t" * 40, "regions/0/clusters/1/cluster_name": "aks-t"}, []),
    ("cluster short name twice in a region", MULTI, {"regions/0/clusters/1/name": "team-a"}, [
        ("regions[0].clusters[1].name", "cluster 'team-a' is already regions[0].clusters[0]",
         "give each cluster of a region its own name"),
        ("regions[0].clusters[1].name", "cluster name 'aks-big-eastus-team-a' is also used by regions[0].clusters[0]",
         "give each cluster its own name"),
        ("regions[0].clusters[1].member_name",
         "member name 'aks-big-eastus-team-a' is also used by regions[0].clusters[0]", "give each member its own name"),
        ("regions[0].clusters[1] (derived storage account name)",
         "storage account name 'stbigm1lt1z7ibi' is also used by regions[0].clusters[0]", STORAGE_DUP_FIX)]),
    ("listed cluster without an update group anywhere", MULTI, {"regions/2/clusters/0/update_group": DELETE},
     [("regions[2].clusters[0].update_group", "Field required", "add update_group here or on regions[2]")]),
    ("listed cluster update group with capitals", MULTI, {"regions/0/clusters/0/update_group": "Test_Group"}, [
        ("regions[0].clusters[0].update_group", breaks("Test_Group"), GROUP),
        no_cluster("update_strategy.stages[0].groups[0]", "test-group"),
        unstaged("regions[0].clusters[0].update_group", "Test_Group", "aks-big-eastus-team-a")]),
    ("listed cluster overrides checked like the defaults", MULTI,
     {"regions/0/clusters/1/node_count": 0, "regions/0/clusters/1/kubernetes_version": "1.x"}, [
         ("regions[0].clusters[1].node_count", "0 nodes is outside 1-1000", NODES),
         ("regions[0].clusters[1].kubernetes_version", "'1.x' is not a Kubernetes version like 1.36 or 1.36.3",
          "write MAJOR.MINOR or MAJOR.MINOR.PATCH, e.g. 1.36 or 1.36.3")]),
    ("AKS name in two regions, with the storage account derived from it", MULTI,
     {"regions/2/clusters/0/cluster_name": "aks-custom"}, [
         ("regions[2].clusters[0].cluster_name", "cluster name 'aks-custom' is also used by regions[0].clusters[2]",
          "give each cluster its own name"),
         ("regions[2].clusters[0] (derived storage account name)",
          "storage account name 'stbigm1lt1jsfz6' is also used by regions[0].clusters[2]", STORAGE_DUP_FIX)]),
    ("AKS name of two one-cluster regions", BASE,
     {"regions/0/cluster_name": "aks-one", "regions/1/cluster_name": "aks-one"}, [
         ("regions[1].cluster_name", "cluster name 'aks-one' is also used by regions[0]",
          "give each cluster its own name"),
         ("regions[1].member_name", "member name 'aks-one' is also used by regions[0]",
          "give each member its own name")]),
    ("member name twice", MULTI, {"regions/1/member_name": "custom"},
     [("regions[1].member_name", "member name 'custom' is also used by regions[0].clusters[2]",
       "give each member its own name")]),
    ("AKS name starting with a hyphen", BASE, {"regions/0/cluster_name": "-aks"}, [
        ("regions[0].cluster_name", breaks("-aks"), AKS),
        ("regions[0].member_name", breaks("-aks"), MEMBER)]),
    ("AKS name of 64 characters", BASE, {"regions/0/cluster_name": "a" * 64, "regions/0/member_name": "m"},
     [("regions[0].cluster_name", breaks("a" * 64), AKS)]),
    ("AKS name of 63 characters passes", BASE,
     {"regions/0/cluster_name": "A_" * 31 + "a", "regions/0/member_name": "m"}, []),
    ("AKS name of a listed cluster ending in an underscore", MULTI, {"regions/0/clusters/2/cluster_name": "aks_"},
     [("regions[0].clusters[2].cluster_name", breaks("aks_"), AKS)]),
    ("member name with capitals", BASE, {"regions/0/member_name": "Member_1"},
     [("regions[0].member_name", breaks("Member_1"), MEMBER)]),
    ("member name of 51 characters", BASE, {"regions/0/member_name": "m" * 51},
     [("regions[0].member_name", breaks("m" * 51), MEMBER)]),
    ("member name of 50 characters passes", BASE, {"regions/0/member_name": "m" * 50}, []),
    ("no stages", BASE, {"update_strategy/stages": []},
     [("update_strategy.stages", "the update strategy has no stages", "add at least one stage listing update groups")]),
    ("stage name with capitals", BASE, {"update_strategy/stages/0/name": "Stage_1"},
     [("update_strategy.stages[0].name", breaks("Stage_1"), STAGE)]),
    ("stage name of 51 characters", BASE, {"update_strategy/stages/0/name": "s" * 51},
     [("update_strategy.stages[0].name", breaks("s" * 51), STAGE)]),
    ("stage name of 50 characters passes", BASE, {"update_strategy/stages/0/name": "s" * 50}, []),
    ("stage name twice", BASE, {"update_strategy/stages/1/name": "stage1"},
     [("update_strategy.stages[1].name", "stage name 'stage1' is used twice", "give each stage its own name")]),
    ("stage without groups leaves its group unstaged", BASE, {"update_strategy/stages/1/groups": []}, [
        ("update_strategy.stages[1].groups", "a stage needs at least one group",
         "list update groups, e.g. [test-group]"),
        unstaged("regions[1].update_group", "prod-group", "aks-demo-westus2")]),
    ("negative stage wait", BASE, {"update_strategy/stages/0/after_stage_wait_seconds": -1},
     [("update_strategy.stages[0].after_stage_wait_seconds", "-1 is outside 0-3600 seconds",
       "use a wait between 0 and 3600 seconds")]),
    ("stage wait of 3601 s", BASE, {"update_strategy/stages/0/after_stage_wait_seconds": 3601},
     [("update_strategy.stages[0].after_stage_wait_seconds", "3601 is outside 0-3600 seconds",
       "use a wait between 0 and 3600 seconds")]),
    ("stage waits of 0 and 3600 s pass", BASE, {"update_strategy/stages/0/after_stage_wait_seconds": 0,
                                                "update_strategy/stages/1/after_stage_wait_seconds": 3600}, []),
    ("stage naming a group no cluster is in", BASE, {"update_strategy/stages/1/groups": ["prod-group", "canary"]},
     [no_cluster("update_strategy.stages[1].groups[1]", "canary")]),
    ("group in two stages", BASE, {"update_strategy/stages/1/groups": ["prod-group", "test-group"]},
     [("update_strategy.stages[1].groups[1]", "group 'test-group' is already in stage 'stage1'",
       "put each group in one stage")]),
    ("one-cluster region in no stage", BASE, {"regions/1/update_group": "dr-group"}, [
        no_cluster("update_strategy.stages[1].groups[0]", "prod-group"),
        unstaged("regions[1].update_group", "dr-group", "aks-demo-westus2")]),
    ("region group of listed clusters in no stage is reported once, at the region", MULTI,
     {"regions/0/update_group": "dr-group"},
     [unstaged("regions[0].update_group", "dr-group", "aks-big-eastus-team-b")]),
    ("listed cluster's own group in no stage", MULTI, {"regions/0/clusters/0/update_group": "canary"}, [
        no_cluster("update_strategy.stages[0].groups[0]", "test-group"),
        unstaged("regions[0].clusters[0].update_group", "canary", "aks-big-eastus-team-a")]),
    ("CRD pattern items that are no group/Kind", BASE,
     {"service_operator": {"crd_pattern": "resources.azure.com/*; everything ;storage.azure.com/storageAccount"}}, [
         ("service_operator.crd_pattern[1]", "' everything ' is not a CRD pattern", CRD_FIX),
         ("service_operator.crd_pattern[2]", "'storage.azure.com/storageAccount' is not a CRD pattern", CRD_FIX)]),
    ("CRD pattern with blanks around items passes", BASE,
     {"service_operator": {"crd_pattern": " resources.azure.com/* ;storage.azure.com/StorageAccount"}}, []),
    ("chart sources that are neither a repository nor an archive, and an empty version", BASE,
     {"service_operator": {"chart": {"name": "aso", "version": " ", "repository": "ftp://x"},
                           "cert_manager_chart": {"name": "cm", "version": "v1", "repository": "charts/cm.zip"}}}, [
         ("service_operator.chart.repository", "'ftp://x' is not a chart source", CHART_FIX),
         ("service_operator.chart.version", "the chart version is empty", "pin a version, e.g. v1.21.1"),
         ("service_operator.cert_manager_chart.repository", "'charts/cm.zip' is not a chart source", CHART_FIX)]),
    ("http repository and .tar.gz archive pass", BASE,
     {"service_operator": {"chart": {"name": "aso", "version": "1", "repository": "http://x"},
                           "cert_manager_chart": {"name": "cm", "version": "v1", "repository": "cm.tar.gz"}}}, []),
    ("oci reference and .tgz archive pass", BASE,
     {"service_operator": {"chart": {"name": "aso", "version": "1", "repository": "oci://x"},
                           "cert_manager_chart": {"name": "cm", "version": "v1", "repository": "cm.tgz"}}}, []),
    ("write budget below its range", BASE, {"concurrency": {"max_parallel_writes": 0, "writes_per_second": 0.001}}, [
        ("concurrency.max_parallel_writes", "0 is outside 1-10000", "use a burst between 1 and 10000 writes, e.g. 200"),
        ("concurrency.writes_per_second", "0.001 is outside 0.01-1000",
         "use a rate between 0.01 and 1000 writes per second, e.g. 10")]),
    ("write budget above its range", BASE,
     {"concurrency": {"max_parallel_writes": 10001, "writes_per_second": 1000.5}}, [
         ("concurrency.max_parallel_writes", "10001 is outside 1-10000",
          "use a burst between 1 and 10000 writes, e.g. 200"),
         ("concurrency.writes_per_second", "1000.5 is outside 0.01-1000",
          "use a rate between 0.01 and 1000 writes per second, e.g. 10")]),
    ("write budget at its low limits passes", BASE,
     {"concurrency": {"max_parallel_writes": 1, "writes_per_second": 0.01}}, []),
    ("write budget at its high limits passes", BASE,
     {"concurrency": {"max_parallel_writes": 10000, "writes_per_second": 1000}}, []),
    ("ready timeout of 29 s", BASE, {"service_operator": {"ready_timeout_seconds": 29}},
     [("service_operator.ready_timeout_seconds", "29 is outside 30-7200 seconds", TIMEOUT_FIX)]),
    ("ready timeout of 7201 s", BASE, {"service_operator": {"ready_timeout_seconds": 7201}},
     [("service_operator.ready_timeout_seconds", "7201 is outside 30-7200 seconds", TIMEOUT_FIX)]),
    ("ready timeout of 30 s passes", BASE, {"service_operator": {"ready_timeout_seconds": 30}}, []),
    ("ready timeout of 7200 s passes", BASE, {"service_operator": {"ready_timeout_seconds": 7200}}, []),
    ("gitops fleet cluster region not in the fleet", BASE, {"gitops": gitops(fleet_cluster_region="centralus")},
     [("gitops.fleet_cluster_region", "'centralus' is not a region of the fleet",
       "name one of the regions listed under regions")]),
    ("gitops fleet cluster not in the fleet", BASE, {"gitops": gitops(fleet_cluster="aks-nope")},
     [("gitops.fleet_cluster", "'aks-nope' is not a cluster of the fleet",
       "name one of the clusters `fleetflow spec show` lists")]),
    ("gitops naming a cluster and region of the fleet, health timeout 30 s, passes", BASE,
     {"gitops": gitops(fleet_cluster="aks-demo-westus2", fleet_cluster_region="westus2", health_timeout_seconds=30)},
     []),
    ("gitops health timeout of 29 s", BASE, {"gitops": gitops(health_timeout_seconds=29)},
     [("gitops.health_timeout_seconds", "29 is outside 30-7200 seconds", TIMEOUT_FIX)]),
    ("gitops health timeout of 7201 s", BASE, {"gitops": gitops(health_timeout_seconds=7201)},
     [("gitops.health_timeout_seconds", "7201 is outside 30-7200 seconds", TIMEOUT_FIX)]),
    ("gitops health timeout of 7200 s passes", BASE, {"gitops": gitops(health_timeout_seconds=7200)}, []),
    ("gitops path that is absolute", BASE, {"gitops": gitops(path="/etc")},
     [("gitops.path", "'/etc' leaves the repository", "give a folder inside the repository, e.g. gitops")]),
    ("gitops path climbing out", BASE, {"gitops": gitops(path="deploy/../../x")},
     [("gitops.path", "'deploy/../../x' leaves the repository", "give a folder inside the repository, e.g. gitops")]),
    ("gitops path with dots inside a name passes", BASE, {"gitops": gitops(path="deploy/..x/y")}, []),
    ("gitops variables that are no variable names", BASE,
     {"gitops": gitops(variables={"app_replicas": "1", "OK_1": "2", "1BAD": "3", "_X": "4"})},
     [("gitops.variables.app_replicas", *VARIABLE), ("gitops.variables.1BAD", *VARIABLE)]),
    ("Key Vault secret names with underscores or 128 characters", BASE,
     {"gitops": gitops(key_vault_secrets={"db_password": "b", "ok-1": "c", "x" * 128: "d", "y" * 127: "e"})},
     [("gitops.key_vault_secrets.db_password", *SECRET), (f"gitops.key_vault_secrets.{'x' * 128}", *SECRET)]),
    ("negative restarts and a settle time of 3601 s", BASE,
     {"upgrade_health": {"max_pod_restarts": -1, "settle_seconds": 3601}}, [
         ("upgrade_health.max_pod_restarts", "-1 is outside 0-1000", "use a number of restarts between 0 and 1000"),
         ("upgrade_health.settle_seconds", "3601 is outside 0-3600 seconds", "use a time between 0 and 3600 seconds")]),
    ("1001 restarts and a negative settle time", BASE,
     {"upgrade_health": {"max_pod_restarts": 1001, "settle_seconds": -1}}, [
         ("upgrade_health.max_pod_restarts", "1001 is outside 0-1000", "use a number of restarts between 0 and 1000"),
         ("upgrade_health.settle_seconds", "-1 is outside 0-3600 seconds", "use a time between 0 and 3600 seconds")]),
    ("health limits at their high ends pass", BASE,
     {"upgrade_health": {"max_pod_restarts": 1000, "settle_seconds": 3600}}, []),
    ("health limits at their low ends and a block name pass", BASE,
     {"upgrade_health": {"max_pod_restarts": 0, "settle_seconds": 0, "notification_block": "custom-webhook/app_1"}},
     []),
    ("notification block without a type", BASE, {"upgrade_health": {"notification_block": "approvers"}},
     [("upgrade_health.notification_block", "'approvers' is not <block-type-slug>/<name>", NOTIFY_FIX)]),
    ("notification block with trailing words", BASE,
     {"upgrade_health": {"notification_block": "slack-webhook/ops extra"}},
     [("upgrade_health.notification_block", "'slack-webhook/ops extra' is not <block-type-slug>/<name>",
       NOTIFY_FIX)]),
    ("notification block type with capitals", BASE, {"upgrade_health": {"notification_block": "Slack/ops"}},
     [("upgrade_health.notification_block", "'Slack/ops' is not <block-type-slug>/<name>", NOTIFY_FIX)]),
    ("namespaces with capitals or 64 characters", BASE,
     {"service_operator": {"namespace": "ASO", "cert_manager_namespace": "c" * 64}}, [
         ("service_operator.namespace", breaks("ASO"), NAMESPACE),
         ("service_operator.cert_manager_namespace", breaks("c" * 64), NAMESPACE)]),
    ("namespaces of 1 and 63 characters pass", BASE,
     {"service_operator": {"namespace": "a", "cert_manager_namespace": "c" * 63}}, []),
]


@pytest.mark.parametrize(("base", "edits", "expected"), [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_each_spec_problem_names_its_field_what_is_wrong_and_the_fix(base, edits, expected):
    problems = [(problem.path, problem.message, problem.fix) for problem in find_problems(edited(base, edits))]
    assert problems == expected


@pytest.mark.parametrize("base", [BASE, MULTI], ids=["one cluster per region", "several clusters per region"])
def test_the_specs_the_cases_start_from_have_no_problem(base):
    assert find_problems(copy.deepcopy(base)) == []


def spec_of(**fields: Any) -> FleetSpec:
    return FleetSpec.model_validate({**copy.deepcopy(BASE), **fields})


def test_names_are_derived_from_the_fleet_name_and_a_suffix_hashed_from_name_and_location():
    spec = spec_of(suffix=None)
    assert spec.stable_suffix == "136092"  # sha256("demo/eastus")[:6]
    assert (spec.resource_group_name, spec.registry_name, spec.key_vault_name) == (
        "rg-demo-136092", "acrdemo136092", "kv-demo-136092")
    assert [c.storage_account_name for c in spec.clusters()] == ["stdemo1360920", "stdemo1360921"]
    assert spec_of(suffix=None, location="westus2").stable_suffix != "136092"
    assert spec_of(resource_group="rg-mine").resource_group_name == "rg-mine"


def test_long_fleet_names_are_cut_so_that_the_suffix_survives_in_every_globally_unique_name():
    name = "a-very-long-fleet-name-for-testing-the-limits-of-names-x"
    spec = spec_of(name=name, tags={"team": "x"})
    assert spec.registry_name == "acraverylongfleetnamefortestingthelimitsofnamesxab"  # 50, alphanumeric
    assert spec.key_vault_name == "kv-a-very-long-fl-abc123"  # 24
    assert [c.storage_account_name for c in spec.clusters()] == ["staverylongfleetnabc1230",
                                                                 "staverylongfleetnabc1231"]  # 24
    assert spec.ownership_tags == {"team": "x", "fleetflow-fleet": name, "fleetflow-managed": "true"}


@pytest.mark.parametrize(("name", "vault"), [
    ("ab--c---d-eeeeeeeeee-f", "kv-ab-c-d-eeeeeee-abc123"),  # hyphen runs collapsed before the cut
    ("abcdefghijklm-op", "kv-abcdefghijklm-abc123"),  # a hyphen left at the cut is dropped: no "--"
    ("Demo", "kv-demo-abc123"),
])
def test_key_vault_names_have_single_hyphens_and_end_with_the_suffix(name: str, vault: str):
    assert spec_of(name=name).key_vault_name == vault


def test_each_cluster_is_resolved_with_its_names_group_settings_and_ownership_tags():
    document = copy.deepcopy(MULTI)
    document["cluster_defaults"] = {"node_count": 4, "vm_size": "Standard_D2s_v5", "kubernetes_version": "1.35",
                                    "network_plugin": "kubenet", "network_policy": "calico"}
    document["regions"][0].update({"node_count": 5, "network_policy": "cilium"})
    document["regions"][0]["clusters"][1].update({"node_count": 6, "vm_size": "Standard_D8s_v5",
                                                 "kubernetes_version": "1.36.2", "network_plugin": "azure"})
    clusters = FleetSpec.model_validate(document).clusters()
    rows = [(c.region, c.index, c.name, c.member_name, c.update_group, c.node_count, c.vm_size,
             c.kubernetes_version, c.network_plugin, c.network_policy, c.storage_account_name) for c in clusters]
    assert rows == [
        ("eastus", 0, "aks-big-eastus-team-a", "aks-big-eastus-team-a", "test-group", 5, "Standard_D2s_v5", "1.35",
         "kubenet", "cilium", "stbigm1lt1z7ibi"),
        ("eastus", 1, "aks-big-eastus-team-b", "aks-big-eastus-team-b", "prod-group", 6, "Standard_D8s_v5",
         "1.36.2", "azure", "cilium", "stbigm1lt1avqfh"),
        ("eastus", 2, "aks-custom", "custom", "prod-group", 5, "Standard_D2s_v5", "1.35", "kubenet", "cilium",
         "stbigm1lt1jsfz6"),
        ("westus2", 3, "aks-big-westus2", "aks-big-westus2", "prod-group", 4, "Standard_D2s_v5", "1.35", "kubenet",
         "calico", "stbigm1lt13"),
        ("centralus", 4, "aks-big-centralus-team-a", "aks-big-centralus-team-a", "prod-group", 4, "Standard_D2s_v5",
         "1.35", "kubenet", "calico", "stbigm1lt1xhain"),
    ]
    assert [c.tags for c in clusters][3] == {"fleetflow-fleet": "big", "fleetflow-managed": "true", "region": "westus2"}


def test_the_digest_naming_a_listed_clusters_storage_is_lowercase_base36_of_the_cluster_name():
    assert (_base36("aks-x", 5), _base36("", 8)) == ("0zjyj", "gt33uehk")


def test_member_names_default_to_the_lowercased_cluster_name():
    spec = spec_of(regions=[{"name": "eastus", "update_group": "test-group", "cluster_name": "AKS-One"},
                            {"name": "westus2", "update_group": "prod-group", "member_name": "m-two"}])
    assert [(c.name, c.member_name) for c in spec.clusters()] == [("AKS-One", "aks-one"), ("aks-demo-westus2", "m-two")]


def test_cluster_entries_name_each_cluster_by_its_field_path():
    spec = FleetSpec.model_validate(MULTI)
    assert [(path, region.name, entry.name if entry else None) for path, region, entry in spec.cluster_entries()] == [
        ("regions[0].clusters[0]", "eastus", "team-a"), ("regions[0].clusters[1]", "eastus", "team-b"),
        ("regions[0].clusters[2]", "eastus", "team-c"), ("regions[1]", "westus2", None),
        ("regions[2].clusters[0]", "centralus", "team-a")]


def test_a_cluster_is_found_by_its_name_or_by_a_region_holding_only_it_and_a_miss_says_why():
    spec = FleetSpec.model_validate(MULTI)
    assert spec.cluster("aks-custom").member_name == "custom"
    assert spec.cluster("westus2").name == "aks-big-westus2"
    with pytest.raises(KeyError) as several:
        spec.cluster("eastus")
    assert several.value.args[0] == ("region 'eastus' of fleet 'big' holds 3 clusters (aks-big-eastus-team-a, "
                                     "aks-big-eastus-team-b, aks-custom): name one")
    with pytest.raises(KeyError) as missing:
        spec.cluster("nowhere")
    assert missing.value.args[0] == "no cluster or region 'nowhere' in fleet 'big'"


@pytest.mark.parametrize(("gitops_fields", "expected"), [
    (None, "aks-big-eastus-team-a"),
    ({}, "aks-big-eastus-team-a"),
    ({"fleet_cluster_region": "centralus"}, "aks-big-centralus-team-a"),
    ({"fleet_cluster_region": "westus2"}, "aks-big-westus2"),
    ({"fleet_cluster_region": "centralus", "fleet_cluster": "aks-custom"}, "aks-custom"),
])
def test_the_fleet_cluster_is_the_named_one_else_the_first_of_the_region_else_the_first(gitops_fields, expected):
    document = copy.deepcopy(MULTI)
    if gitops_fields is not None:
        document["gitops"] = gitops(**gitops_fields)
    assert FleetSpec.model_validate(document).fleet_cluster().name == expected


def test_crd_pattern_items_split_group_and_kind_with_a_star_for_a_whole_group():
    assert crd_pattern_items(" resources.azure.com/* ;storage.azure.com/StorageAccount; keyvault.azure.com") == [
        ("resources.azure.com", "*"), ("storage.azure.com", "StorageAccount"), ("keyvault.azure.com", "*")]


@pytest.mark.parametrize(("version", "parsed"), [("1.36", (1, 36, None)), ("v1.37.2", (1, 37, 2)),
                                                  ("10.0.11", (10, 0, 11)), ("vv1.2", (1, 2, None))])
def test_kubernetes_versions_are_major_minor_and_an_optional_patch(version: str, parsed):
    assert parse_kubernetes_version(version) == parsed


@pytest.mark.parametrize("version", ["1", "1.36.", "1.36.3.1", "x1.36", "X1.36", "Xv1.36", "1.36-rc1", " 1.36"])
def test_anything_else_is_not_a_kubernetes_version(version: str):
    with pytest.raises(ValueError) as raised:
        parse_kubernetes_version(version)
    assert str(raised.value) == f"{version!r} is not a Kubernetes version like 1.36 or 1.36.3"


HEAD = "name: a\nlocation: eastus\n"
STAGES = "update_strategy: {stages: []}\n"
YAML_FIX = "fix the YAML syntax at that place (indent with spaces, quote values holding ': ' or '#')"
TYPE_FIX = "give a value of the expected type (see docs/fleet-spec.md)"


@pytest.mark.parametrize(("text", "expected"), [
    ("location: eastus\nregions: []\n" + STAGES, [("name", "Field required", "add name")]),
    (HEAD + "regions: [{update_group: g}]\nupdate_strategy: {stages: [{name: s}]}\n", [
        ("regions[0].name", "Field required", "add name"),
        ("update_strategy.stages[0].groups", "Field required", "add groups")]),
    (HEAD + "regoins: []\nregions: []\n" + STAGES, [
        ("regoins", "Extra inputs are not permitted",
         "did you mean 'regions'? remove it or check its spelling against docs/fleet-spec.md")]),
    (HEAD + "zzzqqq: []\nregions: []\n" + STAGES, [
        ("zzzqqq", "Extra inputs are not permitted", "remove it or check its spelling against docs/fleet-spec.md")]),
    (HEAD + "regions: []\nupdate_strategy: {stages: [], upgrade_type: Fast}\n", [
        ("update_strategy.upgrade_type", "Input should be 'Full', 'ControlPlaneOnly' or 'NodeImageOnly'",
         "use one of the allowed values ('Full', 'ControlPlaneOnly' or 'NodeImageOnly')")]),
    (HEAD + "regions: [{name: eastus, update_group: g, kubernetes_version: 1.30}]\n" + STAGES, [
        ("regions[0].kubernetes_version", "1.3 is a number in YAML, not a version (1.30 would read as 1.3)",
         'quote it, e.g. kubernetes_version: "1.36"')]),
    (HEAD + "cluster_defaults: {kubernetes_version: 2}\nregions: []\n" + STAGES, [
        ("cluster_defaults.kubernetes_version", "2 is a number in YAML, not a version (1.30 would read as 1.3)",
         'quote it, e.g. kubernetes_version: "1.36"')]),
    (HEAD + "cluster_defaults: {vm_size: 2}\nregions: []\n" + STAGES, [
        ("cluster_defaults.vm_size", "Input should be a valid string", TYPE_FIX)]),
    (HEAD + "tags: [a]\nregions: []\n" + STAGES, [("tags", "Input should be a valid dictionary", TYPE_FIX)]),
    (HEAD + "location: westus\n", [
        ("location", "key 'location' is given twice (lines 2 and 3); YAML would silently keep the last",
         "keep one of them")]),
    ("name: a\nregions:\n  - name: eastus\n    update_group: g\n    update_group: h\n", [
        ("regions[0].update_group",
         "key 'update_group' is given twice (lines 4 and 5); YAML would silently keep the last", "keep one of them")]),
    ("a:\n  - - {x: 1, x: 2}\n", [
        ("a[0][0].x", "key 'x' is given twice (lines 2 and 2); YAML would silently keep the last",
         "keep one of them")]),
    ("{? [a]: 1, ? [a]: 2, b: 3}\n", [("line 1, column 4", "not valid YAML: while constructing a mapping found "
                                       "unhashable key", YAML_FIX)]),
    ("name: !!python/object:os.system a\n", [
        ("line 1, column 7", "not valid YAML: could not determine a constructor for the tag "
         "'tag:yaml.org,2002:python/object:os.system'",
         "remove the tag: a fleet spec holds plain strings, numbers, lists and mappings")]),
    ("name: a\n  location: b\n", [("line 2, column 11", "not valid YAML: mapping values are not allowed here",
                                   YAML_FIX)]),
    ("name: a\n\tlocation: b\n", [
        ("line 2, column 1", "not valid YAML: while scanning for the next token found character '\\t' that cannot "
         "start any token", YAML_FIX)]),
    ("a: 1\n---\nb: 2\n", [
        ("line 2, column 1", "not valid YAML: expected a single document in the stream but found another document",
         YAML_FIX)]),
    ("- a\n", [("(root)", "the spec is not a YAML mapping", "start from fleet.yaml in the repository")]),
    ("", [("(root)", "the spec is not a YAML mapping", "start from fleet.yaml in the repository")]),
], ids=["missing top-level field", "missing nested fields", "misspelled field", "unknown field",
        "value outside a choice", "version as a float", "version as an int", "number for a string", "list for tags",
        "top-level key twice", "nested key twice", "key twice in a list of lists", "complex keys",
        "python tag", "bad indentation", "tab", "two documents", "a list", "empty"])
def test_a_spec_that_does_not_parse_is_refused_with_each_problem_where_what_and_fix(text: str, expected):
    with pytest.raises(FleetSpecError) as raised:
        parse_spec(text, "f.yaml")
    assert raised.value.source == "f.yaml"
    assert [(p.path, p.message, p.fix) for p in raised.value.problems] == expected


def test_a_spec_text_without_a_source_is_named_text_in_the_error():
    with pytest.raises(FleetSpecError) as raised:
        parse_spec("- a\n")
    assert raised.value.source == "<text>"


@pytest.mark.parametrize(("loc", "path"), [
    ((), "(root)"), (("name",), "name"), (("regions", 0, "clusters", 2, "name"), "regions[0].clusters[2].name"),
    ((0,), "[0]"), (("tags", "a.b"), "tags.a.b"),
])
def test_a_validation_location_is_written_as_a_field_path(loc, path: str):
    assert _loc_to_path(loc) == path


def test_a_yaml_error_without_a_place_is_reported_at_the_root_by_its_first_line():
    problem = _yaml_error_problem(yaml.YAMLError("boom\nsecond line"))
    assert (problem.path, problem.message, problem.fix) == ("(root)", "not valid YAML: boom", YAML_FIX)


def test_a_yaml_error_with_only_a_context_is_placed_at_the_context():
    problem = _yaml_error_problem(yaml.MarkedYAMLError(context="while parsing x",
                                                       context_mark=yaml.Mark("f", 0, 4, 9, None, 0)))
    assert (problem.path, problem.message) == ("line 5, column 10", "not valid YAML: while parsing x")
    both = _yaml_error_problem(yaml.MarkedYAMLError(context="ctx", context_mark=yaml.Mark("f", 0, 4, 9, None, 0),
                                                    problem="prob", problem_mark=yaml.Mark("f", 0, 1, 2, None, 0)))
    assert (both.path, both.message) == ("line 2, column 3", "not valid YAML: ctx prob")


def test_the_error_lists_every_problem_with_its_fix_under_the_source():
    error = FleetSpecError("x.yaml", [SpecProblem("a", "b", "c"), SpecProblem("d", "e", "f")])
    assert str(error) == "fleet spec x.yaml has 2 problem(s):\n  - a: b (fix: c)\n  - d: e (fix: f)"
    assert str(SpecProblem("regions", "empty", "add one")) == "regions: empty (fix: add one)"


def test_a_valid_spec_parses_into_the_model():
    spec = parse_spec(yaml.safe_dump(BASE))
    assert (spec.name, spec.suffix, [r.name for r in spec.regions]) == ("demo", "abc123", ["eastus", "westus2"])


UTF32_FIX = "save it as UTF-8 (e.g. iconv -f UTF-32 -t UTF-8), or re-create it from fleet.yaml"
UTF16_FIX = "save it as UTF-8 (e.g. iconv -f UTF-16 -t UTF-8), or re-create it from fleet.yaml"
NUL_FIX = "pass the fleet spec YAML file (UTF-8 text), e.g. fleet.yaml"
NOT_UTF8_FIX = "save it as UTF-8, or pass the fleet spec YAML file, e.g. fleet.yaml"


@pytest.mark.parametrize(("data", "message", "fix"), [
    (b"\xff\xfe\x00\x00n\x00\x00\x00", "the file is UTF-32 text; fleet specs are UTF-8", UTF32_FIX),
    (b"\x00\x00\xfe\xff\x00\x00\x00n", "the file is UTF-32 text; fleet specs are UTF-8", UTF32_FIX),
    (b"\xff\xfen\x00", "the file is UTF-16 text; fleet specs are UTF-8", UTF16_FIX),
    (b"\xfe\xff\x00n", "the file is UTF-16 text; fleet specs are UTF-8", UTF16_FIX),
    ("name: a\nlocation: eastus\n".encode("utf-16-le"),
     "the file holds NUL bytes: it looks like UTF-16 text without a byte-order mark, not a YAML fleet spec", NUL_FIX),
    (("x" * 21).encode("utf-16-le"),
     "the file holds NUL bytes: it looks like UTF-16 text without a byte-order mark, not a YAML fleet spec", NUL_FIX),
    (("x" * 20).encode("utf-16-le"),
     "the file holds NUL bytes: it looks like a binary file, not a YAML fleet spec", NUL_FIX),
    (b"\x1f\x8b\x08\x00" + bytes(range(256)),
     "the file holds NUL bytes: it looks like a binary file, not a YAML fleet spec", NUL_FIX),
    (b"a" * 4095 + b"\x00", "the file holds NUL bytes: it looks like a binary file, not a YAML fleet spec", NUL_FIX),
    (b"name: a\nlocation: caf\xe9\n", "byte 0xe9 on line 2 is not UTF-8: the file is not UTF-8 text", NOT_UTF8_FIX),
    (b"\x80", "byte 0x80 on line 1 is not UTF-8: the file is not UTF-8 text", NOT_UTF8_FIX),
], ids=["utf-32-le", "utf-32-be", "utf-16-le", "utf-16-be", "utf-16 without bom", "21 utf-16 characters",
        "20 utf-16 characters", "gzip", "nul within the first 4096 bytes", "latin-1 on line 2", "stray byte"])
def test_a_spec_file_that_is_not_utf8_text_is_refused_saying_what_it_looks_like(data: bytes, message: str, fix: str):
    with pytest.raises(FleetSpecError) as raised:
        decode_spec(data, "f.yaml")
    assert raised.value.source == "f.yaml"
    assert [(p.path, p.message, p.fix) for p in raised.value.problems] == [("(file)", message, fix)]


def test_utf8_text_is_decoded_without_its_byte_order_mark():
    assert decode_spec(b"\xef\xbb\xbfname: caf\xc3\xa9\n", "f.yaml") == "name: café\n"
    assert decode_spec(b"a" * 4096 + b"\x00", "f.yaml") == "a" * 4096 + "\x00"  # only the head is searched


def test_load_spec_reads_the_file_and_names_it_in_every_refusal(tmp_path):
    good = tmp_path / "fleet.yaml"
    good.write_text(yaml.safe_dump(BASE))
    assert load_spec(good).name == "demo"
    assert load_spec(str(good)).name == "demo"
    bad = tmp_path / "bad.yaml"
    bad.write_bytes(b"\xff\xfen\x00")
    with pytest.raises(FleetSpecError) as undecodable:
        load_spec(bad)
    assert undecodable.value.source == str(bad)
    broken = tmp_path / "broken.yaml"
    broken.write_text("a: [\n")
    with pytest.raises(FleetSpecError) as unparsable:
        load_spec(broken)
    assert unparsable.value.source == str(broken)


@pytest.mark.parametrize("name", ["absent.yaml", "."])
def test_a_spec_path_that_cannot_be_read_is_one_problem_naming_the_reason(tmp_path, name: str):
    target = tmp_path / name
    with pytest.raises(FleetSpecError) as raised:
        load_spec(target)
    reason = "No such file or directory" if name != "." else "Is a directory"
    assert raised.value.source == str(target)
    assert [(p.path, p.message, p.fix) for p in raised.value.problems] == [
        ("(file)", f"cannot read: {reason}", "pass the path of an existing fleet spec")]
