"""The baseline: the rows a recorded order leaves behind, written with the stdlib `sqlite3` module.

Per order: the order row, its item rows, two ledger entries (growth and points), one points lot,
and the member totals UPDATE (all six cached columns, as the service writes them). Values are
computed before the clock starts (growth and points as a plain yuan floor, datetimes in the
string form Django's SQLite backend stores), so the baseline is the bare cost of the writes:
the floor a service can approach, never beat.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from bench.workload import SHANGHAI

ORDER_SQL = (
    "INSERT INTO orders (order_id, member_id, paid_at, business_date, amount_fen, growth_base, growth_bonus,"
    " points, ruleset_version, payload_hash, recorded_at, refunded_fen, growth_reversed, points_reversed, quote_id)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, 0, 0, '')")
ITEM_SQL = "INSERT INTO order_items (order_ref, member_id, sku, category, amount_fen) VALUES (?, ?, ?, ?, ?)"
ENTRY_SQL = (
    "INSERT INTO ledger_entries (member_id, ledger, delta, source, reference, idempotency_key, reverses_id,"
    " ruleset_version, occurred_at, business_date, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
LOT_SQL = (
    "INSERT INTO points_lots (member_id, key, source, reference, points, remaining, earned_at, available_at,"
    " expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)")
TOTALS_SQL = (
    "UPDATE members SET growth_balance = growth_balance + ?, points_balance = points_balance + ?,"
    " points_debt = points_debt + ?, orders_count = orders_count + ?, paid_fen = paid_fen + ?,"
    " refunded_fen = refunded_fen + ? WHERE id = ?")
MEMBER_SQL = (
    "INSERT INTO members (external_id, tier, tier_reached_at, registered_at, payload_hash, invited,"
    " growth_balance, points_balance, points_debt, orders_count, paid_fen, refunded_fen)"
    " VALUES (?, 'bronze', ?, ?, ?, 0, 0, 0, 0, 0, 0, 0)")


def stamp(moment: datetime) -> str:
    """A datetime as Django's SQLite backend stores it: naive UTC, ISO with a space."""
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ")


@dataclass(frozen=True)
class OrderRows:
    member_id: int
    order: tuple[Any, ...]
    items: list[tuple[Any, ...]]
    entries: list[tuple[Any, ...]]
    lot: tuple[Any, ...]
    totals: tuple[int, ...]  # the six deltas, then the member id


def rows_for(order_id: str, member_id: int, paid_at: datetime, amount_fen: int,
             lines: Sequence[tuple[str, str, int]], recorded_at: Any, zone: ZoneInfo = SHANGHAI,
             moment: Callable[[datetime], Any] = stamp, on_day: Callable[[date], Any] = date.isoformat) -> OrderRows:
    """The rows one order writes; `lines` are (sku, category, amount_fen). `moment` and `on_day` put
    datetimes and dates in the driver's form (SQLite text by default; the server benchmarks pass
    their own), `recorded_at` already in that form."""
    day = on_day(paid_at.astimezone(zone).date())
    paid = moment(paid_at)
    earned = amount_fen // 100
    digest = hashlib.sha256(order_id.encode()).hexdigest()
    key = f"order:{order_id}"
    year_end = moment(datetime(paid_at.astimezone(zone).year + 1, 1, 1, tzinfo=zone))
    return OrderRows(
        member_id,
        (order_id, member_id, paid, day, amount_fen, earned, 0, earned, 1, digest, recorded_at),
        [(order_id, member_id, sku, category, fen) for sku, category, fen in lines],
        [(member_id, "growth", earned, "order", order_id, f"{key}:growth", None, 1, paid, day, recorded_at),
         (member_id, "points", earned, "order", order_id, f"{key}:points", None, 1, paid, day, recorded_at)],
        (member_id, f"{key}:points", "order", order_id, earned, earned, paid,
         moment(paid_at + timedelta(days=7)), year_end),
        (earned, earned, 0, 1, amount_fen, 0, member_id),
    )


def rows_for_events(events: Iterable[Any], member_ids: dict[str, int], recorded_at: datetime,
                    moment: Callable[[datetime], Any] = stamp, on_day: Callable[[date], Any] = date.isoformat
                    ) -> list[OrderRows]:
    """Baseline rows for parsed `OrderEvent`s (`moment`, `on_day`: as for `rows_for`)."""
    at = moment(recorded_at)
    rows = []
    for event in events:
        lines = [(sku, line.category or "", line.amount_fen)
                 for sku, line in zip(event.skus, event.lines, strict=True)]
        rows.append(rows_for(event.order_id, member_ids[event.member], event.paid_at, event.amount_fen, lines, at,
                             moment=moment, on_day=on_day))
    return rows


def write_one(conn: sqlite3.Connection, rows: OrderRows) -> None:
    """One order, one transaction."""
    conn.execute("BEGIN IMMEDIATE")
    conn.execute(ORDER_SQL, rows.order)
    conn.executemany(ITEM_SQL, rows.items)
    conn.executemany(ENTRY_SQL, rows.entries)
    conn.execute(LOT_SQL, rows.lot)
    conn.execute(TOTALS_SQL, rows.totals)
    conn.execute("COMMIT")


def write_batch(conn: sqlite3.Connection, batch: Sequence[OrderRows]) -> None:
    """Many orders, one transaction, one `executemany` per statement; totals summed per member."""
    totals: dict[int, list[int]] = defaultdict(lambda: [0] * 6)
    for rows in batch:
        row = totals[rows.member_id]
        for index, delta in enumerate(rows.totals[:6]):
            row[index] += delta
    conn.execute("BEGIN IMMEDIATE")
    conn.executemany(ORDER_SQL, [rows.order for rows in batch])
    conn.executemany(ITEM_SQL, [item for rows in batch for item in rows.items])
    conn.executemany(ENTRY_SQL, [entry for rows in batch for entry in rows.entries])
    conn.executemany(LOT_SQL, [rows.lot for rows in batch])
    conn.executemany(TOTALS_SQL, [(*deltas, member_id) for member_id, deltas in sorted(totals.items())])
    conn.execute("COMMIT")


def write_batches(conn: sqlite3.Connection, rows: Sequence[OrderRows], size: int = 1000) -> None:
    for start in range(0, len(rows), size):
        write_batch(conn, rows[start:start + size])


def register(conn: sqlite3.Connection, first_seen: dict[str, datetime]) -> dict[str, int]:
    """Insert members (one transaction) and answer their ids."""
    conn.execute("BEGIN IMMEDIATE")
    conn.executemany(MEMBER_SQL, [
        (name, stamp(at), stamp(at), hashlib.sha256(name.encode()).hexdigest()) for name, at in first_seen.items()])
    conn.execute("COMMIT")
    return dict(conn.execute("SELECT external_id, id FROM members"))
