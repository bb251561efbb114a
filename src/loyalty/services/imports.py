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
from loyalty.domain.events import OrderEvent, moment, parse_line, parse_origin, text_id
from loyalty.domain.growth import Line
from loyalty.services.members import register_many
from loyalty.services.orders import record_orders

COLUMNS = ("order_id", "member", "paid_at", "amount", "sku", "category", "device_id", "ip", "address_hash")
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
    """The lines of one order as read, before the order is built."""

    line: int
    row: Mapping[str, str]
    skus: list[str]
    lines: list[Line]


def parse_rows(rows: Iterable[tuple[int, Mapping[str, str]]]) -> list[tuple[int, OrderEvent]]:
    """Group lines into orders and validate each; raises ImportRefused at the first bad line."""
    drafts: dict[str, _Draft] = {}
    for line, row in rows:
        missing = [c for c in REQUIRED if not (row.get(c) or "").strip()]
        if missing:
            raise ImportRefused(line, InvalidInput(f"{missing[0]} is empty", field=missing[0]))
        draft = drafts.setdefault(row["order_id"].strip(), _Draft(line, row, [], []))
        if (draft.row["member"], draft.row["paid_at"]) != (row["member"], row["paid_at"]):
            raise ImportRefused(line, InvalidInput("lines of one order must share member and paid_at",
                                                   field="order_id"))
        try:
            sku, order_line = parse_line(row, len(draft.lines))
        except LoyaltyError as error:
            raise ImportRefused(line, error) from error
        draft.skus.append(sku)
        draft.lines.append(order_line)
    events = []
    for draft in drafts.values():
        try:
            events.append((draft.line, OrderEvent(
                text_id(draft.row, "order_id"), text_id(draft.row, "member"), moment(draft.row, "paid_at"),
                sum(line.amount_fen for line in draft.lines), tuple(draft.lines), tuple(draft.skus),
                origin=parse_origin(draft.row))))  # the optional columns, from the order's first line
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
