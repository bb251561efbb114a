"""RFM: recency, frequency and monetary scores 1–5 per buyer, and named segments.

Recency and monetary scores come from ranks, not quantile cuts: each buyer's average rank among
the N buyers (ties share the mean of their ranks) becomes ⌈5 × rank ÷ N⌉. Quantile cuts
(`pd.qcut`) need distinct bin edges, so they fail or merge bins when many buyers share a value;
ranks keep a tied group together at one score and still spread the rest. Worked example, values
[10, 10, 10, 10, 20] (N = 5): the four 10s share rank 2.5 → ⌈5 × 2.5 ÷ 5⌉ = 3; the 20 has rank 5 → 5.

Frequency is a small count where ties are the rule (most CDNOW buyers bought once), so it has
fixed thresholds instead: 1 purchase → F 1, 2 → 2, 3 → 3, 4–5 → 4, 6 or more → 5. With ranks, a
one-time buyer's score would depend on how many others bought once. Higher is better for all
three: the most recent buyer gets the highest R.

Segments (first match wins; docs/metrics.md has the table):
    champions    R ≥ 4 and F ≥ 4          loyal        R ≥ 3 and F ≥ 3
    new          R ≥ 4 and F ≤ 2          promising    R = 3 and F ≤ 2
    cannot_lose  R ≤ 2, F ≥ 4 and M ≥ 4   at_risk      R ≤ 2 and F ≥ 3
    hibernating  R ≤ 2 and F ≤ 2
"""

from __future__ import annotations

from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from loyalty.analytics.rounding import half_up, median_text, rate_text

SCORES = 5
FREQUENCY_EDGES = (1, 2, 3, 5)  # F is 1 + the number of edges the frequency is above
SEGMENTS = ("champions", "loyal", "new", "promising", "cannot_lose", "at_risk", "hibernating")


def rank_score(values: pd.Series) -> pd.Series:
    """⌈5 × average rank ÷ N⌉ in integers: twice an average rank is a whole number."""
    n = len(values)
    if n == 0:
        return pd.Series(dtype="int64", index=values.index)
    twice = (values.rank(method="average") * 2).round().astype("int64")
    return (SCORES * twice + 2 * n - 1) // (2 * n)


def threshold_score(values: pd.Series, edges: tuple[int, ...] = FREQUENCY_EDGES) -> pd.Series:
    """1 + how many of the (ascending) edges each value is above: with (1, 2, 3, 5), 4 → 4, 9 → 5."""
    return pd.Series(np.searchsorted(np.asarray(edges), values.to_numpy(), side="left") + 1,
                     index=values.index, dtype="int64")


def scores(purchases: pd.DataFrame, *, as_of_day: date) -> pd.DataFrame:
    """One row per buyer (index member_id): recency_days (as_of's local date − the last purchase's
    business date), frequency (purchases), monetary_fen (their net sum), r, f, m and segment."""
    grouped = purchases.groupby("member_id")
    table = pd.DataFrame({
        "recency_days": (pd.Timestamp(as_of_day) - grouped["business_date"].max()).dt.days.astype("int64"),
        "frequency": grouped.size().astype("int64"),
        "monetary_fen": grouped["net_fen"].sum().astype("int64"),
    })
    table["r"] = rank_score(-table["recency_days"])
    table["f"] = threshold_score(table["frequency"])
    table["m"] = rank_score(table["monetary_fen"])
    table["segment"] = segment_of(table["r"], table["f"], table["m"])
    return table


def segment_of(r: pd.Series, f: pd.Series, m: pd.Series) -> pd.Series:
    conditions = [(r >= 4) & (f >= 4), (r >= 3) & (f >= 3), (r >= 4) & (f <= 2), (r == 3) & (f <= 2),
                  (r <= 2) & (f >= 4) & (m >= 4), (r <= 2) & (f >= 3), (r <= 2) & (f <= 2)]
    named = np.select([c.to_numpy() for c in conditions], list(SEGMENTS), default="")
    return pd.Series(named, index=r.index, dtype=object)


def summary(table: pd.DataFrame) -> dict[str, Any]:
    """Per segment (in SEGMENTS order; empty ones left out): members, share of buyers, and the
    medians of recency (days, half up), frequency (decimal string) and monetary (fen, half up)."""
    total = len(table)
    medians = table.groupby("segment")[["recency_days", "frequency", "monetary_fen"]].median()
    counts = table["segment"].value_counts()
    rows = []
    for name in SEGMENTS:
        if name not in counts.index:
            continue
        middle = medians.loc[name]
        rows.append({"segment": name, "members": int(counts[name]), "share": rate_text(int(counts[name]), total),
                     "recency_days_median": half_up(middle["recency_days"]),
                     "frequency_median": median_text(middle["frequency"]),
                     "monetary_fen_median": half_up(middle["monetary_fen"])})
    return {"segments": rows}
