"""Ruleset validation: every problem is reported with its path, and numbers stay exact."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from loyalty.domain.documents import from_json, from_yaml, to_json
from loyalty.domain.errors import RulesetInvalid
from loyalty.domain.rules import AfterUpgrade, CouponOffer, Operations, Recall, Ruleset, Sprint, parse_ruleset
from tests.unit.presets import PRESETS, preset, preset_document


def problems_of(document: Any) -> list[str]:
    with pytest.raises(RulesetInvalid) as raised:
        parse_ruleset(document)
    assert raised.value.code == "ruleset_invalid"
    return raised.value.problems


def default_with(path: str, value: object) -> dict[str, Any]:
    """The default document with one dotted path set, e.g. default_with("growth.per_yuan", 2)."""
    document = preset_document("default")
    *parents, last = path.split(".")
    node = document
    for key in parents:
        node = node.setdefault(key, {})
    node[last] = value
    return document


def test_a_misspelt_metric_names_the_tier_the_condition_and_the_metric() -> None:
    document = preset_document("default")
    document["tiers"][2]["when"] = {"any": [{"amout": ">= 800"}, {"orders": ">= 3"}]}
    with pytest.raises(RulesetInvalid) as raised:
        parse_ruleset(document)
    assert raised.value.problems[0].startswith("tiers[2].when.any[0]: unknown metric 'amout'")
    assert raised.value.field == "tiers[2].when.any[0]"


def test_every_problem_is_reported_not_only_the_first() -> None:
    document = preset_document("default")
    document["tiers"][2]["when"] = {"any": [{"amout": ">= 800"}]}
    document["timezone"] = "Mars/Olympus"
    document["growth"]["per_yaun"] = 2
    document["points"]["expiry"] = {"policy": "whenever"}
    problems = problems_of(document)
    assert len(problems) == 4
    assert "timezone: unknown timezone 'Mars/Olympus'" in problems
    assert "growth.per_yaun: unknown key 'per_yaun'" in problems
    assert any(
        p.startswith("points.expiry.policy: must be one of never, days_after_earning")
        for p in problems
    )
    assert any(p.startswith("tiers[2].when.any[0]: unknown metric 'amout'") for p in problems)


@pytest.mark.parametrize(
    ("path", "value", "problem"),
    [
        pytest.param("tierz", [], "tierz: unknown key 'tierz'", id="top-level"),
        pytest.param(
            "evaluation.windw", {}, "evaluation.windw: unknown key 'windw'", id="evaluation"
        ),
        pytest.param(
            "points.expiry.day", 30, "points.expiry.day: unknown key 'day'", id="points-expiry"
        ),
        pytest.param(
            "growth.large_order_bonus.min",
            "300",
            "growth.large_order_bonus.min: unknown key 'min'",
            id="bonus",
        ),
        pytest.param(
            "actions.review.per_ordr",
            1,
            "actions.review.per_ordr: unknown key 'per_ordr'",
            id="action",
        ),
        pytest.param(
            "benefits.gold.coupons",
            [],
            "benefits.gold.coupons: unknown key 'coupons'",
            id="benefit",
        ),
        pytest.param(
            "risk.daily_growth_capp",
            500,
            "risk.daily_growth_capp: unknown key 'daily_growth_capp'",
            id="risk",
        ),
        pytest.param(
            "member_day.discnt", "0.1", "member_day.discnt: unknown key 'discnt'", id="member-day"
        ),
    ],
)
def test_unknown_keys_are_refused_with_their_path(path: str, value: object, problem: str) -> None:
    assert problem in problems_of(default_with(path, value))


@pytest.mark.parametrize("zone", ["Mars/Olympus", "", "America", "../../etc/passwd", 8])
def test_a_bad_timezone_is_refused(zone: object) -> None:
    assert problems_of(default_with("timezone", zone)) == [f"timezone: unknown timezone {zone!r}"]


def test_minmax_without_caps_names_each_uncapped_metric() -> None:
    document = preset_document("seed000-weighted")
    document["score"]["caps"] = {"amount": "5000"}
    problems = problems_of(document)
    assert [p.split(":")[0] for p in problems] == [
        "score.caps.active_days",
        "score.caps.interactions",
    ]
    assert "minmax normalisation needs a positive cap" in problems[0]


def test_a_binary_float_is_refused_where_an_exact_decimal_is_expected() -> None:
    assert problems_of(default_with("growth.per_yuan", 1.5)) == [
        "growth.per_yuan: expected an exact decimal, got 1.5"
    ]


def test_json_numbers_are_read_as_exact_decimals() -> None:
    document = json.loads(to_json(preset_document("default")))
    document["growth"]["category_multipliers"] = {"fresh": 1.5}
    text = json.dumps(document)
    assert problems_of(json.loads(text)) == [  # plain json.loads makes a binary float
        "growth.category_multipliers.fresh: expected an exact decimal, got 1.5"
    ]
    ruleset = parse_ruleset(from_json(text))
    assert ruleset.growth.category_multipliers["fresh"] == Decimal("1.5")


def test_yaml_floats_are_read_as_exact_decimals() -> None:
    document = from_yaml("growth: {per_yuan: 0.1, category_multipliers: {fresh: 1.10}}")
    assert document["growth"]["per_yuan"] == Decimal("0.1")
    assert str(document["growth"]["category_multipliers"]["fresh"]) == "1.10"


@pytest.mark.parametrize("name", PRESETS)
def test_a_preset_stored_as_json_reads_back_as_the_same_ruleset(name: str) -> None:
    assert parse_ruleset(from_json(to_json(preset_document(name)))) == preset(name)


@pytest.mark.parametrize(
    ("path", "value", "problem"),
    [
        pytest.param(
            "growth.large_order_bonus.min_amount",
            "NaN",
            "growth.large_order_bonus.min_amount: must be a number >= 0, got 'NaN'",
            id="nan-amount",
        ),
        pytest.param(
            "growth.large_order_bonus.min_amount",
            "1e999999999",
            "growth.large_order_bonus.min_amount: amount is implausibly large",
            id="huge-amount",
        ),
        pytest.param(
            "growth.large_order_bonus.min_amount",
            "300.001",
            "growth.large_order_bonus.min_amount: more than two decimal places",
            id="sub-fen",
        ),
        pytest.param(
            "benefits.gold.discount",
            "NaN",
            "benefits.gold.discount: must be a number",
            id="nan-discount",
        ),
        pytest.param(
            "benefits.gold.discount",
            "1",
            "benefits.gold.discount: a discount is a fraction below 1",
            id="whole-discount",
        ),
        pytest.param(
            "benefits.gold.flags", 5, "benefits.gold.flags: must be a list", id="flags-not-a-list"
        ),
        pytest.param(
            "benefits.gold.flags",
            ["free_lunch"],
            "benefits.gold.flags: unknown benefit 'free_lunch'",
            id="unknown-benefit",
        ),
        pytest.param(
            "benefits.gold.monthly_coupons",
            5,
            "benefits.gold.monthly_coupons: must be a list",
            id="coupons-not-a-list",
        ),
        pytest.param(
            "benefits.tin", {}, "benefits.tin: unknown tier 'tin'", id="benefit-for-unknown-tier"
        ),
        pytest.param(
            "evaluation.immediate_upgrade",
            "false",
            "evaluation.immediate_upgrade: expected true or false",
            id="string-boolean",
        ),
        pytest.param(
            "evaluation.on_expiry",
            "two_down",
            "evaluation.on_expiry: must be one of recompute, one_down",
            id="downgrade-policy",
        ),
        pytest.param(
            "evaluation.schedule", "daily", "evaluation.schedule: only 'monthly'", id="schedule"
        ),
        pytest.param(
            "points.expiry",
            {"policy": "days_after_earning"},
            "points.expiry.days: expected a whole number >= 1, got None",
            id="expiry-days-missing",
        ),
        pytest.param(
            "points.birthday_multiplier",
            "0.5",
            "points.birthday_multiplier: must be a number >= 1",
            id="birthday-multiplier-below-one",
        ),
        pytest.param(
            "points.return_policy", "forgive", "points.return_policy: must be one of", id="return"
        ),
        pytest.param(
            "growth.day_multipliers.caturday",
            2,
            "growth.day_multipliers.caturday: unknown weekday",
            id="weekday",
        ),
        pytest.param(
            "actions.like", {"growth": 1}, "actions.like: unknown action 'like'", id="action"
        ),
        pytest.param(
            "actions.share.per_day",
            0,
            "actions.share.per_day: expected a whole number >= 1",
            id="cap",
        ),
        pytest.param(
            "risk.daily_growth_cap",
            Decimal("100.5"),
            "risk.daily_growth_cap: expected a whole number",
            id="fractional-cap",
        ),
        pytest.param(
            "member_day.weekday",
            "someday",
            "member_day.weekday: must be one of monday",
            id="member-day",
        ),
        pytest.param(
            "publishing.notice_days",
            -1,
            "publishing.notice_days: expected a whole number >= 0",
            id="notice-days",
        ),
    ],
)
def test_a_bad_setting_is_refused_naming_its_path(path: str, value: object, problem: str) -> None:
    problems = problems_of(default_with(path, value))
    assert any(p.startswith(problem) for p in problems), problems


@pytest.mark.parametrize(
    ("tiers", "problem"),
    [
        pytest.param([], "tiers: must be a non-empty list", id="no-tiers"),
        pytest.param(
            [{"code": "base", "when": {"orders": ">= 1"}}],
            "tiers[0].when: the first tier is the base",
            id="base-with-a-condition",
        ),
        pytest.param(
            [{"code": "base"}, {"code": "top"}],
            "tiers[1].when: every tier above the base needs",
            id="upper-tier-without-condition",
        ),
        pytest.param(
            [{"code": "base"}, {"code": "base", "when": {"orders": ">= 1"}}],
            "tiers[1].code: duplicate tier 'base'",
            id="duplicate-code",
        ),
        pytest.param(
            [{"code": "bad code"}], "tiers[0].code: must be an identifier", id="code-not-identifier"
        ),
        pytest.param(
            [{"code": "base"}, {"code": "top", "when": {"orders": 3}}],
            "tiers[1].when.orders: expected a comparison such as",
            id="comparison-without-operator",
        ),
        pytest.param(
            [{"code": "base"}, {"code": "top", "when": {"score": ">= 60"}}],
            "tiers[1].when: metric 'score' needs a `score` section",
            id="score-without-section",
        ),
        pytest.param(
            [{"code": "base"}, {"code": "top", "when": {"any": []}}],
            "tiers[1].when.any: must be a non-empty list",
            id="empty-any",
        ),
        pytest.param(
            [{"code": "base"}, {"code": "top", "when": {"orders": ">= 1", "amount": ">= 1"}}],
            "tiers[1].when: a condition is a mapping with exactly one key",
            id="two-keys",
        ),
        pytest.param(
            [{"code": "base"}, {"code": "top", "when": {"invited": "yes"}}],
            "tiers[1].when.invited: a flag is true or false",
            id="flag-not-boolean",
        ),
        pytest.param(
            [{"code": "base"}, {"code": "top", "when": {"all": [{"amout_12m": ">= 1"}]}}],
            "tiers[1].when.all[0]: unknown metric 'amout_12m'",
            id="misspelt-windowed-metric",
        ),
        pytest.param(
            [{"code": "base", "colour": "red"}],
            "tiers[0].colour: unknown key 'colour'",
            id="unknown-tier-key",
        ),
    ],
)
def test_a_bad_tier_list_is_refused_naming_the_tier(tiers: list[Any], problem: str) -> None:
    document = preset_document("seed000-points")
    document["tiers"] = tiers
    problems = problems_of(document)
    assert any(p.startswith(problem) for p in problems), problems


def test_a_score_weight_for_an_unknown_metric_is_refused() -> None:
    document = preset_document("seed000-weighted")
    document["score"]["weights"]["likes"] = "0.1"
    document["score"]["caps"]["likes"] = 10
    assert "score.weights.likes: unknown metric 'likes'" in problems_of(document)


def test_a_document_that_is_not_a_mapping_is_refused() -> None:
    assert problems_of([1, 2]) == ["$: a ruleset is a mapping"]
    with pytest.raises(RulesetInvalid, match=r"\$: a ruleset is a mapping"):
        from_yaml("- just\n- a list\n")
    with pytest.raises(RulesetInvalid, match=r"\$: not valid YAML"):
        from_yaml("tiers: [unclosed\n")


def test_a_minimal_ruleset_takes_the_documented_defaults() -> None:
    ruleset = parse_ruleset({"tiers": [{"code": "member"}]})
    assert isinstance(ruleset, Ruleset)
    assert str(ruleset.timezone) == "Asia/Shanghai"
    assert ruleset.evaluation.window.key == "12m"
    assert ruleset.evaluation.on_expiry == "recompute"
    assert ruleset.growth.per_yuan == Decimal(1)
    assert ruleset.points.expiry == "never"
    assert ruleset.points.return_policy == "allow_debt"
    assert ruleset.notice_days == 90


# Lengths: what the store keeps in bounded columns (RulesetVersion.name varchar(100), Member.tier
# varchar(32)) is bounded here, so an over-long value is a named problem, never a database error.

def test_names_and_tier_codes_up_to_their_bounds_are_accepted() -> None:
    document = preset_document("seed000-points")
    document["name"] = "n" * 100
    document["tiers"][0]["code"] = "c" * 32
    document["tiers"][0]["name"] = "黄" * 100
    document.pop("benefits", None)
    ruleset = parse_ruleset(document)
    assert (len(ruleset.name), len(ruleset.base_tier.code), len(ruleset.base_tier.name)) == (100, 32, 100)


@pytest.mark.parametrize(
    ("path", "value", "problem"),
    [
        pytest.param("name", "n" * 101, "name: at most 100 characters, got 101", id="ruleset-name"),
        pytest.param("name", "会员" * 51, "name: at most 100 characters, got 102", id="ruleset-name-in-characters"),
        pytest.param("tiers.0.code", "c" * 33, "tiers[0].code: at most 32 characters, got 33", id="base-tier-code"),
        pytest.param("tiers.2.code", "黑" * 33, "tiers[2].code: at most 32 characters, got 33",
                     id="tier-code-in-characters"),
        pytest.param("tiers.1.name", "n" * 101, "tiers[1].name: at most 100 characters, got 101", id="tier-name"),
    ],
)
def test_an_over_long_name_or_tier_code_is_refused_naming_its_path(path: str, value: str, problem: str) -> None:
    document = preset_document("default")
    *parents, last = path.split(".")
    node: Any = document
    for key in parents:
        node = node[int(key)] if key.isdigit() else node[key]
    node[int(last) if last.isdigit() else last] = value
    if last == "code":
        document.pop("benefits", None)  # keyed by tier code: not the mistake under test
    with pytest.raises(RulesetInvalid) as raised:
        parse_ruleset(document)
    assert raised.value.problems == [problem]
    assert raised.value.field == problem.split(":", 1)[0]


def test_a_tier_code_that_is_no_identifier_is_not_also_called_too_long() -> None:
    document = preset_document("seed000-points")
    document["tiers"][0]["code"] = "x " * 20
    document.pop("benefits", None)
    assert problems_of(document) == [f"tiers[0].code: must be an identifier such as 'gold', got {'x ' * 20!r}"]


# Operations: the campaigns the lifecycle jobs and the order path carry out.

def test_the_default_operations_are_read_as_typed_settings() -> None:
    operations = parse_ruleset(preset_document("default")).operations
    assert operations.birthday_coupon == CouponOffer(value_fen=1000)
    assert operations.sprint == Sprint(25, 30, Decimal(20), frozenset({"platinum", "diamond"}), CouponOffer(500))
    assert operations.recall == Recall(30, CouponOffer(1000))
    assert operations.after_upgrade == AfterUpgrade(3, Decimal("1.5"), within_days=30)
    assert (operations.expiring_notice_days, operations.budgets) == (30, {})


def test_without_operations_no_campaign_runs_and_points_notices_come_30_days_ahead() -> None:
    operations = parse_ruleset({"tiers": [{"code": "member"}]}).operations
    assert operations == Operations()
    assert (operations.sprint, operations.recall, operations.after_upgrade, operations.birthday_coupon) == (
        None, None, None, None)
    assert operations.expiring_notice_days == 30


def test_operation_settings_left_out_take_the_seed_figures() -> None:
    document = default_with("operations", {"sprint": {}, "recall": {}, "after_upgrade": {"growth_multiplier": 2}})
    operations = parse_ruleset(document).operations
    assert operations.sprint == Sprint(25, 30, Decimal(20))
    assert operations.recall == Recall(30)
    assert operations.after_upgrade == AfterUpgrade(3, Decimal(2))


@pytest.mark.parametrize(
    ("path", "value", "problem"),
    [
        pytest.param("operations.sprnt", {}, "operations.sprnt: unknown key 'sprnt'", id="unknown-operation"),
        pytest.param("operations.birthday_coupon", {"value": "10", "min_spnd": "50"},
                     "operations.birthday_coupon.min_spnd: unknown key", id="coupon-typo"),
        pytest.param("operations.birthday_coupon", {}, "operations.birthday_coupon.value: required", id="no-value"),
        pytest.param("operations.birthday_coupon", {"value": "0"},
                     "operations.birthday_coupon.value: a coupon is worth more than 0", id="worthless-coupon"),
        pytest.param("operations.birthday_coupon", {"value": 10.5},
                     "operations.birthday_coupon.value: expected an exact decimal", id="float-value"),
        pytest.param("operations.birthday_coupon", {"value": "10", "valid_days": 0},
                     "operations.birthday_coupon.valid_days: expected a whole number >= 1", id="valid-days"),
        pytest.param("operations.recall.coupon", {"value": "10", "min_spend": "9.999"},
                     "operations.recall.coupon.min_spend: more than two decimal places", id="min-spend"),
        pytest.param("operations.sprint.days_of_month", [30, 25],
                     "operations.sprint.days_of_month: expected [first, last], days 1 to 31 in order",
                     id="days-reversed"),
        pytest.param("operations.sprint.days_of_month", [25, 32],
                     "operations.sprint.days_of_month: expected [first, last]", id="day-32"),
        pytest.param("operations.sprint.days_of_month", 25,
                     "operations.sprint.days_of_month: expected [first, last]", id="days-not-a-list"),
        pytest.param("operations.sprint.within_percent", 0,
                     "operations.sprint.within_percent: a percentage above 0 and at most 100", id="percent-zero"),
        pytest.param("operations.sprint.within_percent", "120",
                     "operations.sprint.within_percent: a percentage above 0 and at most 100", id="percent-120"),
        pytest.param("operations.sprint.tiers", ["platinum", "tin"], "operations.sprint.tiers: unknown tier 'tin'",
                     id="sprint-tier"),
        pytest.param("operations.recall.days_before_drop", 0,
                     "operations.recall.days_before_drop: expected a whole number >= 1", id="recall-days"),
        pytest.param("operations.after_upgrade.orders", "3",
                     "operations.after_upgrade.orders: expected a whole number >= 1", id="orders-as-text"),
        pytest.param("operations.after_upgrade.growth_multiplier", "0.5",
                     "operations.after_upgrade.growth_multiplier: must be a number >= 1", id="multiplier-below-one"),
        pytest.param("operations.after_upgrade.within_days", 0,
                     "operations.after_upgrade.within_days: expected a whole number >= 1", id="boost-days"),
        pytest.param("operations.points_expiring", {"days_before": -1},
                     "operations.points_expiring.days_before: expected a whole number >= 0", id="notice-days"),
        pytest.param("operations.points_expiring", {"days": 30},
                     "operations.points_expiring.days: unknown key 'days'", id="notice-typo"),
        pytest.param("operations.budgets", {"tin": "100"}, "operations.budgets.tin: unknown tier 'tin'",
                     id="budget-tier"),
    ],
)
def test_a_bad_operation_setting_is_refused_naming_its_field(path: str, value: object, problem: str) -> None:
    problems = problems_of(default_with(path, value))
    assert len(problems) == 1 and problems[0].startswith(problem), problems
