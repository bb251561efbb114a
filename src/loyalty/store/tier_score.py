"""The weighted score as exact integer SQL: S = E / Q with an integer E per member and integer Q.

`S >= t` is compiled as `E * den(t) >= num(t) * Q`, so no division (and none of SQLite's float
division) takes place. Per normalisation, with d = 100 for amounts (the score counts yuan):

    none        E = Σ (w / d · L) · x                        Q = L
    minmax      E = Σ (x >= cap·d ? w·100·L : x <= 0 ? 0 : w·100 / (cap·d) · L · x)   Q = L
    percentile  E = Σ (w·100·L) · (below + through)          Q = 2·L · members

L is the least common multiple of the coefficients' denominators. The engine computes S in
Decimal arithmetic rounded at 28 digits (100 / 60 or a rank over 3 members do not terminate);
its S differs from the exact one by at most `rounding_bound`, which `plan` checks is smaller
than the gap between an exact S and any threshold it does not equal. A member whose exact S
equals a threshold is therefore the only one the engine might judge differently: `ties` flags
those for the engine to decide.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from math import ceil, lcm
from typing import Any

from loyalty.domain.conditions import AMOUNT_METRICS
from loyalty.domain.rules import Score

RAW_BOUND = 10**15  # metric values are assumed below this (10 trillion yuan, in fen)
POPULATION_BOUND = 10**9
INT_LIMIT = 2**63 - 1  # SQLite turns an overflowing integer product into a float: never get there
ROUNDINGS_PER_METRIC = 30  # the engine rounds at most three times per weighted metric; ten times that

Sql = tuple[str, list[Any]]
SQL_OPERATORS = {">=": ">=", ">": ">", "<=": "<=", "<": "<", "==": "=", "=": "="}


@dataclass(frozen=True)
class ScorePlan:
    """E as SQL over the fact columns (`value_of(metric)` names them), and Q's factor."""

    expression: Sql
    factor: int
    per_population: bool  # Q also multiplies by the member count (column `population`)

    def compare(self, op: str, threshold: Decimal) -> Sql:
        """`score op threshold` over the column `score_e` that holds E."""
        t = Fraction(threshold)
        right = "%s * population" if self.per_population else "%s"
        return f"score_e * %s {SQL_OPERATORS[op]} {right}", [t.denominator, t.numerator * self.factor]

    def ties(self, thresholds: Iterable[Decimal]) -> Sql:
        """Whether the exact score equals one of `thresholds`: the members the engine decides."""
        texts, params = [], []
        for threshold in sorted(set(thresholds)):
            text, values = self.compare("=", threshold)
            texts.append(text)
            params += values
        return (f"CASE WHEN {' OR '.join(texts)} THEN 1 ELSE 0 END", params) if texts else ("0", [])


def rank_column(metric: str) -> str:
    return f"rank_{metric}"


@dataclass(frozen=True)
class _Form:
    plan: ScorePlan
    largest_e: Fraction  # |E| for any member, metric values below RAW_BOUND
    largest_value: Fraction  # the largest magnitude the engine's Decimal steps reach


def plan(score: Score, value_of: dict[str, str], thresholds: Iterable[Decimal]) -> ScorePlan | None:
    """The exact form of `score`, or None when it would overflow or the rounding check fails.
    `value_of[metric]` is the SQL column of the metric over the evaluation window."""
    weights = {metric: Fraction(weight) for metric, weight in score.weights.items()}
    form: _Form | None
    if score.normalise == "percentile":
        form = _percentile(weights)
    elif score.normalise == "minmax":
        form = _minmax(weights, {m: Fraction(score.caps[m]) for m in weights}, value_of)
    else:
        form = _linear(weights, value_of)
    if form is None:
        return None
    bound = rounding_bound(len(weights), form.largest_value)
    largest_q = form.plan.factor * (POPULATION_BOUND if form.plan.per_population else 1)
    for threshold in thresholds:
        t = Fraction(threshold)
        if form.largest_e * t.denominator > INT_LIMIT or abs(t.numerator) * largest_q > INT_LIMIT:
            return None
        if bound * largest_q * t.denominator >= 1:  # the gap to a threshold S does not equal is 1/(Q·den t)
            return None
    return form.plan


def _unit(metric: str) -> int:
    return 100 if metric in AMOUNT_METRICS else 1


def _percentile(weights: dict[str, Fraction]) -> _Form:
    coefficients = {m: w * 100 for m, w in weights.items()}
    scale = lcm(*(c.denominator for c in coefficients.values()))
    terms = [(f"%s * {rank_column(m)}", [int(c * scale)]) for m, c in coefficients.items()]
    largest_e = sum((abs(c) * scale for c in coefficients.values()), Fraction(0)) * 2 * POPULATION_BOUND
    largest_value = sum((abs(w) for w in weights.values()), Fraction(0)) * 100
    return _Form(ScorePlan(_sum(terms), 2 * scale, per_population=True), largest_e, largest_value)


def _minmax(weights: dict[str, Fraction], caps: dict[str, Fraction], value_of: dict[str, str]) -> _Form | None:
    limits = {m: caps[m] * _unit(m) for m in weights}  # the cap in the metric's stored unit (fen)
    if any(ceil(limit) > RAW_BOUND for limit in limits.values()):
        return None
    inner = {m: w * 100 / limits[m] for m, w in weights.items()}
    full = {m: w * 100 for m, w in weights.items()}
    scale = lcm(*(c.denominator for c in (*inner.values(), *full.values())))
    terms = [(f"CASE WHEN {value_of[m]} >= %s THEN %s WHEN {value_of[m]} <= 0 THEN 0 ELSE %s * {value_of[m]} END",
              [ceil(limits[m]), int(full[m] * scale), int(inner[m] * scale)]) for m in weights]
    largest = sum((abs(c) for c in full.values()), Fraction(0))
    return _Form(ScorePlan(_sum(terms), scale, per_population=False), largest * scale, largest)


def _linear(weights: dict[str, Fraction], value_of: dict[str, str]) -> _Form:
    coefficients = {m: w / _unit(m) for m, w in weights.items()}
    scale = lcm(*(c.denominator for c in coefficients.values()))
    terms = [(f"%s * {value_of[m]}", [int(c * scale)]) for m, c in coefficients.items()]
    largest = sum((abs(c) for c in coefficients.values()), Fraction(0)) * RAW_BOUND
    return _Form(ScorePlan(_sum(terms), scale, per_population=False), largest * scale, largest)


def rounding_bound(metrics: int, largest_value: Fraction) -> Fraction:
    """How far the engine's 28-digit Decimal score can be from the exact one: each rounding moves
    a value of magnitude at most `largest_value` (plus one) by at most 10^-27 of it."""
    return Fraction(ROUNDINGS_PER_METRIC * metrics) * (largest_value + 1) / 10**27


def _sum(terms: list[Sql]) -> Sql:
    if not terms:
        return "0", []
    return "(" + " + ".join(text for text, _ in terms) + ")", [p for _, values in terms for p in values]
