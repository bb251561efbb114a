"""The coupon rules without a database: validity bounds, the state shown, the spend of a recorded
order, and what a full refund gives back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from loyalty.domain.coupons import (
    Terms,
    check_redeemable,
    is_replay,
    shown_state,
    spend_of_recorded_order,
    state_after_refund,
)
from loyalty.domain.errors import LoyaltyError

START, END = datetime(2027, 1, 1, tzinfo=UTC), datetime(2027, 2, 1, tzinfo=UTC)
TERMS = Terms("LYX", "issued", "", 1_000, 10_000, START, END)
TICK = timedelta(microseconds=1)


def why(terms: Terms = TERMS, order_id: str = "o1", spend: int | None = 10_000, as_of: datetime = START) -> str | None:
    try:
        check_redeemable(terms, order_id, spend, as_of)
    except LoyaltyError as error:
        return error.code
    return None


def test_validity_starts_inclusive_and_ends_exclusive():
    assert [why(as_of=START - TICK), why(as_of=START), why(as_of=END - TICK), why(as_of=END)] == [
        "coupon_not_yet_valid", None, None, "coupon_expired"]
    assert [shown_state("issued", END, END - TICK), shown_state("issued", END, END)] == ["issued", "expired"]
    assert shown_state("redeemed", END, END) == "redeemed"  # a redeemed coupon stays redeemed


def test_a_full_refund_gives_the_coupon_back_only_within_its_validity():
    assert [state_after_refund(END, END - TICK), state_after_refund(END, END)] == ["issued", "expired"]


def test_refusals_in_their_order_state_validity_then_spend():
    assert why(Terms("LYX", "redeemed", "o0", 1_000, 0, START, END), as_of=END) == "coupon_already_redeemed"
    assert why(Terms("LYX", "revoked", "", 1_000, 0, START, END), as_of=END) == "coupon_revoked"
    assert why(spend=None) == "invalid_input"
    assert why(spend=9_999) == "below_min_spend"
    assert why(Terms("LYX", "issued", "", 0, 0, START, END), spend=None) is None


def test_a_replay_is_the_same_order_on_a_redeemed_coupon():
    redeemed = Terms("LYX", "redeemed", "o1", 1_000, 0, START, END)
    assert (is_replay(redeemed, "o1"), is_replay(redeemed, "o2"), is_replay(TERMS, "o1")) == (True, False, False)


@given(paid=st.integers(0, 10**10), value=st.integers(0, 10**6), min_spend=st.integers(0, 10**10))
def test_a_recorded_order_meets_the_minimum_exactly_when_paid_plus_face_value_does(paid, value, min_spend):
    terms = Terms("LYX", "issued", "", value, min_spend, START, END)
    allowed = why(terms, spend=spend_of_recorded_order(paid, value)) is None
    assert allowed == (paid + value >= min_spend)


@pytest.mark.parametrize("state", ["issued", "redeemed", "expired", "revoked"])
def test_the_shown_state_is_the_stored_one_within_validity(state):
    assert shown_state(state, END, START) == state
