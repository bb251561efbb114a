"""Golden tables, one per preset in rulesets/: orders and window facts in; growth, points and
tier out.

A change to a preset or to the rules engine that moves any of these numbers must be deliberate.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from loyalty.domain.growth import order_growth
from loyalty.domain.points import order_points
from loyalty.domain.rules import Score
from loyalty.domain.tiers import earned_tier, score_of, with_score
from tests.unit.presets import PRESETS, at, fen, lines, preset, window_facts

SATURDAY = "2027-01-02 10:00"
SUNDAY = "2027-01-03 21:00"
MONDAY = "2027-01-04 09:00"
WEDNESDAY = "2027-01-06 12:00"
BIRTHDAY = date(1990, 1, 4)  # the member's birthday falls on MONDAY


def earned(
    preset_name: str,
    paid_at: str,
    items: list[tuple[str | None, str]],
    birthday: date | None = None,
) -> tuple[int, int]:
    """(growth, points) a paid order earns under a preset, before any daily cap."""
    rules = preset(preset_name)
    order_lines = lines(items)
    paid_fen = sum(line.amount_fen for line in order_lines)
    growth = order_growth(order_lines, paid_fen, at(paid_at), rules.growth, rules.timezone)
    points = order_points(paid_fen, at(paid_at), birthday, rules.points, rules.timezone)
    return growth.total, points


@pytest.mark.parametrize("name", PRESETS)
def test_every_preset_is_a_valid_ruleset(name: str) -> None:
    ruleset = preset(name)
    assert ruleset.name == name
    assert ruleset.base_tier.when is None
    assert str(ruleset.timezone) == "Asia/Shanghai"


# --- default (seed 001) ------------------------------------------------------------------------

DEFAULT_ORDERS = [
    pytest.param(
        SATURDAY,
        [(None, "300"), ("fresh", "100")],
        None,
        950,
        400,
        id="saturday-400-with-100-fresh-earns-950",
    ),
    pytest.param(MONDAY, [(None, "100")], None, 100, 100, id="weekday-100-earns-100"),
    pytest.param(MONDAY, [(None, "299.99")], None, 299, 299, id="weekday-299.99-no-bonus"),
    pytest.param(MONDAY, [(None, "300.00")], None, 350, 300, id="weekday-300-earns-the-bonus"),
    pytest.param(SATURDAY, [(None, "300")], None, 650, 300, id="saturday-300-bonus-not-doubled"),
    pytest.param(
        SUNDAY, [("fresh", "150.50")], None, 451, 150, id="sunday-fresh-150.50-floors-451.5"
    ),
    pytest.param(
        WEDNESDAY,
        [("fresh", "500"), ("drinks", "500")],
        None,
        1300,
        1000,
        id="wednesday-500-fresh-500-other",
    ),
    pytest.param(MONDAY, [(None, "0.99")], None, 0, 0, id="under-a-yuan-earns-nothing"),
    pytest.param(
        MONDAY, [(None, "100")], BIRTHDAY, 100, 200, id="birthday-doubles-points-not-growth"
    ),
    pytest.param(
        MONDAY,
        [("fresh", "0.01"), ("fresh", "0.01")],
        None,
        0,
        0,
        id="sub-yuan-fresh-lines-floor-to-zero",
    ),
]


@pytest.mark.parametrize(("paid_at", "items", "birthday", "growth", "points"), DEFAULT_ORDERS)
def test_default_preset_orders_earn_the_golden_growth_and_points(
    paid_at: str,
    items: list[tuple[str | None, str]],
    birthday: date | None,
    growth: int,
    points: int,
) -> None:
    assert earned("default", paid_at, items, birthday) == (growth, points)


DEFAULT_TIERS = [
    pytest.param(0, "0", False, "bronze", id="new-member-is-bronze"),
    pytest.param(0, "199.99", False, "bronze", id="199.99-is-not-silver"),
    pytest.param(1, "0.01", False, "silver", id="one-order-is-silver"),
    pytest.param(0, "200", False, "silver", id="200-yuan-is-silver"),
    pytest.param(2, "799.99", False, "silver", id="two-orders-799.99-stays-silver"),
    pytest.param(3, "10", False, "gold", id="three-orders-is-gold"),
    pytest.param(0, "800", False, "gold", id="800-yuan-is-gold"),
    pytest.param(6, "10", False, "platinum", id="six-orders-is-platinum"),
    pytest.param(1, "2000", False, "platinum", id="2000-yuan-is-platinum"),
    pytest.param(12, "10", False, "diamond", id="twelve-orders-is-diamond"),
    pytest.param(1, "5000", False, "diamond", id="5000-yuan-is-diamond"),
    pytest.param(
        24, "12000", False, "diamond", id="black-gold-totals-without-invitation-is-diamond"
    ),
    pytest.param(24, "10", True, "black_gold", id="invited-24-orders-is-black-gold"),
    pytest.param(1, "12000", True, "black_gold", id="invited-12000-yuan-is-black-gold"),
    pytest.param(23, "11999.99", True, "diamond", id="invited-but-short-is-diamond"),
]


@pytest.mark.parametrize(("orders", "amount", "invited", "tier"), DEFAULT_TIERS)
def test_default_preset_window_facts_earn_the_golden_tier(
    orders: int,
    amount: str,
    invited: bool,
    tier: str,
) -> None:
    facts = window_facts("12m", invited=invited, orders=orders, amount=amount)
    assert earned_tier(preset("default"), facts).code == tier


# --- seed 000, weighted score ------------------------------------------------------------------


def test_seed000_score_without_normalisation_is_610_as_in_the_seed() -> None:
    weighted = preset("seed000-weighted").score
    assert weighted is not None
    score = Score(weights=weighted.weights, normalise="none")
    metrics = {
        ("amount", "12m"): fen("1000"),
        ("active_days", "12m"): 30,
        ("interactions", "12m"): 10,
    }
    assert score_of(metrics, score, "12m") == Decimal(610)


WEIGHTED_TIERS = [
    pytest.param("0", 0, 0, Decimal(0), "member", id="nothing-scores-0"),
    pytest.param("5000", 60, 30, Decimal(100), "diamond", id="every-cap-reached-scores-100"),
    pytest.param("9000", 365, 400, Decimal(100), "diamond", id="beyond-the-caps-still-100"),
    pytest.param("5000", 60, 0, Decimal(90), "diamond", id="exactly-90-is-diamond"),
    pytest.param("5000", 40, 0, Decimal(80), "gold", id="exactly-80-is-gold"),
    pytest.param("5000", 39, 0, Decimal("79.5"), "normal", id="79.5-is-normal"),
    pytest.param("5000", 0, 0, Decimal(60), "normal", id="exactly-60-is-normal"),
    pytest.param("4999.99", 0, 0, Decimal("59.99988"), "member", id="just-under-60-is-member"),
    pytest.param("2500", 30, 15, Decimal(50), "member", id="half-of-every-cap-scores-50"),
]


@pytest.mark.parametrize(("amount", "active_days", "interactions", "score", "tier"), WEIGHTED_TIERS)
def test_seed000_weighted_preset_scores_and_tiers_match_the_golden_table(
    amount: str,
    active_days: int,
    interactions: int,
    score: Decimal,
    tier: str,
) -> None:
    ruleset = preset("seed000-weighted")
    facts = with_score(
        window_facts("12m", amount=amount, active_days=active_days, interactions=interactions),
        ruleset,
    )
    assert facts.value(("score", "")) == score
    assert earned_tier(ruleset, facts).code == tier


WEIGHTED_ORDERS = [
    pytest.param(MONDAY, [(None, "1000")], None, 1000, 10, id="1000-yuan-earns-10-points"),
    pytest.param(MONDAY, [(None, "99.99")], None, 99, 0, id="99.99-yuan-earns-no-point"),
    pytest.param(MONDAY, [(None, "150")], None, 150, 1, id="150-yuan-earns-1-point"),
    pytest.param(SATURDAY, [("fresh", "400")], None, 400, 4, id="no-weekend-or-fresh-multipliers"),
    pytest.param(MONDAY, [(None, "1000")], BIRTHDAY, 1000, 10, id="no-birthday-multiplier"),
]


@pytest.mark.parametrize(("paid_at", "items", "birthday", "growth", "points"), WEIGHTED_ORDERS)
def test_seed000_weighted_preset_orders_earn_the_golden_growth_and_points(
    paid_at: str,
    items: list[tuple[str | None, str]],
    birthday: date | None,
    growth: int,
    points: int,
) -> None:
    assert earned("seed000-weighted", paid_at, items, birthday) == (growth, points)


def test_seed000_weighted_preset_gives_level_discounts_to_gold_and_diamond() -> None:
    benefits = preset("seed000-weighted").benefits
    assert benefits["gold"].discount == Decimal("0.05")
    assert benefits["diamond"].discount == Decimal("0.10")


# --- seed 000, points-threshold tiers ----------------------------------------------------------

POINTS_TIERS = [
    pytest.param(0, "level_1", id="no-points-is-level-1"),
    pytest.param(499, "level_1", id="499-is-level-1"),
    pytest.param(500, "level_2", id="500-is-level-2"),
    pytest.param(999, "level_2", id="999-is-level-2"),
    pytest.param(1000, "level_3", id="1000-is-level-3"),
    pytest.param(250_000, "level_3", id="far-above-is-level-3"),
]


@pytest.mark.parametrize(("points", "tier"), POINTS_TIERS)
def test_seed000_points_preset_tiers_follow_lifetime_points(points: int, tier: str) -> None:
    ruleset = preset("seed000-points")
    assert earned_tier(ruleset, window_facts("lifetime", points=points)).code == tier
    assert (
        earned_tier(ruleset, window_facts("12m", points=points)).code == "level_1"
    )  # wrong window


POINTS_ORDERS = [
    pytest.param(SATURDAY, [("fresh", "400")], None, 400, 400, id="saturday-fresh-400-earns-400"),
    pytest.param(MONDAY, [(None, "300")], None, 300, 300, id="no-large-order-bonus"),
    pytest.param(MONDAY, [(None, "12.99")], BIRTHDAY, 12, 12, id="no-birthday-multiplier"),
]


@pytest.mark.parametrize(("paid_at", "items", "birthday", "growth", "points"), POINTS_ORDERS)
def test_seed000_points_preset_orders_earn_the_golden_growth_and_points(
    paid_at: str,
    items: list[tuple[str | None, str]],
    birthday: date | None,
    growth: int,
    points: int,
) -> None:
    assert earned("seed000-points", paid_at, items, birthday) == (growth, points)


# --- seed 001, AND conditions (member_levels) --------------------------------------------------

ALL_TIERS = [
    pytest.param(0, "0", 0, False, "bronze", id="new-member-is-bronze"),
    pytest.param(1, "200", 200, False, "silver", id="every-silver-minimum-met"),
    pytest.param(1, "200", 199, False, "bronze", id="growth-short-by-one-is-bronze"),
    pytest.param(0, "200", 200, False, "bronze", id="no-order-is-bronze"),
    pytest.param(100, "199.99", 100_000, False, "bronze", id="amount-short-is-bronze"),
    pytest.param(5, "5000", 5000, False, "gold", id="orders-hold-back-at-gold"),
    pytest.param(6, "2000", 2000, False, "platinum", id="every-platinum-minimum-met"),
    pytest.param(12, "5000", 5000, False, "diamond", id="every-diamond-minimum-met"),
    pytest.param(24, "12000", 12000, False, "diamond", id="uninvited-stays-diamond"),
    pytest.param(24, "12000", 12000, True, "black_gold", id="invited-is-black-gold"),
]


@pytest.mark.parametrize(("orders", "amount", "growth", "invited", "tier"), ALL_TIERS)
def test_seed001_all_preset_needs_every_minimum_of_a_level(
    orders: int,
    amount: str,
    growth: int,
    invited: bool,
    tier: str,
) -> None:
    facts = window_facts("lifetime", invited=invited, orders=orders, amount=amount, growth=growth)
    assert earned_tier(preset("seed001-all"), facts).code == tier


ALL_ORDERS = [
    pytest.param(
        SATURDAY,
        [(None, "300"), ("fresh", "100")],
        None,
        950,
        400,
        id="saturday-400-with-100-fresh-earns-950",
    ),
    pytest.param(MONDAY, [(None, "299.99")], None, 299, 299, id="weekday-299.99-no-bonus"),
    pytest.param(MONDAY, [(None, "100")], BIRTHDAY, 100, 100, id="no-birthday-multiplier"),
]


@pytest.mark.parametrize(("paid_at", "items", "birthday", "growth", "points"), ALL_ORDERS)
def test_seed001_all_preset_orders_earn_the_golden_growth_and_points(
    paid_at: str,
    items: list[tuple[str | None, str]],
    birthday: date | None,
    growth: int,
    points: int,
) -> None:
    assert earned("seed001-all", paid_at, items, birthday) == (growth, points)
