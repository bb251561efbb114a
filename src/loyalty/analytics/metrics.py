"""The shop's repurchase metrics over `Frames`, one small vectorised function each, and
`summary`, the JSON the report renders. Definitions, formulas and units: docs/metrics.md.

Every metric reads a `Scope`: the frames cut to a period and a set of members, as of a moment.
- A purchase is an order not refunded in full, paid at or before `as_of`; its value is net of
  refunds. The period [start, end] is inclusive and judged on the order's business date (local).
- `tiers` selects members by the tier they held at the period's start (00:00 local on `start`;
  without `start`, at `as_of`); every member-level metric then reads only them.
- Rates are decimal strings with 4 places, rounded half up; money is integer fen, averages of
  money rounded half up to the fen. Nothing here reads a clock: `as_of` is given.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import pandas as pd

from loyalty.analytics import rfm
from loyalty.analytics.frames import Frames, month_starts
from loyalty.analytics.rounding import fen_average, rate_text
from loyalty.domain.periods import local_date, start_of_day


def month_label(index: int) -> str:
    """A month number (year × 12 + month − 1) as "YYYY-MM"."""
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def month_index(days: pd.Series) -> pd.Series:
    return days.dt.year * 12 + days.dt.month - 1


@dataclass(frozen=True)
class Scope:
    """The frames as of `as_of`, for the selected members, with the period's bounds."""

    frames: Frames
    as_of: pd.Timestamp  # UTC
    as_of_day: date  # local
    start: date | None
    end: date | None
    tiers: tuple[str, ...] | None
    purchases: pd.DataFrame  # every purchase of the selected members up to as_of (+ net_fen, month)

    @property
    def last_day(self) -> date:
        return min(self.end, self.as_of_day) if self.end else self.as_of_day

    def in_period(self) -> pd.DataFrame:
        """The purchases whose business date lies in [start, end]."""
        days = self.purchases["business_date"]
        keep = pd.Series(True, index=days.index)
        if self.start is not None:
            keep &= days >= pd.Timestamp(self.start)
        if self.end is not None:
            keep &= days <= pd.Timestamp(self.end)
        return self.purchases[keep]

    def months(self) -> list[int]:
        """The calendar months the period covers (from the first purchase's when open)."""
        purchases = self.in_period()
        if self.start is not None:
            first = self.start
        elif len(purchases):
            first = purchases["business_date"].min().date()
        else:
            return []
        low, high = first.year * 12 + first.month - 1, self.last_day.year * 12 + self.last_day.month - 1
        return list(range(low, high + 1))

    def moment(self, day: date) -> pd.Timestamp:
        return pd.Timestamp(start_of_day(day, self.frames.timezone)).tz_convert("UTC")

    def members_at(self, moment: pd.Timestamp) -> pd.Series:
        """Tier at `moment` of the selected members registered by then (index member_id)."""
        members = self.frames.members
        held = self.frames.tier_at(moment)
        registered = members.loc[members["registered_at"] <= moment, "member_id"]
        return held[held.index.isin(registered)]


def scope(frames: Frames, *, as_of: datetime, start: date | None = None, end: date | None = None,
          tiers: Sequence[str] | None = None) -> Scope:
    zone = frames.timezone
    at = pd.Timestamp(as_of).tz_convert("UTC")
    chosen = frames
    if tiers is not None:
        held = frames.tier_at(start_of_day(start, zone) if start else at)
        chosen = frames.only(held.index[held.isin(list(tiers))])
    kept = chosen.kept_orders()
    kept = kept[kept["paid_at"] <= at]
    kept = kept.assign(month=month_index(kept["business_date"]))
    return Scope(chosen, at, local_date(as_of, zone), start, end, None if tiers is None else tuple(tiers), kept)


def repeat_purchase(s: Scope) -> dict[str, Any]:
    """Buyers with a purchase in the period, and those with two or more there."""
    counts = s.in_period().groupby("member_id").size()
    buyers, repeat = len(counts), int((counts >= 2).sum())
    return {"buyers": buyers, "repeat_buyers": repeat, "rate": rate_text(repeat, buyers)}


def repurchase_within(s: Scope, days: int = 30) -> dict[str, Any]:
    """Of the members whose first purchase ever lies in the period and at least `days` days
    before as_of, those whose second purchase came within `days` days (24 h each) of the first."""
    ordered = s.purchases.sort_values(["member_id", "paid_at"], kind="stable")
    rank = ordered.groupby("member_id").cumcount()
    first = ordered[rank == 0].set_index("member_id")
    second = ordered[rank == 1].set_index("member_id")["paid_at"]
    window = pd.Timedelta(days=days)
    eligible = first[first["paid_at"] <= s.as_of - window]
    eligible = eligible[_within(eligible["business_date"], s.start, s.end)]
    gap = second.reindex(eligible.index) - eligible["paid_at"]
    repurchased = int((gap <= window).sum())
    return {"days": days, "eligible": len(eligible), "repurchased": repurchased,
            "rate": rate_text(repurchased, len(eligible))}


def _within(days: pd.Series, start: date | None, end: date | None) -> pd.Series:
    keep = pd.Series(True, index=days.index)
    if start is not None:
        keep &= days >= pd.Timestamp(start)
    if end is not None:
        keep &= days <= pd.Timestamp(end)
    return keep


def cohorts(s: Scope) -> dict[str, Any]:
    """Monthly acquisition cohorts: cohort = the month of a member's first purchase ever; column i
    = members of the cohort with a purchase in month cohort + i, over the cohort's size (not
    cumulative). Cohorts acquired in the period; columns up to the period's last month."""
    purchases = s.purchases
    cohort = purchases.groupby("member_id")["month"].min()
    last = s.last_day.year * 12 + s.last_day.month - 1
    shown = cohort[_months_between(cohort, s.start, last)]
    active = s.in_period()[["member_id", "month"]].drop_duplicates()
    active = active[active["member_id"].isin(shown.index)]
    offset = active["month"].to_numpy() - active["member_id"].map(shown).to_numpy()
    grid = pd.crosstab(active["member_id"].map(shown).to_numpy(), offset)
    sizes = shown.value_counts().sort_index()
    rows: list[dict[str, Any]] = []
    for month, size in sizes.items():
        seen = grid.loc[month] if month in grid.index else pd.Series(dtype="int64")
        rows.append({"cohort": month_label(int(month)), "size": int(size),
                     "retention": [rate_text(int(seen.get(i, 0)), int(size)) for i in range(last - int(month) + 1)]})
    width = max((len(row["retention"]) for row in rows), default=0)
    return {"months": list(range(width)), "rows": rows}


def _months_between(months: pd.Series, start: date | None, last: int) -> pd.Series:
    keep = months <= last
    if start is not None:
        keep &= months >= start.year * 12 + start.month - 1
    return keep


def _tier_months(s: Scope) -> tuple[list[int], list[pd.Series]]:
    """The period's months and, for each, the tier of every selected member at its first moment."""
    months = s.months()
    if not months:
        return [], []
    first, last = date(months[0] // 12, months[0] % 12 + 1, 1), date(months[-1] // 12, months[-1] % 12 + 1, 1)
    starts = [pd.Timestamp(m).tz_convert("UTC") for m in month_starts(first, last, s.frames.timezone)]
    return months, [s.members_at(moment) for moment in starts]


def by_tier(s: Scope) -> dict[str, Any]:
    """Per month and tier T: members in T at the month's start; ARPU = net fen those members paid
    in the month ÷ those members (fen, half up); frequency = their purchases ÷ those members."""
    months, held = _tier_months(s)
    tiers = list(s.frames.tier_order)
    bought = s.in_period()
    members: dict[str, list[int]] = {t: [] for t in tiers}
    arpu: dict[str, list[int]] = {t: [] for t in tiers}
    frequency: dict[str, list[str]] = {t: [] for t in tiers}
    for month, tier_of in zip(months, held, strict=True):
        in_month = bought[bought["month"] == month]
        tier = in_month["member_id"].map(tier_of)
        sums = in_month.groupby(tier)["net_fen"].agg(["sum", "size"])
        counts = tier_of.value_counts()
        for t in tiers:
            n = int(counts.get(t, 0))
            paid, orders = (int(sums.at[t, "sum"]), int(sums.at[t, "size"])) if t in sums.index else (0, 0)
            members[t].append(n)
            arpu[t].append(fen_average(paid, n))
            frequency[t].append(rate_text(orders, n))
    return {"months": [month_label(m) for m in months], "tiers": tiers, "members": members, "arpu_fen": arpu,
            "frequency": frequency}


def tier_distribution(s: Scope) -> dict[str, Any]:
    """Members per tier at each month's start (the members `by_tier` divides by)."""
    months, held = _tier_months(s)
    tiers = list(s.frames.tier_order)
    counts = {t: [int(h.eq(t).sum()) for h in held] for t in tiers}
    return {"months": [month_label(m) for m in months], "tiers": tiers, "counts": counts}


def tier_migration(s: Scope) -> dict[str, Any]:
    """Members registered by the period's first moment, by tier then (rows) and at its end
    (columns): the period's last day's end, or as_of if sooner. Without a `start`, the first
    moment is the month start a year before the end (a year's moves), or the first month of data
    when that is later: from the very beginning nobody was registered yet."""
    months = s.months()
    last = s.last_day
    earliest = date(months[0] // 12, months[0] % 12 + 1, 1) if months else s.as_of_day
    first = s.start or max(earliest, date(last.year - 1, last.month, 1))
    to_moment = min(s.moment(last + timedelta(days=1)), s.as_of)
    before = s.members_at(s.moment(first))
    after = s.frames.tier_at(to_moment).reindex(before.index)
    tiers = list(s.frames.tier_order)
    grid = pd.crosstab(before, after).reindex(index=tiers, columns=tiers, fill_value=0)
    return {"from": first.isoformat(), "to": last.isoformat(), "tiers": tiers,
            "matrix": [[int(v) for v in row] for row in grid.to_numpy()]}


def coupons(s: Scope) -> dict[str, Any]:
    """Per tier held at issue and kind: coupons issued in the period (revoked ones left out) and
    of them redeemed by as_of."""
    issued = s.frames.coupons
    issued = issued[(issued["issued_at"] <= s.as_of) & (issued["state"] != "revoked")]
    local = issued["issued_at"].dt.tz_convert(s.frames.timezone).dt.tz_localize(None).dt.normalize()
    issued = issued[_within(local, s.start, s.end)]
    if not len(issued):
        return {"rows": []}
    tier = s.frames.tiers_at_each(issued["member_id"], issued["issued_at"])
    redeemed = (issued["state"] == "redeemed") & (issued["redeemed_at"] <= s.as_of)
    table = pd.DataFrame({"tier": tier, "kind": issued["kind"], "redeemed": redeemed}).groupby(
        ["tier", "kind"])["redeemed"].agg(["size", "sum"])
    order = {t: i for i, t in enumerate(s.frames.tier_order)}
    keys = sorted(table.index, key=lambda k: (order.get(k[0], len(order)), k[0], k[1]))
    return {"rows": [{"tier": t, "kind": k, "issued": int(table.at[(t, k), "size"]),
                      "redeemed": int(table.at[(t, k), "sum"]),
                      "rate": rate_text(int(table.at[(t, k), "sum"]), int(table.at[(t, k), "size"]))}
                     for t, k in keys]}


def benefit_cost(s: Scope) -> dict[str, Any]:
    """The budget report's rows (services.budget_report) for the period's months and tiers."""
    rows = s.frames.budgets
    keep = _labels_between(rows["month"], s)
    if s.tiers is not None:
        keep &= rows["tier"].isin(list(s.tiers))
    return {"rows": [{"month": r.month, "tier": r.tier,
                      "budget_fen": None if pd.isna(r.budget_fen) else int(r.budget_fen),
                      "issued_fen": int(r.issued_fen), "redeemed_fen": int(r.redeemed_fen)}
                     for r in rows[keep].itertuples()]}


def points_liability(s: Scope) -> dict[str, Any]:
    """The liability report's monthly rows (services.reports), in points, for the whole ledger."""
    rows = s.frames.liability
    keep = _labels_between(rows["period"], s)
    return {"rows": [{k: (v if k == "period" else int(v)) for k, v in row.items()}
                     for row in rows[keep].to_dict("records")]}


def _labels_between(labels: pd.Series, s: Scope) -> pd.Series:
    keep = pd.Series(True, index=labels.index)
    if s.start is not None:
        keep &= labels >= f"{s.start:%Y-%m}"
    if s.end is not None:
        keep &= labels <= f"{s.end:%Y-%m}"
    return keep


def summary(frames: Frames, *, as_of: datetime, start: date | None = None, end: date | None = None,
            tiers: Sequence[str] | None = None, within_days: int = 30) -> dict[str, Any]:
    """Every metric as one JSON-ready dict (the shape the report renders; docs/metrics.md)."""
    s = scope(frames, as_of=as_of, start=start, end=end, tiers=tiers)
    return {
        "period": {"from": start and start.isoformat(), "to": end and end.isoformat(),
                   "tiers": None if tiers is None else list(tiers), "as_of": as_of.isoformat()},
        "repeat_purchase": repeat_purchase(s),
        "repurchase_within": repurchase_within(s, within_days),
        "cohorts": cohorts(s),
        "by_tier": by_tier(s),
        "tier_distribution": tier_distribution(s),
        "tier_migration": tier_migration(s),
        "coupons": coupons(s),
        "benefit_cost": benefit_cost(s),
        "points_liability": points_liability(s),
        "rfm": rfm.summary(rfm.scores(s.in_period(), as_of_day=s.as_of_day)),
    }

