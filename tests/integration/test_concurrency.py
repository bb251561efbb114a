"""Concurrency that cannot lose or double money: 8 writers with their own connections, real
row locks, committed transactions (PostgreSQL and MariaDB; SQLite serialises every writer).

Each writer is a thread: Django gives every thread its own connection. The tables are emptied
after each test (`transaction=True`), so nothing carries over between tests.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.db.models import Sum

from loyalty.clock import FixedClock
from loyalty.domain.errors import LoyaltyError
from loyalty.domain.events import ActionEvent, OrderEvent, RefundEvent
from loyalty.domain.growth import Line
from loyalty.services.actions import record_actions
from loyalty.services.adjustments import adjust
from loyalty.services.members import register_member
from loyalty.services.orders import record_order, record_orders
from loyalty.services.points import redeem_points
from loyalty.services.refunds import record_refund, record_refunds
from loyalty.store.models import LedgerEntry, Member, Order, Refund
from tests.conftest import at
from tests.service.support import ledger_problems_by_member

pytestmark = [pytest.mark.server_db, pytest.mark.django_db(transaction=True)]
WRITERS = 8
MONDAY = at("2027-01-04 10:00")


def in_parallel(work: Callable[[int], Any], writers: int = WRITERS) -> list[Any]:
    """Run work(i) for i in range(writers) at once (a barrier lines them up); answers the results,
    or the LoyaltyError each raised. Every thread closes its own connection."""
    barrier = threading.Barrier(writers)

    def one(index: int) -> Any:
        try:
            barrier.wait()
            return work(index)
        except LoyaltyError as error:
            return error
        finally:
            connection.close()

    with ThreadPoolExecutor(writers) as pool:
        return list(pool.map(one, range(writers)))


def order(order_id: str, member: str, amount_fen: int, paid_at=MONDAY) -> OrderEvent:
    return OrderEvent(order_id, member, paid_at, amount_fen, (Line(None, amount_fen),), ("sku",))


@pytest.fixture
def shop(publish, clock):
    publish("default")
    for name in ("m1", "m2", "m3"):
        register_member(name, clock=clock)
    return clock


def test_many_orders_for_one_member_at_once_lose_no_update(shop):
    amounts = {f"o{w}-{n}": 100 * (w + 1) + n for w in range(WRITERS) for n in range(25)}

    def writer(index: int) -> int:
        return sum(record_order(order(oid, "m1", fen), clock=shop).growth
                   for oid, fen in amounts.items() if oid.startswith(f"o{index}-"))

    growth = sum(in_parallel(writer))
    m1 = Member.objects.get(external_id="m1")
    assert (m1.orders_count, m1.paid_fen) == (len(amounts), sum(amounts.values()))
    assert m1.growth_balance == growth == sum(fen // 100 for fen in amounts.values())
    assert m1.points_balance == growth
    assert ledger_problems_by_member()["m1"] == []


def test_the_same_order_sent_by_eight_writers_is_credited_once_and_answered_alike(shop):
    results = in_parallel(lambda _: record_order(order("dup", "m1", 40_000), clock=shop))
    assert Order.objects.filter(order_id="dup").count() == 1
    assert {(r.order_id, r.growth, r.points) for r in results} == {("dup", 450, 400)}
    assert sorted(r.replayed for r in results) == [False] + [True] * (WRITERS - 1)
    assert Member.objects.get(external_id="m1").growth_balance == 450


def test_one_order_id_raced_for_two_members_is_credited_once_and_the_other_is_a_conflict(shop):
    results = in_parallel(lambda i: record_order(order("contested", f"m{1 + i % 2}", 10_000), clock=shop))
    assert Order.objects.filter(order_id="contested").count() == 1
    winner = Order.objects.get(order_id="contested").member.external_id
    for index, result in enumerate(results):
        if f"m{1 + index % 2}" == winner:
            assert result.order_id == "contested"
        else:
            assert result.code == "exists_with_different_payload"
    assert LedgerEntry.objects.filter(reference="contested").count() == 2


def test_redemptions_that_together_exceed_the_balance_never_overdraw(shop):
    adjust("m1", "points", 1000, reason="opening balance", actor="tests", adjustment_id="open", clock=shop)
    results = in_parallel(lambda i: redeem_points("m1", 300, redemption_id=f"rd{i}", clock=shop))
    won = [r for r in results if not isinstance(r, LoyaltyError)]
    lost = [r for r in results if isinstance(r, LoyaltyError)]
    assert len(won) == 3
    assert {error.code for error in lost} == {"insufficient_points"}
    assert Member.objects.get(external_id="m1").points_balance == 100
    assert ledger_problems_by_member()["m1"] == []


def test_refunds_racing_each_other_never_reverse_more_than_was_paid(shop):
    record_order(order("o1", "m1", 10_000), clock=shop)
    later = MONDAY + timedelta(days=1)
    results = in_parallel(lambda i: record_refund(RefundEvent(f"r{i}", "o1", 3_000, later), clock=shop))
    won = [r for r in results if not isinstance(r, LoyaltyError)]
    assert len(won) == 3
    assert {r.code for r in results if isinstance(r, LoyaltyError)} == {"refund_exceeds_paid"}
    assert Refund.objects.filter(order_id="o1").aggregate(s=Sum("amount_fen"))["s"] == 9_000
    assert Order.objects.get(order_id="o1").refunded_fen == 9_000
    assert ledger_problems_by_member()["m1"] == []


def test_refunds_racing_their_order_are_unknown_or_applied_never_more_than_paid(shop):
    later = MONDAY + timedelta(hours=1)

    def writer(index: int) -> Any:
        if index == 0:
            return record_order(order("racy", "m2", 5_000), clock=shop)
        return record_refund(RefundEvent(f"rr{index}", "racy", 2_000, later), clock=shop)

    results = in_parallel(writer)
    refunds = [r for r in results[1:] if not isinstance(r, LoyaltyError)]
    codes = {r.code for r in results[1:] if isinstance(r, LoyaltyError)}
    assert codes <= {"unknown_order", "refund_exceeds_paid"}
    assert len(refunds) <= 2
    assert Order.objects.get(order_id="racy").refunded_fen == 2_000 * len(refunds)
    assert ledger_problems_by_member()["m2"] == []


def test_a_mixed_load_of_ten_thousand_operations_keeps_every_balance_and_never_deadlocks(publish, clock):
    publish("default")
    members = [f"load{n}" for n in range(40)]
    for name in members:
        register_member(name, clock=clock)
    for name in members:
        adjust(name, "points", 500, reason="opening", actor="tests", adjustment_id=f"open-{name}", clock=clock)
    per_writer = 10_000 // WRITERS
    outcomes: Counter[str] = Counter()
    lock = threading.Lock()

    def writer(index: int) -> int:
        rng, done, mine = random.Random(index), 0, []
        while done < per_writer:
            done += _one_operation(rng, index, done, members, mine, clock, outcomes, lock)
        return done

    assert sum(in_parallel(writer)) >= 10_000
    assert all(problems == [] for problems in ledger_problems_by_member().values())
    assert outcomes["order"] > 0 and outcomes["refund"] > 0 and outcomes["redeem"] > 0
    assert outcomes["unexpected"] == 0, outcomes


def _one_operation(rng: random.Random, writer: int, n: int, members: list[str], mine: list[OrderEvent],
                   clock: FixedClock, outcomes: Counter[str], lock: threading.Lock) -> int:
    """One random call; answers how many events it carried. Batches span several members, so
    writers take overlapping sets of member locks (in primary-key order: no deadlock)."""
    kind = rng.choice(("orders", "orders", "refunds", "actions", "redeem", "replay"))
    tag = f"w{writer}-{n}"
    if kind == "orders" or not mine:
        events = [order(f"{tag}-{k}", rng.choice(members), rng.randint(1_00, 500_00)) for k in range(rng.randint(1, 5))]
        results = record_orders(events, clock=clock)
        mine.extend(events)
        return _count(outcomes, "order", results, set())
    if kind == "refunds":
        events = [RefundEvent(f"{tag}-r{k}", rng.choice(mine).order_id, rng.randint(1, 200_00),
                              MONDAY + timedelta(days=1))
                  for k in range(rng.randint(1, 3))]
        return _count(outcomes, "refund", record_refunds(events, clock=clock), {"refund_exceeds_paid"})
    if kind == "actions":
        events = [ActionEvent(f"{tag}-a{k}", rng.choice(members), rng.choice(("check_in", "share")), MONDAY, "")
                  for k in range(rng.randint(1, 5))]
        return _count(outcomes, "action", record_actions(events, clock=clock), set())
    if kind == "replay":  # one of my orders resent as it was (a replay) or for another member (a conflict)
        sent = rng.choice(mine)
        events = [sent if rng.random() < 0.5 else order(sent.order_id, rng.choice(members), sent.amount_fen)]
        return _count(outcomes, "replay", record_orders(events, clock=clock), {"exists_with_different_payload"})
    try:
        redeem_points(rng.choice(members), rng.randint(1, 50), redemption_id=tag, clock=clock)
        with lock:
            outcomes["redeem"] += 1
    except LoyaltyError as error:
        with lock:
            outcomes["redeem-refused" if error.code == "insufficient_points" else "unexpected"] += 1
    return 1


def _count(outcomes: Counter[str], name: str, results: list[Any], expected_errors: set[str]) -> int:
    with lock_outcomes:
        for result in results:
            if not isinstance(result, LoyaltyError):
                outcomes[name] += 1
            elif result.code in expected_errors:
                outcomes[f"{name}-refused"] += 1
            else:
                outcomes["unexpected"] += 1
                outcomes[f"unexpected {name}: {result.code}"] += 1
    return len(results)


lock_outcomes = threading.Lock()
