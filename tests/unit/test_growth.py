"""Growth per order and per action: local weekdays, the ¥300 bonus, refunds, daily and action
caps."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from loyalty.domain.growth import (
    OrderGrowth,
    action_award,
    apply_daily_cap,
    growth_to_reverse,
    order_growth,
)
from loyalty.domain.rules import ActionRule
from tests.unit.presets import at, fen, lines, preset

DEFAULT = preset("default")
BONUS_MIN_FEN = fen("300")


def growth_of(paid_at: datetime, *items: tuple[str | None, str]) -> OrderGrowth:
    order_lines = lines(items)
    paid_fen = sum(line.amount_fen for line in order_lines)
    return order_growth(order_lines, paid_fen, paid_at, DEFAULT.growth, DEFAULT.timezone)


# --- the weekend is judged in Asia/Shanghai ------------------------------------------------------


def test_friday_afternoon_utc_is_saturday_in_shanghai_and_earns_double() -> None:
    paid_at = datetime(2027, 1, 1, 16, 30, tzinfo=UTC)  # Friday in UTC, Saturday 00:30 in Shanghai
    assert growth_of(paid_at, (None, "100")) == OrderGrowth(base=200, bonus=0)


def test_friday_2359_in_shanghai_is_not_the_weekend() -> None:
    assert growth_of(at("2027-01-01 23:59"), (None, "100")) == OrderGrowth(base=100, bonus=0)


def test_sunday_in_utc_is_already_monday_in_shanghai_and_earns_single() -> None:
    paid_at = datetime(2027, 1, 3, 16, 0, tzinfo=UTC)  # Monday 00:00 in Shanghai
    assert growth_of(paid_at, (None, "100")).base == 100


def test_sunday_2359_in_shanghai_still_earns_double() -> None:
    assert growth_of(at("2027-01-03 23:59"), (None, "100")).base == 200


# --- the large-order bonus ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "bonus"),
    [
        pytest.param("299.99", 0, id="299.99-misses-the-bonus"),
        pytest.param("300.00", 50, id="300.00-earns-the-bonus"),
        pytest.param("300.01", 50, id="300.01-earns-the-bonus"),
    ],
)
def test_the_large_order_bonus_starts_at_exactly_300_yuan(amount: str, bonus: int) -> None:
    assert growth_of(at("2027-01-04 09:00"), (None, amount)).bonus == bonus


def test_the_bonus_is_added_after_the_weekend_multiplier_and_not_multiplied() -> None:
    assert growth_of(at("2027-01-02 10:00"), (None, "300")) == OrderGrowth(base=600, bonus=50)


def test_the_bonus_judges_the_paid_amount_not_the_weighted_growth() -> None:
    # ¥250 of fresh food weighs 375 growth, but ¥250 was paid: no bonus.
    assert growth_of(at("2027-01-04 09:00"), ("fresh", "250")) == OrderGrowth(base=375, bonus=0)


def test_unknown_and_missing_categories_count_at_one_growth_per_yuan() -> None:
    assert growth_of(at("2027-01-04 09:00"), ("toys", "10"), (None, "10")).base == 20


def test_the_order_sum_is_floored_once_not_each_line() -> None:
    # ¥0.50 fresh (0.75) + ¥0.25 other (0.25) = 1.00 → 1; flooring each line would give 0.
    assert growth_of(at("2027-01-04 09:00"), ("fresh", "0.50"), (None, "0.25")).base == 1
    # ¥0.34 + ¥0.33 fresh = 1.005 → 1.
    assert growth_of(at("2027-01-04 09:00"), ("fresh", "0.34"), ("fresh", "0.33")).base == 1


# --- the daily cap -----------------------------------------------------------------------------


def test_daily_cap_trims_the_base_before_the_bonus() -> None:
    assert apply_daily_cap(OrderGrowth(300, 50), earned_today=0, daily_cap=100) == OrderGrowth(
        50, 50
    )


def test_daily_cap_smaller_than_the_bonus_leaves_only_part_of_the_bonus() -> None:
    assert apply_daily_cap(OrderGrowth(300, 50), earned_today=470, daily_cap=500) == OrderGrowth(
        0, 30
    )


def test_daily_cap_already_reached_awards_nothing() -> None:
    assert apply_daily_cap(OrderGrowth(300, 50), earned_today=600, daily_cap=500) == OrderGrowth(
        0, 0
    )


def test_no_daily_cap_awards_everything() -> None:
    assert apply_daily_cap(OrderGrowth(300, 50), earned_today=10**6, daily_cap=None) == OrderGrowth(
        300, 50
    )


def test_an_order_within_the_cap_is_not_trimmed() -> None:
    assert apply_daily_cap(OrderGrowth(300, 50), earned_today=100, daily_cap=1000) == OrderGrowth(
        300, 50
    )


# --- refunds -----------------------------------------------------------------------------------

AWARDED = OrderGrowth(base=400, bonus=50)  # a weekday ¥400 order
PAID_FEN = fen("400")


def reverse(
    refunded_before: str,
    refund: str,
    *,
    awarded: OrderGrowth = AWARDED,
    paid_fen: int = PAID_FEN,
    bonus_min_fen: int | None = BONUS_MIN_FEN,
) -> int:
    return growth_to_reverse(awarded, paid_fen, fen(refunded_before), fen(refund), bonus_min_fen)


def test_partial_refund_keeping_300_takes_back_only_its_share_of_the_base() -> None:
    assert reverse("0", "100") == 100


def test_refund_below_300_takes_back_the_bonus() -> None:
    assert reverse("0", "100.01") == 100 + 50


def test_the_bonus_is_taken_back_only_once_over_several_refunds() -> None:
    taken = [reverse("0", "50"), reverse("50", "100"), reverse("150", "100")]
    assert taken == [50, 100 + 50, 100]


def test_full_refund_takes_back_the_whole_award() -> None:
    assert reverse("0", "400") == 450


def test_refunds_summing_to_the_whole_take_back_exactly_everything() -> None:
    parts = ["0.01", "133.33", "0.07", "99.99", "166.60"]
    before, taken = 0, []
    for part in parts:
        taken.append(growth_to_reverse(AWARDED, PAID_FEN, before, fen(part), BONUS_MIN_FEN))
        before += fen(part)
    assert before == PAID_FEN
    assert sum(taken) == AWARDED.total


def test_partial_refunds_floor_cumulatively_not_each_on_its_own() -> None:
    awarded = OrderGrowth(base=10, bonus=0)
    taken = [reverse(before, "1", awarded=awarded, paid_fen=fen("3")) for before in ("0", "1", "2")]
    assert taken == [3, 3, 4]  # floor(10/3), floor(20/3) − 3, 10 − 6: never rounded up, none lost


def test_an_order_without_a_bonus_takes_back_only_base() -> None:
    awarded = OrderGrowth(base=299, bonus=0)
    assert reverse("0", "299.99", awarded=awarded, paid_fen=fen("299.99")) == 299


def test_full_refund_takes_back_a_bonus_whose_threshold_is_zero() -> None:
    awarded = OrderGrowth(base=100, bonus=50)
    assert reverse("0", "100", awarded=awarded, paid_fen=fen("100"), bonus_min_fen=0) == 150


def test_a_capped_award_is_reversed_from_what_was_actually_awarded() -> None:
    capped = apply_daily_cap(AWARDED, earned_today=0, daily_cap=100)  # 50 base + 50 bonus
    assert reverse("0", "400", awarded=capped) == 100
    assert reverse("0", "200", awarded=capped) == 25 + 50


# --- actions -----------------------------------------------------------------------------------


def act(
    kind: str,
    *,
    done_today: int = 0,
    done_for_ref: int = 0,
    earned_today: int = 0,
    daily_cap: int | None = None,
) -> tuple[int, int, str | None]:
    award = action_award(
        DEFAULT.actions.get(kind),
        done_today=done_today,
        done_for_ref=done_for_ref,
        earned_today=earned_today,
        daily_cap=daily_cap,
    )
    return award.growth, award.points, award.capped_reason


def test_first_check_in_of_the_day_earns_5() -> None:
    assert act("check_in") == (5, 0, None)


def test_second_check_in_of_the_day_earns_nothing() -> None:
    assert act("check_in", done_today=1) == (0, 0, "per_day_limit")


def test_third_share_of_the_day_earns_20_and_the_fourth_nothing() -> None:
    assert act("share", done_today=2) == (20, 0, None)
    assert act("share", done_today=3) == (0, 0, "per_day_limit")


def test_one_review_per_order_earns_10_and_a_second_on_the_same_order_nothing() -> None:
    assert act("review", done_today=5) == (10, 0, None)
    assert act("review", done_for_ref=1) == (0, 0, "per_order_limit")


def test_an_action_the_ruleset_does_not_reward_earns_nothing() -> None:
    assert act("dance") == (0, 0, "action_not_rewarded")


def test_the_daily_growth_cap_trims_an_action() -> None:
    assert act("share", earned_today=95, daily_cap=100) == (5, 0, None)


def test_an_action_after_the_daily_growth_cap_earns_nothing() -> None:
    assert act("share", earned_today=100, daily_cap=100) == (0, 0, "daily_growth_cap")


def test_an_action_rule_with_points_awards_them() -> None:
    award = action_award(
        ActionRule(growth=0, points=3, per_day=1),
        done_today=0,
        done_for_ref=0,
        earned_today=0,
        daily_cap=10,
    )
    assert (award.growth, award.points, award.capped_reason) == (0, 3, None)
