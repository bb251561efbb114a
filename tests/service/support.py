"""Small builders and checks shared by the service tests (real code, no doubles).

`snapshot()` is the "nothing was written" check: every table's row count plus every member's
cached balances. `ledger_problems()` states the balance invariants of `store.models` as data.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connection

from loyalty.clock import Clock
from loyalty.domain.events import parse_action, parse_order, parse_refund
from loyalty.domain.grants import coupon_code
from loyalty.services.actions import ActionOutcome, record_action
from loyalty.services.orders import OrderOutcome, record_order
from loyalty.services.refunds import RefundOutcome, record_refund
from loyalty.store.models import (
    Action,
    Adjustment,
    Coupon,
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

SHANGHAI = ZoneInfo("Asia/Shanghai")
JANUARY = (datetime(2027, 1, 1, tzinfo=SHANGHAI), datetime(2027, 2, 1, tzinfo=SHANGHAI))

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


def _rows(sql: str) -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return [tuple(row) for row in cursor.fetchall()]


def snapshot() -> dict[str, Any]:
    """Row counts of every table, every member's cached totals, every lot and debt (raw SQL: fast)."""
    counts = " UNION ALL ".join(f"SELECT '{model.__name__}', COUNT(*) FROM {model._meta.db_table}"
                                for model in TABLES)
    return {
        "counts": sorted(_rows(counts)),
        "members": _rows(f"SELECT {', '.join(BALANCES)} FROM members ORDER BY id"),
        "lots": _rows("SELECT id, remaining FROM points_lots ORDER BY id"),
        "debts": _rows("SELECT id, remaining FROM points_debts ORDER BY id"),
    }


TOTALS_SQL = """
SELECT m.external_id, m.growth_balance, m.points_balance, m.points_debt,
       m.orders_count, m.paid_fen, m.refunded_fen,
       (SELECT COALESCE(SUM(e.delta), 0) FROM ledger_entries e WHERE e.member_id = m.id AND e.ledger = 'growth'),
       (SELECT COALESCE(SUM(e.delta), 0) FROM ledger_entries e WHERE e.member_id = m.id AND e.ledger = 'points'),
       (SELECT COALESCE(SUM(l.remaining), 0) FROM points_lots l WHERE l.member_id = m.id),
       (SELECT COALESCE(SUM(d.remaining), 0) FROM points_debts d WHERE d.member_id = m.id),
       (SELECT COUNT(*) FROM points_lots l WHERE l.member_id = m.id AND l.remaining < 0),
       (SELECT COUNT(*) FROM points_debts d WHERE d.member_id = m.id AND d.remaining < 0),
       (SELECT COUNT(*) FROM orders o WHERE o.member_id = m.id),
       (SELECT COALESCE(SUM(o.amount_fen), 0) FROM orders o WHERE o.member_id = m.id),
       (SELECT COALESCE(SUM(r.amount_fen), 0) FROM refunds r WHERE r.member_id = m.id)
FROM members m ORDER BY m.id
"""


def ledger_problems_by_member() -> dict[str, list[str]]:
    """Every way each member's cached totals disagree with the ledger, lots, debts and orders."""
    found = {}
    for row in _rows(TOTALS_SQL):
        (external_id, growth_balance, points_balance, points_debt, orders_count, paid_fen, refunded_fen,
         growth, points, lots, debts, negative_lots, negative_debts, orders, paid, refunded) = row
        problems = []
        if growth_balance != growth:
            problems.append(f"growth_balance {growth_balance} != Σ growth entries {growth}")
        if points_balance != points:
            problems.append(f"points_balance {points_balance} != Σ points entries {points}")
        if points != lots - debts:
            problems.append(f"Σ points entries {points} != Σ lots {lots} − Σ debts {debts}")
        if points_debt != debts:
            problems.append(f"points_debt {points_debt} != Σ debts {debts}")
        if negative_lots or negative_debts:
            problems.append(f"{negative_lots} lots and {negative_debts} debts below zero")
        if (orders_count, paid_fen, refunded_fen) != (orders, paid, refunded):
            problems.append(f"order totals {(orders_count, paid_fen, refunded_fen)} != {(orders, paid, refunded)}")
        found[external_id] = problems
    return found


def ledger_problems(external_id: str) -> list[str]:
    return ledger_problems_by_member()[external_id]


def give_coupon(member: str, key: str, value_fen: int = 800, *, valid: tuple[datetime, datetime] = JANUARY,
                **fields: Any) -> str:
    """A monthly coupon as a grant job writes it (code derived from the key), with any other
    columns in `fields` (min_spend_fen, state, template, stacking_group, usage); answers its code."""
    code = coupon_code(key, settings.SECRET_KEY.encode())
    Coupon.objects.create(member=Member.objects.get(external_id=member), code=code, key=key, kind="monthly",
                          value_fen=value_fen, issued_at=valid[0], valid_from=valid[0], valid_until=valid[1],
                          ruleset_version=1, **fields)
    return code
