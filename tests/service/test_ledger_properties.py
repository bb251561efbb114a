"""Random sequences of everything that moves value, checked against the ledger's invariants.

Each example starts from empty member tables (hypothesis reuses the test's database, so the
example clears it itself) and two members. After every step, for every member:
    growth_balance == Σ growth entries
    points_balance == Σ points entries == Σ lots.remaining − points_debt
    points_debt    == Σ debts.remaining,  no lot or debt below zero
and the cached order totals equal the orders and refunds. A refused or replayed command
changes nothing at all; a full refund leaves the order's growth (and points) netted to zero.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from typing import Any

import pytest
from django.db.models import F, Q, Sum
from hypothesis import HealthCheck, given, settings
from hypothesis import event as observe
from hypothesis import strategies as st

from loyalty.clock import FixedClock
from loyalty.domain.errors import Conflict, InvalidInput, NotFound, Refused
from loyalty.domain.events import ActionEvent, OrderEvent, RefundEvent
from loyalty.domain.growth import Line
from loyalty.services.actions import record_action
from loyalty.services.adjustments import adjust
from loyalty.services.members import register_member
from loyalty.services.orders import record_order, record_orders
from loyalty.services.points import expire_points, redeem_points
from loyalty.services.refunds import record_refund
from loyalty.store.models import (
    Action,
    Adjustment,
    LedgerEntry,
    Member,
    Order,
    OrderItem,
    OutboxEvent,
    PointsDebt,
    PointsLot,
    Redemption,
    Refund,
    TierChange,
    WebhookDelivery,
)
from tests.conftest import at
from tests.service.support import ledger_problems_by_member, snapshot

MEMBERS = ("p0", "p1")
START = at("2026-11-20 10:00")  # the walk crosses a year end: lots expire, a birthday passes

member_ix = st.integers(0, len(MEMBERS) - 1)
pick = st.integers(0, 10_000)
OPERATIONS = st.one_of(
    st.tuples(st.just("advance"), st.integers(1, 24 * 5)),
    st.tuples(st.just("advance"), st.sampled_from([24, 24 * 8, 24 * 15])),
    st.tuples(st.just("order"), member_ix, st.integers(1, 60_000), st.integers(0, 100)),
    st.tuples(st.just("order"), member_ix, st.integers(25_000, 200_000), st.integers(0, 100)),
    st.tuples(st.just("batch"), member_ix, st.integers(1, 60_000), pick),
    st.tuples(st.just("refund"), pick, st.integers(1, 100)),
    st.tuples(st.just("refund"), pick, st.just(100)),
    st.tuples(st.just("over_refund"), pick),
    st.tuples(st.just("spend_then_refund"), member_ix),
    st.tuples(st.just("action"), member_ix, st.sampled_from(["check_in", "review", "share"]), pick),
    st.tuples(st.just("redeem"), member_ix, st.integers(1, 150), st.sampled_from([0, 8])),
    st.tuples(st.just("redeem"), member_ix, st.integers(1, 150), st.sampled_from([0, 8])),
    st.tuples(st.just("adjust"), member_ix, st.sampled_from(["growth", "points"]),
              st.integers(-150, 150).filter(bool)),
    st.tuples(st.just("expire")),
    st.tuples(st.just("replay"), pick),
    st.tuples(st.just("conflict"), pick),
    st.tuples(st.just("bad"), member_ix, pick),
)


@dataclass
class Done:
    """A command that succeeded: how to send it again, and how to send it changed."""

    send: Callable[[], Any]
    send_changed: Callable[[], Any]
    outcome: Any


@dataclass
class Walk:
    clock: FixedClock
    policy: str
    done: list[Done] = field(default_factory=list)
    orders: list[OrderEvent] = field(default_factory=list)
    serial: int = 0

    def next_id(self, prefix: str) -> str:
        self.serial += 1
        return f"{prefix}{self.serial}"


def clear_tables() -> None:
    """Delete every member-owned row, children first (the tests' database outlives an example)."""
    LedgerEntry.objects.update(reverses=None)
    for model in (WebhookDelivery, OutboxEvent, Refund, OrderItem, Action, Adjustment, Redemption, TierChange,
                  PointsDebt, PointsLot, LedgerEntry, Order, Member):
        model.objects.all().delete()


def unchanged(call: Callable[[], Any], error: type[Exception]) -> Exception:
    """Run a command that must fail with `error` and write nothing; returns the error."""
    before = snapshot()
    with pytest.raises(error) as caught:
        call()
    assert snapshot() == before
    return caught.value


def spendable(external_id: str, now: Any) -> int:
    lots = PointsLot.objects.filter(member__external_id=external_id, remaining__gt=0, available_at__lte=now)
    return sum(lot.remaining for lot in lots if lot.expires_at is None or lot.expires_at > now)


def netted(order_id: str, ledger: str) -> int:
    """What the order's entries and its refunds' entries add up to on one ledger."""
    refund_ids = list(Refund.objects.filter(order_id=order_id).values_list("refund_id", flat=True))
    own = LedgerEntry.objects.filter(ledger=ledger, idempotency_key=f"order:{order_id}:{ledger}")
    back = LedgerEntry.objects.filter(ledger=ledger, source="refund", reference__in=refund_ids)
    return int((own.aggregate(s=Sum("delta"))["s"] or 0) + (back.aggregate(s=Sum("delta"))["s"] or 0))


# --- the operations -------------------------------------------------------------------------

def do_order(walk: Walk, who: int, amount_fen: int, fresh_percent: int) -> None:
    fresh = amount_fen * fresh_percent // 100
    lines = tuple(line for line in (Line("fresh", fresh), Line(None, amount_fen - fresh)) if line.amount_fen)
    event = OrderEvent(walk.next_id("o"), MEMBERS[who], walk.clock.now(), amount_fen, lines,
                       tuple(f"sku{i}" for i in range(len(lines))))
    outcome = record_order(event, clock=walk.clock)
    assert not outcome.replayed and outcome.growth >= 0 and outcome.points >= 0
    walk.orders.append(event)
    walk.done.append(Done(lambda: record_order(event, clock=walk.clock),
                          lambda: record_order(replace(event, amount_fen=amount_fen + 1), clock=walk.clock),
                          outcome))


def do_batch(walk: Walk, who: int, amount_fen: int, which: int) -> None:
    """A batch: a new order, a duplicate of it, an unknown member, and a replay of an old order."""
    event = OrderEvent(walk.next_id("o"), MEMBERS[who], walk.clock.now(), amount_fen,
                       (Line(None, amount_fen),), ("",))
    events = [event, event, replace(event, order_id=walk.next_id("o"), member="ghost")]
    if walk.orders:
        events.append(walk.orders[which % len(walk.orders)])
    results = record_orders(events, clock=walk.clock)
    assert not results[0].replayed and results[1] == replace(results[0], replayed=True)
    assert isinstance(results[2], NotFound) and results[2].code == "unknown_member"
    assert all(result.replayed for result in results[3:])
    assert not Order.objects.filter(order_id=events[2].order_id).exists()
    walk.orders.append(event)
    walk.done.append(Done(lambda: record_order(event, clock=walk.clock),
                          lambda: record_order(replace(event, paid_at=event.paid_at + timedelta(seconds=1)),
                                               clock=walk.clock),
                          results[0]))


def do_refund(walk: Walk, which: int, percent: int) -> None:
    if not walk.orders:
        return
    order = Order.objects.get(order_id=walk.orders[which % len(walk.orders)].order_id)
    left = order.amount_fen - order.refunded_fen
    amount_fen = max(1, left if percent == 100 else left * percent // 100)
    event = RefundEvent(walk.next_id("r"), order.order_id, amount_fen, walk.clock.now())
    if left == 0:  # a refund after a full refund
        error = unchanged(lambda: record_refund(event, clock=walk.clock), Refused)
        assert error.code == "refund_exceeds_paid"
        return
    growth_before = Member.objects.get(id=order.member_id).growth_balance
    outcome = record_refund(event, clock=walk.clock)
    growth_after = Member.objects.get(id=order.member_id).growth_balance
    if outcome.points_debt_created or outcome.points_written_off:
        observe("a refund met points already spent")
    assert growth_after == growth_before - outcome.growth_reversed
    walk.done.append(Done(lambda: record_refund(event, clock=walk.clock),
                          lambda: record_refund(replace(event, amount_fen=amount_fen + 1), clock=walk.clock),
                          outcome))
    if amount_fen == left:  # now fully refunded: the order's growth is back where it started
        observe("an order was refunded in full")
        left_growth = order.growth_base + order.growth_bonus - order.growth_reversed
        assert growth_after == growth_before - left_growth
        assert netted(order.order_id, "growth") == 0
        # Points that could not be taken back were written off (within_balance), or had already
        # expired (gone once, never taken twice), and only those.
        written_off = Refund.objects.filter(order_id=order.order_id).aggregate(s=Sum("points_written_off"))["s"]
        expired = -(LedgerEntry.objects.filter(idempotency_key=f"expiry:order:{order.order_id}:points")
                    .aggregate(s=Sum("delta"))["s"] or 0)
        assert netted(order.order_id, "points") == written_off + expired


def do_spend_then_refund(walk: Walk, who: int) -> None:
    """Buy, wait until the points are spendable, spend them all, then refund the order in full:
    the refund meets points already spent (a debt, or a write-off)."""
    do_order(walk, who, 10_000, 0)
    walk.clock.advance(days=8)
    do_redeem(walk, who, 100, 0)
    do_refund(walk, len(walk.orders) - 1, 100)


def do_over_refund(walk: Walk, which: int) -> None:
    if not walk.orders:
        return
    order = Order.objects.get(order_id=walk.orders[which % len(walk.orders)].order_id)
    event = RefundEvent(walk.next_id("r"), order.order_id, order.amount_fen - order.refunded_fen + 1,
                        walk.clock.now())
    assert unchanged(lambda: record_refund(event, clock=walk.clock), Refused).code == "refund_exceeds_paid"


def do_action(walk: Walk, who: int, kind: str, which: int) -> None:
    ref = ""
    if kind == "review":
        own = [o.order_id for o in walk.orders if o.member == MEMBERS[who]]
        if not own:
            return
        ref = own[which % len(own)]
    event = ActionEvent(walk.next_id("e"), MEMBERS[who], kind, walk.clock.now(), ref)
    outcome = record_action(event, clock=walk.clock)
    if outcome.capped_reason:  # a capped action is recorded and credits nothing
        assert (outcome.growth, outcome.points) == (0, 0)
    assert Action.objects.filter(event_id=event.event_id, capped_reason=outcome.capped_reason).exists()
    walk.done.append(Done(lambda: record_action(event, clock=walk.clock),
                          lambda: record_action(replace(event, at=event.at + timedelta(seconds=1)),
                                                clock=walk.clock),
                          outcome))


def do_redeem(walk: Walk, who: int, percent: int, days_later: int) -> None:
    """Redeem `percent` of what is spendable then (over 100: more than there is)."""
    walk.clock.advance(days=days_later)
    external_id, redemption_id = MEMBERS[who], walk.next_id("x")
    points = max(1, spendable(external_id, walk.clock.now()) * percent // 100)

    def send(n: int = points) -> Any:
        return redeem_points(external_id, n, redemption_id=redemption_id, clock=walk.clock)

    if points > spendable(external_id, walk.clock.now()):
        assert unchanged(send, Refused).code == "insufficient_points"
        return
    walk.done.append(Done(send, lambda: send(points + 1), send()))
    observe("points were redeemed")


def do_adjust(walk: Walk, who: int, ledger: str, percent: int) -> None:
    """Credit or debit `percent` of the member's balance (at least 1; debits may overdraw)."""
    external_id, adjustment_id = MEMBERS[who], walk.next_id("a")
    member = Member.objects.get(external_id=external_id)
    base = member.growth_balance if ledger == "growth" else spendable(external_id, walk.clock.now())
    delta = max(1, abs(base) * abs(percent) // 100) * (1 if percent > 0 else -1)

    def send(d: int = delta) -> Any:
        return adjust(external_id, ledger, d, reason="property walk", actor="ops",
                      adjustment_id=adjustment_id, clock=walk.clock)

    if ledger == "growth" and member.growth_balance + delta < 0:
        assert unchanged(send, Refused).code == "insufficient_growth"
        return
    if ledger == "points" and -delta > spendable(external_id, walk.clock.now()):
        assert unchanged(send, Refused).code == "insufficient_points"
        return
    walk.done.append(Done(send, lambda: send(delta * 2), send()))


def do_expire(walk: Walk) -> None:
    now = walk.clock.now()
    if expire_points(now, clock=walk.clock):
        observe("points expired")
    assert not PointsLot.objects.filter(remaining__gt=0, expires_at__lte=now).exists()
    before = snapshot()
    assert expire_points(now, clock=walk.clock) == 0
    assert snapshot() == before


def do_replay(walk: Walk, which: int) -> None:
    if not walk.done:
        return
    done = walk.done[which % len(walk.done)]
    before = snapshot()
    assert done.send() == replace(done.outcome, replayed=True)
    assert snapshot() == before


def do_conflict(walk: Walk, which: int) -> None:
    if not walk.done:
        return
    error = unchanged(walk.done[which % len(walk.done)].send_changed, Conflict)
    assert error.code == "exists_with_different_payload"


def do_bad(walk: Walk, who: int, which: int) -> None:
    """Input the service must refuse, naming what is wrong, without writing anything."""
    now = walk.clock.now()
    choice = which % 4
    if choice == 0 or not walk.orders:
        event = OrderEvent(walk.next_id("o"), "ghost", now, 100, (Line(None, 100),), ("",))
        assert unchanged(lambda: record_order(event, clock=walk.clock), NotFound).code == "unknown_member"
        return
    order = walk.orders[which % len(walk.orders)]
    if choice == 1:
        event = RefundEvent(walk.next_id("r"), order.order_id, 1, order.paid_at - timedelta(minutes=1))
        assert unchanged(lambda: record_refund(event, clock=walk.clock), InvalidInput).field == "refunded_at"
    elif choice == 2:
        event = RefundEvent(walk.next_id("r"), walk.next_id("missing"), 1, now)
        assert unchanged(lambda: record_refund(event, clock=walk.clock), NotFound).code == "unknown_order"
    else:
        stranger = next(m for m in MEMBERS if m != order.member)
        event = ActionEvent(walk.next_id("e"), stranger, "review", now, order.order_id)
        assert unchanged(lambda: record_action(event, clock=walk.clock), NotFound).field == "ref"


def step(walk: Walk, operation: tuple[Any, ...]) -> None:
    kind, *args = operation
    if kind == "advance":
        walk.clock.advance(hours=args[0])
        return
    handlers: dict[str, Callable[..., None]] = {
        "order": do_order, "batch": do_batch, "refund": do_refund, "over_refund": do_over_refund,
        "spend_then_refund": do_spend_then_refund,
        "action": do_action, "redeem": do_redeem, "adjust": do_adjust, "expire": do_expire,
        "replay": do_replay, "conflict": do_conflict, "bad": do_bad,
    }
    handlers[kind](walk, *args)


def check_invariants(walk: Walk) -> None:
    assert ledger_problems_by_member() == {external_id: [] for external_id in MEMBERS}
    assert not Order.objects.filter(refunded_fen__gt=F("amount_fen")).exists()
    if walk.policy == "within_balance":  # nothing is ever owed: spent points are written off
        assert not Member.objects.filter(Q(points_balance__lt=0) | Q(points_debt__gt=0)).exists()
    elif PointsDebt.objects.filter(remaining__lt=F("amount")).exists():
        observe("an award paid off a debt")


@pytest.mark.parametrize("policy", [
    pytest.param({"name": "allow_debt"}, id="allow_debt"),
    pytest.param({"name": "within_balance", "risk": {"daily_growth_cap": 1000}}, id="within_balance_capped"),
])
def test_random_ledger_walks_keep_every_balance_equal_to_its_entries(publish, policy):
    overrides: dict[str, Any] = {"points": {"return_policy": policy["name"]}}
    if "risk" in policy:
        overrides["risk"] = policy["risk"]
    publish("default", **overrides)

    @settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                    HealthCheck.too_slow])
    @given(st.lists(OPERATIONS, min_size=15, max_size=40))
    def walk_through(operations: list[tuple[Any, ...]]) -> None:
        clear_tables()
        assert all(count == 0 for name, count in snapshot()["counts"]), "the last example left rows behind"
        walk = Walk(FixedClock(START), policy["name"])
        for index, external_id in enumerate(MEMBERS):
            register_member(external_id, birthday=date(1990, 1, 1) if index == 0 else None, clock=walk.clock)
        for operation in operations:
            step(walk, operation)
            check_invariants(walk)

    walk_through()
