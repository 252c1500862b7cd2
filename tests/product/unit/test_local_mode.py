"""The local demo picks the upgrade target: the next minor local Azure offers after the spec's."""

from __future__ import annotations

from console.local_mode import next_minor


def test_next_minor_is_one_step_up_from_the_spec_version():
    assert next_minor("1.36", ["1.36", "1.37"]) == "1.37"
    assert next_minor("1.36.3", ["1.36.3", "1.37.2", "1.38.0"]) == "1.37"


def test_no_upgrade_when_nothing_newer_is_offered_or_the_gap_is_two_minors():
    assert next_minor("1.37", ["1.36", "1.37"]) is None
    assert next_minor("1.35", ["1.37"]) is None
