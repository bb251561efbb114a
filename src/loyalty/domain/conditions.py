"""Tier conditions: an `any` / `all` expression tree over window metrics and flags.

    {any: [{orders: ">= 3"}, {amount: ">= 800"}]}            gold in the default ruleset
    {all: [{any: [...]}, {invited: true}]}                    black-gold: totals and an invitation
    {any: [{amount_12m: ">= 6000"}, {max_single_order: ">= 5000"}]}

A metric name may end in a window (`_12m`, `_3m`, `_year`, `_lifetime`); without one it uses the
ruleset's evaluation window. Amount thresholds are yuan in the document and fen in the tree.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from loyalty.domain.periods import Window

METRICS = (
    "orders", "amount", "growth", "points", "max_single_order", "active_days", "interactions",
)
AMOUNT_METRICS = frozenset({"amount", "max_single_order"})
FLAGS = ("invited",)
OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    ">=": operator.ge, ">": operator.gt, "<=": operator.le, "<": operator.lt, "==": operator.eq,
}
_COMPARISON = re.compile(r"^\s*(>=|<=|==|>|<)\s*(-?\d+(?:\.\d+)?)\s*$")
_WINDOWED = re.compile(r"^(?P<metric>[a-z_]+?)_(?:(?P<months>\d+)m|(?P<kind>year|lifetime))$")

MetricKey = tuple[str, str]  # (metric, window key) e.g. ("amount", "12m"); score uses ("score", "")


@dataclass(frozen=True)
class Comparison:
    metric: str
    window: Window | None  # None: the ruleset's evaluation window
    op: str
    threshold: Decimal  # fen for amount metrics, plain units otherwise

    def key(self, default: Window) -> MetricKey:
        if self.metric == "score":
            return ("score", "")
        return (self.metric, (self.window or default).key)


@dataclass(frozen=True)
class Flag:
    name: str
    value: bool


@dataclass(frozen=True)
class AnyOf:
    parts: tuple[Condition, ...]


@dataclass(frozen=True)
class AllOf:
    parts: tuple[Condition, ...]


Condition = Comparison | Flag | AnyOf | AllOf


@dataclass(frozen=True)
class Facts:
    """What a condition is judged on: metric values by (metric, window key), flags, and score."""

    metrics: Mapping[MetricKey, int | Decimal]
    flags: Mapping[str, bool]

    def value(self, key: MetricKey) -> int | Decimal:
        return self.metrics.get(key, 0)


def holds(node: Condition, facts: Facts, window: Window) -> bool:
    """Whether `facts` satisfy the condition; an empty `all` holds and an empty `any` does not."""
    if isinstance(node, AnyOf):
        return any(holds(part, facts, window) for part in node.parts)
    if isinstance(node, AllOf):
        return all(holds(part, facts, window) for part in node.parts)
    if isinstance(node, Flag):
        return bool(facts.flags.get(node.name, False)) is node.value
    return OPERATORS[node.op](facts.value(node.key(window)), node.threshold)


Predicate = Callable[[Facts], bool]


def compile_condition(node: Condition, window: Window) -> Predicate:
    """The condition as nested closures: the same answers as `holds`, without re-dispatching on
    node types for every member (tier evaluation runs it millions of times)."""
    if isinstance(node, (AnyOf, AllOf)):
        parts = tuple(compile_condition(part, window) for part in node.parts)
        if isinstance(node, AnyOf):
            return lambda facts: any(part(facts) for part in parts)
        return lambda facts: all(part(facts) for part in parts)
    if isinstance(node, Flag):
        name, wanted = node.name, node.value
        return lambda facts: bool(facts.flags.get(name, False)) is wanted
    key, compare = node.key(window), OPERATORS[node.op]
    # Whole thresholds compare as int: int-to-int is several times faster than int-to-Decimal.
    threshold: int | Decimal = int(node.threshold) if node.threshold == node.threshold.to_integral_value() \
        else node.threshold
    return lambda facts: compare(facts.metrics.get(key, 0), threshold)


def metric_keys(node: Condition | None, window: Window) -> set[MetricKey]:
    """Every metric a condition reads: services compute only these."""
    if node is None or isinstance(node, Flag):
        return set()
    if isinstance(node, (AnyOf, AllOf)):
        return set().union(*(metric_keys(part, window) for part in node.parts)) if node.parts else set()
    return {node.key(window)}


def requires_flag(node: Condition | None, name: str) -> bool:
    """Whether every way of satisfying `node` needs flag `name` (e.g. invitation-only tiers)."""
    if node is None:
        return False
    if isinstance(node, Flag):
        return node.name == name and node.value
    if isinstance(node, AllOf):
        return any(requires_flag(part, name) for part in node.parts)
    if isinstance(node, AnyOf):
        return bool(node.parts) and all(requires_flag(part, name) for part in node.parts)
    return False


def parse_condition(raw: object, path: str, problems: list[str], *, score_enabled: bool) -> Condition:
    """Build the tree from the document, appending `path: problem` for every fault found."""
    if not isinstance(raw, Mapping) or len(raw) != 1:
        problems.append(f"{path}: a condition is a mapping with exactly one key (any, all, a metric or a flag)")
        return AllOf(())
    (key, value), = raw.items()
    if key in ("any", "all"):
        if not isinstance(value, list) or not value:
            problems.append(f"{path}.{key}: must be a non-empty list of conditions")
            return AllOf(())
        parts = tuple(
            parse_condition(part, f"{path}.{key}[{i}]", problems, score_enabled=score_enabled)
            for i, part in enumerate(value)
        )
        return AnyOf(parts) if key == "any" else AllOf(parts)
    if key in FLAGS:
        if not isinstance(value, bool):
            problems.append(f"{path}.{key}: a flag is true or false")
        return Flag(key, bool(value))
    return _parse_comparison(str(key), value, path, problems, score_enabled=score_enabled)


def _parse_comparison(
    key: str, value: object, path: str, problems: list[str], *, score_enabled: bool
) -> Condition:
    metric, window = _split_window(key)
    if metric == "score":
        if not score_enabled:
            problems.append(f"{path}: metric 'score' needs a `score` section in the ruleset")
    elif metric not in METRICS:
        problems.append(f"{path}: unknown metric {key!r}")
        return AllOf(())
    match = _COMPARISON.match(str(value)) if isinstance(value, (str, int)) else None
    if match is None:
        problems.append(f"{path}.{key}: expected a comparison such as \">= 200\", got {value!r}")
        return AllOf(())
    try:
        threshold = Decimal(match.group(2))
    except InvalidOperation:  # pragma: no cover - the regex admits only decimals
        problems.append(f"{path}.{key}: not a number")
        return AllOf(())
    if metric in AMOUNT_METRICS:
        threshold = threshold * 100
    return Comparison(metric, window, match.group(1), threshold)


def _split_window(key: str) -> tuple[str, Window | None]:
    match = _WINDOWED.match(key)
    if match is None or (match.group("metric") not in METRICS and match.group("metric") != "score"):
        return key, None
    if match.group("months"):
        return match.group("metric"), Window("trailing_months", int(match.group("months")))
    kind = "calendar_year" if match.group("kind") == "year" else "lifetime"
    return match.group("metric"), Window(kind, 0)
