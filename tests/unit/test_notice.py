"""Which ruleset changes make tiers harder (and so need the notice period): examples in the
ruleset's own words, and a property: whatever is judged not tightened really is not."""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from loyalty.domain.conditions import Facts, holds
from loyalty.domain.notice import tightenings
from loyalty.domain.periods import Window
from loyalty.domain.rules import Ruleset, Tier, parse_ruleset
from tests.unit.presets import preset, preset_document
from tests.unit.test_rule_properties import METRIC_KEYS, PROPERTY_SETTINGS, conditions

DEFAULT = preset("default")
GOLD = 2


def default_with(**changes: Any) -> Ruleset:
    """The default ruleset with tiers replaced by index ({2: {...}}, None removes one) and sections
    merged one level deep (None empties one)."""
    document = preset_document("default")
    for index, tier in changes.pop("tiers", {}).items():
        if tier is None:
            del document["tiers"][index]
        elif index == len(document["tiers"]):
            document["tiers"].append(tier)
        else:
            document["tiers"][index] = tier
    for key, value in changes.items():
        document[key] = {**document[key], **value} if isinstance(value, dict) else value
    return parse_ruleset(document)


def gold(when: object) -> dict[str, Any]:
    return {"code": "gold", "name": "黄金", "when": when}


ORIGINAL_GOLD = {"any": [{"orders": ">= 3"}, {"amount": ">= 800"}]}


@pytest.mark.parametrize(("changes", "said"), [
    ({"tiers": {GOLD: gold({"any": [{"orders": ">= 3"}, {"amount": ">= 1000"}]})}}, "tier gold"),
    ({"tiers": {GOLD: gold({"any": [{"orders": "> 3"}, {"amount": ">= 800"}]})}}, "tier gold"),
    ({"tiers": {GOLD: gold({"amount": ">= 800"})}}, "tier gold"),
    ({"tiers": {GOLD: gold({"all": [ORIGINAL_GOLD, {"active_days": ">= 2"}]})}}, "tier gold"),
    ({"tiers": {GOLD: gold({"any": [{"orders_3m": ">= 3"}, {"amount": ">= 800"}]})}}, "tier gold"),
    ({"tiers": {GOLD: gold({"all": [ORIGINAL_GOLD, {"invited": True}]})}}, "it now needs an invitation"),
    ({"tiers": {5: None}, "benefits": None}, "tier black_gold is removed"),
    ({"evaluation": {"window": {"kind": "trailing_months", "months": 6}}}, "tier silver"),
    ({"evaluation": {"validity_months": 6}}, "valid 6 months instead of 12"),
])
def test_a_change_that_makes_a_tier_harder_is_a_tightening(changes, said):
    found = tightenings(DEFAULT, default_with(**changes))
    assert found and any(said in reason for reason in found), found


@pytest.mark.parametrize("changes", [
    {},
    {"growth": {"per_yuan": 2}},
    {"tiers": {GOLD: gold({"any": [{"orders": ">= 2"}, {"amount": ">= 800"}]})}},
    {"tiers": {GOLD: gold({"any": [{"orders": "> 2"}, {"amount": ">= 799.99"}]})}},
    {"tiers": {GOLD: gold({"any": [{"orders": ">= 3"}, {"amount": ">= 800"}, {"growth": ">= 500"}]})}},
    {"tiers": {GOLD: gold({"any": [{"amount": ">= 800"}, {"all": [{"orders": ">= 3"}, {"invited": True}]},
                                   {"orders": ">= 3"}]})}},
    {"evaluation": {"validity_months": 24}},
    {"evaluation": {"on_expiry": "one_down"}},
])
def test_a_change_that_keeps_or_eases_every_tier_is_no_tightening(changes):
    assert tightenings(DEFAULT, default_with(**changes)) == []


def test_a_new_tier_on_top_is_no_tightening():
    top = {"code": "legend", "when": {"all": [{"amount": ">= 50000"}, {"invited": True}]}}
    assert tightenings(DEFAULT, default_with(tiers={6: top})) == []


def test_dropping_to_one_tier_at_a_time_is_softer_and_back_to_recompute_is_harder():
    one_down = default_with(evaluation={"on_expiry": "one_down"})
    assert tightenings(one_down, DEFAULT) == ["on expiry, recompute instead of one_down"]


def test_changing_the_score_weights_tightens_every_score_tier():
    weighted = preset("seed000-weighted")
    document = preset_document("seed000-weighted")
    document["score"]["weights"]["amount"] = Decimal("0.5")
    found = tightenings(weighted, parse_ruleset(document))
    assert [reason.split(":")[0] for reason in found] == ["tier normal", "tier gold", "tier diamond"]
    assert tightenings(weighted, preset("seed000-weighted")) == []


def _one_tier(ruleset: Ruleset, when: Any) -> Ruleset:
    return dataclasses.replace(ruleset, tiers=(ruleset.base_tier, Tier("top", "top", when, 1)))


FACTS = st.builds(Facts, st.dictionaries(st.sampled_from(METRIC_KEYS),
                                         st.one_of(st.integers(0, 60), st.decimals(0, 60, places=3))),
                  st.fixed_dictionaries({"invited": st.booleans()}))


@PROPERTY_SETTINGS
@given(conditions(), conditions(), st.lists(FACTS, min_size=1, max_size=8))
def test_whoever_met_a_tier_that_is_not_tightened_still_meets_it(old, new, samples):
    before, after = _one_tier(DEFAULT, old), _one_tier(DEFAULT, new)
    if tightenings(before, after):
        return
    window = Window("trailing_months", 12)
    for facts in samples:
        assert not holds(old, facts, window) or holds(new, facts, window), facts


@PROPERTY_SETTINGS
@given(conditions())
def test_an_unchanged_condition_is_never_a_tightening(condition):
    assert tightenings(_one_tier(DEFAULT, condition), _one_tier(DEFAULT, condition)) == []
