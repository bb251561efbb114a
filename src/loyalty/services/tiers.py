"""Tier evaluation over every member (or some), at an `as_of` such as the 1st at 00:00.

`evaluate_tiers` runs one statement compiled from the ruleset's conditions (`store.tier_sql`):
the database computes every member's window metrics, earned tier and decision, and only the
members whose tier changes come back. `evaluate_tiers_python` is the reference it is checked
against: window metrics from a few GROUP BY queries, each member's decision from the pure engine.
Re-running for the same `as_of` changes nothing: a member already moved has nothing left to
decide, and each change's key is unique per member and evaluation time. Every change row emits
one `member.tier_changed` webhook event, keyed alike, in the same transaction.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import transaction

from loyalty.clock import Clock, system_clock
from loyalty.domain.conditions import Facts, MetricKey
from loyalty.domain.periods import Window
from loyalty.domain.rules import Ruleset
from loyalty.domain.tiers import Standing, earned_tier, evaluate, needed_metrics, with_score
from loyalty.services import rulesets
from loyalty.services.outbox import Emission, emit_rows, event_rows
from loyalty.services.overlap import overlapped
from loyalty.store import queries, raw, tier_sql
from loyalty.store.bulk import insert_rows
from loyalty.store.models import Member, TierChange
from loyalty.store.tier_sql import TierMove

Prepared = tuple[list[TierMove], list[tuple[Any, ...]], list[tuple[Any, ...]]]  # moves, change rows, event rows
CHANGE_FIELDS = ("member", "key", "from_tier", "to_tier", "reason", "changed_at", "expires_at", "ruleset_version")
CHUNK = 20_000
MEMBERS_PER_UPDATE = 5_000  # ids in one `IN (...)`, far under every backend's limit on parameters


@dataclass
class EvaluationSummary:
    as_of: datetime
    ruleset_version: int
    members: int = 0
    changes: Counter[str] = field(default_factory=Counter)  # reason -> count
    tiers: Counter[str] = field(default_factory=Counter)  # tier -> members after evaluation


def window_facts(ruleset: Ruleset, as_of: datetime, member_ids: Sequence[int] | None = None
                 ) -> dict[int, dict[MetricKey, int | Decimal]]:
    """Every metric the ruleset reads, per member, for the windows it names."""
    facts: dict[int, dict[MetricKey, int | Decimal]] = defaultdict(dict)
    for key, metrics in _metrics_by_window(ruleset).items():
        start, end = Window.from_key(key).bounds(as_of, ruleset.timezone)
        _collect(facts, key, metrics, start, end, member_ids)
    return facts


_windows: dict[int, tuple[Ruleset, dict[str, set[str]]]] = {}


def _metrics_by_window(ruleset: Ruleset) -> dict[str, set[str]]:
    """The metrics to read per window, worked out once per parsed ruleset: a member's status page
    asks on every read."""
    cached = _windows.get(id(ruleset))
    if cached is not None and cached[0] is ruleset:
        return cached[1]
    by_window: dict[str, set[str]] = defaultdict(set)
    for metric, key in needed_metrics(ruleset):
        by_window[key].add(metric)
    if len(_windows) > 32:  # rulesets are few; this only bounds what a long-lived process keeps
        _windows.clear()
    _windows[id(ruleset)] = (ruleset, dict(by_window))
    return dict(by_window)


def _collect(facts: dict[int, dict[MetricKey, int | Decimal]], key: str, metrics: set[str],
             start: datetime | None, end: datetime, member_ids: Sequence[int] | None) -> None:
    def put(metric: str, values: dict[int, int]) -> None:
        for member_id, value in values.items():
            facts[member_id][(metric, key)] = value

    if metrics & {"orders", "amount", "max_single_order"}:
        rows = queries.order_metrics(start, end, member_ids)
        for index, metric in enumerate(("orders", "amount", "max_single_order")):
            put(metric, {m: row[index] for m, row in rows.items()})
    if "growth" in metrics:
        put("growth", queries.ledger_sums("growth", start, end, member_ids))
    if "points" in metrics:
        put("points", queries.ledger_sums("points", start, end, member_ids, queries.POINTS_EARNING_SOURCES))
    if "interactions" in metrics:
        put("interactions", queries.interactions(start, end, member_ids))
    if "active_days" in metrics:
        put("active_days", queries.active_days(start, end, member_ids))


def _population(ruleset: Ruleset, as_of: datetime, facts: dict[int, dict[MetricKey, int | Decimal]],
                partial: bool) -> dict[str, list[int | Decimal]] | None:
    """Sorted values per score metric over all members (zeros included), for percentile ranks;
    when only some members are evaluated (`partial`), everyone's values are read all the same."""
    if ruleset.score is None or ruleset.score.normalise != "percentile":
        return None  # only percentile ranks need everyone's values
    if partial:
        facts = window_facts(ruleset, as_of)
    members = Member.objects.count()
    key = ruleset.evaluation.window.key
    population = {}
    for metric in ruleset.score.weights:
        values: list[int | Decimal] = [row[(metric, key)] for row in facts.values() if (metric, key) in row]
        population[metric] = sorted(values + [0] * (members - len(values)))
    return population


def evaluate_tiers(as_of: datetime, *, clock: Clock = system_clock, member_ids: Sequence[int] | None = None,
                   dry_run: bool = False, upgrades_only: bool = False, id_range: tuple[int, int] | None = None
                   ) -> EvaluationSummary:
    """Evaluate members at `as_of` under the ruleset in force then; writes changes unless dry_run.
    `member_ids` and `id_range` (lo <= id < hi, one parallel worker's share) narrow the members."""
    active = rulesets.in_force(as_of)
    scope = tier_sql.Scope(None if member_ids is None else tuple(member_ids), id_range)
    before = tier_sql.tier_counts(scope)
    moves = tier_sql.decide(active.ruleset, as_of, scope, upgrades_only=upgrades_only)
    if moves is None:  # a score the statement cannot compare exactly: member by member
        return evaluate_tiers_python(as_of, clock=clock, member_ids=member_ids, dry_run=dry_run,
                                     upgrades_only=upgrades_only, id_range=id_range)
    summary = EvaluationSummary(as_of, active.version, members=sum(before.values()))
    for _, _, decision in moves:
        summary.changes[decision.reason] += 1
        before[decision.from_code] -= 1
        before[decision.to_code] += 1
    summary.tiers = +before
    if not dry_run:
        _save(moves, as_of, active.version, clock)
    return summary


def evaluate_tiers_python(as_of: datetime, *, clock: Clock = system_clock, member_ids: Sequence[int] | None = None,
                          dry_run: bool = False, upgrades_only: bool = False,
                          id_range: tuple[int, int] | None = None) -> EvaluationSummary:
    """The reference: every member's facts in Python and the engine's `evaluate` for each."""
    active = rulesets.in_force(as_of)
    ruleset = active.ruleset
    members = Member.objects.order_by("id").values_list("id", "external_id", "tier", "tier_expires_at", "invited")
    if id_range is not None:
        members = members.filter(id__gte=id_range[0], id__lt=id_range[1])
        if member_ids is None:
            member_ids = list(Member.objects.filter(id__gte=id_range[0], id__lt=id_range[1])
                              .values_list("id", flat=True))
    if member_ids is not None:
        members = members.filter(id__in=list(member_ids))
    facts = window_facts(ruleset, as_of, member_ids)
    population = _population(ruleset, as_of, facts, partial=member_ids is not None)
    summary = EvaluationSummary(as_of, active.version)
    moves: list[TierMove] = []
    base = ruleset.base_tier.code
    # Members with no activity in the window, in the base tier for good, stay there when an idle
    # member earns the base tier: most of a large shop, decided without building their facts.
    idle_stays = earned_tier(ruleset, with_score(Facts({}, {"invited": False}), ruleset, population)).rank == 0
    for member_id, external_id, tier, expires_at, invited in members.iterator(chunk_size=CHUNK):
        summary.members += 1
        member_facts = facts.get(member_id)
        if idle_stays and member_facts is None and tier == base and expires_at is None and not invited:
            summary.tiers[base] += 1
            continue
        scored = with_score(Facts(member_facts or {}, {"invited": invited}), ruleset, population)
        decision = evaluate(ruleset, Standing(tier, expires_at), scored, as_of, upgrades_only=upgrades_only)
        summary.tiers[decision.to_code] += 1
        if decision.changed:
            summary.changes[decision.reason] += 1
            moves.append(TierMove(member_id, external_id, decision))
    if not dry_run:
        _save(moves, as_of, active.version, clock)
    return summary


def _save(moves: list[TierMove], as_of: datetime, version: int, clock: Clock) -> None:
    """A chunk at a time, each in one transaction: the tier-change rows, the members' new tiers
    and the events. Each chunk's rows are built while the one before it is written (`overlap`)."""
    stamp, now = as_of.isoformat(), clock.now()

    def prepare(chunk: list[TierMove]) -> Prepared:
        changes = [(member_id, f"tier:{stamp}:{member_id}", d.from_code, d.to_code, d.reason, as_of, d.expires_at,
                    version) for member_id, _, d in chunk]
        # Each tier-change row is heard by the platform: its event commits with it, keyed alike.
        return chunk, changes, event_rows(_tier_events(chunk, stamp, as_of, version, now))

    def write(prepared: Prepared) -> None:
        chunk, changes, events = prepared
        with transaction.atomic():
            raw.asynchronous_commit()  # a resumable job's chunk: see raw.asynchronous_commit
            insert_rows(TierChange, CHANGE_FIELDS, changes)
            _move_members(chunk, as_of)
            emit_rows(events, new=True)  # keyed as the tier-change rows just written

    overlapped((moves[start:start + CHUNK] for start in range(0, len(moves), CHUNK)), prepare, write)


def _move_members(chunk: list[TierMove], as_of: datetime) -> None:
    """The members' new tiers, written only where the tier is still the one decided from: a
    concurrent change wins instead of being overwritten. On PostgreSQL one UPDATE over arrays
    for the chunk; elsewhere one UPDATE per (from, to, expiry) and MEMBERS_PER_UPDATE members:
    a month's changes share a few of those."""
    if raw.database().vendor == "postgresql":
        tier_sql.move_members([(member_id, d.from_code, d.to_code, d.expires_at) for member_id, _, d in chunk], as_of)
        return
    groups: dict[tuple[str, str, datetime | None], list[int]] = defaultdict(list)
    for member_id, _, d in chunk:
        groups[(d.from_code, d.to_code, d.expires_at)].append(member_id)
    for (from_code, to_code, expires_at), ids in groups.items():
        for start in range(0, len(ids), MEMBERS_PER_UPDATE):
            Member.objects.filter(id__in=ids[start:start + MEMBERS_PER_UPDATE], tier=from_code).update(
                tier=to_code, tier_reached_at=as_of, tier_expires_at=expires_at)


def _tier_events(chunk: list[TierMove], stamp: str, as_of: datetime, version: int, now: datetime) -> list[Emission]:
    return [Emission(member_id, "member.tier_changed", f"tier:{stamp}:{member_id}", {
        "member": external_id, "from_tier": d.from_code, "to_tier": d.to_code, "reason": d.reason,
        "changed_at": as_of, "expires_at": d.expires_at, "ruleset_version": version,
    }, now) for member_id, external_id, d in chunk]
