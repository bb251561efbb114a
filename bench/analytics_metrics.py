"""Benchmark 10: every metric of the analytics report over the CDNOW master log, RFM included.

The log (23,570 customers, 69,659 rows; the 80 zero-amount rows left out, as the demo does)
becomes `Frames` through `Frames.from_purchases`: one member per customer, registered at the
first purchase, dollars taken as yuan, a seeded time of day. Tiers are synthesised with the
default ruleset's thresholds (orders or amount in the trailing 12 months; no black gold, which
needs an invitation) at every month start from 1997-02-01 to 1998-06-01, so the tier tables have
something to show; CDNOW has no refunds, coupons, budgets or points. Built before the clock starts.
Figure: `metrics.summary(...)` as of 1998-06-30 23:59 local, period 1997-01-01 – 1998-06-30.
Baseline in the same run: pandas reading the log's text into a frame (`pd.read_csv`, sep r"\\s+"),
the cost of merely loading the data. Target (the issue): under 5 seconds.
"""

from __future__ import annotations

import io
import random
import time
from datetime import date, datetime

from bench import harness, workload

RUNS = 5
BUDGET = 30.0
AS_OF = datetime(1998, 6, 30, 23, 59, tzinfo=workload.SHANGHAI)
PERIOD = (date(1997, 1, 1), date(1998, 6, 30))
# The default ruleset's thresholds, highest first: (tier, orders, amount in fen).
THRESHOLDS = (("diamond", 12, 500_000), ("platinum", 6, 200_000), ("gold", 3, 80_000), ("silver", 1, 20_000))
TIERS = ("bronze", "silver", "gold", "platinum", "diamond", "black_gold")


def tier_history(transactions: object) -> object:
    """Tier changes at each month start, by the trailing 12 months' orders and amount (vectorised)."""
    import numpy as np
    import pandas as pd

    frame: pd.DataFrame = transactions  # type: ignore[assignment]
    held = pd.Series("bronze", index=pd.Index(frame["member"].unique()))
    changes = []
    for start in pd.date_range("1997-02-01", "1998-06-01", freq="MS", tz=workload.SHANGHAI):
        window = frame[(frame["at"] >= start - pd.DateOffset(months=12)) & (frame["at"] < start)]
        totals = window.groupby("member")["amount_fen"].agg(["size", "sum"]).reindex(held.index, fill_value=0)
        tier = np.select([(totals["size"] >= n) | (totals["sum"] >= fen) for _, n, fen in THRESHOLDS],
                         [name for name, _, _ in THRESHOLDS], default="bronze")
        now = pd.Series(tier, index=held.index)
        moved = now != held
        changes.append(pd.DataFrame({"member": held.index[moved], "from_tier": held[moved].to_numpy(),
                                     "to_tier": now[moved].to_numpy(), "changed_at": start}))
        held = now
    return pd.concat(changes, ignore_index=True)


def main() -> None:
    args = harness.arguments(__doc__ or "", RUNS, BUDGET)
    site = harness.Site("analytics")
    harness.start_django(site)  # the analytics modules import the models; no database is read

    import pandas as pd

    from loyalty.analytics import metrics
    from loyalty.analytics.frames import Frames
    from loyalty.demo.sources import cdnow_purchases, cdnow_text

    text = cdnow_text()
    purchases, skipped = cdnow_purchases(random.Random(10))
    started = time.perf_counter()
    plain = Frames.from_purchases(purchases, timezone=workload.SHANGHAI, tier_order=TIERS)
    built = time.perf_counter() - started
    changes = tier_history(plain.transactions())
    frames = Frames.from_purchases(purchases, timezone=workload.SHANGHAI, tier_order=TIERS,
                                   tier_changes=changes)  # type: ignore[arg-type]
    result: dict[str, object] = {}

    def service() -> float:
        def run() -> None:
            result.update(metrics.summary(frames, as_of=AS_OF, start=PERIOD[0], end=PERIOD[1]))
        return harness.timed(run)

    def baseline() -> float:
        return harness.timed(lambda: pd.read_csv(io.StringIO(text), sep=r"\s+"))

    figure, base = harness.alternate(args.runs, args.budget, service, baseline)
    repeat = result["repeat_purchase"]
    segments = result["rfm"]["segments"]  # type: ignore[index]
    print(f"analytics_metrics: {len(purchases):,} purchases ({skipped} zero-amount rows left out), "
          f"{len(frames.members):,} members, {len(changes):,} synthesised tier changes")  # type: ignore[arg-type]
    notes = [f"Frames.from_purchases (not timed): {built:.2f} s",
             f"repeat purchase {repeat}",  # type: ignore[str-bytes-safe]
             "RFM segments: " + ", ".join(f"{s['segment']} {s['members']:,}" for s in segments)]  # type: ignore[index]
    harness.Result(
        "analytics_metrics", "CDNOW metrics summary, RFM included", "s", harness.median(figure),
        harness.median(base), "< 5 s", higher_is_better=False, runs=figure, baseline_runs=base, notes=notes,
    ).show()


if __name__ == "__main__":
    main()
