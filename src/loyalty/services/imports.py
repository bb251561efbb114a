"""Importing order history: every row is checked first, then the file goes in whole or not at all.

Rows that share an `order_id` are the lines of one order (amount = the sum of its lines).
Members not yet registered are registered as of their first order. Re-importing the same file
is a replay: nothing changes. Orders are recorded in batches of 1,000, in `paid_at` order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from django.db import transaction

from loyalty.clock import Clock, system_clock
from loyalty.domain.errors import InvalidInput, LoyaltyError
from loyalty.domain.events import OrderEvent, parse_order
from loyalty.domain.money import format_fen, parse_yuan
from loyalty.services.members import register_many
from loyalty.services.orders import record_orders

COLUMNS = ("order_id", "member", "paid_at", "amount", "sku", "category")
REQUIRED = ("order_id", "member", "paid_at", "amount")
BATCH = 1000


class ImportRefused(InvalidInput):
    """A row is wrong; `line` is its line number in the file (the header is line 1)."""

    code = "import_refused"

    def __init__(self, line: int, error: LoyaltyError):
        self.line = line
        super().__init__(f"line {line}: {error.field or 'row'}: {error.message}", field=error.field)


@dataclass
class ImportSummary:
    orders: int = 0
    replayed: int = 0
    members_registered: int = 0
    growth: int = 0
    points: int = 0


@dataclass
class _Draft:
    """The lines of one order as read, before the order is parsed."""

    line: int
    member: str
    paid_at: str
    items: list[dict[str, str | None]]
    amount_fen: int = 0


def parse_rows(rows: Iterable[tuple[int, Mapping[str, str]]]) -> list[tuple[int, OrderEvent]]:
    """Group lines into orders and validate each; raises ImportRefused at the first bad line."""
    drafts: dict[str, _Draft] = {}
    for line, row in rows:
        missing = [c for c in REQUIRED if not (row.get(c) or "").strip()]
        if missing:
            raise ImportRefused(line, InvalidInput(f"{missing[0]} is empty", field=missing[0]))
        try:
            amount_fen = parse_yuan(row["amount"], field="amount")
        except LoyaltyError as error:
            raise ImportRefused(line, error) from error
        draft = drafts.setdefault(row["order_id"].strip(), _Draft(line, row["member"], row["paid_at"], []))
        if (draft.member, draft.paid_at) != (row["member"], row["paid_at"]):
            raise ImportRefused(line, InvalidInput("lines of one order must share member and paid_at",
                                                   field="order_id"))
        draft.items.append({"sku": row.get("sku") or None, "category": row.get("category") or "",
                            "amount": format_fen(amount_fen)})
        draft.amount_fen += amount_fen
    events = []
    for order_id, draft in drafts.items():
        raw = {"order_id": order_id, "member": draft.member, "paid_at": draft.paid_at,
               "amount": format_fen(draft.amount_fen), "items": draft.items}
        try:
            events.append((draft.line, parse_order(raw)))
        except LoyaltyError as error:
            raise ImportRefused(draft.line, error) from error
    events.sort(key=lambda pair: (pair[1].paid_at, pair[0]))
    return events


def import_orders(events: list[tuple[int, OrderEvent]], *, clock: Clock = system_clock,
                  progress: Callable[[int], None] | None = None) -> ImportSummary:
    """Record parsed orders in one transaction (a savepoint per batch); any error refuses all."""
    summary = ImportSummary()
    with transaction.atomic():
        summary.members_registered = _register_missing(events, clock)
        for start in range(0, len(events), BATCH):
            batch = events[start:start + BATCH]
            for (line, _), result in zip(batch, record_orders([e for _, e in batch], clock=clock), strict=True):
                if isinstance(result, LoyaltyError):
                    raise ImportRefused(line, result)
                summary.replayed += result.replayed
                summary.orders += not result.replayed
                summary.growth += 0 if result.replayed else result.growth
                summary.points += 0 if result.replayed else result.points
            if progress:
                progress(len(batch))
    return summary


def _register_missing(events: list[tuple[int, OrderEvent]], clock: Clock) -> int:
    first_seen: dict[str, datetime] = {}
    for _, event in events:
        first_seen.setdefault(event.member, event.paid_at)  # events are in paid_at order
    return register_many(first_seen, clock=clock)
