"""Budgets, decided: a grant's cost, first fit against a tier-month's budget, deferred drafts kept exactly."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from loyalty.domain.budgets import drafts_document, drafts_from, fits, grant_cost, ration
from loyalty.domain.grants import CouponDraft
from tests.conftest import at

FEB, MARCH = at("2027-02-01 00:00"), at("2027-03-01 00:00")


def test_a_grant_costs_the_face_value_of_its_coupons_and_free_deliveries_cost_nothing_at_issue():
    drafts = [CouponDraft("a", "monthly", 800, 0, FEB, MARCH), CouponDraft("b", "monthly", 800, 0, FEB, MARCH),
              CouponDraft("c", "free_delivery", 0, 0, FEB, MARCH)]
    assert grant_cost(drafts) == 1600


def test_a_16_yuan_budget_fits_one_2_x_8_yuan_grant_exactly_and_not_a_second():
    # 0 + 1600 <= 1600 issued; 1600 + 1600 > 1600 deferred; a 0-cost grant always fits.
    assert ration(0, 1600, [1600, 1600, 0]).issued == (True, False, True)
    assert ration(0, 1600, [1600, 1600, 0]).spent_fen == 1600


def test_first_fit_lets_a_later_cheaper_grant_through():
    assert ration(1000, 1600, [1600, 500, 100]).issued == (False, True, True)


def test_a_lowered_budget_already_overspent_defers_every_costly_grant():
    assert fits(2000, 1, 1600) is False and fits(2000, 0, 1600) is True


@given(st.integers(0, 10**6), st.integers(0, 10**6), st.lists(st.integers(0, 10**5), max_size=30))
def test_rationing_never_overspends_and_defers_only_what_does_not_fit(spent, budget, costs):
    decided = ration(spent, budget, costs)
    issued = [cost for cost, ok in zip(costs, decided.issued, strict=True) if ok]
    assert decided.spent_fen == spent + sum(issued)
    if spent <= budget:
        assert decided.spent_fen <= budget
    running = spent
    for cost, ok in zip(costs, decided.issued, strict=True):
        assert ok == (cost == 0 or running + cost <= budget)
        running += cost if ok else 0


@given(st.lists(st.tuples(st.integers(0, 10**7), st.integers(0, 10**7), st.sampled_from(["", "gift"]),
                          st.sampled_from(["cash", ""]), st.sampled_from(["single", "once_per_member"])),
                max_size=5))
def test_deferred_drafts_come_back_exactly_as_they_were(terms):
    start = datetime(2027, 1, 31, 16, tzinfo=UTC)
    drafts = [CouponDraft(f"k{n}", "monthly", value, floor, start, MARCH, template, group, usage)
              for n, (value, floor, template, group, usage) in enumerate(terms)]
    assert drafts_from(drafts_document(drafts)) == drafts
