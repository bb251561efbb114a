"""Budgets enforced: the grant jobs charge each tier's monthly spend, defer the grants that do
not fit (`domain.budgets`), and raise one operator alert and one `budget.exceeded` webhook per
tier and month. Rules and numbers: docs/benefits.md, Budgets.

Everything happens in the transaction of the chunk that issues the grants: the tier-month's
`BudgetSpend` row is locked (SELECT ... FOR UPDATE, rows in id order), so concurrent runs never
overspend, and a chunk that rolls back takes its spend, deferrals and alert with it. A job run
under a ruleset without budgets never builds a `Rationing` and sends no query of its own.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from loyalty.domain.budgets import drafts_document, ration
from loyalty.domain.grants import CouponDraft, month_of
from loyalty.domain.money import format_fen
from loyalty.domain.rules import Ruleset
from loyalty.services.outbox import LOOKUP_CHUNK, emit
from loyalty.store.models import BudgetSpend, DeferredGrant, OpsAlert

log = logging.getLogger("loyalty.budgets")
ALERT_KIND = "budget_exceeded"


@dataclass(frozen=True)
class Claim:
    """A grant asking for budget: all the coupons one member receives from one job run."""

    key: str
    member_id: int
    external_id: str
    tier: str
    reason: str
    drafts: list[CouponDraft]
    cost_fen: int


@dataclass
class Rationing:
    """One run's budgets: the tier limits (fen) of the ruleset in force at the due moment, charged
    to the local month of the due moment. A dry run decides the same way and writes nothing,
    keeping the spend it would leave in `planned`."""

    limits: Mapping[str, int]
    month: str
    due_at: datetime
    version: int
    dry_run: bool = False
    planned: dict[str, int] = field(default_factory=dict)

    def covers(self, tier: str, cost_fen: int) -> bool:
        return cost_fen > 0 and tier in self.limits

    def decide(self, claims: list[Claim]) -> set[str]:
        """Charge the claims (none issued or deferred before) in member-id order, tier by tier;
        record the ones that do not fit. Answers the keys of the grants deferred."""
        if not claims:
            return set()
        counters = self._counters({claim.tier for claim in claims})
        deferred: list[Claim] = []
        for tier, counter in counters.items():
            mine = sorted((c for c in claims if c.tier == tier), key=lambda c: (c.member_id, c.key))
            before = counter.spent_fen
            decided = ration(before, self.limits[tier], [c.cost_fen for c in mine])
            counter.spent_fen = decided.spent_fen
            held = [c for c, issued in zip(mine, decided.issued, strict=True) if not issued]
            if held and counter.alerted_at is None and not self.dry_run:
                first = decided.issued.index(False)
                self._alert(counter, held[0], before + sum(c.cost_fen for c in mine[:first]))
            deferred += held
        if self.dry_run:
            self.planned.update({tier: counter.spent_fen for tier, counter in counters.items()})
        else:
            self._save(counters.values(), deferred)
        return {claim.key for claim in deferred}

    def _counters(self, tiers: set[str]) -> dict[str, BudgetSpend]:
        if not self.dry_run:
            return lock_counters(self.month, tiers)
        found = {s.tier: s for s in BudgetSpend.objects.filter(month=self.month, tier__in=tiers)}
        counters = {tier: found.get(tier) or BudgetSpend(tier=tier, month=self.month) for tier in sorted(tiers)}
        for tier, counter in counters.items():
            counter.spent_fen = self.planned.get(tier, counter.spent_fen)
        return counters

    def _save(self, counters: Iterable[BudgetSpend], deferred: list[Claim]) -> None:
        for counter in counters:
            BudgetSpend.objects.filter(id=counter.id).update(spent_fen=counter.spent_fen, alerted_at=counter.alerted_at)
        DeferredGrant.objects.bulk_create([DeferredGrant(
            member_id=c.member_id, key=c.key, tier=c.tier, month=self.month, reason=c.reason,
            drafts=drafts_document(c.drafts), cost_fen=c.cost_fen, valid_until=c.drafts[0].valid_until,
            ruleset_version=self.version, created_at=self.due_at) for c in deferred], batch_size=1000)

    def _alert(self, counter: BudgetSpend, first: Claim, spent_fen: int) -> None:
        """The tier-month's first deferral: one alert row, one webhook, one log line."""
        counter.alerted_at = self.due_at
        budget = self.limits[counter.tier]
        key = alert_key(counter.tier, self.month)
        message = (f"The {counter.tier} budget of {format_fen(budget)} for {self.month} is spent "
                   f"({format_fen(spent_fen)} issued): the grant {first.key} ({format_fen(first.cost_fen)}) "
                   f"and every later grant that does not fit are deferred until the budget allows them.")
        OpsAlert.objects.bulk_create([OpsAlert(key=key, kind=ALERT_KIND, subject=f"Budget exceeded: {counter.tier} "
                                               f"{self.month}", message=message, created_at=self.due_at)],
                                     ignore_conflicts=True)
        emit(first.member_id, "budget.exceeded", key, {
            "tier": counter.tier, "month": self.month, "budget": format_fen(budget), "spent": format_fen(spent_fen),
            "member": first.external_id, "grant": first.key, "cost": format_fen(first.cost_fen)}, self.due_at)
        log.warning(message)


def rationing(ruleset: Ruleset, due_at: datetime, version: int, dry_run: bool) -> Rationing | None:
    """The budgets of a job run, or None when the ruleset sets none (the path without a query)."""
    limits = ruleset.operations.budgets
    if not limits:
        return None
    month = month_of(due_at, ruleset.timezone).label
    if not dry_run:
        open_counters(month, limits)
    return Rationing(limits, month, due_at, version, dry_run)


def alert_key(tier: str, month: str) -> str:
    return f"budget:{tier}:{month}"


def open_counters(month: str, tiers: Iterable[str]) -> None:
    """Create the tier-months' spend rows at 0 where missing, before a run's chunks, on their own.
    IMPORTANT: not inside a chunk: on MariaDB an insert that meets an existing row takes a shared
    lock on it, and two chunks holding one each would deadlock upgrading it to `FOR UPDATE`."""
    BudgetSpend.objects.bulk_create([BudgetSpend(tier=tier, month=month) for tier in sorted(set(tiers))],
                                    ignore_conflicts=True)


def lock_counters(month: str, tiers: Iterable[str]) -> dict[str, BudgetSpend]:
    """The tier-months' spend rows, locked in id order until the caller's transaction ends (the
    order every writer takes them in: no deadlock). Rows `open_counters` did not create (a run
    that started without them) are created here."""
    wanted = sorted(set(tiers))
    query = BudgetSpend.objects.select_for_update().filter(month=month, tier__in=wanted).order_by("id")
    rows = {row.tier: row for row in query}
    if len(rows) < len(wanted):
        open_counters(month, wanted)
        rows = {row.tier: row for row in query.all()}
    return rows


def deferred_at(keys: list[str]) -> dict[str, datetime]:
    """Grant key -> when it was deferred, for the grants among `keys` that ever were."""
    found: dict[str, datetime] = {}
    for start in range(0, len(keys), LOOKUP_CHUNK):
        rows = DeferredGrant.objects.filter(key__in=keys[start:start + LOOKUP_CHUNK]).values_list("key", "created_at")
        found.update(rows)
    return found


def acknowledge(alert_ids: Iterable[int], *, by: str, at: datetime) -> int:
    """An operator has seen these alerts; answers how many were not acknowledged before."""
    return OpsAlert.objects.filter(id__in=list(alert_ids), acknowledged_at=None).update(acknowledged_at=at,
                                                                                        acknowledged_by=by)
