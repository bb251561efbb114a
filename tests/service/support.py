"""Small builders and checks shared by the service tests (real code, no doubles).

`snapshot()` is the "nothing was written" check: every table's row count plus every member's
cached balances. `ledger_problems()` states the balance invariants of `store.models` as data.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db.models import Sum

from loyalty.clock import Clock
from loyalty.domain.events import parse_action, parse_order, parse_refund
from loyalty.services.actions import ActionOutcome, record_action
from loyalty.services.orders import OrderOutcome, record_order
from loyalty.services.refunds import RefundOutcome, record_refund
from loyalty.store.models import (
    Action,
    Adjustment,
    LedgerEntry,
    Member,
    Order,
    OrderItem,
    PointsDebt,
    PointsLot,
    Redemption,
    Refund,
    TierChange,
)

TABLES = (Member, Order, OrderItem, Refund, Action, LedgerEntry, PointsLot, PointsDebt, TierChange,
          Adjustment, Redemption)
BALANCES = ("external_id", "tier", "tier_expires_at", "growth_balance", "points_balance", "points_debt",
            "orders_count", "paid_fen", "refunded_fen")


def order_event(order_id: str, member: str, paid_at: datetime, amount: str, items: list[dict[str, str]] | None = None):
    raw: dict[str, Any] = {"order_id": order_id, "member": member, "paid_at": paid_at.isoformat(), "amount": amount}
    if items is not None:
        raw["items"] = items
    return parse_order(raw)


def pay(order_id: str, member: str, paid_at: datetime, amount: str, clock: Clock, **kw: Any) -> OrderOutcome:
    return record_order(order_event(order_id, member, paid_at, amount, **kw), clock=clock)


def refund_event(refund_id: str, order_id: str, amount: str, refunded_at: datetime):
    return parse_refund({"refund_id": refund_id, "order_id": order_id, "amount": amount,
                         "refunded_at": refunded_at.isoformat()})


def refund(refund_id: str, order_id: str, amount: str, refunded_at: datetime, clock: Clock) -> RefundOutcome:
    return record_refund(refund_event(refund_id, order_id, amount, refunded_at), clock=clock)


def action_event(event_id: str, member: str, kind: str, at: datetime, ref: str | None = None):
    raw: dict[str, Any] = {"event_id": event_id, "member": member, "type": kind, "at": at.isoformat()}
    if ref is not None:
        raw["ref"] = ref
    return parse_action(raw)


def act(event_id: str, member: str, kind: str, at: datetime, clock: Clock, ref: str | None = None) -> ActionOutcome:
    return record_action(action_event(event_id, member, kind, at, ref), clock=clock)


def member(external_id: str) -> Member:
    return Member.objects.get(external_id=external_id)


def snapshot() -> dict[str, Any]:
    """Row counts of every table and every member's cached totals."""
    counts = {model.__name__: model.objects.count() for model in TABLES}
    members = list(Member.objects.order_by("id").values_list(*BALANCES))
    lots = list(PointsLot.objects.order_by("id").values_list("id", "remaining"))
    debts = list(PointsDebt.objects.order_by("id").values_list("id", "remaining"))
    return {"counts": counts, "members": members, "lots": lots, "debts": debts}


def _sum(queryset: Any, field: str) -> int:
    return int(queryset.aggregate(total=Sum(field))["total"] or 0)


def ledger_problems(external_id: str) -> list[str]:
    """Every way the member's cached balances disagree with the ledger, lots and debts."""
    m = member(external_id)
    growth = _sum(LedgerEntry.objects.filter(member=m, ledger="growth"), "delta")
    points = _sum(LedgerEntry.objects.filter(member=m, ledger="points"), "delta")
    lots = _sum(PointsLot.objects.filter(member=m), "remaining")
    debts = _sum(PointsDebt.objects.filter(member=m), "remaining")
    problems = []
    if m.growth_balance != growth:
        problems.append(f"growth_balance {m.growth_balance} != Σ growth entries {growth}")
    if m.points_balance != points:
        problems.append(f"points_balance {m.points_balance} != Σ points entries {points}")
    if points != lots - debts:
        problems.append(f"Σ points entries {points} != Σ lots {lots} − Σ debts {debts}")
    if m.points_debt != debts:
        problems.append(f"points_debt {m.points_debt} != Σ debts {debts}")
    if PointsLot.objects.filter(member=m, remaining__lt=0).exists():
        problems.append("a lot has remaining < 0")
    if PointsDebt.objects.filter(member=m, remaining__lt=0).exists():
        problems.append("a debt has remaining < 0")
    return problems
