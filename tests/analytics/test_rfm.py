"""RFM scores and segments: hand-computed on the four-member shop, and on a heavily tied
population where quantile cuts collapse."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from loyalty.analytics import metrics, rfm
from tests.analytics.test_metrics import AS_OF, shop


def test_scores_and_segments_of_the_four_member_shop():
    # As of 2027-03-31: recency a 29 days (03-02), b 49 (02-10), c 44 (02-15), d 11 (03-20).
    # R by rank of −recency: b 1, c 2, a 3, d 4 of 4 -> ⌈5r/4⌉: b 2, c 3, a 4, d 5.
    # F by thresholds: a 3 purchases -> 3, b 2 -> 2, c and d 1 -> 1.
    # M by rank: d 1000 (1), b and c 8000 tied (2.5 each), a 17000 (4) -> d 2, b 4, c 4, a 5.
    # Segments: a R4 F3 loyal; b R2 F2 hibernating; c R3 F1 promising; d R5 F1 new.
    s = metrics.scope(shop(), as_of=AS_OF)
    table = rfm.scores(s.in_period(), as_of_day=s.as_of_day)
    names = shop().members.set_index("member_id")["external_id"]
    got = {names[i]: (row.recency_days, row.frequency, row.monetary_fen, row.r, row.f, row.m, row.segment)
           for i, row in table.iterrows()}
    assert got == {"a": (29, 3, 17000, 4, 3, 5, "loyal"), "b": (49, 2, 8000, 2, 2, 4, "hibernating"),
                   "c": (44, 1, 8000, 3, 1, 4, "promising"), "d": (11, 1, 1000, 5, 1, 2, "new")}
    assert rfm.summary(table)["segments"] == [
        {"segment": "loyal", "members": 1, "share": "0.2500", "recency_days_median": 29, "frequency_median": "3",
         "monetary_fen_median": 17000},
        {"segment": "new", "members": 1, "share": "0.2500", "recency_days_median": 11, "frequency_median": "1",
         "monetary_fen_median": 1000},
        {"segment": "promising", "members": 1, "share": "0.2500", "recency_days_median": 44, "frequency_median": "1",
         "monetary_fen_median": 8000},
        {"segment": "hibernating", "members": 1, "share": "0.2500", "recency_days_median": 49,
         "frequency_median": "2", "monetary_fen_median": 8000}]


def test_rank_scores_keep_ties_together_and_round_in_integers():
    # [10, 10, 10, 10, 20]: the 10s share rank 2.5 -> ⌈5 × 2.5 / 5⌉ = 3; the 20 has rank 5 -> 5.
    assert rfm.rank_score(pd.Series([10, 10, 10, 10, 20])).tolist() == [3, 3, 3, 3, 5]
    # Four distinct values: ⌈5r/4⌉ for r = 1..4 is 2, 3, 4, 5 (exactly 2.5 -> 3, never a float's 2.0000001).
    assert rfm.rank_score(pd.Series([4, 1, 3, 2])).tolist() == [5, 2, 4, 3]
    assert rfm.threshold_score(pd.Series([1, 2, 3, 4, 5, 6, 40])).tolist() == [1, 2, 3, 4, 4, 5, 5]


def tied_population() -> pd.DataFrame:
    """100 buyers as CDNOW looks: 80 bought once, for exactly ¥10; 12 twice, 8 three times.
    Buyer i's last purchase was i days before 2027-03-31."""
    rows = []
    for i in range(100):
        count = 1 if i < 80 else 2 if i < 92 else 3
        for k in range(count):
            rows.append((i, pd.Timestamp(date(2027, 3, 31)) - pd.Timedelta(days=i + 30 * k),
                         1000 if count == 1 else 1500 + 100 * i))
    return pd.DataFrame(rows, columns=["member_id", "business_date", "net_fen"])


def test_a_heavily_tied_population_keeps_several_scores_where_quantile_cuts_collapse():
    table = rfm.scores(tied_population(), as_of_day=date(2027, 3, 31))
    # Quartile cuts of frequency: every edge but the top is 1, so qcut refuses, or with
    # duplicates dropped puts every buyer in one bin; monetary likewise ends in two bins only.
    with pytest.raises(ValueError, match="Bin edges must be unique"):
        pd.qcut(table["frequency"], 4)
    assert pd.qcut(table["frequency"], 4, labels=False, duplicates="drop").nunique() == 1
    assert pd.qcut(table["monetary_fen"], 5, labels=False, duplicates="drop").nunique() == 2
    # Scores: frequency 1 / 2 / 3 stay apart; the 80 tied ¥10 buyers share M 3
    # (average rank 40.5 of 100 -> ⌈5 × 40.5 / 100⌉ = 3), the rest rank 81..100 -> 5.
    assert table["f"].value_counts().to_dict() == {1: 80, 2: 12, 3: 8}
    assert table["m"].value_counts().to_dict() == {3: 80, 5: 20}
    assert sorted(table["r"].value_counts().to_dict().items()) == [(1, 20), (2, 20), (3, 20), (4, 20), (5, 20)]
    # One-time buyers split by recency into new, promising and hibernating; nobody is "loyal" for buying once.
    segments = table.groupby("segment")["frequency"].agg(["size", "max"]).to_dict("index")
    assert segments["new"]["max"] == 1 and segments["promising"]["max"] == 1
    assert table.loc[table["frequency"] == 1, "segment"].nunique() == 3
    assert table["segment"].nunique() >= 4
