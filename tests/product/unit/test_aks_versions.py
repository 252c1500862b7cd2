"""How provision compares a cluster's version with the spec's."""

from __future__ import annotations

from tasks.aks import runs_newer, version_matches


def test_minor_only_spec_matches_any_patch_of_that_minor():
    assert version_matches("1.36", "1.36.3") and not version_matches("1.36", "1.37.2")
    assert version_matches("1.36.3", "1.36.3") and not version_matches("1.36.3", "1.36.4")


def test_a_cluster_upgraded_past_the_spec_counts_as_newer_so_provision_never_downgrades_it():
    assert runs_newer("1.36", "1.37.2")
    assert runs_newer("1.36.3", "1.36.4")
    assert not runs_newer("1.36", "1.36.9")
    assert not runs_newer("1.37", "1.36.3")
    assert not runs_newer("1.36", None)
