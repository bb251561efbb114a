"""Set-based reads: window metrics for many members in a few GROUP BY queries.

Each function answers {member_id: value} for one window [start, end); `start` None means the
whole history. Orders count net of refunds: an order refunded in full no longer counts.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from django.db import connection
from django.db.models import Case, Count, F, IntegerField, Max, Q, QuerySet, Sum, When

from loyalty.store.models import Action, LedgerEntry, Order

POINTS_EARNING_SOURCES = ("order", "refund", "check_in", "review", "share", "task", "campaign", "adjustment")


def _window(field: str, start: datetime | None, end: datetime, member_ids: Sequence[int] | None) -> Q:
    q = Q(**{f"{field}__lt": end})
    if start is not None:
        q &= Q(**{f"{field}__gte": start})
    if member_ids is not None:
        q &= Q(member_id__in=list(member_ids))
    return q


def order_metrics(start: datetime | None, end: datetime, member_ids: Sequence[int] | None = None
                  ) -> dict[int, tuple[int, int, int]]:
    """(orders, amount_fen, max_single_order_fen) per member, net of refunds."""
    net = F("amount_fen") - F("refunded_fen")
    rows = (Order.objects.filter(_window("paid_at", start, end, member_ids)).values("member_id")
            .annotate(orders=Sum(Case(When(amount_fen__gt=F("refunded_fen"), then=1), default=0,
                                      output_field=IntegerField())),
                      amount=Sum(net), largest=Max(net))
            .values_list("member_id", "orders", "amount", "largest"))
    return {m: (int(o or 0), int(a or 0), int(x or 0)) for m, o, a, x in rows}


def ledger_sums(ledger: str, start: datetime | None, end: datetime, member_ids: Sequence[int] | None = None,
                sources: Sequence[str] | None = None) -> dict[int, int]:
    q = _window("occurred_at", start, end, member_ids) & Q(ledger=ledger)
    if sources is not None:
        q &= Q(source__in=list(sources))
    rows = LedgerEntry.objects.filter(q).values("member_id").annotate(total=Sum("delta")).values_list(
        "member_id", "total")
    return {m: int(t or 0) for m, t in rows}


def interactions(start: datetime | None, end: datetime, member_ids: Sequence[int] | None = None) -> dict[int, int]:
    """Reviews and shares that counted (not capped)."""
    q = _window("at", start, end, member_ids) & Q(type__in=["review", "share"], capped_reason="")
    rows = Action.objects.filter(q).values("member_id").annotate(n=Count("id")).values_list("member_id", "n")
    return dict(rows)


def active_days(start: datetime | None, end: datetime, member_ids: Sequence[int] | None = None) -> dict[int, int]:
    """Distinct local days with an order or an action."""
    def days(qs: QuerySet[Any], field: str) -> tuple[str, list[Any]]:
        query = qs.filter(_window(field, start, end, member_ids)).values("member_id", "business_date").query
        sql, params = query.sql_with_params()
        return sql, list(params)

    orders_sql, orders_params = days(Order.objects.all(), "paid_at")
    actions_sql, actions_params = days(Action.objects.all(), "at")
    sql = (f"SELECT member_id, COUNT(*) FROM ({orders_sql} UNION {actions_sql}) days GROUP BY member_id")
    with connection.cursor() as cursor:
        cursor.execute(sql, orders_params + actions_params)
        return {int(m): int(n) for m, n in cursor.fetchall()}
