"""The data and the chart sections of the operations console's analytics pages.

The metrics come from `analytics.metrics.summary` over `analytics.frames.load_frames`, the same
numbers `loyalty report` prints (docs/metrics.md); the charts and their tables from
`analytics.report_sections`. Reading the frames and computing the summary takes about a second on
the CDNOW demo (23,502 members, 69,579 orders), so the result is cached for CACHE_SECONDS per
filter combination: the dashboards may lag the database by that much, and say so.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.core.cache import cache
from django.utils.timezone import localtime

from loyalty.analytics import charts, metrics
from loyalty.analytics.frames import load_frames
from loyalty.analytics.report import data_as_of, end_of_day
from loyalty.analytics.report_sections import figure, nothing, numbers, percent, tier_cell, tier_label
from loyalty.services import rulesets
from loyalty.services.operations import EndpointHealth, ScanCount
from loyalty.web.ops_filters import Filters

CACHE_SECONDS = 60
WITHIN_DAYS = 30


@dataclass(frozen=True)
class Dashboard:
    as_of: datetime
    metrics: dict[str, Any]  # metrics.summary
    by_tier: dict[str, dict[str, Any]]  # tier -> {"repeat_purchase", "repurchase_within"}
    tier_names: dict[str, str]
    computed_at: datetime


def tier_choices(now: datetime) -> list[tuple[str, str]]:
    """The tiers of the ruleset in force, lowest first, as (code, "name (code)")."""
    return [(t.code, tier_label(t.code, {t.code: t.name})) for t in rulesets.in_force(now).ruleset.tiers]


def dashboard(filters: Filters, now: datetime) -> Dashboard:
    """The metrics for these filters, as of the end of `to` (else the latest order, else now)."""
    key = f"ops:dashboard:{filters.key}"
    cached: Dashboard | None = cache.get(key)
    if cached is None:
        cached = _compute(filters, now)
        cache.set(key, cached, CACHE_SECONDS)
    return cached


def _compute(filters: Filters, now: datetime) -> Dashboard:
    as_of = min(end_of_day(filters.end), now) if filters.end else data_as_of(now)
    frames = load_frames(start=filters.start, end=filters.end, as_of=as_of)
    summary = metrics.summary(frames, as_of=as_of, start=filters.start, end=filters.end, tiers=filters.tiers,
                              within_days=WITHIN_DAYS)
    by_tier = {}
    for tier in filters.tiers or frames.tier_order:
        scope = metrics.scope(frames, as_of=as_of, start=filters.start, end=filters.end, tiers=[tier])
        by_tier[tier] = {"repeat_purchase": metrics.repeat_purchase(scope),
                         "repurchase_within": metrics.repurchase_within(scope, WITHIN_DAYS)}
    names = {t.code: t.name for t in rulesets.in_force(as_of).ruleset.tiers}
    return Dashboard(as_of, summary, by_tier, names, now)


def retention_by_tier(by_tier: Mapping[str, dict[str, Any]], names: Mapping[str, str]) -> str:
    """Repeat purchase and repurchase within the window, per tier held at the period's start."""
    tiers = list(by_tier)
    if not any(by_tier[t]["repeat_purchase"]["buyers"] for t in tiers):
        return nothing("No purchase in the period.")
    repeat = [by_tier[t]["repeat_purchase"] for t in tiers]
    within = [by_tier[t]["repurchase_within"] for t in tiers]
    svg = charts.bar_chart([tier_label(t, names) for t in tiers],
                           {"bought twice or more": [float(r["rate"]) for r in repeat],
                            f"bought again within {WITHIN_DAYS} days": [float(w["rate"]) for w in within]},
                           title="Repeat purchase by tier", y_label="share of buyers", percent=True)
    rows = [[tier_cell(t, names), r["buyers"], r["repeat_buyers"], percent(r["rate"]), w["eligible"],
             w["repurchased"], percent(w["rate"])] for t, r, w in zip(tiers, repeat, within, strict=True)]
    return figure(svg, "Members by the tier they held at the period's start.") + numbers(
        ["tier", "buyers", "repeat buyers", "repeat rate", "eligible", f"again within {WITHIN_DAYS} days", "rate"],
        rows)


def risk_scans_chart(scans: list[ScanCount]) -> str:
    if not scans:
        return nothing("No risk scan has run yet.")
    ordered = list(reversed(scans))  # oldest first, left to right
    labels = [f"{localtime(scan.as_of):%Y-%m-%d}" for scan in ordered]
    svg = charts.bar_chart(labels, {"scored": [s.scored for s in ordered], "flagged": [s.flagged for s in ordered]},
                           title="Members scored and flagged by the latest risk scans", y_label="members")
    rows = [[f"{localtime(s.as_of):%Y-%m-%d %H:%M %Z}", s.scored, s.flagged] for s in scans]
    return figure(svg, "Each nightly scan scores the members active in its window.") + numbers(
        ["scan as of", "scored", "flagged"], rows)


def webhooks_chart(endpoints: list[EndpointHealth]) -> str:
    if not endpoints:
        return nothing("No webhook endpoint is configured.")
    labels = [f"#{e.id}" for e in endpoints]
    svg = charts.stacked_bar_chart(labels, {"delivered": [e.delivered for e in endpoints],
                                            "pending": [e.pending for e in endpoints],
                                            "parked": [e.parked for e in endpoints]},
                                   title="Deliveries per endpoint by state", y_label="deliveries")
    return figure(svg, "Endpoints by number; the table below names them.")
