"""Posting value: ledger entries, points lots and debts, and the cached balances, in step.

A `Book` collects what one transaction writes and flushes it set-based. Its rules are the
ledger's invariants: every entry carries an idempotency key; every points award pays debts first
and keeps the rest as a lot; cached balances move by exactly the entries' deltas.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from django.db.models import F

from loyalty.domain import points as points_rules
from loyalty.domain.errors import Conflict
from loyalty.store import sql
from loyalty.store.bulk import add_to_columns, insert_rows
from loyalty.store.models import LedgerEntry, Member, PointsDebt, PointsLot
from loyalty.store.sql import MemberRow

ENTRY_FIELDS = ("member", "ledger", "delta", "source", "reference", "idempotency_key", "reverses",
                "ruleset_version", "occurred_at", "business_date", "recorded_at")
LOT_FIELDS = ("member", "key", "source", "reference", "points", "remaining", "earned_at",
              "available_at", "expires_at")
TOTALS = ("growth_balance", "points_balance", "points_debt", "orders_count", "paid_fen", "refunded_fen")
TOTAL_INDEX = {name: index for index, name in enumerate(TOTALS)}


def payload_hash(fingerprint: dict[str, Any]) -> str:
    """SHA-256 of the fingerprint's repr: its keys are written in a fixed order and its values are
    str, int, None or lists of them, whose repr is exact and stable (and cheaper than JSON)."""
    return hashlib.sha256(repr(fingerprint).encode()).hexdigest()


def check_replay(stored_hash: str, new_hash: str, what: str, field: str) -> None:
    """A replay must carry the same payload; anything else is a conflict, never an overwrite."""
    if stored_hash != new_hash:
        raise Conflict(f"{what} was already recorded with a different payload", field=field,
                       code="exists_with_different_payload")


@dataclass
class Posting:
    """Where an entry came from: enough to write it and to key it."""

    source: str
    reference: str
    key: str
    ruleset_version: int | None
    occurred_at: datetime
    business_date: date


class Book:
    def __init__(self, recorded_at: datetime):
        self.recorded_at = recorded_at
        self.entries: list[tuple[Any, ...]] = []
        self.lots: list[tuple[Any, ...]] = []
        self.totals: dict[int, list[int]] = defaultdict(lambda: [0] * len(TOTALS))

    def add_totals(self, member_id: int, **deltas: int) -> None:
        row = self.totals[member_id]
        for name, delta in deltas.items():
            row[TOTAL_INDEX[name]] += delta

    def post(self, member_id: int, ledger: str, delta: int, posting: Posting, *,
             key_suffix: str = "", reverses_id: int | None = None) -> None:
        """One entry and the matching move of the cached balance."""
        self.entries.append((member_id, ledger, delta, posting.source, posting.reference,
                             posting.key + key_suffix, reverses_id, posting.ruleset_version,
                             posting.occurred_at, posting.business_date, self.recorded_at))
        self.add_totals(member_id, **{f"{ledger}_balance": delta})

    def award_points(self, member: MemberRow, points: int, posting: Posting, *,
                     available_at: datetime, expires_at: datetime | None, reverses_id: int | None = None) -> None:
        """+points: outstanding debts are paid first, the rest becomes a lot."""
        self.post(member.id, "points", points, posting, reverses_id=reverses_id)
        left = points
        if member.points_debt > 0:
            left = self._pay_debts(member, points)
        if left > 0:
            self.lots.append((member.id, posting.key, posting.source, posting.reference, left, left,
                              posting.occurred_at, available_at, expires_at))

    def _pay_debts(self, member: MemberRow, points: int) -> int:
        debts = list(PointsDebt.objects.filter(member_id=member.id, remaining__gt=0).values_list("id", "remaining"))
        payments, left = points_rules.settle_debts(debts, points)
        for debt_id, paid in payments:
            PointsDebt.objects.filter(id=debt_id).update(remaining=F("remaining") - paid)
        paid_total = points - left
        member.points_debt -= paid_total
        self.add_totals(member.id, points_debt=-paid_total)
        return left

    def flush(self) -> None:
        insert_rows(LedgerEntry, ENTRY_FIELDS, self.entries)
        insert_rows(PointsLot, LOT_FIELDS, self.lots)
        add_to_columns(Member, TOTALS, [(*deltas, member_id) for member_id, deltas in sorted(self.totals.items())
                                        if any(deltas)])
        self.entries, self.lots = [], []
        self.totals.clear()


def live_lots(member_id: int, as_of: datetime) -> list[points_rules.Lot]:
    return [lot for lot in (points_rules.Lot(*row) for row in sql.open_lots(member_id)) if lot.is_live(as_of)]


def take_from_lots(takes: list[points_rules.Take]) -> None:
    """Reduce lots; the condition makes a concurrent spender lose instead of overdrawing."""
    for lot_id, taken in sorted(takes):
        updated = PointsLot.objects.filter(id=lot_id, remaining__gte=taken).update(remaining=F("remaining") - taken)
        if updated != 1:
            raise Conflict("points changed underneath this request; retry", code="concurrent_update")


def lock_member_ids(member_ids: Iterable[int]) -> list[int]:
    """Lock members by id, in primary-key order; returns the ids found."""
    return list(Member.objects.select_for_update().filter(id__in=sorted(set(member_ids))).order_by("id")
                .values_list("id", flat=True))


def lock_members(external_ids: list[str]) -> dict[str, MemberRow]:
    """Lock the members' rows in primary-key order (no deadlocks) and return them by external id."""
    return {member.external_id: member for member in sql.lock_members(external_ids)}
