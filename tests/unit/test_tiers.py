"""Tier evaluation (upgrade, expiry, renew, one_down, invitation), conditions and score
normalising."""

from __future__ import annotations

from decimal import Decimal

import pytest

from loyalty.domain.conditions import (
    AllOf,
    AnyOf,
    Comparison,
    Facts,
    Flag,
    holds,
    metric_keys,
    parse_condition,
)
from loyalty.domain.periods import Window
from loyalty.domain.rules import Ruleset, Score, parse_ruleset
from loyalty.domain.tiers import (
    Standing,
    earned_tier,
    evaluate,
    gaps,
    needed_metrics,
    next_tier,
    score_of,
)
from tests.unit.presets import at, fen, preset, preset_document, window_facts

DEFAULT = preset("default")
AS_OF = at("2027-02-01 00:00")  # the monthly evaluation
ONE_YEAR_LATER = at("2028-02-01 00:00")
EXPIRED = Standing("diamond", at("2027-01-15 10:00"))

SILVER_FACTS = window_facts(orders=1, amount="150")
GOLD_FACTS = window_facts(orders=3, amount="500")
PLATINUM_FACTS = window_facts(orders=6, amount="2500")
NO_FACTS = window_facts()


def one_down() -> Ruleset:
    document = preset_document("default")
    document["evaluation"]["on_expiry"] = "one_down"
    return parse_ruleset(document)


# --- evaluate ----------------------------------------------------------------------------------


def test_a_bronze_member_who_earns_gold_is_upgraded_for_twelve_months() -> None:
    decision = evaluate(DEFAULT, Standing("bronze", None), GOLD_FACTS, AS_OF)
    assert (decision.from_code, decision.to_code, decision.reason) == ("bronze", "gold", "upgrade")
    assert decision.expires_at == ONE_YEAR_LATER
    assert decision.changed


def test_an_unexpired_tier_does_not_drop_when_the_totals_fall() -> None:
    standing = Standing("platinum", at("2027-09-01 00:00"))
    decision = evaluate(DEFAULT, standing, SILVER_FACTS, AS_OF)
    assert (decision.to_code, decision.reason, decision.expires_at) == (
        "platinum",
        "none",
        standing.expires_at,
    )
    assert not decision.changed


def test_an_expired_tier_is_recomputed_from_the_trailing_totals() -> None:
    decision = evaluate(DEFAULT, EXPIRED, SILVER_FACTS, AS_OF)
    assert (decision.from_code, decision.to_code, decision.reason) == (
        "diamond",
        "silver",
        "downgrade",
    )
    assert decision.expires_at == ONE_YEAR_LATER


def test_an_expired_tier_under_one_down_drops_a_single_tier() -> None:
    decision = evaluate(one_down(), EXPIRED, SILVER_FACTS, AS_OF)
    assert (decision.to_code, decision.reason, decision.expires_at) == (
        "platinum",
        "downgrade",
        ONE_YEAR_LATER,
    )


def test_one_down_drops_a_gold_member_without_orders_only_to_silver() -> None:
    decision = evaluate(one_down(), Standing("gold", AS_OF), NO_FACTS, AS_OF)
    assert decision.to_code == "silver"


def test_an_expired_member_never_falls_below_bronze_and_bronze_never_expires() -> None:
    decision = evaluate(DEFAULT, Standing("silver", at("2027-01-31 23:59")), NO_FACTS, AS_OF)
    assert (decision.to_code, decision.reason, decision.expires_at) == ("bronze", "downgrade", None)


def test_an_expired_tier_whose_totals_still_hold_is_renewed() -> None:
    decision = evaluate(DEFAULT, Standing("gold", at("2027-01-10 08:00")), GOLD_FACTS, AS_OF)
    assert (decision.to_code, decision.reason, decision.expires_at) == (
        "gold",
        "renew",
        ONE_YEAR_LATER,
    )


def test_a_tier_expiring_at_the_evaluation_instant_counts_as_expired() -> None:
    decision = evaluate(DEFAULT, Standing("gold", AS_OF), SILVER_FACTS, AS_OF)
    assert (decision.to_code, decision.reason) == ("silver", "downgrade")


def test_upgrades_only_never_downgrades_an_expired_tier() -> None:
    decision = evaluate(
        DEFAULT, Standing("gold", at("2027-01-10 08:00")), SILVER_FACTS, AS_OF, upgrades_only=True
    )
    assert (decision.to_code, decision.reason) == ("gold", "none")


def test_upgrades_only_still_upgrades() -> None:
    decision = evaluate(
        DEFAULT, Standing("gold", at("2027-09-01 00:00")), PLATINUM_FACTS, AS_OF, upgrades_only=True
    )
    assert (decision.to_code, decision.reason) == ("platinum", "upgrade")


def test_black_gold_needs_the_invitation_flag() -> None:
    totals = {"orders": 30, "amount": "20000"}
    uninvited = evaluate(DEFAULT, Standing("diamond", None), window_facts(**totals), AS_OF)
    invited = evaluate(
        DEFAULT, Standing("diamond", None), window_facts(invited=True, **totals), AS_OF
    )
    assert (uninvited.to_code, uninvited.reason) == ("diamond", "none")
    assert (invited.to_code, invited.reason) == ("black_gold", "upgrade")


def test_only_black_gold_is_invitation_only() -> None:
    assert [tier.code for tier in DEFAULT.tiers if tier.invitation_only] == ["black_gold"]


def test_a_tier_removed_from_the_ruleset_falls_back_to_the_base() -> None:
    assert DEFAULT.tier("emerald").code == "bronze"


def test_validity_ending_on_a_missing_day_is_clamped_to_the_month_end() -> None:
    document = preset_document("default")
    document["evaluation"]["validity_months"] = 1
    decision = evaluate(
        parse_ruleset(document), Standing("bronze", None), GOLD_FACTS, at("2027-01-31 10:00")
    )
    assert decision.expires_at == at("2027-02-28 10:00")


def test_next_tier_and_its_gaps_drive_the_progress_bar() -> None:
    silver = next_tier(DEFAULT, "bronze")
    assert silver is not None and silver.code == "silver"
    assert next_tier(DEFAULT, "black_gold") is None
    found = {
        (gap.metric, gap.window, gap.needed, gap.current) for gap in gaps(silver, NO_FACTS, DEFAULT)
    }
    assert found == {
        ("orders", "12m", Decimal(1), Decimal(0)),
        ("amount", "12m", Decimal(20000), Decimal(0)),
    }


# --- conditions --------------------------------------------------------------------------------


def condition(raw: object) -> object:
    problems: list[str] = []
    node = parse_condition(raw, "when", problems, score_enabled=True)
    assert problems == []
    return node


TWELVE_MONTHS = Window("trailing_months", 12)


def test_a_condition_parses_into_a_tree_with_amounts_in_fen() -> None:
    node = condition({"any": [{"amount_12m": ">= 6000"}, {"max_single_order": ">= 5000"}]})
    assert node == AnyOf(
        (
            Comparison("amount", TWELVE_MONTHS, ">=", Decimal(600000)),
            Comparison("max_single_order", None, ">=", Decimal(500000)),
        )
    )


def test_a_flag_and_an_all_parse() -> None:
    node = condition({"all": [{"orders": "> 2"}, {"invited": True}]})
    assert node == AllOf((Comparison("orders", None, ">", Decimal(2)), Flag("invited", True)))


@pytest.mark.parametrize(
    ("facts", "holds_"),
    [
        pytest.param(window_facts(amount="6000"), True, id="6000-in-12-months"),
        pytest.param(window_facts(amount="5999.99"), False, id="5999.99-in-12-months"),
        pytest.param(window_facts(max_single_order="5000"), True, id="one-order-of-5000"),
        pytest.param(
            window_facts("lifetime", amount="90000"), False, id="lifetime-amount-does-not-count"
        ),
    ],
)
def test_windowed_amount_or_largest_order_condition(facts: Facts, holds_: bool) -> None:
    node = condition({"any": [{"amount_12m": ">= 6000"}, {"max_single_order": ">= 5000"}]})
    assert holds(node, facts, TWELVE_MONTHS) is holds_


def test_a_metric_with_its_own_window_ignores_the_evaluation_window() -> None:
    node = condition({"orders_lifetime": ">= 10"})
    lifetime, yearly = Window("lifetime", 0), Window("calendar_year", 0)
    assert metric_keys(node, TWELVE_MONTHS) == {("orders", "lifetime")}
    assert holds(node, window_facts("lifetime", orders=10), TWELVE_MONTHS)
    assert not holds(node, window_facts("12m", orders=50), TWELVE_MONTHS)
    assert holds(node, window_facts("lifetime", orders=10), lifetime)
    assert metric_keys(condition({"growth_year": ">= 1"}), TWELVE_MONTHS) == {
        ("growth", yearly.key)
    }
    assert metric_keys(condition({"amount_3m": ">= 1"}), TWELVE_MONTHS) == {("amount", "3m")}


def test_a_metric_without_a_window_reads_the_evaluation_window() -> None:
    node = condition({"amount": ">= 200"})
    assert metric_keys(node, Window("lifetime", 0)) == {("amount", "lifetime")}
    assert holds(node, window_facts("lifetime", amount="200"), Window("lifetime", 0))


@pytest.mark.parametrize(
    ("comparison", "orders", "holds_"),
    [
        pytest.param("> 3", 3, False, id="greater-than-is-strict"),
        pytest.param("< 3", 2, True, id="less-than"),
        pytest.param("<= 3", 3, True, id="at-most"),
        pytest.param("== 3", 3, True, id="equal"),
        pytest.param("==3", 4, False, id="not-equal-without-spaces"),
    ],
)
def test_comparison_operators(comparison: str, orders: int, holds_: bool) -> None:
    assert (
        holds(condition({"orders": comparison}), window_facts(orders=orders), TWELVE_MONTHS)
        is holds_
    )


def test_a_missing_metric_counts_as_zero_and_a_missing_flag_as_false() -> None:
    empty = Facts({}, {})
    assert holds(condition({"orders": "== 0"}), empty, TWELVE_MONTHS)
    assert not holds(condition({"invited": True}), empty, TWELVE_MONTHS)
    assert holds(condition({"invited": False}), empty, TWELVE_MONTHS)


@pytest.mark.parametrize(
    ("name", "keys"),
    [
        pytest.param("default", {("orders", "12m"), ("amount", "12m")}, id="default"),
        pytest.param(
            "seed000-weighted",
            {("amount", "12m"), ("active_days", "12m"), ("interactions", "12m")},
            id="seed000-weighted-reads-the-score-inputs",
        ),
        pytest.param("seed000-points", {("points", "lifetime")}, id="seed000-points"),
        pytest.param(
            "seed001-all",
            {("orders", "lifetime"), ("amount", "lifetime"), ("growth", "lifetime")},
            id="seed001-all",
        ),
    ],
)
def test_needed_metrics_names_exactly_what_the_services_must_compute(
    name: str, keys: set[object]
) -> None:
    assert needed_metrics(preset(name)) == keys


# --- score normalisation -----------------------------------------------------------------------


def test_minmax_normalises_each_metric_to_0_to_100_of_its_cap() -> None:
    score = Score({"amount": Decimal(1)}, "minmax", {"amount": Decimal(5000)})
    assert score_of({("amount", "12m"): fen("2500")}, score, "12m") == Decimal(50)
    assert score_of({("amount", "12m"): fen("7500")}, score, "12m") == Decimal(100)
    assert score_of({("amount", "12m"): -fen("100")}, score, "12m") == Decimal(0)  # net refunds


def test_percentile_ranks_a_member_within_the_population() -> None:
    score = Score({"amount": Decimal("0.5"), "orders": Decimal("0.5")}, "percentile")
    population = {"amount": [100, 200, 300, 400], "orders": [1, 1, 2, 9]}
    metrics = {("amount", "12m"): 300, ("orders", "12m"): 1}
    # amount: 2 below, 1 tied of 4 → 62.5; orders: 0 below, 2 tied of 4 → 25.
    assert score_of(metrics, score, "12m", population) == Decimal("43.75")


def test_percentile_counts_ties_half_so_doing_nothing_does_not_rank_at_the_top() -> None:
    score = Score({"orders": Decimal(1)}, "percentile")
    population = {"orders": [0] * 95 + [3, 4, 5, 6, 7]}
    assert score_of({("orders", "12m"): 0}, score, "12m", population) == Decimal("47.5")
    assert score_of({("orders", "12m"): 7}, score, "12m", population) == Decimal("99.5")


def test_percentile_without_a_population_ranks_the_member_in_the_middle() -> None:
    score = Score({"orders": Decimal(1)}, "percentile")
    assert score_of({("orders", "12m"): 3}, score, "12m") == Decimal(50)


def test_the_score_counts_amounts_in_yuan_without_normalisation() -> None:
    score = Score({"amount": Decimal("0.6"), "max_single_order": Decimal("0.4")})
    metrics = {("amount", "12m"): fen("1000.50"), ("max_single_order", "12m"): fen("10")}
    assert score_of(metrics, score, "12m") == Decimal("604.3")


def test_a_tier_can_require_a_score_threshold() -> None:
    ruleset = preset("seed000-weighted")
    assert earned_tier(ruleset, Facts({("score", ""): Decimal("89.99")}, {})).code == "gold"


@pytest.mark.parametrize("window", [Window("trailing_months", 12), Window("trailing_months", 3),
                                    Window("calendar_year", 0), Window("lifetime", 0)], ids=str)
def test_a_window_is_found_again_from_its_metric_key(window: Window) -> None:
    assert Window.from_key(window.key).key == window.key
    assert Window.from_key(window.key).kind == window.kind
