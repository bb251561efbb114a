"""Random sequences of awards, reward redemptions, spends, refunds, reversals and expiry, under
both return policies. After every step, for every member: the points ledger sum equals Σ lots −
Σ debts and the cached balance, no lot or debt is negative; a redemption succeeds exactly when
the spendable points cover it, and then lowers them by exactly its cost (never an overdraw); a
refused one changes nothing."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import event as observe
from hypothesis import strategies as st

from loyalty.clock import FixedClock
from loyalty.domain.errors import LoyaltyError, Refused
from loyalty.services import rewards
from loyalty.services.members import register_member
from loyalty.services.points import expire_points
from loyalty.services.redemptions import reverse_redemption
from loyalty.store.models import Coupon, Order, Redemption, Reward
from tests.conftest import at
from tests.service.support import ledger_problems_by_member, pay, refund, snapshot
from tests.service.test_ledger_properties import clear_tables, spendable

MEMBERS = ("p0", "p1")
START = at("2027-11-20 10:00")  # crosses the year end: lots expire on 1 January
REWARDS = {"pen": 30, "mug": 120, "c8": 250}

OPERATIONS = st.one_of(
    st.tuples(st.just("advance"), st.sampled_from([1, 24, 24 * 20])),
    st.tuples(st.just("order"), st.integers(0, 1), st.integers(100, 80_000)),
    st.tuples(st.just("redeem"), st.integers(0, 1), st.sampled_from(sorted(REWARDS)), st.integers(1, 3)),
    st.tuples(st.just("spend"), st.integers(0, 1), st.integers(1, 400)),
    st.tuples(st.just("refund"), st.integers(0, 10_000), st.integers(1, 100)),
    st.tuples(st.just("reverse"), st.integers(0, 10_000)),
    st.tuples(st.just("expire")),
)


class Walk:
    def __init__(self) -> None:
        self.clock = FixedClock(START)
        self.n = 0

    def next_id(self, prefix: str) -> str:
        self.n += 1
        return f"{prefix}{self.n}"


def _spend_checked(walk: Walk, who: str, cost: int, call: Any) -> None:
    now = walk.clock.now()
    before, rows = spendable(who, now), snapshot()
    try:
        view = call()
    except Refused as refused:
        assert refused.code == "insufficient_points" and before < cost, (refused.code, before, cost)
        observe("refused: not enough points")
        assert snapshot() == rows
        return
    observe(f"redeemed {'a reward' if view.reward else 'points'}")
    assert before >= cost and view.points == cost
    assert spendable(who, now) == before - cost  # never more than asked, never below zero


def step(walk: Walk, operation: tuple[Any, ...]) -> None:
    kind, *args = operation
    if kind == "advance":
        walk.clock.advance(hours=args[0])
    elif kind == "order":
        pay(walk.next_id("o"), MEMBERS[args[0]], walk.clock.now(), f"{args[1] // 100}.{args[1] % 100:02d}",
            walk.clock)
    elif kind == "redeem":
        who, code, quantity = MEMBERS[args[0]], args[1], args[2]
        _spend_checked(walk, who, REWARDS[code] * quantity, lambda: rewards.redeem(
            who, walk.next_id("rd"), reward=code, quantity=quantity, clock=walk.clock))
    elif kind == "spend":
        who = MEMBERS[args[0]]
        _spend_checked(walk, who, args[1], lambda: rewards.redeem(who, walk.next_id("sp"), points=args[1],
                                                                  clock=walk.clock))
    elif kind == "refund":
        orders = list(Order.objects.order_by("id").values_list("order_id", "amount_fen", "refunded_fen"))
        if orders:
            order_id, amount_fen, refunded_fen = orders[args[0] % len(orders)]
            part = min(amount_fen - refunded_fen, max(1, amount_fen * args[1] // 100))
            if part > 0:
                refund(walk.next_id("r"), order_id, f"{part // 100}.{part % 100:02d}", walk.clock.now(), walk.clock)
    elif kind == "reverse":
        ids = list(Redemption.objects.order_by("id").values_list("redemption_id", flat=True))
        if ids:
            try:
                reversal = reverse_redemption(ids[args[0] % len(ids)], actor="ops", clock=walk.clock)
                observe("reversed" + (" with coupons" if reversal.coupons_revoked else ""))
            except LoyaltyError as error:  # a coupon reward whose coupon was spent: none are spent here
                raise AssertionError(error.code) from error
    else:
        expire_points(walk.clock.now(), clock=walk.clock)


@pytest.mark.parametrize("policy", ["allow_debt", "within_balance"])
def test_random_redemption_walks_keep_the_ledger_equal_to_lots_minus_debts(publish, policy):
    publish("default", points={"return_policy": policy, "pending_days": 1})  # pending for a day, then spendable

    @settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                    HealthCheck.too_slow])
    @given(st.lists(OPERATIONS, min_size=10, max_size=35))
    def walk_through(operations: list[tuple[Any, ...]]) -> None:
        Coupon.objects.all().delete()
        clear_tables()
        Reward.objects.all().delete()
        walk = Walk()
        for code, cost in REWARDS.items():
            coupon = {"kind": "coupon", "value_fen": 500, "valid_days": 30} if code == "c8" else {}
            Reward.objects.create(code=code, name=code, points_cost=cost, created_at=START, updated_at=START, **coupon)
        walk.clock.advance(days=-2)  # each member starts with 600 spendable points, so that spending happens
        for external_id in MEMBERS:
            register_member(external_id, clock=walk.clock)
            pay(walk.next_id("o"), external_id, walk.clock.now(), "600", walk.clock)
        walk.clock.advance(days=2)
        for operation in operations:
            step(walk, operation)
            assert ledger_problems_by_member() == {name: [] for name in MEMBERS}, operation

    walk_through()
