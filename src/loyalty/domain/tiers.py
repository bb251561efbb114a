"""Tier evaluation: which tier a member's window facts earn, and what happens at month start.

On an evaluation (the 1st at 00:00 local, or an event under `immediate_upgrade`):
  * earned above current          -> upgrade, valid `validity_months` from now;
  * current tier expired          -> re-evaluated: `recompute` moves to the earned tier,
                                     `one_down` drops at most one tier; equal means renewed;
  * otherwise                      -> nothing changes.
The base tier never expires and nobody falls below it.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from loyalty.domain.conditions import Comparison, Facts, MetricKey, holds, metric_keys
from loyalty.domain.periods import add_months_at
from loyalty.domain.rules import Ruleset, Score, Tier

HUNDRED = Decimal(100)


@dataclass(frozen=True)
class Standing:
    """A member's tier as stored: code and when it stops being valid (None: never)."""

    code: str
    expires_at: datetime | None


@dataclass(frozen=True)
class TierDecision:
    from_code: str
    to_code: str
    reason: str  # upgrade | renew | downgrade | none
    expires_at: datetime | None

    @property
    def changed(self) -> bool:
        return self.reason != "none"


def needed_metrics(ruleset: Ruleset) -> set[MetricKey]:
    """Metric keys the tiers and the score read; score inputs use the evaluation window."""
    window = ruleset.evaluation.window
    keys: set[MetricKey] = set()
    for tier in ruleset.tiers:
        keys |= metric_keys(tier.when, window)
    keys.discard(("score", ""))
    if ruleset.score is not None:
        keys |= {(metric, window.key) for metric in ruleset.score.weights}
    return keys


def score_of(metrics: Mapping[MetricKey, int | Decimal], score: Score, window_key: str,
             population: Mapping[str, Sequence[int | Decimal]] | None = None) -> Decimal:
    """S = Σ weight × normalised metric. Amounts count in yuan. Percentile ranks need `population`
    (each metric's raw values over all members, sorted); min-max caps each metric to 0–100."""
    total = Decimal(0)
    for metric, weight in score.weights.items():
        raw = metrics.get((metric, window_key), 0)
        if score.normalise == "percentile":
            values = (population or {}).get(metric) or [raw]
            total += weight * _mid_rank(values, raw)
            continue
        value = Decimal(raw) / 100 if metric in ("amount", "max_single_order") else Decimal(raw)
        if score.normalise == "minmax":
            cap = score.caps[metric]
            value = min(max(value, Decimal(0)), cap) * HUNDRED / cap
        total += weight * value
    return total


def _mid_rank(values: Sequence[int | Decimal], value: int | Decimal) -> Decimal:
    """Percentile rank, 0–100: the share below plus half the share tied (scipy's kind="mean").
    Ties count half, so when most members have done nothing, doing nothing ranks in the middle,
    not at the top."""
    below, through = bisect_left(values, value), bisect_right(values, value)
    return Decimal(below + through) * HUNDRED / (2 * len(values))


def with_score(facts: Facts, ruleset: Ruleset,
               population: Mapping[str, Sequence[int | Decimal]] | None = None) -> Facts:
    """Facts plus the weighted score, when the ruleset defines one."""
    if ruleset.score is None:
        return facts
    value = score_of(facts.metrics, ruleset.score, ruleset.evaluation.window.key, population)
    return Facts({**facts.metrics, ("score", ""): value}, facts.flags)


def earned_tier(ruleset: Ruleset, facts: Facts) -> Tier:
    """The highest tier whose condition holds; the base tier when none does."""
    for tier, test in zip(reversed(ruleset.tiers[1:]), reversed(ruleset.tier_tests[1:]), strict=True):
        if test(facts):
            return tier
    return ruleset.base_tier


def evaluate(ruleset: Ruleset, standing: Standing, facts: Facts, as_of: datetime,
             *, upgrades_only: bool = False) -> TierDecision:
    """Decide the tier change at `as_of`. `upgrades_only` is the immediate, on-event check."""
    current = ruleset.tier(standing.code)
    earned = earned_tier(ruleset, facts)
    expired = standing.expires_at is not None and standing.expires_at <= as_of
    if earned.rank > current.rank:
        return _decide(ruleset, standing, earned, "upgrade", as_of)
    if upgrades_only or not expired:
        return TierDecision(standing.code, standing.code, "none", standing.expires_at)
    if earned.rank == current.rank:
        return _decide(ruleset, standing, current, "renew", as_of)
    floor_rank = current.rank - 1 if ruleset.evaluation.on_expiry == "one_down" else 0
    return _decide(ruleset, standing, ruleset.tiers[max(earned.rank, floor_rank)], "downgrade", as_of)


def _decide(ruleset: Ruleset, standing: Standing, tier: Tier, reason: str, as_of: datetime) -> TierDecision:
    expires_at = None if tier.rank == 0 else add_months_at(
        as_of, ruleset.evaluation.validity_months, ruleset.timezone)
    return TierDecision(standing.code, tier.code, reason, expires_at)


@dataclass(frozen=True)
class Gap:
    """One comparison of the next tier not yet met, and how far the member is from it."""

    metric: str
    window: str
    needed: Decimal
    current: Decimal


def next_tier(ruleset: Ruleset, code: str) -> Tier | None:
    rank = ruleset.tier(code).rank
    return ruleset.tiers[rank + 1] if rank + 1 < len(ruleset.tiers) else None


def gaps(tier: Tier, facts: Facts, ruleset: Ruleset) -> list[Gap]:
    """Comparisons in `tier`'s condition that the facts do not meet (for progress bars);
    none when the condition already holds, e.g. through another branch of an `any`."""
    window = ruleset.evaluation.window
    found: list[Gap] = []
    if tier.when is None or holds(tier.when, facts, window):
        return found

    def walk(node: object) -> None:
        if isinstance(node, Comparison):
            if not holds(node, facts, window):
                key = node.key(window)
                found.append(Gap(node.metric, key[1], node.threshold, Decimal(facts.value(key))))
        elif hasattr(node, "parts"):
            for part in node.parts:
                walk(part)

    walk(tier.when)
    return found
