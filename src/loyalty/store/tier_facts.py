"""The window metrics of the tier statement: per member, one column per metric and window.

One GROUP BY member_id per source table and window, with the definitions of `store.queries`
(orders and amounts net of refunds, uncapped reviews and shares, distinct business dates with
an order or an action; never an order or action whose credit is held or forfeited, `hold`),
each window's [start, end) from `Window.bounds` in the ruleset's timezone; then `facts`: every
member in scope LEFT JOINed to them, zeros where a member has no rows, with the standing the
decision reads (current rank, expired at `as_of`, invited).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from loyalty.domain.conditions import MetricKey
from loyalty.domain.periods import Window
from loyalty.domain.rules import Ruleset, Score
from loyalty.store import raw
from loyalty.store.models import Action, LedgerEntry, Member, Order
from loyalty.store.queries import INTERACTION_TYPES, POINTS_EARNING_SOURCES
from loyalty.store.tier_score import Sql, rank_column

IDS_PER_STATEMENT = 500  # a listed id is repeated in every aggregate: stay far under SQLite's 32,766
MEMBERS, ORDERS = Member._meta.db_table, Order._meta.db_table
ENTRIES, ACTIONS = LedgerEntry._meta.db_table, Action._meta.db_table
ORDER_METRICS = ("orders", "amount", "max_single_order")


@dataclass(frozen=True)
class Scope:
    """Which members: every one, those listed, those with lo <= id < hi, or both filters."""

    member_ids: tuple[int, ...] | None = None
    id_range: tuple[int, int] | None = None

    def where(self, column: str) -> Sql:
        clauses: list[str] = []
        params: list[Any] = []
        if self.id_range is not None:
            clauses.append(f"{column} >= %s AND {column} < %s")
            params += list(self.id_range)
        if self.member_ids is not None:
            clauses.append(f"{column} IN ({', '.join(['%s'] * len(self.member_ids))})" if self.member_ids
                           else "1 = 0")
            params += self.member_ids
        return " AND ".join(clauses) or "1 = 1", params

    def pieces(self, size: int = IDS_PER_STATEMENT) -> list[Scope]:
        """The scope as statements of at most `size` listed ids each."""
        if self.member_ids is None:
            return [self]
        ids = sorted(set(self.member_ids))
        return [Scope(tuple(ids[i:i + size]), self.id_range) for i in range(0, len(ids), size)]


def column(key: MetricKey) -> str:
    """The statement's column for a metric over a window, e.g. amount_12m."""
    return f"{key[0]}_{key[1]}"


def window_metrics(ruleset: Ruleset, as_of: datetime, scope: Scope, metrics: Sequence[MetricKey]
                   ) -> dict[int, dict[MetricKey, int]]:
    """The `facts` the statement evaluates, for `metrics`, per member in `scope` (zeros included)."""
    found: dict[int, dict[MetricKey, int]] = {}
    for piece in scope.pieces():
        ctes = facts_ctes(ruleset, as_of, metrics, piece, None)
        names = "".join(f", {column(key)}" for key in metrics)
        for row in raw.fetch(f"WITH {', '.join(text for text, _ in ctes)} SELECT id{names} FROM facts",
                             [p for _, params in ctes for p in params]):
            found[int(row[0])] = {key: int(value) for key, value in zip(metrics, row[1:], strict=True)}
    return found


Source = tuple[str, Sql, dict[MetricKey, str]]  # CTE name, its SELECT, the metric each column holds


def _aggregates(metrics: Sequence[MetricKey], ruleset: Ruleset, as_of: datetime, scope: Scope) -> list[Source]:
    """One GROUP BY per source table and window, over [start, end) in the ruleset's timezone."""
    by_window: dict[str, set[str]] = defaultdict(set)
    for metric, key in metrics:
        by_window[key].add(metric)
    sources: list[Source] = []
    for index, key in enumerate(sorted(by_window)):
        start, end = Window.from_key(key).bounds(as_of, ruleset.timezone)
        for name, sql, provides in _sources(by_window[key], start, end, scope):
            sources.append((f"{name}{index}", sql, {(metric, key): value for metric, value in provides.items()}))
    return sources


def facts_ctes(ruleset: Ruleset, as_of: datetime, metrics: Sequence[MetricKey], scope: Scope,
               ranked: Score | None) -> list[Sql]:
    """The aggregates' CTEs, then `facts`: every member in `scope` with a column per metric."""
    parts = _aggregates(metrics, ruleset, as_of, scope)
    joins = " ".join(f"LEFT JOIN {name} ON {name}.member_id = m.id" for name, _, _ in parts)
    values = {(metric, key): f"COALESCE({name}.{name_in}, 0)"
              for name, _, provides in parts for (metric, key), name_in in provides.items()}
    ctes: list[Sql] = [(f"{name} AS ({text})", params) for name, (text, params), _ in parts]
    ctes.append(_facts(ruleset, as_of, scope, joins, values, ranked))
    return ctes


def _table(name: str, scope: Scope) -> str:
    """On SQLite, a whole-population aggregate reads the table and sorts (measured about twice as
    fast as walking the (member_id, ...) index with a row lookup per entry); a scoped one seeks."""
    whole = scope.member_ids is None and scope.id_range is None
    return f"{name} NOT INDEXED" if whole and raw.database().vendor == "sqlite" else name


def _span(time_column: str, start: datetime | None, end: datetime, scope: Scope) -> Sql:
    clauses, params = [f"{time_column} < %s"], [raw.datetime_param(end)]
    if start is not None:
        clauses.append(f"{time_column} >= %s")
        params.append(raw.datetime_param(start))
    if scope.member_ids is not None or scope.id_range is not None:
        where, scope_params = scope.where("member_id")
        clauses.append(where)
        params += scope_params
    return " AND ".join(clauses), params


def _marks(values: Sequence[Any]) -> str:
    return ", ".join(["%s"] * len(values))


def _sources(metrics: set[str], start: datetime | None, end: datetime, scope: Scope
             ) -> list[tuple[str, Sql, dict[str, str]]]:
    found = []
    if metrics & set(ORDER_METRICS):
        where, params = _span("paid_at", start, end, scope)
        found.append(("o", (
            f"SELECT member_id, SUM(CASE WHEN amount_fen > refunded_fen THEN 1 ELSE 0 END) AS orders, "
            f"SUM(amount_fen - refunded_fen) AS amount, MAX(amount_fen - refunded_fen) AS max_single_order "
            f"FROM {_table(ORDERS, scope)} WHERE {where} AND hold = '' GROUP BY member_id", params),
            {m: m for m in metrics & set(ORDER_METRICS)}))
    for ledger, sources in (("growth", None), ("points", POINTS_EARNING_SOURCES)):
        if ledger in metrics:
            where, params = _span("occurred_at", start, end, scope)
            where += " AND ledger = %s"
            params.append(ledger)
            if sources is not None:
                where += f" AND source IN ({_marks(sources)})"
                params += sources
            found.append((ledger[0], (f"SELECT member_id, SUM(delta) AS total FROM {_table(ENTRIES, scope)} "
                                      f"WHERE {where} "
                                      f"GROUP BY member_id", params), {ledger: "total"}))
    if "interactions" in metrics:
        where, params = _span("at", start, end, scope)
        found.append(("i", (f"SELECT member_id, COUNT(*) AS total FROM {_table(ACTIONS, scope)} WHERE {where} "
                            f"AND type IN ({_marks(INTERACTION_TYPES)}) AND capped_reason = '' AND hold = '' "
                            f"GROUP BY member_id",
                            params + list(INTERACTION_TYPES)), {"interactions": "total"}))
    if "active_days" in metrics:
        orders_where, orders_params = _span("paid_at", start, end, scope)
        actions_where, actions_params = _span("at", start, end, scope)
        found.append(("d", (f"SELECT member_id, COUNT(*) AS total FROM ("
                            f"SELECT member_id, business_date FROM {_table(ORDERS, scope)} "
                            f"WHERE {orders_where} AND hold = '' UNION "
                            f"SELECT member_id, business_date FROM {_table(ACTIONS, scope)} "
                            f"WHERE {actions_where} AND hold = '') d "
                            f"GROUP BY member_id", orders_params + actions_params), {"active_days": "total"}))
    return found


def _facts(ruleset: Ruleset, as_of: datetime, scope: Scope, joins: str, values: dict[MetricKey, str],
           ranked: Score | None) -> Sql:
    """Members with their standing and metrics; for a percentile score (`ranked`) also each score
    metric's rank as below + through (RANK() - 1 counts those below, COUNT(*) OVER the ties too)."""
    upper = ruleset.tiers[1:]
    current = f"CASE m.tier {' '.join(f'WHEN %s THEN {t.rank}' for t in upper)} ELSE 0 END" if upper else "0"
    select = [f"{current} AS current_rank", "CASE WHEN m.tier_expires_at <= %s THEN 1 ELSE 0 END AS expired"]
    select += [f"{value} AS {column(key)}" for key, value in sorted(values.items())]
    if ranked is not None:
        window_key = ruleset.evaluation.window.key
        for metric in ranked.weights:
            value = values[(metric, window_key)]
            select.append(f"RANK() OVER (ORDER BY {value}) - 1 + COUNT(*) OVER (ORDER BY {value}) "
                          f"AS {rank_column(metric)}")
        select.append("COUNT(*) OVER () AS population")
    where, where_params = scope.where("m.id")
    return (f"facts AS (SELECT m.id, m.external_id, m.tier, m.tier_expires_at, "
            f"CASE WHEN m.invited THEN 1 ELSE 0 END AS invited, {', '.join(select)} "
            f"FROM {MEMBERS} m {joins} WHERE {where})",
            [t.code for t in upper] + [raw.datetime_param(as_of)] + where_params)
