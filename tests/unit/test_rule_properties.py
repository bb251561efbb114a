"""Properties of the rule arithmetic, checked by hypothesis over many generated cases.

Refunds split any way take back exactly what was awarded and never more; more money never earns
less growth; spending never overdraws and always drains the soonest-expiring lots first.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from itertools import pairwise

from hypothesis import given, settings
from hypothesis import strategies as st

from loyalty.domain.conditions import (
    OPERATORS,
    AllOf,
    AnyOf,
    Comparison,
    Condition,
    Facts,
    Flag,
    compile_condition,
    holds,
)
from loyalty.domain.growth import Line, OrderGrowth, growth_to_reverse, order_growth
from loyalty.domain.periods import Window
from loyalty.domain.points import Lot, draw, points_to_reverse, spendable_balance
from tests.unit.presets import at, preset

DEFAULT = preset("default")
START = at("2027-01-01 00:00")
AS_OF = at("2027-06-01 00:00")
PROPERTY_SETTINGS = settings(max_examples=300, deadline=None, database=None)


@st.composite
def refund_splits(draw_: st.DrawFn) -> tuple[int, list[int]]:
    """A paid amount in fen and a list of positive refunds that add up to all of it."""
    paid_fen = draw_(st.integers(min_value=1, max_value=10**8))
    cuts = draw_(
        st.lists(st.integers(min_value=1, max_value=max(1, paid_fen - 1)), max_size=8, unique=True)
    )
    bounds = [0, *sorted(c for c in cuts if c < paid_fen), paid_fen]
    return paid_fen, [b - a for a, b in pairwise(bounds)]


def taken_back(
    awarded: OrderGrowth, paid_fen: int, parts: list[int], bonus_min_fen: int | None
) -> list[int]:
    before, taken = 0, []
    for part in parts:
        taken.append(growth_to_reverse(awarded, paid_fen, before, part, bonus_min_fen))
        before += part
    return taken


@PROPERTY_SETTINGS
@given(
    split=refund_splits(),
    base=st.integers(0, 10**7),
    bonus=st.integers(0, 500),
    bonus_min_fen=st.none() | st.integers(0, 10**8),
)
def test_refunds_adding_up_to_the_order_take_back_exactly_the_awarded_growth(
    split: tuple[int, list[int]],
    base: int,
    bonus: int,
    bonus_min_fen: int | None,
) -> None:
    paid_fen, parts = split
    awarded = OrderGrowth(base, bonus)
    taken = taken_back(awarded, paid_fen, parts, bonus_min_fen)
    assert sum(taken) == awarded.total
    assert all(each >= 0 for each in taken)


@PROPERTY_SETTINGS
@given(
    split=refund_splits(),
    base=st.integers(0, 10**7),
    bonus=st.integers(0, 500),
    bonus_min_fen=st.none() | st.integers(0, 10**8),
    kept_parts=st.integers(1, 8),
)
def test_partial_refunds_never_take_back_more_than_was_awarded(
    split: tuple[int, list[int]],
    base: int,
    bonus: int,
    bonus_min_fen: int | None,
    kept_parts: int,
) -> None:
    paid_fen, parts = split
    awarded = OrderGrowth(base, bonus)
    refunded = parts[:-kept_parts] if kept_parts < len(parts) else []
    taken = taken_back(awarded, paid_fen, refunded, bonus_min_fen)
    running = 0
    for each in taken:
        running += each
        assert 0 <= running <= awarded.total
    assert sum(taken) <= base * sum(refunded) // paid_fen + bonus


@PROPERTY_SETTINGS
@given(split=refund_splits(), awarded=st.integers(0, 10**7))
def test_refunds_adding_up_to_the_order_take_back_exactly_the_awarded_points(
    split: tuple[int, list[int]],
    awarded: int,
) -> None:
    paid_fen, parts = split
    before, taken = 0, []
    for part in parts:
        taken.append(points_to_reverse(awarded, paid_fen, before, part))
        before += part
        assert 0 <= sum(taken) <= awarded
    assert sum(taken) == awarded


@PROPERTY_SETTINGS
@given(
    amounts=st.lists(st.integers(1, 10**8), min_size=2, max_size=2).map(sorted),
    category=st.sampled_from([None, "fresh", "toys"]),
    day=st.integers(0, 6),
    minute=st.integers(0, 24 * 60 - 1),
)
def test_paying_more_never_earns_less_growth_on_the_same_day_and_category(
    amounts: list[int],
    category: str | None,
    day: int,
    minute: int,
) -> None:
    paid_at = START + timedelta(days=day, minutes=minute)
    smaller, larger = (
        order_growth(
            [Line(category, amount)], amount, paid_at, DEFAULT.growth, DEFAULT.timezone
        ).total
        for amount in amounts
    )
    assert smaller <= larger


def lots_strategy() -> st.SearchStrategy[list[Lot]]:
    """Lots earned around AS_OF: some pending, some expired, some never expiring."""

    def build(
        index: int, remaining: int, earned_day: int, pending_days: int, expiry_day: int | None
    ) -> Lot:
        earned_at = START + timedelta(days=earned_day)
        expires_at = None if expiry_day is None else earned_at + timedelta(days=expiry_day)
        return Lot(
            index, remaining, earned_at, earned_at + timedelta(days=pending_days), expires_at
        )

    one = st.tuples(
        st.integers(0, 1000),
        st.integers(0, 200),
        st.integers(0, 10),
        st.none() | st.integers(1, 400),
    )
    return st.lists(one, max_size=12).map(
        lambda rows: [build(i + 1, *row) for i, row in enumerate(rows)]
    )


def expiry_key(lot: Lot) -> tuple[bool, datetime]:
    return (lot.expires_at is None, lot.expires_at or lot.earned_at)


@PROPERTY_SETTINGS
@given(lots=lots_strategy(), points=st.integers(0, 5000))
def test_spending_never_takes_more_than_is_spendable_and_drains_the_soonest_expiring_first(
    lots: list[Lot],
    points: int,
) -> None:
    takes, shortfall = draw(lots, points, AS_OF)
    by_id = {lot.id: lot for lot in lots}
    taken = sum(amount for _, amount in takes)
    available = spendable_balance(lots, AS_OF)

    assert taken + shortfall == points
    assert taken == min(points, available)
    assert all(
        by_id[lot_id].is_spendable(AS_OF) and 0 < amount <= by_id[lot_id].remaining
        for lot_id, amount in takes
    )
    assert len({lot_id for lot_id, _ in takes}) == len(takes)
    # Soonest-expiring first: takes run in expiry order, every lot but the last is drained, and no
    # untouched spendable lot expires before the last one drawn.
    keys = [expiry_key(by_id[lot_id]) for lot_id, _ in takes]
    assert keys == sorted(keys)
    assert all(amount == by_id[lot_id].remaining for lot_id, amount in takes[:-1])
    if takes:
        untouched = [lot for lot in lots if lot.is_spendable(AS_OF) and lot.id not in dict(takes)]
        assert all(expiry_key(lot) >= keys[-1] for lot in untouched)


METRIC_KEYS = [("orders", "12m"), ("amount", "12m"), ("growth", "3m"), ("score", "")]


def conditions() -> st.SearchStrategy[Condition]:
    comparisons = st.builds(
        lambda metric_key, op, threshold: Comparison(metric_key[0], None if metric_key[1] in ("12m", "") else
                                                     Window("trailing_months", 3), op, threshold),
        st.sampled_from(METRIC_KEYS), st.sampled_from(sorted(OPERATORS)),
        st.one_of(st.integers(0, 50).map(Decimal), st.decimals(0, 50, places=2)))
    flags = st.builds(Flag, st.just("invited"), st.booleans())
    return st.recursive(st.one_of(comparisons, flags), lambda children: st.one_of(
        st.builds(lambda parts: AnyOf(tuple(parts)), st.lists(children, max_size=4)),
        st.builds(lambda parts: AllOf(tuple(parts)), st.lists(children, max_size=4))), max_leaves=12)


@PROPERTY_SETTINGS
@given(conditions(), st.dictionaries(st.sampled_from(METRIC_KEYS),
                                     st.one_of(st.integers(0, 60), st.decimals(0, 60, places=3))),
       st.booleans())
def test_compiled_conditions_answer_exactly_as_the_tree_does(condition, metrics, invited):
    window = Window("trailing_months", 12)
    facts = Facts(metrics, {"invited": invited})
    assert compile_condition(condition, window)(facts) is holds(condition, facts, window)


@PROPERTY_SETTINGS
@given(refund_splits(), st.integers(0, 10_000), st.integers(0, 8), st.data())
def test_refunds_around_an_expiry_never_take_expired_points_a_second_time(split, awarded, expiry_after, data):
    """Whatever expired between two refunds is never clawed back; nothing is taken twice."""
    paid_fen, parts = split
    expired = taken = refunded = 0
    for index, part in enumerate(parts):
        if index == expiry_after:  # the lot expires with what is left of it (some maybe spent)
            expired = data.draw(st.integers(0, awarded - taken))
        taken += points_to_reverse(awarded, paid_fen, refunded, part, expired=expired, reversed_before=taken)
        refunded += part
    # Refunded in full: everything is taken back except what expired, exactly.
    assert taken == awarded - expired
