"""The compiled tier statement (`store.tier_sql`) against the engine (`domain.tiers.evaluate`).

The property test draws a ruleset (a ladder of tiers with any/all trees over every metric and
window, invitation-only tiers, a weighted score under each normalisation, both expiry policies)
and a few members with orders (some refunded), ledger entries and actions placed around the
window boundaries, tiers expiring before, at and after `as_of`. Rows go straight into the
tables. The facts are worked out here in plain Python from the rows drawn, and every member's
decision from the statement must equal `evaluate` on those facts, for all members, an id range
and a list of ids. The fixed-clock tests go through the services: month ends, a leap day,
timezone boundaries and an expiry exactly at `as_of`.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import event as observe
from hypothesis import strategies as st

from loyalty.domain.conditions import METRICS, Facts, MetricKey
from loyalty.domain.periods import Window, local_date
from loyalty.domain.rules import Ruleset, parse_ruleset
from loyalty.domain.tiers import Standing, TierDecision, evaluate, needed_metrics, with_score
from loyalty.services.members import register_member
from loyalty.services.tiers import evaluate_tiers, evaluate_tiers_python, window_facts
from loyalty.store import raw, tier_facts, tier_sql
from loyalty.store.models import SOURCES, Action, LedgerEntry, Member, Order, OutboxEvent, TierChange
from loyalty.store.queries import INTERACTION_TYPES, POINTS_EARNING_SOURCES
from tests.conftest import at
from tests.service.support import member, pay, snapshot

ZONES = ("Asia/Shanghai", "UTC", "America/New_York")
WINDOW_SUFFIXES = ("", "_1m", "_3m", "_12m", "_year", "_lifetime")
COUNT_THRESHOLDS = ("0", "1", "2", "2.5", "3", "5")
YUAN_THRESHOLDS = ("0", "1", "99.99", "100", "250.5", "800", "2000")
SCORE_THRESHOLDS = ("0", "10", "25", "33.5", "50", "60", "100", "250")
OPS = (">=", ">", "<=", "<", "==")
HOUR, DAY = 3600, 86_400


# --- rulesets ------------------------------------------------------------------------------------

def comparisons(score: bool) -> st.SearchStrategy[dict[str, str]]:
    metric = st.tuples(st.sampled_from(METRICS), st.sampled_from(WINDOW_SUFFIXES))

    def leaf(pair: tuple[str, str]) -> st.SearchStrategy[dict[str, str]]:
        name, suffix = pair
        values = YUAN_THRESHOLDS if name in ("amount", "max_single_order") else COUNT_THRESHOLDS
        return st.tuples(st.sampled_from(OPS), st.sampled_from(values)).map(
            lambda c: {f"{name}{suffix}": f"{c[0]} {c[1]}"})

    found = metric.flatmap(leaf)
    if score:
        scored = st.tuples(st.sampled_from(OPS), st.sampled_from(SCORE_THRESHOLDS)).map(
            lambda c: {"score": f"{c[0]} {c[1]}"})
        found = st.one_of(found, scored, scored)
    return found


def conditions(score: bool) -> st.SearchStrategy[dict[str, Any]]:
    leaves = st.one_of(comparisons(score), comparisons(score), st.booleans().map(lambda v: {"invited": v}))
    return st.recursive(leaves, lambda inner: st.one_of(
        st.lists(inner, min_size=1, max_size=3).map(lambda parts: {"any": parts}),
        st.lists(inner, min_size=1, max_size=3).map(lambda parts: {"all": parts})), max_leaves=5)


@st.composite
def rulesets(draw: st.DrawFn) -> Ruleset:
    score = None
    if draw(st.booleans()):
        metrics = draw(st.lists(st.sampled_from(("amount", "orders", "growth", "points", "active_days",
                                                 "interactions", "max_single_order")),
                                min_size=1, max_size=3, unique=True))
        normalise = draw(st.sampled_from(("none", "minmax", "percentile")))
        score = {"weights": {m: draw(st.sampled_from(("0.5", "1", "3", "0.3", "0.25", "0.6"))) for m in metrics},
                 "normalise": normalise,
                 "caps": {m: draw(st.sampled_from(("1", "3", "7.5", "60", "500"))) for m in metrics}}
    tiers: list[dict[str, Any]] = [{"code": "t0"}]
    for rank in range(1, draw(st.integers(1, 4)) + 1):
        when = draw(conditions(score is not None))
        if draw(st.integers(0, 4)) == 0:
            when = {"all": [when, {"invited": True}]}  # invitation-only
        tiers.append({"code": f"t{rank}", "when": when})
    window = draw(st.sampled_from(({"kind": "trailing_months", "months": 12}, {"kind": "trailing_months", "months": 1},
                                   {"kind": "calendar_year"}, {"kind": "lifetime"})))
    document: dict[str, Any] = {
        "name": "drawn", "timezone": draw(st.sampled_from(ZONES)), "tiers": tiers,
        "evaluation": {"window": window, "validity_months": draw(st.sampled_from((1, 6, 12, 13))),
                       "on_expiry": draw(st.sampled_from(("recompute", "one_down")))},
    }
    if score is not None:
        document["score"] = score
    return parse_ruleset(document)


AS_OFS = ("2027-01-01 00:00", "2027-03-01 00:00", "2028-02-29 00:00", "2028-03-01 00:00", "2027-11-01 00:00",
          "2027-03-31 10:30", "2028-01-31 23:59")


def boundaries(ruleset: Ruleset, as_of: datetime) -> list[datetime]:
    """Every window's start and end: where an order moves in or out of a window."""
    window = ruleset.evaluation.window
    keys = {key for _, key in needed_metrics(ruleset) if key} | {window.key}
    found = [as_of]
    for key in keys:
        start, _ = Window.from_key(key).bounds(as_of, ruleset.timezone)
        if start is not None:
            found.append(start)
    return found


# --- members and their rows ----------------------------------------------------------------------

@dataclass
class Drawn:
    """One example's members and rows, as written to the tables."""

    members: list[dict[str, Any]] = field(default_factory=list)
    orders: list[dict[str, Any]] = field(default_factory=list)
    entries: list[dict[str, Any]] = field(default_factory=list)
    actions: list[dict[str, Any]] = field(default_factory=list)


@st.composite
def populations(draw: st.DrawFn, ruleset: Ruleset, as_of: datetime) -> Drawn:
    edges = boundaries(ruleset, as_of)
    moment = st.one_of(
        st.integers(-430 * DAY, 2 * DAY).map(lambda s: as_of + timedelta(seconds=s)),
        st.tuples(st.sampled_from(edges), st.sampled_from((-DAY, -HOUR // 2, -1, 0, 1, HOUR // 2))).map(
            lambda p: p[0] + timedelta(seconds=p[1])))
    zone = ruleset.timezone
    codes = [tier.code for tier in ruleset.tiers] + ["retired"]
    drawn = Drawn()
    for index in range(draw(st.integers(1, 7))):
        expires = draw(st.one_of(st.none(), st.sampled_from((as_of, as_of - timedelta(seconds=1),
                                                             as_of + timedelta(seconds=1))), moment, moment))
        drawn.members.append({"external_id": f"p{index}", "tier": draw(st.sampled_from(codes)),
                              "tier_expires_at": expires, "invited": draw(st.booleans())})
        for _ in range(draw(st.integers(0, 5))):
            paid_at, amount = draw(moment), draw(st.integers(1, 120_000))
            refunded = draw(st.sampled_from((0, 0, amount, amount // 3)))
            drawn.orders.append({"member": index, "paid_at": paid_at, "business_date": local_date(paid_at, zone),
                                 "amount_fen": amount, "refunded_fen": refunded})
        for _ in range(draw(st.integers(0, 3))):
            occurred_at = draw(moment)
            drawn.entries.append({"member": index, "ledger": draw(st.sampled_from(("growth", "points"))),
                                  "source": draw(st.sampled_from([s for s, _ in SOURCES])),
                                  "delta": draw(st.integers(-300, 3000)), "occurred_at": occurred_at,
                                  "business_date": local_date(occurred_at, zone)})
        for _ in range(draw(st.integers(0, 4))):
            happened = draw(moment)
            drawn.actions.append({"member": index, "type": draw(st.sampled_from(("review", "share", "check_in"))),
                                  "at": happened, "business_date": local_date(happened, zone),
                                  "capped_reason": draw(st.sampled_from(("", "", "daily_cap")))})
    return drawn


def clear_tables() -> None:
    for model in (OutboxEvent, TierChange, Action, LedgerEntry, Order, Member):
        model.objects.all().delete()


def write(drawn: Drawn) -> list[int]:
    """The drawn rows in the tables; answers the members' ids, in drawing order."""
    stamp = datetime(2020, 1, 1, tzinfo=UTC)
    members = Member.objects.bulk_create([Member(registered_at=stamp, payload_hash="-", **m) for m in drawn.members])
    ids = [m.id for m in members]
    Order.objects.bulk_create([Order(
        order_id=f"o{i}", member_id=ids[o["member"]], paid_at=o["paid_at"], business_date=o["business_date"],
        amount_fen=o["amount_fen"], refunded_fen=o["refunded_fen"], growth_base=0, growth_bonus=0, points=0,
        ruleset_version=1, payload_hash="-", recorded_at=stamp) for i, o in enumerate(drawn.orders)])
    LedgerEntry.objects.bulk_create([LedgerEntry(
        member_id=ids[e["member"]], ledger=e["ledger"], delta=e["delta"], source=e["source"], reference="-",
        idempotency_key=f"e{i}", occurred_at=e["occurred_at"], business_date=e["business_date"], recorded_at=stamp)
        for i, e in enumerate(drawn.entries)])
    Action.objects.bulk_create([Action(
        event_id=f"a{i}", member_id=ids[a["member"]], type=a["type"], at=a["at"], business_date=a["business_date"],
        growth=0, points=0, capped_reason=a["capped_reason"], ruleset_version=1, payload_hash="-", recorded_at=stamp)
        for i, a in enumerate(drawn.actions)])
    return ids


# --- the reference: facts in plain Python, decisions from the engine -----------------------------

def metric_value(drawn: Drawn, index: int, metric: str, start: datetime | None, end: datetime) -> int:
    def inside(moment: datetime) -> bool:
        return (start is None or moment >= start) and moment < end

    orders = [o for o in drawn.orders if o["member"] == index and inside(o["paid_at"])]
    actions = [a for a in drawn.actions if a["member"] == index and inside(a["at"])]
    entries = [e for e in drawn.entries if e["member"] == index and inside(e["occurred_at"])]
    kept = [o["amount_fen"] - o["refunded_fen"] for o in orders]
    values = {
        "orders": lambda: sum(1 for amount in kept if amount > 0),
        "amount": lambda: sum(kept),
        "max_single_order": lambda: max(kept, default=0),
        "growth": lambda: sum(e["delta"] for e in entries if e["ledger"] == "growth"),
        "points": lambda: sum(e["delta"] for e in entries
                              if e["ledger"] == "points" and e["source"] in POINTS_EARNING_SOURCES),
        "interactions": lambda: sum(1 for a in actions if a["type"] in INTERACTION_TYPES and not a["capped_reason"]),
        "active_days": lambda: len({o["business_date"] for o in orders} | {a["business_date"] for a in actions}),
    }
    return values[metric]()


def reference(ruleset: Ruleset, drawn: Drawn, ids: list[int], as_of: datetime, upgrades_only: bool
              ) -> dict[int, TierDecision]:
    keys = sorted(needed_metrics(ruleset))
    facts: list[dict[MetricKey, int | Decimal]] = []
    for index in range(len(ids)):
        row: dict[MetricKey, int | Decimal] = {}
        for metric, key in keys:
            start, end = Window.from_key(key).bounds(as_of, ruleset.timezone)
            row[(metric, key)] = metric_value(drawn, index, metric, start, end)
        facts.append(row)
    population = None
    if ruleset.score is not None and ruleset.score.normalise == "percentile":
        key = ruleset.evaluation.window.key
        population = {m: sorted(row[(m, key)] for row in facts) for m in ruleset.score.weights}
    decided = {}
    for index, (member_id, row) in enumerate(zip(ids, facts, strict=True)):
        person = drawn.members[index]
        scored = with_score(Facts(row, {"invited": person["invited"]}), ruleset, population)
        decision = evaluate(ruleset, Standing(person["tier"], person["tier_expires_at"]), scored, as_of,
                            upgrades_only=upgrades_only)
        if decision.changed:
            decided[member_id] = decision
    return decided


def statement(ruleset: Ruleset, as_of: datetime, scope: tier_sql.Scope, upgrades_only: bool
              ) -> dict[int, TierDecision]:
    decided = tier_sql.decide(ruleset, as_of, scope, upgrades_only=upgrades_only)
    assert decided is not None, "every drawn ruleset's score compiles exactly"
    assert [move.member_id for move in decided] == sorted(move.member_id for move in decided)
    return {move.member_id: move.decision for move in decided}


@settings(max_examples=int(os.environ.get("TIER_SQL_EXAMPLES", "35")), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_the_statement_decides_every_member_as_the_engine_does(db, data):
    ruleset = data.draw(rulesets(), label="ruleset")
    zone = ruleset.timezone
    as_of = datetime.fromisoformat(data.draw(st.sampled_from(AS_OFS), label="as_of")).replace(tzinfo=zone)
    drawn = data.draw(populations(ruleset, as_of), label="members")
    upgrades_only = data.draw(st.booleans(), label="upgrades_only")
    clear_tables()
    ids = write(drawn)

    expected = reference(ruleset, drawn, ids, as_of, upgrades_only)
    python_facts = window_facts(ruleset, as_of)  # what the per-member path reads
    keys = sorted({(metric, key) for metric in METRICS for key in ("1m", ruleset.evaluation.window.key)})
    statement_facts = tier_facts.window_metrics(ruleset, as_of, tier_sql.Scope(), keys)
    for index, member_id in enumerate(ids):
        for metric, key in keys:
            start, end = Window.from_key(key).bounds(as_of, zone)
            value = metric_value(drawn, index, metric, start, end)
            assert statement_facts[member_id][(metric, key)] == value, (metric, key)
        for metric, key in needed_metrics(ruleset) - {("score", "")}:
            start, end = Window.from_key(key).bounds(as_of, zone)
            assert python_facts.get(member_id, {}).get((metric, key), 0) == metric_value(
                drawn, index, metric, start, end), (metric, key)
    assert statement(ruleset, as_of, tier_sql.Scope(), upgrades_only) == expected
    lo, hi = sorted(data.draw(st.lists(st.sampled_from([*ids, ids[-1] + 1]), min_size=2, max_size=2), label="range"))
    assert statement(ruleset, as_of, tier_sql.Scope(id_range=(lo, hi)), upgrades_only) == {
        m: d for m, d in expected.items() if lo <= m < hi}
    some = data.draw(st.lists(st.sampled_from(ids), unique=True), label="some")
    assert statement(ruleset, as_of, tier_sql.Scope(member_ids=tuple(some)), upgrades_only) == {
        m: d for m, d in expected.items() if m in some}
    for reason in {d.reason for d in expected.values()}:
        observe(f"a member's tier: {reason}")
    if ruleset.score is not None:
        observe(f"score: {ruleset.score.normalise}")
        compiled = tier_sql.compile_evaluation(ruleset, as_of, tier_sql.Scope(), upgrades_only=upgrades_only)
        assert compiled is not None
        if any(row[4] for row in raw.fetch(compiled.sql, compiled.params)):
            observe("a score exactly on a threshold")


# --- scores exactly on a threshold: the engine's Decimal rounding decides ------------------------

def three_thirds_ruleset(normalise: str, threshold: str, weights: dict[str, str]) -> Ruleset:
    return parse_ruleset({
        "name": "thirds", "timezone": "Asia/Shanghai",
        "score": {"weights": weights, "normalise": normalise, "caps": {m: "3" for m in weights}},
        "tiers": [{"code": "base"}, {"code": "top", "when": {"score": f">= {threshold}"}}],
    })


def test_a_minmax_score_exactly_on_the_threshold_is_decided_by_the_engines_rounding(db):
    # Each metric at 1 of a cap of 3 is 33.33…33 (28 digits): three of them sum to 99.99…99, not 100.
    ruleset = three_thirds_ruleset("minmax", "100", {"orders": "1", "interactions": "1", "active_days": "1"})
    as_of = at("2027-02-01 00:00")
    drawn = Drawn(members=[{"external_id": "p0", "tier": "base", "tier_expires_at": None, "invited": False},
                           {"external_id": "p1", "tier": "base", "tier_expires_at": None, "invited": False}])
    day = at("2027-01-10 10:00")
    for index in (0, 1):
        drawn.orders.append({"member": index, "paid_at": day, "business_date": day.date(), "amount_fen": 100,
                             "refunded_fen": 0})
        drawn.actions.append({"member": index, "type": "review", "at": day, "business_date": day.date(),
                              "capped_reason": ""})
    drawn.orders.append({"member": 1, "paid_at": day, "business_date": day.date(), "amount_fen": 100,
                         "refunded_fen": 0})  # 2 orders: 66.66…67 + 33.33…33 + 33.33…33 > 100
    ids = write(drawn)
    expected = reference(ruleset, drawn, ids, as_of, False)
    assert set(expected) == {ids[1]}
    assert statement(ruleset, as_of, tier_sql.Scope(), False) == expected


def test_a_percentile_score_exactly_on_the_threshold_is_decided_by_the_engines_rounding(db):
    # Three members, two idle: they tie at the bottom, rank 2 × 100 / 6 = 33.33…33, times 3 is
    # 99.99…99 to the engine, not 100. The buyer ranks 83.33…33, times 3 well above 100.
    ruleset = three_thirds_ruleset("percentile", "100", {"amount": "3"})
    as_of = at("2027-02-01 00:00")
    drawn = Drawn(members=[{"external_id": f"p{i}", "tier": "base", "tier_expires_at": None, "invited": False}
                           for i in range(3)])
    day = at("2027-01-10 10:00")
    drawn.orders.append({"member": 2, "paid_at": day, "business_date": day.date(), "amount_fen": 100,
                         "refunded_fen": 0})
    ids = write(drawn)
    expected = reference(ruleset, drawn, ids, as_of, False)
    assert set(expected) == {ids[2]}
    assert statement(ruleset, as_of, tier_sql.Scope(), False) == expected
    assert statement(ruleset, as_of, tier_sql.Scope(member_ids=(ids[0],)), False) == {}
    lower = three_thirds_ruleset("percentile", "99.9", {"amount": "3"})
    assert set(statement(lower, as_of, tier_sql.Scope(), False)) == set(ids)


def test_a_score_that_would_overflow_64_bit_integers_is_left_to_the_engine(db):
    ruleset = parse_ruleset({"name": "huge", "tiers": [{"code": "base"}, {"code": "top", "when": {"score": ">= 1"}}],
                             "score": {"weights": {"orders": "123456789.123456789"}, "normalise": "none"}})
    assert tier_sql.compile_evaluation(ruleset, at("2027-02-01 00:00"), tier_sql.Scope()) is None


# --- through the services, with a fixed clock ----------------------------------------------------

def standing(external_id: str) -> tuple[str, datetime | None]:
    m = member(external_id)
    return m.tier, m.tier_expires_at


def same_as_python(as_of: datetime, clock: Any, **kwargs: Any) -> Any:
    """Both paths as dry runs agree; then the statement's run writes."""
    statement_run = evaluate_tiers(as_of, clock=clock, dry_run=True, **kwargs)
    python_run = evaluate_tiers_python(as_of, clock=clock, dry_run=True, **kwargs)
    assert (statement_run.members, statement_run.changes, statement_run.tiers) == (
        python_run.members, python_run.changes, python_run.tiers)
    return evaluate_tiers(as_of, clock=clock, **kwargs)


@pytest.fixture
def five(default_rules, clock):
    for external_id in ("m1", "m2", "m3", "m4", "m5"):
        register_member(external_id, clock=clock)


def test_an_order_at_2330_local_on_the_windows_last_day_counts_and_one_at_0030_the_next_day_does_not(five, clock):
    pay("late", "m1", at("2027-01-31 23:30"), "100", clock)  # 15:30 UTC, inside the window
    pay("early", "m2", at("2027-02-01 00:30"), "100", clock)  # 16:30 UTC the same UTC day, outside
    pay("first", "m3", at("2026-02-01 00:30"), "100", clock)  # the window's first local day
    pay("before", "m4", at("2026-01-31 23:30"), "100", clock)  # the day before it
    summary = same_as_python(at("2027-02-01 00:00"), clock)
    assert [standing(m)[0] for m in ("m1", "m2", "m3", "m4")] == ["silver", "bronze", "silver", "bronze"]
    assert summary.tiers == Counter({"bronze": 3, "silver": 2})


def test_windows_and_expiries_follow_the_rulesets_own_timezone(publish, clock):
    publish("default", timezone="America/New_York")
    register_member("m1", clock=clock)
    register_member("m2", clock=clock)
    zone = ZoneInfo("America/New_York")
    pay("in", "m1", datetime(2027, 1, 31, 23, 30, tzinfo=zone), "100", clock)  # 2027-02-01 12:30 in Shanghai
    pay("out", "m2", datetime(2027, 2, 1, 0, 30, tzinfo=zone), "100", clock)
    as_of = datetime(2027, 2, 1, tzinfo=zone)
    same_as_python(as_of, clock)
    assert standing("m1") == ("silver", datetime(2028, 2, 1, tzinfo=zone))
    assert standing("m2") == ("bronze", None)


def test_a_tier_reached_on_a_leap_day_expires_on_28_february_and_is_re_evaluated_exactly_then(five, clock):
    pay("o1", "m1", at("2028-02-10 10:00"), "100", clock)
    same_as_python(at("2028-02-29 00:00"), clock)  # e.g. an immediate evaluation on the leap day
    assert standing("m1") == ("silver", at("2029-02-28 00:00"))
    before = snapshot()
    summary = same_as_python(at("2029-02-27 23:59:59"), clock)
    assert sum(summary.changes.values()) == 0
    assert snapshot() == before
    summary = same_as_python(at("2029-02-28 00:00"), clock)  # expiry exactly at as_of: expired
    assert summary.changes == Counter({"downgrade": 1})
    assert standing("m1") == ("bronze", None)


def test_month_ends_clamp_the_window_start_and_the_expiry(publish, clock):
    publish("default", evaluation={"window": {"kind": "trailing_months", "months": 1}, "validity_months": 1})
    for external_id in ("m1", "m2"):
        register_member(external_id, clock=clock)
    pay("in", "m1", at("2027-02-28 00:00"), "100", clock)  # 31 March less one month: 28 February
    pay("out", "m2", at("2027-02-27 23:59"), "100", clock)
    same_as_python(at("2027-03-31 00:00"), clock)
    assert standing("m1") == ("silver", at("2027-04-30 00:00"))
    assert standing("m2") == ("bronze", None)
    pay("again", "m1", at("2027-04-10 10:00"), "100", clock)
    summary = same_as_python(at("2027-04-30 00:00"), clock)  # expired exactly now, still earned: renewed
    assert summary.changes == Counter({"renew": 1})
    assert standing("m1") == ("silver", at("2027-05-30 00:00"))


def test_an_expiry_one_second_after_as_of_keeps_the_tier(five, clock):
    for external_id, expires in (("m1", at("2027-02-01 00:00")), ("m2", at("2027-02-01 00:00:01"))):
        Member.objects.filter(external_id=external_id).update(tier="gold", tier_expires_at=expires)
    summary = same_as_python(at("2027-02-01 00:00"), clock)
    assert summary.changes == Counter({"downgrade": 1})
    assert standing("m1") == ("bronze", None)
    assert standing("m2") == ("gold", at("2027-02-01 00:00:01"))


@pytest.mark.parametrize("preset", ["default", "seed000-weighted", "seed001-all", "seed000-points"])
def test_every_preset_gives_the_same_summary_and_writes_as_the_python_path(publish, clock, preset):
    publish(preset)
    people = [f"m{i}" for i in range(8)]
    for external_id in people:
        register_member(external_id, clock=clock)
    Member.objects.filter(external_id="m7").update(invited=True)
    for i, external_id in enumerate(people):
        for n in range(i % 4):
            pay(f"{external_id}-{n}", external_id, at(f"2027-01-0{n + 2} 10:00"), str(150 * (i + 1)), clock)
    as_of = at("2027-02-01 00:00")
    summary = same_as_python(as_of, clock)
    assert sum(summary.changes.values()) == TierChange.objects.count() == OutboxEvent.objects.filter(
        type="member.tier_changed").count()
    assert evaluate_tiers(as_of, clock=clock).changes == Counter()


def test_id_ranges_split_the_work_and_together_change_what_one_run_does(five, clock):
    for external_id in ("m1", "m3", "m5"):
        pay(f"{external_id}-o", external_id, at("2027-01-10 10:00"), "900", clock)
    ids = sorted(Member.objects.values_list("id", flat=True))
    middle = ids[2]
    first = evaluate_tiers(at("2027-02-01 00:00"), clock=clock, id_range=(ids[0], middle))
    second = evaluate_tiers(at("2027-02-01 00:00"), clock=clock, id_range=(middle, ids[-1] + 1))
    assert (first.members, second.members) == (2, 3)
    assert first.changes + second.changes == Counter({"upgrade": 3})
    assert {standing(m)[0] for m in ("m1", "m3", "m5")} == {"gold"}
    assert TierChange.objects.count() == 3
    assert date(2028, 2, 1) == member("m1").tier_expires_at.astimezone(ZoneInfo("Asia/Shanghai")).date()


def test_a_long_list_of_ids_is_evaluated_in_several_statements(five, clock):
    pay("o1", "m2", at("2027-01-10 10:00"), "100", clock)
    pay("o2", "m4", at("2027-01-10 10:00"), "900", clock)
    ids = sorted(Member.objects.values_list("id", flat=True))
    listed = [*ids, *range(ids[-1] + 1, ids[-1] + 2 * tier_facts.IDS_PER_STATEMENT)]  # most are nobody
    assert len(tier_facts.Scope(tuple(listed)).pieces()) == 3
    summary = same_as_python(at("2027-02-01 00:00"), clock, member_ids=listed)
    assert (summary.members, summary.changes) == (5, Counter({"upgrade": 2}))
    assert (standing("m2")[0], standing("m4")[0]) == ("silver", "gold")
