"""Releasing deferred grants: the `release_deferred` job (daily at 00:00 local under a ruleset
with budgets; also `loyalty budgets release` and the admin's action).

Oldest deferral first, a chunk per transaction: a grant whose validity has passed lapses; one
whose tier has no budget any more is issued; otherwise it is issued when it fits the budget its
tier has in the local month of the release (first fit, charged to that month's spend, as the
grant jobs charge theirs), and waits for the next run when it does not. Issued, it gets the
coupons it would have had — same keys, codes, validity and ruleset version — dated the
release's moment, and its `coupon.issued` event. Idempotent like every job: the deferral's
state changes in the transaction that writes its coupons, and a re-run for the same moment
counts what that moment released.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Count

from loyalty.clock import Clock, system_clock
from loyalty.domain.budgets import drafts_from, fits
from loyalty.domain.grants import coupon_code, month_of
from loyalty.domain.money import format_fen
from loyalty.services import rulesets
from loyalty.services.budgets import lock_counters, open_counters
from loyalty.services.grants import COUPON_FIELDS, coupon_row
from loyalty.services.outbox import Emission, emit_many
from loyalty.store.bulk import insert_rows
from loyalty.store.models import BudgetSpend, Coupon, DeferredGrant, Member

CHUNK = 1_000
Counts = dict[str, int]


def release_deferred(due_at: datetime, *, clock: Clock = system_clock, dry_run: bool = False,
                     chunk: int = CHUNK) -> Counts:
    """Issue or lapse the grants deferred up to `due_at` (see the module's docstring). Counts:
    grants `released` and `lapsed` at this moment, their `coupons`, and grants still `waiting`."""
    active = rulesets.in_force(due_at)
    limits, month = active.ruleset.operations.budgets, month_of(due_at, active.ruleset.timezone).label
    planned: dict[str, int] = {}  # a dry run's spend per tier, as the run would leave it
    decided: Counter[str] = Counter()
    last = 0
    if limits and not dry_run and DeferredGrant.objects.filter(state="deferred", created_at__lte=due_at).exists():
        open_counters(month, limits)
    while True:
        waiting = DeferredGrant.objects.filter(state="deferred", created_at__lte=due_at, id__gt=last).order_by("id")
        if not waiting.exists():
            break
        with transaction.atomic():
            # IMPORTANT: the spend rows first, then the deferrals: the grant jobs' order (spend
            # rows, then new deferrals), so a release and a job never wait on each other in a circle.
            counters = _counters(month, set(limits), planned, dry_run)
            rows = list((waiting if dry_run else waiting.select_for_update())[:chunk])
            if not rows:
                break
            last = rows[-1].id
            decided += _release(rows, due_at, limits, counters, planned, dry_run)
    return _counts(due_at, decided, dry_run)


def _release(rows: list[DeferredGrant], due_at: datetime, limits: Mapping[str, int],
             counters: dict[str, BudgetSpend], planned: dict[str, int], dry_run: bool) -> Counter[str]:
    """One chunk, in the caller's transaction: decide each grant in id order and write."""
    released, lapsed = [], []
    for row in rows:
        if due_at >= row.valid_until:
            lapsed.append(row)
        elif row.tier not in counters:
            released.append(row)
        elif fits(counters[row.tier].spent_fen, row.cost_fen, limits[row.tier]):
            counters[row.tier].spent_fen += row.cost_fen
            released.append(row)
    decided = Counter(released=len(released), lapsed=len(lapsed),
                      coupons=sum(len(row.drafts) for row in released))
    if dry_run:
        planned.update({tier: counter.spent_fen for tier, counter in counters.items()})
        return decided
    for counter in counters.values():
        BudgetSpend.objects.filter(id=counter.id).update(spent_fen=counter.spent_fen)
    _issue(released, due_at)
    DeferredGrant.objects.filter(id__in=[row.id for row in released]).update(state="released", closed_at=due_at)
    DeferredGrant.objects.filter(id__in=[row.id for row in lapsed]).update(state="lapsed", closed_at=due_at)
    return decided


def _counters(month: str, tiers: set[str], planned: dict[str, int], dry_run: bool) -> dict[str, BudgetSpend]:
    if not dry_run:
        return lock_counters(month, tiers)
    found = {row.tier: row for row in BudgetSpend.objects.filter(month=month, tier__in=tiers)}
    counters = {tier: found.get(tier) or BudgetSpend(tier=tier, month=month) for tier in tiers}
    for tier, counter in counters.items():
        counter.spent_fen = planned.get(tier, counter.spent_fen)
    return counters


def _issue(rows: list[DeferredGrant], due_at: datetime) -> None:
    """The grants' coupons as the grant job would have written them, dated `due_at`, and one
    `coupon.issued` each (new for certain: the coupons' UNIQUE keys were just inserted)."""
    if not rows:
        return
    external = dict(Member.objects.filter(id__in={row.member_id for row in rows}).values_list("id", "external_id"))
    coupons, events = [], []
    for row in rows:
        drafts = drafts_from(row.drafts)
        codes = {d.key: coupon_code(d.key, settings.SECRET_KEY.encode()) for d in drafts}
        coupons += [coupon_row(row.member_id, codes[d.key], d, due_at, row.ruleset_version) for d in drafts]
        data: dict[str, Any] = {
            "member": external[row.member_id], "reason": row.reason, "valid_from": drafts[0].valid_from,
            "valid_until": drafts[0].valid_until, "coupons": [
                {"code": codes[d.key], "kind": d.kind, "value": format_fen(d.value_fen),
                 "min_spend": format_fen(d.min_spend_fen)} for d in drafts]}
        events.append(Emission(row.member_id, "coupon.issued", row.key, data, due_at))
    insert_rows(Coupon, COUPON_FIELDS, coupons)
    emit_many(events, new=True)


def _counts(due_at: datetime, decided: Counter[str], dry_run: bool) -> Counts:
    """What the moment did as the database holds it (a re-run counts what the first run did);
    a dry run adds what it would do."""
    closed = dict(DeferredGrant.objects.filter(closed_at=due_at).values_list("state").annotate(n=Count("id"))
                  .order_by())
    coupons = sum(len(drafts) for drafts in DeferredGrant.objects.filter(closed_at=due_at, state="released")
                  .values_list("drafts", flat=True))
    waiting = DeferredGrant.objects.filter(state="deferred").count()
    if dry_run:
        return {"released": closed.get("released", 0) + decided["released"],
                "lapsed": closed.get("lapsed", 0) + decided["lapsed"], "coupons": coupons + decided["coupons"],
                "waiting": waiting - decided["released"] - decided["lapsed"]}
    return {"released": closed.get("released", 0), "lapsed": closed.get("lapsed", 0), "coupons": coupons,
            "waiting": waiting}
