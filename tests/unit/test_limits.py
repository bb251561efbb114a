"""Members per device and per address: the seat rule and the ruleset keys (docs/abuse.md)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from loyalty.domain.errors import RulesetInvalid
from loyalty.domain.limits import shared_reason
from loyalty.domain.rules import Limits, parse_ruleset
from tests.unit.presets import preset, preset_document

LIMITS = Limits(members_per_device=3, members_per_address=5)


@pytest.mark.parametrize(("seats", "reason"), [
    ({}, ""),                                         # nothing sent
    ({"device": 3}, ""),                              # the third member on a device is fine
    ({"device": 4}, "device_shared"),                 # the fourth is not
    ({"address": 5, "device": 1}, ""),
    ({"address": 6}, "address_shared"),
    ({"device": 4, "address": 6}, "device_shared"),   # the device is judged first
    ({"ip": 10_000}, ""),                             # an IP is never limited
])
def test_a_seat_beyond_the_limit_gives_the_reason(seats, reason):
    assert shared_reason(seats, LIMITS) == reason


@given(st.integers(min_value=1, max_value=10**6), st.integers(min_value=1, max_value=10**6))
def test_exactly_the_first_n_seats_are_admitted(seat, limit):
    assert (shared_reason({"device": seat}, Limits(members_per_device=limit)) == "") == (seat <= limit)
    assert shared_reason({"device": seat, "address": seat}, Limits()) == ""


def test_the_default_ruleset_allows_three_members_per_device_and_five_per_address():
    assert preset("default").limits == LIMITS


def test_a_ruleset_without_the_keys_has_no_limits():
    document = preset_document("default")
    document["risk"] = {}
    assert parse_ruleset(document).limits == Limits(None, None)


@pytest.mark.parametrize("value", [0, -1, "3", 2.5, True])
def test_a_limit_must_be_a_whole_number_of_at_least_one(value):
    document = preset_document("default")
    document["risk"] = {"members_per_device": value}
    with pytest.raises(RulesetInvalid) as raised:
        parse_ruleset(document)
    assert any(problem.startswith("risk.members_per_device:") for problem in raised.value.problems)
