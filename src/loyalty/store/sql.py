"""Hand-written SQL for the per-event hot path, where the ORM's query compilation would cost
more than the statement itself: locking the members of a batch, finding replays, and the
stamp that tells whether the cached rulesets are current. Plain SQL that SQLite, PostgreSQL
and MariaDB all accept; values come back converted to Python types here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from django.db import connection

from loyalty.store import raw
from loyalty.store.models import Member, Order, RulesetVersion


@dataclass(slots=True)
class MemberRow:
    """The columns a posting needs; `points_debt` moves as awards pay debts within a batch."""

    id: int
    external_id: str
    birthday: date | None
    points_debt: int
    growth_balance: int


def _as_date(value: Any) -> date | None:
    return value if value is None or isinstance(value, date) else date.fromisoformat(str(value))


def _marks(count: int) -> str:
    return ", ".join(["%s"] * count)


def _rows(sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
    return raw.fetch(sql, params)


def lock_members_query(external_ids: Sequence[str]) -> raw.Query:
    """SELECT … FOR UPDATE (where the database has it) in primary-key order: no deadlocks."""
    lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
    return (f"SELECT id, external_id, birthday, points_debt, growth_balance FROM {Member._meta.db_table} "
            f"WHERE external_id IN ({_marks(len(external_ids))}) ORDER BY id{lock}", external_ids)


def member_rows(rows: Sequence[tuple[Any, ...]]) -> list[MemberRow]:
    return [MemberRow(int(i), e, _as_date(b), int(d), int(g)) for i, e, b, d, g in rows]


def lock_members(external_ids: Sequence[str]) -> list[MemberRow]:
    return member_rows(_rows(*lock_members_query(external_ids))) if external_ids else []


def recorded_orders_query(order_ids: Sequence[str]) -> raw.Query:
    """(order_id, payload_hash, member_id, growth_base, growth_bonus, points, ruleset_version).
    No join: a replay with the same payload names a member the batch has locked already."""
    return (f"SELECT order_id, payload_hash, member_id, growth_base, growth_bonus, points, ruleset_version "
            f"FROM {Order._meta.db_table} WHERE order_id IN ({_marks(len(order_ids))})", order_ids)


STAMP_QUERY: raw.Query = (f"SELECT version, checksum FROM {RulesetVersion._meta.db_table} ORDER BY version", ())


def ruleset_stamp() -> tuple[tuple[Any, ...], ...]:
    """Every version's number and checksum: changes whenever a version is published."""
    return tuple(_rows(*STAMP_QUERY))


def order_batch_reads(external_ids: Sequence[str], order_ids: Sequence[str]
                      ) -> tuple[tuple[tuple[Any, ...], ...], list[MemberRow], list[tuple[Any, ...]]]:
    """What an order batch reads first, in one round trip where the database allows: the ruleset
    stamp, the members locked, then (under the lock) the orders already recorded."""
    stamp, members, replays = raw.fetch_all([STAMP_QUERY, lock_members_query(external_ids),
                                             recorded_orders_query(order_ids)])
    return tuple(tuple(row) for row in stamp), member_rows(members), replays
