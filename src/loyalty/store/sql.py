"""Hand-written SQL for the per-event hot path, where the ORM's query compilation would cost
more than the statement itself: locking the members of a batch, finding replays, and the
stamp that tells whether the cached rulesets are current. Plain SQL that SQLite, PostgreSQL
and MariaDB all accept; values come back converted to Python types here.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from django.db import connection

from loyalty.store import raw
from loyalty.store.models import ApiKey, LedgerEntry, Member, Order, PointsLot, RulesetVersion, TierChange


@dataclass(slots=True)
class MemberRow:
    """The columns a posting needs; `points_debt` moves as awards pay debts within a batch. The
    tier and when it was reached tell whether the member was upgraded recently."""

    id: int
    external_id: str
    birthday: date | None
    points_debt: int
    growth_balance: int
    tier: str
    tier_reached_at: datetime | None
    held_since: datetime | None = None  # under review: what it earns now is withheld (services.holds)


def _as_date(value: Any) -> date | None:
    return value if value is None or isinstance(value, date) else date.fromisoformat(str(value))


def _marks(count: int) -> str:
    return ", ".join(["%s"] * count)


def _rows(sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
    return raw.fetch(sql, params)


def lock_members_query(external_ids: Sequence[str]) -> raw.Query:
    """SELECT … FOR UPDATE (where the database has it) in primary-key order: no deadlocks."""
    lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
    return (f"SELECT id, external_id, birthday, points_debt, growth_balance, tier, tier_reached_at, held_since "
            f"FROM {Member._meta.db_table} "
            f"WHERE external_id IN ({_marks(len(external_ids))}) ORDER BY id{lock}", external_ids)


def member_rows(rows: Sequence[tuple[Any, ...]]) -> list[MemberRow]:
    read = raw.read_datetime
    return [MemberRow(int(i), e, _as_date(b), int(d), int(g), t, read(r), read(h)) for i, e, b, d, g, t, r, h in rows]


def lock_members(external_ids: Sequence[str]) -> list[MemberRow]:
    return member_rows(_rows(*lock_members_query(external_ids))) if external_ids else []


def recorded_orders_query(order_ids: Sequence[str]) -> raw.Query:
    """(order_id, payload_hash, member_id, growth_base, growth_bonus, points, ruleset_version,
    capped_reason). No join: a replay with the same payload names a member the batch has locked already."""
    return (f"SELECT order_id, payload_hash, member_id, growth_base, growth_bonus, points, ruleset_version, "
            f"capped_reason "
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


def orders_since_upgrade(member_ids: Sequence[int]) -> dict[int, int]:
    """Of these members, those whose tier was reached by an upgrade (the tier change at their
    `tier_reached_at` is one), with how many of their recorded orders were paid since. Asked by
    an order batch only for members upgraded recently, under a ruleset that rewards it."""
    if not member_ids:
        return {}
    members, changes, orders = Member._meta.db_table, TierChange._meta.db_table, Order._meta.db_table
    rows = _rows(f"SELECT m.id, (SELECT COUNT(*) FROM {orders} o WHERE o.member_id = m.id "
                 f"AND o.paid_at >= m.tier_reached_at) FROM {members} m WHERE m.id IN ({_marks(len(member_ids))}) "
                 f"AND EXISTS (SELECT 1 FROM {changes} c WHERE c.member_id = m.id "
                 f"AND c.changed_at = m.tier_reached_at AND c.reason = 'upgrade')", list(member_ids))
    return {int(member_id): int(count) for member_id, count in rows}


# --- a member's status page: read on every visit, so a few plain statements -------------------

@dataclass(slots=True)
class StatusRow:
    id: int
    external_id: str
    tier: str
    tier_expires_at: datetime | None
    invited: bool
    growth_balance: int
    points_balance: int
    points_debt: int
    points_spendable: int
    held_since: datetime | None = None


def member_for_status(external_id: str, as_of: datetime) -> StatusRow | None:
    """The member's row and, in the same statement, what `points.spendable_balance` would sum over
    their lots: live (points left, not expired) and available at `as_of`."""
    moment = raw.datetime_param(as_of)
    rows = _rows(f"SELECT id, external_id, tier, tier_expires_at, invited, growth_balance, points_balance, "
                 f"points_debt, held_since, (SELECT COALESCE(SUM(remaining), 0) FROM {PointsLot._meta.db_table} "
                 f"WHERE member_id = m.id AND remaining > 0 AND available_at <= %s "
                 f"AND (expires_at IS NULL OR expires_at > %s)) "
                 f"FROM {Member._meta.db_table} m WHERE external_id = %s", [moment, moment, external_id])
    if not rows:
        return None
    i, e, t, expires, invited, g, p, d, held, spendable = rows[0]
    return StatusRow(int(i), e, t, raw.read_datetime(expires), bool(invited), int(g), int(p), int(d), int(spendable),
                     raw.read_datetime(held))


LotRow = tuple[int, int, datetime, datetime, datetime | None]  # id, remaining, earned, available, expires


def open_lots(member_id: int) -> list[LotRow]:
    """The member's lots with points left (live or not yet available or expired: the caller decides)."""
    rows = _rows(f"SELECT id, remaining, earned_at, available_at, expires_at FROM {PointsLot._meta.db_table} "
                 f"WHERE member_id = %s AND remaining > 0", [member_id])
    read = raw.read_datetime
    return [(int(i), int(r), read(e), read(a), read(x)) for i, r, e, a, x in rows]  # type: ignore[misc]


EntryRow = tuple[int, str, int, str, str, datetime]  # id, ledger, delta, source, reference, occurred_at


def latest_entries(member_id: int, limit: int) -> list[EntryRow]:
    rows = _rows(f"SELECT id, ledger, delta, source, reference, occurred_at FROM {LedgerEntry._meta.db_table} "
                 f"WHERE member_id = %s ORDER BY occurred_at DESC, id DESC LIMIT %s", [member_id, limit])
    return [(int(i), lg, int(d), s, r, raw.read_datetime(at)) for i, lg, d, s, r, at in rows]  # type: ignore[misc]


@dataclass(frozen=True, slots=True)
class LiveKey:
    """An unrevoked API key as a request sees it."""

    id: int
    name: str
    prefix: str
    secret_hash: str
    scopes: tuple[str, ...]
    rate_per_minute: int


def live_api_key(prefix: str) -> LiveKey | None:
    """The unrevoked key with this prefix, read on every API request (no ORM query building)."""
    rows = _rows(f"SELECT id, name, prefix, secret_hash, scopes, rate_per_minute FROM {ApiKey._meta.db_table} "
                 f"WHERE prefix = %s AND revoked_at IS NULL", [prefix])
    if not rows:
        return None
    i, name, prefix, secret_hash, scopes, rate = rows[0]
    scopes = json.loads(scopes) if isinstance(scopes, str | bytes) else scopes
    return LiveKey(int(i), name, prefix, secret_hash, tuple(scopes), int(rate))
