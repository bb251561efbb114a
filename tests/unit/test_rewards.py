"""The redemption rules, without a database: the draw across lots of mixed expiry (a golden table,
hand-computed), what a reward must say, when it may be redeemed, what it costs, its coupons,
and what a reversal gives back."""

from __future__ import annotations

from datetime import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from loyalty.domain.errors import Refused
from loyalty.domain.points import Lot, draw
from loyalty.domain.rewards import RewardTerms, check_redeemable, cost, coupons_for, problems, to_give_back
from tests.conftest import SHANGHAI, at

END_OF_FEB = at("2027-03-01 00:00")  # end_of_month expiry of a lot earned in February
END_OF_2027 = at("2028-01-01 00:00")  # end_of_year expiry of a lot earned in 2027


def lot(lot_id: int, remaining: int, earned: str, expires_at: datetime | None, pending_days: int = 0) -> Lot:
    earned_at = at(earned)
    return Lot(lot_id, remaining, earned_at, earned_at.replace(day=earned_at.day + pending_days), expires_at)


LOTS = [
    lot(1, 100, "2026-12-01 10:00", at("2027-01-01 00:00")),  # end of 2026: expired by February
    lot(2, 50, "2027-02-01 10:00", END_OF_FEB),  # end of month
    lot(3, 30, "2027-02-10 10:00", END_OF_FEB),  # same expiry, earned later than 2 and 8
    lot(4, 80, "2027-01-05 10:00", END_OF_2027),  # end of year
    lot(5, 40, "2027-01-01 10:00", None),  # never expires: spent last
    lot(6, 60, "2027-02-18 10:00", END_OF_FEB, pending_days=7),  # pending until 25 Feb 10:00
    lot(8, 25, "2027-02-05 10:00", END_OF_FEB),  # a higher id but earned before 3: drawn before it
]

# On 20 Feb the spendable lots are 2, 8, 3 (1 March, by earning time), 4 (2028), 5 (never):
# 50 + 25 + 30 + 80 + 40 = 225. Lot 1 has expired; lot 6 is pending.
DRAWS_ON_20_FEB = [
    (40, [(2, 40)], 0),
    (50, [(2, 50)], 0),
    (75, [(2, 50), (8, 25)], 0),
    (100, [(2, 50), (8, 25), (3, 25)], 0),  # 100 − 50 − 25 = 25 from lot 3
    (200, [(2, 50), (8, 25), (3, 30), (4, 80), (5, 15)], 0),  # 200 − 185 = 15 from the never-expiring lot
    (225, [(2, 50), (8, 25), (3, 30), (4, 80), (5, 40)], 0),
    (226, [(2, 50), (8, 25), (3, 30), (4, 80), (5, 40)], 1),  # 1 short: the service refuses, nothing drawn
]


@pytest.mark.parametrize(("points", "takes", "shortfall"), DRAWS_ON_20_FEB)
def test_the_draw_takes_soonest_expiry_first_then_earliest_earned_and_never_expiring_last(points, takes, shortfall):
    assert draw(LOTS, points, at("2027-02-20 12:00")) == (takes, shortfall)


def test_a_pending_lot_is_drawn_once_available_in_its_place_by_expiry_and_earning_time():
    # 26 Feb: lot 6 (earned 18 Feb, expiring 1 March) became spendable on 25 Feb 10:00; it comes
    # after 2, 8 and 3 (same expiry, earned earlier) and before 4. 120 − 105 = 15 from lot 6.
    assert draw(LOTS, 120, at("2027-02-26 12:00")) == ([(2, 50), (8, 25), (3, 30), (6, 15)], 0)
    assert draw(LOTS, 120, at("2027-02-25 09:59")) == ([(2, 50), (8, 25), (3, 30), (4, 15)], 0)


@given(st.integers(1, 400))
def test_a_draw_never_takes_more_than_a_lot_holds_or_than_asked(points):
    takes, shortfall = draw(LOTS, points, at("2027-02-20 12:00"))
    held = {item.id: item.remaining for item in LOTS}
    assert all(0 < taken <= held[lot_id] for lot_id, taken in takes)
    assert sum(taken for _, taken in takes) + shortfall == points
    assert shortfall == max(0, points - 225)


MUG = RewardTerms("mug", "goods", 500, stock=3, per_member_limit=2,
                  available_from=at("2027-01-01 00:00"), available_until=at("2027-02-01 00:00"))


@pytest.mark.parametrize(("terms", "quantity", "held", "when", "code"), [
    (RewardTerms("mug", "goods", 500, active=False), 1, 0, "2027-01-10 10:00", "reward_inactive"),
    (MUG, 1, 0, "2026-12-31 23:59", "reward_not_yet_available"),
    (MUG, 1, 0, "2027-02-01 00:00", "reward_ended"),  # the end is exclusive
    (MUG, 2, 1, "2027-01-10 10:00", "redemption_limit_reached"),  # 1 held + 2 > 2
    (MUG, 3, 0, "2027-01-10 10:00", "redemption_limit_reached"),  # the limit is judged before the stock
    (RewardTerms("mug", "goods", 500, stock=3), 4, 0, "2027-01-10 10:00", "out_of_stock"),
    (RewardTerms("mug", "goods", 500, stock=0), 1, 0, "2027-01-10 10:00", "out_of_stock"),
])
def test_a_reward_the_rules_do_not_allow_now_is_refused_with_its_own_code(terms, quantity, held, when, code):
    with pytest.raises(Refused) as refused:
        check_redeemable(terms, quantity, held, at(when))
    assert refused.value.code == code


def test_a_reward_inside_its_window_limit_and_stock_is_allowed():
    check_redeemable(MUG, 1, 1, at("2027-01-01 00:00"))  # the start is inclusive; 1 + 1 = the limit
    check_redeemable(MUG, 2, 0, at("2027-01-31 23:59"))
    check_redeemable(RewardTerms("pen", "goods", 1), 100, 10_000, at("2027-01-10 10:00"))  # nothing limits it


def test_the_cost_is_the_unit_cost_times_the_quantity():
    assert cost(MUG, 3) == 1_500


def test_a_coupon_reward_issues_one_coupon_per_unit_valid_for_its_days_in_local_time():
    terms = RewardTerms("c8", "coupon", 800, value_fen=800, min_spend_fen=5_000, valid_days=30)
    drafts = coupons_for(terms, "rd-1", 2, at("2027-01-04 09:00"), SHANGHAI)
    assert [(d.key, d.kind, d.value_fen, d.min_spend_fen) for d in drafts] == [
        ("reward:rd-1:1", "reward", 800, 5_000), ("reward:rd-1:2", "reward", 800, 5_000)]
    assert {(d.valid_from, d.valid_until) for d in drafts} == {(at("2027-01-04 09:00"), at("2027-02-03 09:00"))}
    assert coupons_for(MUG, "rd-2", 2, at("2027-01-04 09:00"), SHANGHAI) == []


@pytest.mark.parametrize(("terms", "fields"), [
    (RewardTerms("x", "goods", 0), {"points_cost"}),
    (RewardTerms("x", "toys", 10), {"kind"}),
    (RewardTerms("x", "goods", 10, stock=-1, per_member_limit=0), {"stock", "per_member_limit"}),
    (RewardTerms("x", "coupon", 10), {"value_fen", "valid_days"}),
    (RewardTerms("x", "coupon", 10, value_fen=500, min_spend_fen=-1, valid_days=0), {"min_spend_fen", "valid_days"}),
    (RewardTerms("x", "goods", 10, available_from=at("2027-02-01 00:00"), available_until=at("2027-02-01 00:00")),
     {"available_until"}),
    (RewardTerms("x", "coupon", 10, value_fen=500, valid_days=30), set()),
])
def test_a_reward_names_every_field_it_gets_wrong(terms, fields):
    assert set(problems(terms)) == fields


def test_a_reversal_gives_back_by_the_expiry_drawn_and_forfeits_what_has_expired_since():
    drawn = [(2, END_OF_FEB, 50), (8, END_OF_FEB, 25), (4, END_OF_2027, 80), (5, None, 15)]
    # On 10 Feb everything is still live: 75 back expiring 1 March, 80 at the end of 2027, 15 never.
    assert to_give_back(drawn, at("2027-02-10 10:00")) == ([(END_OF_FEB, 75), (END_OF_2027, 80), (None, 15)], 0)
    # On 1 March at 00:00 the February lots have expired: their 75 points are forfeited.
    assert to_give_back(drawn, END_OF_FEB) == ([(END_OF_2027, 80), (None, 15)], 75)
