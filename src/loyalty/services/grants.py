"""Periodic grants and notices: monthly tier benefits, birthday gifts, a recall before a tier
drops, the month-end sprint, and expiring-points notices. Each job is
`run(due_at, *, clock, dry_run) -> counts`, for one due moment (00:00 local).

Set-based: members are read a chunk at a time in id order, decided by `domain.grants`, and
written with bulk inserts; each chunk commits in one transaction with its outbox events.
Idempotent: every coupon has a UNIQUE key per member and period and every event a UNIQUE
outbox key, and what already exists is skipped, so a re-run, or a run after a crash that rolled
one chunk back, issues only what is missing. Rows depend only on the due moment, the ruleset in
force then and the members' state (codes come from keys, `issued_at` is the due moment), so a
crashed and re-run job writes the rows an uninterrupted run writes (the `clock` every job
takes is not read here for that reason). Only members registered by the due moment take part.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from decimal import Decimal
from functools import reduce
from operator import or_
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import transaction
from django.db.models import Q, QuerySet, Sum

from loyalty.clock import Clock, system_clock
from loyalty.domain.budgets import grant_cost
from loyalty.domain.conditions import AMOUNT_METRICS, Facts, MetricKey
from loyalty.domain.grants import (
    CouponDraft,
    add_days_at,
    birthday_gifts,
    birthdays_on,
    coupon_code,
    month_of,
    monthly_coupons,
    recall_coupon,
    sprint_coupon,
    sprint_is_on,
    sprint_target,
)
from loyalty.domain.money import format_fen
from loyalty.domain.periods import local_date
from loyalty.domain.rules import Ruleset, Sprint, Tier
from loyalty.domain.tiers import Gap, Standing, evaluate, gaps, with_score
from loyalty.services import budgets, rulesets
from loyalty.services.budgets import Rationing
from loyalty.services.outbox import LOOKUP_CHUNK, Emission, emit_rows, event_rows, stored_key, utc_text
from loyalty.services.overlap import overlapped
from loyalty.services.tiers import window_facts
from loyalty.store import raw
from loyalty.store.bulk import insert_rows
from loyalty.store.models import Coupon, Member, OutboxEvent, PointsLot

CHUNK = 5_000
COUPON_FIELDS = ("member", "code", "key", "kind", "value_fen", "min_spend_fen", "issued_at", "valid_from",
                 "valid_until", "order_id", "ruleset_version", "template", "stacking_group", "usage")
COUPON_KEY = COUPON_FIELDS.index("key")


def coupon_row(member_id: int, code: str, c: CouponDraft, issued_at: datetime, version: int) -> tuple[Any, ...]:
    """The coupon's row in COUPON_FIELDS order: its template's terms recorded as issued."""
    return (member_id, code, c.key, c.kind, c.value_fen, c.min_spend_fen, issued_at, c.valid_from, c.valid_until,
            "", version, c.template, c.stacking_group, c.usage)
Counts = dict[str, int]
MemberFacts = Mapping[int, Mapping[MetricKey, int | Decimal]]


@dataclass
class Award:
    """What one member receives from one run: coupons (announced as `coupon.issued`) and
    perhaps a notice event (type, data); both events carry `key`, the grant's name."""

    member_id: int
    external_id: str
    reason: str
    key: str
    coupons: list[CouponDraft]
    notice: tuple[str, dict[str, Any]] | None = None
    tier: str = ""  # the tier granted for, which a budget charges ("": none)


@dataclass(frozen=True)
class _Batch:
    """A chunk's awards and every row they would write (`_Run.prepare`)."""

    awards: list[Award]
    codes: dict[str, str]
    coupons: list[tuple[Any, ...]]  # in COUPON_FIELDS order
    events: list[list[tuple[Any, ...]]]  # per award, its outbox rows


@dataclass
class _Run:
    """One job run for one due moment. Counts are the due moment's effect as the database holds
    it afterwards (grants first issued at this due moment), so a resumed run, a re-run and a dry
    run all answer what an uninterrupted run would."""

    due_at: datetime
    version: int
    dry_run: bool
    counts: Counter[str] = field(default_factory=lambda: Counter(members=0, coupons=0, events=0))
    times: dict[datetime, str] = field(default_factory=dict)  # validity times as events show them, each once
    budget: Rationing | None = None  # None: no budgets in the ruleset, and not one query more

    def issue(self, awards: list[Award]) -> None:
        """One chunk: the coupons and events not there yet, in one transaction."""
        self.write(self.prepare(awards))

    def prepare(self, awards: list[Award]) -> _Batch:
        """The chunk's rows, as if nothing were written yet: codes, coupon rows, event bodies. No
        database, so the next chunk can be prepared while this one is written (`overlap`)."""
        awards = [a for a in awards if a.coupons or a.notice]
        codes = {c.key: coupon_code(c.key, settings.SECRET_KEY.encode()) for a in awards for c in a.coupons}
        coupons = [coupon_row(a.member_id, codes[c.key], c, self.due_at, self.version)
                   for a in awards for c in a.coupons]
        events = [event_rows(self._events(a, codes)) for a in awards] if not self.dry_run else []
        return _Batch(awards, codes, coupons, events)

    def write(self, batch: _Batch) -> None:
        """Write what is not there yet. A grant's coupons and events commit together, so its
        coupons tell whether its events were written: only the notices that come without coupons
        are looked up in the outbox."""
        if not batch.awards:
            return
        if self.dry_run:
            written = self._written_at(batch.awards, batch.codes)
            if self.budget is not None:
                batch, written = self._ration(batch, written)
            self._count(batch.awards, written)
            return
        with transaction.atomic():
            raw.asynchronous_commit()  # a resumable job's chunk
            written = self._written_at(batch.awards, batch.codes)
            if self.budget is not None:
                batch, written = self._ration(batch, written)
            insert_rows(Coupon, COUPON_FIELDS, [row for row in batch.coupons if row[COUPON_KEY] not in written])
            # New for certain: the grants not written yet have none of their events written.
            emit_rows([row for award, rows in zip(batch.awards, batch.events, strict=True)
                       if _first(award, written) is None for row in rows], new=True)
        self._count(batch.awards, written)

    def _ration(self, batch: _Batch, written: dict[str, datetime]) -> tuple[_Batch, dict[str, datetime]]:
        """Under budgets (docs/benefits.md, Budgets): the grants with a cost in a budgeted tier
        that are not written yet are charged, in member-id order; those that do not fit, and
        those deferred before, lose their coupons here (a notice still goes, without them). The
        notice of a grant deferred before was written with its deferral: `written` says when."""
        assert self.budget is not None
        costed = [a for a in batch.awards if self.budget.covers(a.tier, grant_cost(a.coupons))]
        if not costed:
            return batch, written
        deferred = budgets.deferred_at([a.key for a in costed])
        fresh = [budgets.Claim(a.key, a.member_id, a.external_id, a.tier, a.reason, a.coupons, grant_cost(a.coupons))
                 for a in costed if a.key not in deferred and _first(a, written) is None]
        now = self.budget.decide(fresh)
        deferred.update(dict.fromkeys(now, self.due_at))
        self.counts["deferred"] += sum(1 for a in costed if deferred.get(a.key) == self.due_at)
        held = {a.key for a in costed if a.key in deferred and _first(a, written) is None}
        if not held:
            return batch, written
        awards, events, written = [], [], dict(written)
        for index, award in enumerate(batch.awards):
            if award.key not in held:
                awards.append(award)
                events.append(batch.events[index] if batch.events else [])
            elif award.notice is not None:
                awards.append(replace(award, coupons=[]))
                events.append([] if self.dry_run else event_rows(self._events(awards[-1], batch.codes)))
                if award.key not in now:
                    written[stored_key(award.notice[0], award.key)] = deferred[award.key]
        dropped = {c.key for a in batch.awards if a.key in held for c in a.coupons}
        coupons = [row for row in batch.coupons if row[COUPON_KEY] not in dropped]
        return _Batch(awards, batch.codes, coupons, events if batch.events else []), written

    def _events(self, award: Award, codes: Mapping[str, str]) -> Iterator[Emission]:
        """`coupon.issued` for the coupons, and the notice; recorded at the due moment, so that a
        re-run writes the same rows."""
        shown = _coupons_data(award.coupons, codes, self.times)
        if shown:
            yield Emission(award.member_id, "coupon.issued", award.key,
                           {"member": award.external_id, "reason": award.reason, **shown}, self.due_at, plain=True)
        if award.notice is not None:
            kind, data = award.notice
            yield Emission(award.member_id, kind, award.key, {"member": award.external_id, **data, **shown},
                           self.due_at)

    @staticmethod
    def _written_at(awards: list[Award], codes: Mapping[str, str]) -> dict[str, datetime]:
        """When what is already written was: coupons by key (`issued_at`), and the notices that
        come without coupons by outbox key (`created_at`)."""
        notices = [stored_key(a.notice[0], a.key) for a in awards if a.notice and not a.coupons]
        return {**_written(Coupon, "issued_at", list(codes)), **_written(OutboxEvent, "created_at", notices)}

    def _count(self, awards: list[Award], written: Mapping[str, datetime]) -> None:
        """Count the grants of this due moment: written now, or by an earlier attempt at it."""
        for a in awards:
            first = _first(a, written) or self.due_at
            if first == self.due_at:
                self.counts["members"] += 1
                self.counts["events"] += bool(a.coupons) + bool(a.notice)
            self.counts["coupons"] += sum(1 for c in a.coupons if written.get(c.key, self.due_at) == self.due_at)

    def result(self) -> Counts:
        return dict(self.counts)


def issue_now(award: Award, at: datetime, version: int) -> int:
    """One grant written in the caller's transaction, as of `at` (the welcome pack, with its
    registration): its coupons and its `coupon.issued` event, unless its coupons exist already.
    Answers how many coupons it wrote."""
    batch = _Run(at, version, dry_run=False).prepare([award])
    if not batch.coupons or _written(Coupon, "issued_at", list(batch.codes)):
        return 0
    insert_rows(Coupon, COUPON_FIELDS, batch.coupons)
    emit_rows([row for rows in batch.events for row in rows], new=True)
    return len(batch.coupons)


def _first(award: Award, written: Mapping[str, datetime]) -> datetime | None:
    """When the grant was first written (its earliest coupon, or its notice), or None: not yet."""
    if award.coupons:
        return min((written[c.key] for c in award.coupons if c.key in written), default=None)
    assert award.notice is not None
    return written.get(stored_key(award.notice[0], award.key))


def _start(due_at: datetime, dry_run: bool) -> tuple[Ruleset, _Run]:
    active = rulesets.in_force(due_at)
    budget = budgets.rationing(active.ruleset, due_at, active.version, dry_run)
    run = _Run(due_at, active.version, dry_run, budget=budget)
    if run.budget is not None:
        run.counts["deferred"] = 0
    return active.ruleset, run


def monthly_benefits(due_at: datetime, *, clock: Clock = system_clock, dry_run: bool = False,
                     chunk: int = CHUNK) -> Counts:
    """The 1st at 00:00 local: each member's tier's monthly coupons and free deliveries (not an
    unlimited free delivery: checkout reads that from the tier), valid to the month's end."""
    ruleset, run = _start(due_at, dry_run)
    month = month_of(due_at, ruleset.timezone)
    entitled = [code for code, benefits in ruleset.benefits.items() if monthly_coupons(benefits, month, 0)]
    def prepare(rows: list[tuple[Any, ...]]) -> _Batch:
        return run.prepare([Award(m, external_id, "monthly", f"monthly:{month.label}:{m}",
                                  monthly_coupons(ruleset.benefits[tier], month, m), tier=tier)
                            for m, external_id, tier in rows])

    # The largest grant of all (every member in an entitled tier): each chunk is prepared while
    # the one before it is written.
    overlapped(_members(_registered(due_at).filter(tier__in=entitled), ("external_id", "tier"), chunk),
               prepare, run.write)
    return run.result()


def birthday(due_at: datetime, *, clock: Clock = system_clock, dry_run: bool = False, chunk: int = CHUNK) -> Counts:
    """Daily at 00:00 local: the birthday coupon, and the birthday pack for tiers that have it,
    once per member per year. 29 February birthdays are kept on 28 February in common years."""
    ruleset, run = _start(due_at, dry_run)
    zone, offer = ruleset.timezone, ruleset.operations.birthday_coupon
    day = local_date(due_at, zone)
    packs = {code for code, benefits in ruleset.benefits.items() if "birthday_pack" in benefits.flags}
    born = reduce(or_, (Q(birthday__month=month, birthday__day=dom) for month, dom in birthdays_on(day)))
    query = _registered(due_at).filter(born)
    if offer is None:
        query = query.filter(tier__in=packs)
    for rows in _members(query, ("external_id", "tier"), chunk):
        run.issue([Award(m, external_id, "birthday", f"birthday:{day.year}:{m}",
                         birthday_gifts(offer, tier in packs, day, zone, m), tier=tier)
                   for m, external_id, tier in rows])
    return run.result()


def downgrade_warnings(due_at: datetime, *, clock: Clock = system_clock, dry_run: bool = False,
                       chunk: int = CHUNK) -> Counts:
    """Daily: members whose tier expires within `recall.days_before_drop` days and whose window,
    as it will stand at expiry if nothing more happens, would not keep the tier, get one
    `member.downgrade_warning` and the recall coupon, once per member per expiry."""
    ruleset, run = _start(due_at, dry_run)
    recall, zone = ruleset.operations.recall, ruleset.timezone
    if recall is None:
        return run.result()
    book = rulesets.rulebook()
    populations: dict[datetime, dict[str, list[int | Decimal]] | None] = {}
    query = _registered(due_at).filter(tier_expires_at__gt=due_at,
                                       tier_expires_at__lte=add_days_at(due_at, recall.days_before_drop, zone))
    for rows in _members(query, ("external_id", "tier", "tier_expires_at", "invited"), chunk):
        by_expiry: dict[datetime, list[tuple[Any, ...]]] = defaultdict(list)
        for row in rows:
            by_expiry[row[3]].append(row)
        awards = []
        for expires_at, members in by_expiry.items():
            then = book.in_force(expires_at).ruleset  # the rules that will judge the member at expiry
            facts = window_facts(then, expires_at, [row[0] for row in members])
            if expires_at not in populations:
                populations[expires_at] = _population(then, expires_at)
            population = populations[expires_at]
            for m, external_id, tier, _, invited in members:
                scored = with_score(Facts(facts.get(m, {}), {"invited": invited}), then, population)
                decision = evaluate(then, Standing(tier, expires_at), scored, expires_at)
                if decision.reason != "downgrade":
                    continue
                coupon = recall_coupon(recall.coupon, due_at, expires_at, zone, m)
                awards.append(Award(m, external_id, "recall", f"recall:{local_date(expires_at, zone)}:{m}",
                                    [coupon] if coupon else [], ("member.downgrade_warning", {
                                        "tier": tier, "drops_to": decision.to_code, "expires_at": expires_at}),
                                    tier=tier))
        run.issue(awards)
    return run.result()


def sprint(due_at: datetime, *, clock: Clock = system_clock, dry_run: bool = False, chunk: int = CHUNK) -> Counts:
    """Daily; on the sprint days (`operations.sprint.days_of_month`, local) members within
    `within_percent` of their next tier get a `member.sprint_notice` and the sprint coupon,
    once per member per month. Other days it does nothing."""
    ruleset, run = _start(due_at, dry_run)
    rule, zone = ruleset.operations.sprint, ruleset.timezone
    if rule is None or not sprint_is_on(local_date(due_at, zone), rule):
        return run.result()
    month = month_of(due_at, zone)
    facts = window_facts(ruleset, due_at)
    population = _population(ruleset, due_at, facts)
    idle: dict[tuple[str, bool], tuple[Tier, list[Gap]] | None] = {}  # most members: nothing in the window
    query = _registered(due_at).exclude(tier=ruleset.tiers[-1].code)
    for rows in _members(query, ("external_id", "tier", "invited"), chunk):
        awards = []
        for m, external_id, tier, invited in rows:
            if m in facts:
                near = _near(ruleset, rule, tier, Facts(facts[m], {"invited": invited}), population)
            else:
                if (tier, invited) not in idle:
                    idle[tier, invited] = _near(ruleset, rule, tier, Facts({}, {"invited": invited}), population)
                near = idle[tier, invited]
            if near is None:
                continue
            coupon = sprint_coupon(rule.coupon, month, due_at, zone, m)
            awards.append(Award(m, external_id, "sprint", f"sprint:{month.label}:{m}", [coupon] if coupon else [], (
                "member.sprint_notice", {"tier": tier, "next_tier": near[0].code,
                                         "gaps": [_gap_data(gap) for gap in near[1]]}), tier=tier))
        run.issue(awards)
    return run.result()


def points_expiring(due_at: datetime, *, clock: Clock = system_clock, dry_run: bool = False,
                    chunk: int = CHUNK) -> Counts:
    """Daily: one `points.expiring` per member and local expiry date, for lots holding points
    that expire within `operations.points_expiring.days_before` days (0: no notices)."""
    ruleset, run = _start(due_at, dry_run)
    days, zone = ruleset.operations.expiring_notice_days, ruleset.timezone
    if days == 0:
        return run.result()
    lots = PointsLot.objects.filter(remaining__gt=0, expires_at__gt=due_at,
                                    expires_at__lte=add_days_at(due_at, days, zone))
    last = 0
    while True:  # by member id ranges: lots are indexed by (member_id, remaining)
        first = lots.filter(member_id__gt=last).order_by("member_id").values_list("member_id", flat=True).first()
        if first is None:
            return run.result()
        last = first + chunk - 1
        rows = (lots.filter(member_id__gte=first, member_id__lte=last).order_by()
                .values_list("member_id", "member__external_id", "expires_at").annotate(points=Sum("remaining")))
        run.issue(_expiry_notices(rows, zone))


def _expiry_notices(rows: Iterable[tuple[int, str, datetime, int]], zone: ZoneInfo) -> list[Award]:
    """One notice per member and local expiry date: the points it loses, and the first instant."""
    found: dict[tuple[int, date], list[Any]] = {}
    for member_id, external_id, expires_at, points in sorted(rows, key=lambda row: (row[0], row[2])):
        day = local_date(expires_at, zone)
        if (member_id, day) in found:
            found[member_id, day][1] += int(points)
        else:
            found[member_id, day] = [external_id, int(points), expires_at]
    return [Award(member_id, external_id, "expiring", f"expiring:{day}:{member_id}", [], (
        "points.expiring", {"points": points, "expires_at": expires_at, "expires_on": day}))
        for (member_id, day), (external_id, points, expires_at) in found.items()]


def _registered(due_at: datetime) -> QuerySet[Member]:
    return Member.objects.filter(registered_at__lte=due_at)


def _members(query: QuerySet[Member], fields: tuple[str, ...], chunk: int) -> Iterator[list[tuple[Any, ...]]]:
    """(id, *fields) rows a chunk at a time, in id order (keyset: each chunk is one indexed read)."""
    last = 0
    while True:
        rows = list(query.filter(id__gt=last).order_by("id").values_list("id", *fields)[:chunk])
        if not rows:
            return
        yield rows
        last = rows[-1][0]


def _written(model: type[Coupon] | type[OutboxEvent], at: str, keys: list[str]) -> dict[str, datetime]:
    """key -> `at` of the rows already written under these keys: UNIQUE-index lookups, in plain
    SQL because building the ORM's `IN (...)` costs more than running it, a million keys a run."""
    db = raw.database()
    key = db.ops.quote_name("key")  # a reserved word in MariaDB
    found: dict[str, datetime] = {}
    for value, moment in raw.fetch_by_keys(f"SELECT {key}, {at} FROM {model._meta.db_table} WHERE", key, keys, db,
                                           LOOKUP_CHUNK):
        written = raw.read_datetime(moment)
        assert written is not None  # NOT NULL columns
        found[value] = written
    return found


def _near(ruleset: Ruleset, rule: Sprint, tier: str, facts: Facts,
          population: Mapping[str, list[int | Decimal]] | None) -> tuple[Tier, list[Gap]] | None:
    scored = with_score(facts, ruleset, population)
    target = sprint_target(ruleset, tier, scored, rule)
    return None if target is None else (target, gaps(target, scored, ruleset))


def _population(ruleset: Ruleset, as_of: datetime, facts: MemberFacts | None = None
                ) -> dict[str, list[int | Decimal]] | None:
    """Percentile ranks place a member among everyone: every member's value, zeros included."""
    if ruleset.score is None or ruleset.score.normalise != "percentile":
        return None
    everyone = window_facts(ruleset, as_of) if facts is None else facts
    idle: list[int | Decimal] = [0] * (Member.objects.count() - len(everyone))
    key = ruleset.evaluation.window.key
    return {metric: sorted([row.get((metric, key), 0) for row in everyone.values()] + idle)
            for metric in ruleset.score.weights}


def _coupons_data(coupons: list[CouponDraft], codes: Mapping[str, str], times: dict[datetime, str]
                  ) -> dict[str, Any]:
    """A grant's coupons as its events show them, their shared validity once (events are written
    by the million: every field costs), already in JSON's own types (`Emission.plain`): times
    as UTC text, converted once per run in `times`, money as decimal strings."""
    if not coupons:
        return {}
    first = coupons[0]
    if any((c.valid_from, c.valid_until) != (first.valid_from, first.valid_until) for c in coupons):
        raise ValueError(f"the coupons of grant {first.key} do not share one validity")
    return {"valid_from": _utc(first.valid_from, times), "valid_until": _utc(first.valid_until, times), "coupons": [
        {"code": codes[c.key], "kind": c.kind, "value": format_fen(c.value_fen),
         "min_spend": format_fen(c.min_spend_fen)} for c in coupons]}


def _utc(moment: datetime, times: dict[datetime, str]) -> str:
    text = times.get(moment)
    if text is None:
        text = times[moment] = utc_text(moment)
    return text


def _gap_data(gap: Gap) -> dict[str, Any]:
    """What is missing, in the document's units: amounts in yuan (decimal strings)."""
    if gap.metric in AMOUNT_METRICS:
        return {"metric": gap.metric, "window": gap.window, "needed": format_fen(int(gap.needed)),
                "current": format_fen(int(gap.current))}
    return {"metric": gap.metric, "window": gap.window, "needed": _plain_number(gap.needed),
            "current": _plain_number(gap.current)}


def _plain_number(value: Decimal) -> int | Decimal:
    return int(value) if value == value.to_integral_value() else value
