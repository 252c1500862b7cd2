"""The fleet spec: loading, derived names and validation of common mistakes."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from console.cli import main as cli_main
from tasks.spec import FleetSpecError, find_problems, load_spec, parse_kubernetes_version, parse_spec
from tests.paths import REPO

EXAMPLE: dict[str, Any] = yaml.safe_load((REPO / "fleet.yaml").read_text())


def problems_of(mutate) -> list[tuple[str, str]]:
    document = copy.deepcopy(EXAMPLE)
    mutate(document)
    return [(problem.path, problem.message) for problem in find_problems(document)]


def paths_of(mutate) -> set[str]:
    return {path for path, _ in problems_of(mutate)}


def test_example_fleet_spec_is_valid_and_describes_the_recipe_fleet():
    spec = load_spec(REPO / "fleet.yaml")
    assert [c.region for c in spec.clusters()] == ["eastus", "westus2", "centralus"]
    assert {c.update_group for c in spec.clusters()} == {"test-group", "prod-group"}
    assert [s.groups for s in spec.update_strategy.stages] == [["test-group"], ["prod-group"]]
    assert spec.update_strategy.approval_between_stages is True


def test_derived_names_are_deterministic_and_distinct_per_region():
    first, second = load_spec(REPO / "fleet.yaml"), load_spec(REPO / "fleet.yaml")
    assert [c.name for c in first.clusters()] == [c.name for c in second.clusters()]
    storage = [c.storage_account_name for c in first.clusters()]
    assert len(set(storage)) == 3 and all(len(name) <= 24 for name in storage)
    assert first.registry_name.isalnum() and 5 <= len(first.registry_name) <= 50
    assert 3 <= len(first.key_vault_name) <= 24 and first.key_vault_name.endswith(first.stable_suffix)


def test_suffix_is_derived_from_the_spec_when_absent_never_random():
    document = copy.deepcopy(EXAMPLE)
    del document["suffix"]
    assert parse_spec(yaml.safe_dump(document)).stable_suffix == parse_spec(yaml.safe_dump(document)).stable_suffix


def test_ownership_tags_mark_every_cluster():
    spec = load_spec(REPO / "fleet.yaml")
    for cluster in spec.clusters():
        assert cluster.tags["fleetflow-fleet"] == "multicluster-fleet"
        assert cluster.tags["fleetflow-managed"] == "true"


def test_unknown_region_is_reported_with_its_path():
    assert "regions[1].name" in paths_of(lambda d: d["regions"][1].update({"name": "westus9"}))


def test_duplicate_region_is_reported():
    problems = problems_of(lambda d: d["regions"][2].update({"name": "eastus"}))
    assert ("regions[2].name", "region 'eastus' is already regions[0]") in problems


def test_duplicate_cluster_name_is_reported():
    def mutate(d):
        d["regions"][0]["cluster_name"] = "aks-one"
        d["regions"][1]["cluster_name"] = "aks-one"

    assert "regions[1].cluster_name" in paths_of(mutate)


def test_stage_naming_a_group_without_clusters_is_reported():
    assert "update_strategy.stages[1].groups[1]" in paths_of(
        lambda d: d["update_strategy"]["stages"][1]["groups"].append("canary-group"))


def test_cluster_in_no_stage_is_reported():
    assert "regions[2].update_group" in paths_of(lambda d: d["regions"][2].update({"update_group": "dr-group"}))


def test_resource_group_name_longer_than_90_is_reported():
    assert "resource_group" in paths_of(lambda d: d.update({"resource_group": "r" * 91}))


def test_aks_name_longer_than_63_or_badly_formed_is_reported():
    assert "regions[0].cluster_name" in paths_of(lambda d: d["regions"][0].update({"cluster_name": "a" * 64}))
    assert "regions[0].cluster_name" in paths_of(lambda d: d["regions"][0].update({"cluster_name": "-aks"}))


def test_fleet_name_breaking_azure_rules_is_reported():
    assert "name" in paths_of(lambda d: d.update({"name": "Fleet_One"}))
    assert "name" in paths_of(lambda d: d.update({"name": "f" * 64}))


def test_suffix_that_would_break_globally_unique_names_is_reported():
    assert "suffix" in paths_of(lambda d: d.update({"suffix": "AB"}))


def test_negative_after_stage_wait_is_reported():
    assert "update_strategy.stages[0].after_stage_wait_seconds" in paths_of(
        lambda d: d["update_strategy"]["stages"][0].update({"after_stage_wait_seconds": -1}))


def test_unparseable_kubernetes_version_is_reported():
    assert "regions[1].kubernetes_version" in paths_of(
        lambda d: d["regions"][1].update({"kubernetes_version": "latest"}))


def test_zero_nodes_and_bad_vm_size_are_reported():
    paths = paths_of(lambda d: d["cluster_defaults"].update({"node_count": 0, "vm_size": "DS2"}))
    assert {"cluster_defaults.node_count", "cluster_defaults.vm_size"} <= paths


def test_misspelled_field_is_reported_as_unknown():
    problems = problems_of(lambda d: d["regions"][0].update({"updte_group": "x"}))
    assert ("regions[0].updte_group", "Extra inputs are not permitted") in problems


def test_missing_required_field_is_reported():
    assert "regions[0].update_group" in paths_of(lambda d: d["regions"][0].pop("update_group"))


def test_bad_crd_pattern_entry_is_reported():
    assert "service_operator.crd_pattern[1]" in paths_of(
        lambda d: d["service_operator"].update({"crd_pattern": "resources.azure.com/*;everything"}))


def test_reserved_ownership_tag_in_spec_is_reported():
    assert "tags.fleetflow-fleet" in paths_of(lambda d: d["tags"].update({"fleetflow-fleet": "other"}))


def test_every_problem_is_reported_at_once():
    def mutate(d):
        d["regions"][0]["name"] = "nowhere"
        d["update_strategy"]["stages"][0]["after_stage_wait_seconds"] = -3
        d["cluster_defaults"]["kubernetes_version"] = "x"

    assert len(problems_of(mutate)) >= 3


def test_parse_kubernetes_version_accepts_minor_and_patch():
    assert parse_kubernetes_version("1.36") == (1, 36, None)
    assert parse_kubernetes_version("v1.37.2") == (1, 37, 2)
    with pytest.raises(ValueError, match="not a Kubernetes version"):
        parse_kubernetes_version("1.x")


def test_load_spec_error_lists_each_problem_with_path_and_fix(tmp_path):
    document = copy.deepcopy(EXAMPLE)
    document["regions"][1]["name"] = "eastus"
    path = tmp_path / "fleet.yaml"
    path.write_text(yaml.safe_dump(document))
    with pytest.raises(FleetSpecError) as raised:
        load_spec(path)
    assert "regions[1].name" in str(raised.value) and "fix:" in str(raised.value)


def test_cli_validate_passes_on_the_example_and_fails_with_paths(tmp_path, capsys):
    assert cli_main(["spec", "validate", str(REPO / "fleet.yaml")]) == 0
    document = copy.deepcopy(EXAMPLE)
    document["update_strategy"]["stages"][0]["after_stage_wait_seconds"] = -10
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(document))
    assert cli_main(["spec", "validate", str(bad)]) == 1
    assert "update_strategy.stages[0].after_stage_wait_seconds" in capsys.readouterr().err


MULTI: dict[str, Any] = {
    "name": "big", "location": "eastus", "suffix": "m1lt1",
    "cluster_defaults": {"node_count": 2},
    "regions": [
        {"name": "eastus", "update_group": "prod-group", "node_count": 3, "clusters": [
            {"name": "team-a", "update_group": "test-group"},
            {"name": "team-b", "vm_size": "Standard_D4s_v5"},
            {"name": "team-c", "cluster_name": "aks-custom", "member_name": "custom"}]},
        {"name": "westus2", "update_group": "prod-group"},
        {"name": "centralus", "clusters": [{"name": "team-a", "update_group": "prod-group"}]},
    ],
    "update_strategy": {"stages": [{"name": "stage1", "groups": ["test-group"]},
                                   {"name": "stage2", "groups": ["prod-group"]}]},
}


def multi_problems(mutate) -> list[tuple[str, str]]:
    document = copy.deepcopy(MULTI)
    mutate(document)
    return [(problem.path, problem.message) for problem in find_problems(document)]


def test_a_region_may_hold_several_clusters_each_with_its_own_name_group_and_settings():
    spec = parse_spec(yaml.safe_dump(MULTI))
    clusters = spec.clusters()
    assert [(c.region, c.name, c.update_group) for c in clusters] == [
        ("eastus", "aks-big-eastus-team-a", "test-group"),
        ("eastus", "aks-big-eastus-team-b", "prod-group"),
        ("eastus", "aks-custom", "prod-group"),
        ("westus2", "aks-big-westus2", "prod-group"),
        ("centralus", "aks-big-centralus-team-a", "prod-group"),
    ]
    assert [c.member_name for c in clusters][2] == "custom"
    # entry > region > cluster_defaults
    assert [c.node_count for c in clusters] == [3, 3, 3, 2, 2]
    assert clusters[1].vm_size == "Standard_D4s_v5" and clusters[0].vm_size == "Standard_DS2_v2"
    assert len({c.storage_account_name for c in clusters}) == 5
    assert all(len(c.storage_account_name) <= 24 for c in clusters)
    assert [c.index for c in clusters] == [0, 1, 2, 3, 4]


def test_cluster_lookup_is_by_name_and_by_region_only_when_the_region_holds_one_cluster():
    spec = parse_spec(yaml.safe_dump(MULTI))
    assert spec.cluster("aks-big-eastus-team-b").vm_size == "Standard_D4s_v5"
    assert spec.cluster("westus2").name == "aks-big-westus2"
    assert spec.cluster("centralus").name == "aks-big-centralus-team-a"
    with pytest.raises(KeyError, match="holds 3 clusters"):
        spec.cluster("eastus")


def test_the_fleet_cluster_is_named_or_the_first_of_its_region():
    document = copy.deepcopy(MULTI)
    document["gitops"] = {"repository": ".", "fleet_cluster_region": "eastus"}
    assert parse_spec(yaml.safe_dump(document)).fleet_cluster().name == "aks-big-eastus-team-a"
    document["gitops"]["fleet_cluster"] = "aks-custom"
    assert parse_spec(yaml.safe_dump(document)).fleet_cluster().name == "aks-custom"
    document["gitops"]["fleet_cluster"] = "aks-nope"
    assert "gitops.fleet_cluster" in {p.path for p in find_problems(document)}


def test_storage_account_names_of_listed_clusters_survive_adding_and_reordering_clusters():
    before = {c.name: c.storage_account_name for c in parse_spec(yaml.safe_dump(MULTI)).clusters()}
    document = copy.deepcopy(MULTI)
    document["regions"][0]["clusters"].insert(0, {"name": "team-z"})
    document["regions"][0]["clusters"].reverse()
    after = {c.name: c.storage_account_name for c in parse_spec(yaml.safe_dump(document)).clusters()}
    listed = [name for name in before if name != "aks-big-westus2"]  # a one-cluster region keeps its position's name
    assert all(after[name] == before[name] for name in listed)


def test_one_cluster_per_region_keeps_its_names():
    spec = load_spec(REPO / "fleet.yaml")
    assert [c.storage_account_name for c in spec.clusters()] == [
        spec._storage_account_name(str(index)) for index in range(3)]
    assert [c.name for c in spec.clusters()] == [f"aks-multicluster-fleet-{r}" for r in ("eastus", "westus2",
                                                                                          "centralus")]


def test_duplicates_are_named_across_the_whole_fleet_with_both_paths():
    def mutate(d):
        d["regions"][2]["clusters"][0]["cluster_name"] = "aks-custom"
        d["regions"][1]["member_name"] = "custom"

    problems = multi_problems(mutate)
    assert ("regions[2].clusters[0].cluster_name",
            "cluster name 'aks-custom' is also used by regions[0].clusters[2]") in problems
    assert ("regions[1].member_name", "member name 'custom' is also used by regions[0].clusters[2]") in problems


def test_a_cluster_short_name_twice_in_a_region_is_reported():
    problems = multi_problems(lambda d: d["regions"][0]["clusters"][1].update({"name": "team-a"}))
    assert ("regions[0].clusters[1].name", "cluster 'team-a' is already regions[0].clusters[0]") in problems


def test_listed_clusters_need_an_update_group_and_no_region_level_names():
    def mutate(d):
        d["regions"][2]["clusters"][0].pop("update_group")
        d["regions"][0]["cluster_name"] = "aks-x"

    paths = {path for path, _ in multi_problems(mutate)}
    assert {"regions[2].clusters[0].update_group", "regions[0].cluster_name"} <= paths
    assert "regions[1].clusters" in {p for p, _ in multi_problems(lambda d: d["regions"][1].update({"clusters": []}))}


def test_a_listed_cluster_group_in_no_stage_and_bad_overrides_are_reported_at_the_entry():
    def mutate(d):
        d["regions"][0]["clusters"][0]["update_group"] = "canary"
        d["regions"][0]["clusters"][1]["node_count"] = 0

    paths = {path for path, _ in multi_problems(mutate)}
    assert {"regions[0].clusters[0].update_group", "regions[0].clusters[1].node_count"} <= paths


def test_a_hundred_clusters_in_ten_regions_validate_with_unique_names():
    regions = ["eastus", "westus2", "centralus", "northeurope", "westeurope", "uksouth", "japaneast",
               "australiaeast", "southeastasia", "canadacentral"]
    document = copy.deepcopy(MULTI)
    document["regions"] = [{"name": region, "update_group": "prod-group" if index else "test-group",
                            "clusters": [{"name": f"c{n:02d}"} for n in range(10)]}
                           for index, region in enumerate(regions)]
    spec = parse_spec(yaml.safe_dump(document))
    clusters = spec.clusters()
    assert len(clusters) == 100
    for field in ("name", "member_name", "storage_account_name"):
        assert len({getattr(c, field) for c in clusters}) == 100
