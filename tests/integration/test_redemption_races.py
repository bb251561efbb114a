"""Redemptions under concurrency (PostgreSQL and MariaDB, real row locks, committed transactions):
one member's parallel redemptions never overdraw, a reward's stock never oversells, and one
redemption_id sent by many writers at once is spent once and answered as a replay to the rest."""

from __future__ import annotations

from datetime import timedelta

import pytest

from loyalty.domain.errors import LoyaltyError
from loyalty.services.members import register_member
from loyalty.services.orders import record_order
from loyalty.services.rewards import RedemptionView, redeem
from loyalty.store.models import LedgerEntry, Member, Redemption, Reward
from tests.integration.test_concurrency import MONDAY, WRITERS, in_parallel, order
from tests.service.support import ledger_problems

pytestmark = [pytest.mark.server_db, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def shop(publish, clock):
    """m1 with 1,000 spendable points; a mug at 300 points with a stock of 5."""
    publish("default")
    register_member("m1", clock=clock)
    record_order(order("o1", "m1", 100_000), clock=clock)
    clock.at = MONDAY + timedelta(days=8)
    Reward.objects.create(code="mug", name="Mug", points_cost=300, stock=5, created_at=MONDAY, updated_at=MONDAY)
    return clock


def test_parallel_redemptions_of_one_member_never_overdraw(shop):
    results = in_parallel(lambda i: redeem("m1", f"rd{i}", reward="mug", clock=shop))
    won = [r for r in results if isinstance(r, RedemptionView)]
    lost = [r for r in results if isinstance(r, LoyaltyError)]
    assert len(won) == 3  # 3 × 300 of 1,000; the stock of 5 is not what stops them
    assert {error.code for error in lost} == {"insufficient_points"} and len(lost) == WRITERS - 3
    assert sorted(r.balance_after for r in won) == [100, 400, 700]
    assert Member.objects.get().points_balance == 100 and Reward.objects.get().stock == 2
    assert ledger_problems("m1") == []


def test_one_redemption_id_from_many_writers_is_spent_once(shop):
    results = in_parallel(lambda _: redeem("m1", "rd-same", reward="mug", clock=shop))
    assert all(isinstance(r, RedemptionView) for r in results), results
    assert sorted(r.replayed for r in results) == [False] + [True] * (WRITERS - 1)
    assert len({(r.points, r.balance_after, tuple(r.lots)) for r in results}) == 1
    assert Redemption.objects.count() == 1 and LedgerEntry.objects.filter(source="redemption").count() == 1
    assert Reward.objects.get().stock == 4 and Member.objects.get().points_balance == 700


def test_several_members_racing_for_the_last_units_never_oversell(shop):
    for name in ("m2", "m3", "m4"):
        register_member(name, clock=shop)
        record_order(order(f"o-{name}", name, 100_000), clock=shop)  # paid on Monday: spendable now
    Reward.objects.update(stock=2)
    members = ["m1", "m2", "m3", "m4"]
    results = in_parallel(lambda i: redeem(members[i % 4], f"rd{i}", reward="mug", clock=shop))
    won = [r for r in results if isinstance(r, RedemptionView)]
    assert len(won) == 2 and Reward.objects.get().stock == 0
    assert {r.code for r in results if isinstance(r, LoyaltyError)} == {"out_of_stock"}
    assert all(ledger_problems(name) == [] for name in members)
