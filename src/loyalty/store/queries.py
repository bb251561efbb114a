"""Set-based reads: window metrics for many members (or one) in a few GROUP BY queries.

Each function answers {member_id: value} for one window [start, end); `start` None means the
whole history. Orders count net of refunds: an order refunded in full no longer counts. An order
or action whose credit is held or was forfeited by a review (`hold` not empty) never counts.

Plain SQL that SQLite, PostgreSQL and MariaDB all accept, sent through `raw`: a member's status
page runs these for one member on every read, where building the ORM's SQL cost several times
more than running it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from loyalty.store import raw
from loyalty.store.models import Action, LedgerEntry, Order

POINTS_EARNING_SOURCES = ("order", "refund", "check_in", "review", "share", "task", "campaign", "adjustment")
INTERACTION_TYPES = ("review", "share")
MEMBERS_PER_QUERY = 5_000  # well under every backend's limit on a statement's parameters

ORDERS = Order._meta.db_table
ENTRIES = LedgerEntry._meta.db_table
ACTIONS = Action._meta.db_table


def _marks(count: int) -> str:
    return ", ".join(["%s"] * count)


def _where(column: str, start: datetime | None, end: datetime, members: Sequence[int] | None
           ) -> tuple[str, list[Any]]:
    """`column` within [start, end), and the member filter, as SQL and its parameters."""
    clauses, params = [f"{column} < %s"], [raw.datetime_param(end)]
    if start is not None:
        clauses.append(f"{column} >= %s")
        params.append(raw.datetime_param(start))
    if members is not None:
        clauses.append(f"member_id IN ({_marks(len(members))})")
        params.extend(members)
    return " AND ".join(clauses), params


Build = Callable[[Sequence[int] | None], raw.Query]


def _rows(build: Build, member_ids: Sequence[int] | None) -> list[tuple[Any, ...]]:
    """`build(members)` gives (sql, params) for a chunk of members (None: all); their rows, together."""
    if member_ids is None:
        return raw.fetch(*build(None))
    ids = list(member_ids)
    rows: list[tuple[Any, ...]] = []
    for start in range(0, len(ids), MEMBERS_PER_QUERY):
        rows += raw.fetch(*build(ids[start:start + MEMBERS_PER_QUERY]))
    return rows


def order_metrics(start: datetime | None, end: datetime, member_ids: Sequence[int] | None = None
                  ) -> dict[int, tuple[int, int, int]]:
    """(orders, amount_fen, max_single_order_fen) per member, net of refunds."""
    def build(members: Sequence[int] | None) -> raw.Query:
        where, params = _where("paid_at", start, end, members)
        return (f"SELECT member_id, SUM(CASE WHEN amount_fen > refunded_fen THEN 1 ELSE 0 END), "
                f"SUM(amount_fen - refunded_fen), MAX(amount_fen - refunded_fen) "
                f"FROM {ORDERS} WHERE {where} AND hold = '' GROUP BY member_id", params)

    return {int(m): (int(o or 0), int(a or 0), int(x or 0)) for m, o, a, x in _rows(build, member_ids)}


def ledger_sums(ledger: str, start: datetime | None, end: datetime, member_ids: Sequence[int] | None = None,
                sources: Sequence[str] | None = None) -> dict[int, int]:
    def build(members: Sequence[int] | None) -> raw.Query:
        where, params = _where("occurred_at", start, end, members)
        where += " AND ledger = %s"
        params.append(ledger)
        if sources is not None:
            where += f" AND source IN ({_marks(len(sources))})"
            params.extend(sources)
        return f"SELECT member_id, SUM(delta) FROM {ENTRIES} WHERE {where} GROUP BY member_id", params

    return {int(m): int(t or 0) for m, t in _rows(build, member_ids)}


def interactions(start: datetime | None, end: datetime, member_ids: Sequence[int] | None = None) -> dict[int, int]:
    """Reviews and shares that counted (not capped)."""
    def build(members: Sequence[int] | None) -> raw.Query:
        where, params = _where("at", start, end, members)
        return (f"SELECT member_id, COUNT(*) FROM {ACTIONS} WHERE {where} "
                f"AND type IN ({_marks(len(INTERACTION_TYPES))}) AND capped_reason = '' AND hold = '' "
                f"GROUP BY member_id",
                [*params, *INTERACTION_TYPES])

    return {int(m): int(n) for m, n in _rows(build, member_ids)}


def active_days(start: datetime | None, end: datetime, member_ids: Sequence[int] | None = None) -> dict[int, int]:
    """Distinct local days with an order or an action."""
    def build(members: Sequence[int] | None) -> raw.Query:
        orders_where, orders_params = _where("paid_at", start, end, members)
        actions_where, actions_params = _where("at", start, end, members)
        return (f"SELECT member_id, COUNT(*) FROM ("
                f"SELECT member_id, business_date FROM {ORDERS} WHERE {orders_where} AND hold = '' UNION "
                f"SELECT member_id, business_date FROM {ACTIONS} WHERE {actions_where} AND hold = '') days "
                f"GROUP BY member_id",
                orders_params + actions_params)

    return {int(m): int(n) for m, n in _rows(build, member_ids)}
