"""Tier evaluation as one set-based statement, compiled from the ruleset's condition tree.

Per member the statement computes the window metrics the tier conditions read (the definitions
of `store.queries`: orders and amounts net of refunds, uncapped reviews and shares, distinct
business dates with an order or an action), the earned tier as a CASE from the top tier down,
and the decision of `domain.tiers.evaluate`: upgrade when earned above current; otherwise, only
once the tier has expired, renew, or downgrade under `recompute` (to the earned tier) or
`one_down` (one tier); never below the base tier. Members without activity are LEFT JOINed rows
with zero metrics, never Python objects. Only the members whose tier changes come back.

Window bounds, thresholds and the new expiry (the same for every member moved above the base
tier) are worked out in Python and passed as parameters. The weighted score is compared as
exact integers (`tier_score`); a member whose exact score equals a threshold comes back
`ambiguous`, with the metrics the statement read, and the engine decides that member.
Percentile ranks are window functions over every member, so a partial run still ranks against
the whole population (and pays for reading it).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from fractions import Fraction
from math import ceil, floor
from typing import Any, NamedTuple

from django.db import transaction

from loyalty.domain.conditions import AllOf, AnyOf, Comparison, Condition, Facts, Flag, MetricKey
from loyalty.domain.periods import Window, add_months_at
from loyalty.domain.rules import Ruleset, Score
from loyalty.domain.tiers import HUNDRED, Standing, TierDecision, evaluate, score_of
from loyalty.store import raw, tier_facts, tier_score
from loyalty.store.tier_facts import IDS_PER_STATEMENT, MEMBERS, Scope, column
from loyalty.store.tier_score import ScorePlan, Sql, rank_column

REASONS = ("none", "upgrade", "renew", "downgrade")  # the statement's reason codes, in this order
RANKED_IDS_PER_STATEMENT = 20_000


class TierMove(NamedTuple):
    """A member whose tier changes, and the decision."""

    member_id: int
    external_id: str
    decision: TierDecision


@dataclass(frozen=True)
class Compiled:
    """A statement whose rows are (id, external_id, tier, reason, to_rank, ambiguous,
    tier_expires_at, invited), then, when a score is compared, the `metrics` and (percentile) the
    ranks and the population."""

    sql: str
    params: list[Any]
    metrics: tuple[MetricKey, ...]
    score: ScorePlan | None


def decide(ruleset: Ruleset, as_of: datetime, scope: Scope, *, upgrades_only: bool = False
           ) -> list[TierMove] | None:
    """Every member in `scope` whose tier changes at `as_of`, in id order; None when the score
    cannot be compiled exactly (the caller evaluates member by member instead)."""
    expiry = add_months_at(as_of, ruleset.evaluation.validity_months, ruleset.timezone)
    codes = [tier.code for tier in ruleset.tiers]
    moves: list[TierMove] = []
    shared: dict[tuple[str, int, int], TierDecision] = {}  # few distinct decisions, many members
    for piece in scope.pieces(RANKED_IDS_PER_STATEMENT if _ranks_everyone(ruleset) else IDS_PER_STATEMENT):
        compiled = compile_evaluation(ruleset, as_of, piece, upgrades_only=upgrades_only)
        if compiled is None:
            return None
        for row in _rows(compiled):
            if row[5]:
                decision = _engine_decision(ruleset, compiled, row, as_of, upgrades_only)
                if not decision.changed:
                    continue
            else:
                tier, reason, to_rank = row[2], int(row[3]), int(row[4])
                decision = shared.get((tier, reason, to_rank)) or shared.setdefault(
                    (tier, reason, to_rank),
                    TierDecision(tier, codes[to_rank], REASONS[reason], expiry if to_rank else None))
            moves.append(TierMove(int(row[0]), row[1], decision))
    return moves


def _ranks_everyone(ruleset: Ruleset) -> bool:
    """A percentile score compared by some tier: the aggregates read every member, and listed ids
    appear once in the statement, so each statement can take many more of them."""
    return ruleset.score is not None and ruleset.score.normalise == "percentile" and bool(condition_reads(ruleset)[1])


def _rows(compiled: Compiled) -> list[tuple[Any, ...]]:
    db = raw.database()
    if db.vendor != "postgresql":
        return raw.fetch(compiled.sql, compiled.params, db)
    with transaction.atomic(using=db.alias):
        # A parallel plan repeats the whole aggregate in every worker (the CTE sits under the
        # join's inner side): one process is faster, measured on 1M members. The setting is put
        # back for whatever else the caller's transaction runs (a failure rolls it back anyway).
        (before, _), = raw.fetch("SELECT current_setting('max_parallel_workers_per_gather'), "
                                 "set_config('max_parallel_workers_per_gather', '0', true)", [], db)
        rows = raw.fetch(compiled.sql, compiled.params, db)
        raw.fetch("SELECT set_config('max_parallel_workers_per_gather', %s, true)", [before], db)
        return rows


def tier_counts(scope: Scope) -> Counter[str]:
    """Members per stored tier code, in `scope`."""
    counts: Counter[str] = Counter()
    for piece in scope.pieces():
        where, params = piece.where("id")
        for tier, count in raw.fetch(f"SELECT tier, COUNT(*) FROM {MEMBERS} WHERE {where} GROUP BY tier", params):
            counts[tier] += int(count)
    return counts


def move_members(moves: Sequence[tuple[int, str, str, datetime | None]], as_of: datetime) -> None:
    """PostgreSQL: (member id, from, to, expires) for many members in one UPDATE over arrays bound
    by the server, each row moved only if its tier is still `from` (a concurrent change wins)."""
    if not moves:
        return
    ids, froms, tos, expires = (list(column) for column in zip(*moves, strict=True))
    raw.execute_bound(
        f"UPDATE {MEMBERS} AS m SET tier = v.to_tier, tier_reached_at = %s, tier_expires_at = v.expires "
        f"FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::timestamptz[]) AS v(id, from_tier, to_tier, expires) "
        f"WHERE m.id = v.id AND m.tier = v.from_tier", [as_of, ids, froms, tos, expires], raw.database())


def compile_evaluation(ruleset: Ruleset, as_of: datetime, scope: Scope, *, upgrades_only: bool = False
                       ) -> Compiled | None:
    """The statement for `ruleset` at `as_of` over `scope`, or None when the score cannot be exact."""
    window = ruleset.evaluation.window
    keys, thresholds = condition_reads(ruleset)
    score = None
    if thresholds:
        assert ruleset.score is not None  # the parser refuses a `score` condition without a score
        keys |= {(metric, window.key) for metric in ruleset.score.weights}
        value_of = {metric: column((metric, window.key)) for metric in ruleset.score.weights}
        score = tier_score.plan(ruleset.score, value_of, thresholds)
        if score is None:
            return None
    metrics = tuple(sorted(keys))
    population = score is not None and score.per_population
    inner = Scope() if population else scope  # percentile ranks read everyone
    ctes = tier_facts.facts_ctes(ruleset, as_of, metrics, inner, ruleset.score if population else None)
    source = "facts"
    if score is not None:
        where, where_params = scope.where("id") if population else ("1 = 1", [])
        text, params = score.expression
        ctes.append((f"scored AS (SELECT facts.*, {text} AS score_e FROM facts WHERE {where})", params + where_params))
        source = "scored"
    earned, earned_params = _earned(ruleset, score, thresholds)
    ctes.append((f"earned AS (SELECT {source}.*, {earned} FROM {source})", earned_params))
    ctes.append((f"decided AS (SELECT earned.*, {_reason(upgrades_only)} AS reason FROM earned)", []))
    to_rank = "current_rank - 1" if ruleset.evaluation.on_expiry == "one_down" else "earned_rank"
    extra = [column(key) for key in metrics] if score is not None else []
    if population:
        assert ruleset.score is not None
        extra += [rank_column(metric) for metric in ruleset.score.weights] + ["population"]
    sql = ("WITH " + ", ".join(text for text, _ in ctes)
           + f" SELECT id, external_id, tier, reason, CASE reason WHEN 1 THEN earned_rank WHEN 3 THEN {to_rank} "
             f"ELSE current_rank END, ambiguous, tier_expires_at, invited{''.join(f', {c}' for c in extra)} "
             f"FROM decided WHERE reason <> 0 OR ambiguous = 1 ORDER BY id")
    return Compiled(sql, [p for _, params in ctes for p in params], metrics, score)


def condition_reads(ruleset: Ruleset) -> tuple[set[MetricKey], set[Decimal]]:
    """The metric keys the tier conditions read, and the thresholds they compare the score with."""
    keys: set[MetricKey] = set()
    thresholds: set[Decimal] = set()
    window = ruleset.evaluation.window

    def walk(node: Condition) -> None:
        if isinstance(node, (AnyOf, AllOf)):
            for part in node.parts:
                walk(part)
        elif isinstance(node, Comparison):
            if node.metric == "score":
                thresholds.add(node.threshold)
            else:
                keys.add(node.key(window))

    for tier in ruleset.tiers[1:]:
        if tier.when is not None:
            walk(tier.when)
    return keys, thresholds


# --- conditions, the earned tier and the decision ------------------------------------------------

def condition_sql(node: Condition, window: Window, score: ScorePlan | None) -> Sql:
    """A condition as a predicate over the fact columns, with exact integer comparisons only."""
    if isinstance(node, (AnyOf, AllOf)):
        if not node.parts:  # as `holds`: an empty `all` holds, an empty `any` does not
            return ("1 = 0" if isinstance(node, AnyOf) else "1 = 1"), []
        parts = [condition_sql(part, window, score) for part in node.parts]
        joiner = " OR " if isinstance(node, AnyOf) else " AND "
        return "(" + joiner.join(text for text, _ in parts) + ")", [p for _, params in parts for p in params]
    if isinstance(node, Flag):
        if node.name != "invited":
            raise ValueError(f"no column holds the flag {node.name!r}")
        return "invited = %s", [1 if node.value else 0]
    if node.metric == "score":
        assert score is not None
        return score.compare(node.op, node.threshold)
    return integer_comparison(column(node.key(window)), node.op, node.threshold)


def integer_comparison(name: str, op: str, threshold: Decimal) -> Sql:
    """`name op threshold` for an integer column, with an integer on the right (x >= 2.5 is
    x >= 3): SQLite would compare an integer with a decimal parameter as text."""
    t = Fraction(threshold)
    if op in (">=", "<"):
        return f"{name} {op} %s", [ceil(t)]
    if op in (">", "<="):
        return f"{name} {op} %s", [floor(t)]
    return (f"{name} = %s", [int(t)]) if t.denominator == 1 else ("1 = 0", [])


def _earned(ruleset: Ruleset, score: ScorePlan | None, thresholds: set[Decimal]) -> Sql:
    window = ruleset.evaluation.window
    whens, params = [], []
    for tier in reversed(ruleset.tiers[1:]):
        assert tier.when is not None  # the parser requires a condition above the base tier
        text, values = condition_sql(tier.when, window, score)
        whens.append(f"WHEN {text} THEN {tier.rank}")
        params += values
    earned = f"CASE {' '.join(whens)} ELSE 0 END" if whens else "0"
    ties, tie_params = score.ties(thresholds) if score is not None else ("0", [])
    return f"{earned} AS earned_rank, {ties} AS ambiguous", params + tie_params


def _reason(upgrades_only: bool) -> str:
    """0 none, 1 upgrade, 2 renew, 3 downgrade, decided in the order `domain.tiers.evaluate` does."""
    stays = "1 = 1" if upgrades_only else "expired = 0"
    return (f"CASE WHEN earned_rank > current_rank THEN 1 WHEN {stays} THEN 0 "
            f"WHEN earned_rank = current_rank THEN 2 ELSE 3 END")


# --- members whose score sits exactly on a threshold: the engine decides -------------------------

def _engine_decision(ruleset: Ruleset, compiled: Compiled, row: Sequence[Any], as_of: datetime,
                     upgrades_only: bool) -> TierDecision:
    assert ruleset.score is not None
    tail = list(row[8:])
    metrics: dict[MetricKey, int | Decimal] = {
        key: int(value) for key, value in zip(compiled.metrics, tail[:len(compiled.metrics)], strict=True)}
    if compiled.score is not None and compiled.score.per_population:
        ranks = tail[len(compiled.metrics):-1]
        score = percentile_score(ruleset.score, [int(rank) for rank in ranks], int(tail[-1]))
    else:
        score = score_of(metrics, ruleset.score, ruleset.evaluation.window.key)
    facts = Facts({**metrics, ("score", ""): score}, {"invited": bool(row[7])})
    return evaluate(ruleset, Standing(row[2], _moment(row[6])), facts, as_of, upgrades_only=upgrades_only)


def percentile_score(score: Score, ranks: Sequence[int], population: int) -> Decimal:
    """The engine's percentile score from each metric's below + through count, in its own
    Decimal steps (`domain.tiers.score_of` and `_mid_rank`)."""
    total = Decimal(0)
    for weight, rank in zip(score.weights.values(), ranks, strict=True):
        total += weight * (Decimal(rank) * HUNDRED / (2 * population))
    return total


def _moment(value: Any) -> datetime | None:
    """A datetime column read through the CTEs: SQLite may hand back its stored text."""
    if isinstance(value, str):
        parsed = datetime.fromisoformat(value)
        return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
    return raw.read_datetime(value)
