"""Benchmark 4: `evaluate_tiers` for 100,000 members with 300,000 orders, at a month start.

Seeded with raw `executemany` (the benchmark is the evaluation, not the ingestion): members in the
base tier, 2% invited; orders over the 18 months before `as_of`, a few refunded in full. Each
service run starts from a fresh copy and writes its tier changes. Baseline: one GROUP BY over
the same orders table for (orders, net amount) per member in the trailing 12 months, then a
Python loop that assigns the tier by the default thresholds. Figure: seconds.
"""

from __future__ import annotations

import hashlib
import random
import sqlite3
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench import harness, workload

MEMBERS = 100_000
ORDERS = 300_000
RUNS = 5
BUDGET = 55.0
AS_OF = datetime(2026, 11, 1, tzinfo=workload.SHANGHAI)
WINDOW = (datetime(2025, 11, 1, tzinfo=workload.SHANGHAI), AS_OF)  # trailing 12 months
# The default ruleset's thresholds, highest first: (tier, orders, amount in fen, needs invitation).
THRESHOLDS = (("black_gold", 24, 1_200_000, True), ("diamond", 12, 500_000, False),
              ("platinum", 6, 200_000, False), ("gold", 3, 80_000, False), ("silver", 1, 20_000, False))


def seed(path: Path) -> None:
    """Members and orders straight into the migrated file (closed by Django beforehand)."""
    rng = random.Random(4)
    registered = datetime(2025, 1, 1, tzinfo=UTC)
    at = registered.replace(tzinfo=None).isoformat(sep=" ")
    members = [(f"m{i:06d}", "bronze", at, 1 if rng.random() < 0.02 else 0, at, 0, 0, 0, 0, 0, 0,
                hashlib.sha256(str(i).encode()).hexdigest()) for i in range(1, MEMBERS + 1)]
    weights = [rng.paretovariate(1.2) for _ in range(MEMBERS)]
    buyers = rng.choices(range(1, MEMBERS + 1), weights=weights, k=ORDERS)
    start = datetime(2025, 5, 1, tzinfo=UTC).replace(tzinfo=None)
    span = int((AS_OF.astimezone(UTC).replace(tzinfo=None) - start).total_seconds())
    orders = []
    for index, member_id in enumerate(buyers):
        paid = start + timedelta(seconds=rng.randrange(span))
        fen = max(100, int(rng.lognormvariate(9.6, 1.0)))
        refunded = fen if rng.random() < 0.02 else 0
        orders.append((f"t{index:07d}", member_id, paid.isoformat(sep=" "),
                       (paid + timedelta(hours=8)).date().isoformat(), fen, refunded, fen // 100, 0, fen // 100,
                       0, 0, 1, "0" * 64, paid.isoformat(sep=" ")))
    conn = harness.raw_connect(path)
    conn.execute("BEGIN IMMEDIATE")
    conn.executemany(
        "INSERT INTO members (external_id, tier, tier_reached_at, invited, registered_at, growth_balance,"
        " points_balance, points_debt, orders_count, paid_fen, refunded_fen, payload_hash)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", members)
    conn.executemany(
        "INSERT INTO orders (order_id, member_id, paid_at, business_date, amount_fen, refunded_fen, growth_base,"
        " growth_bonus, points, growth_reversed, points_reversed, ruleset_version, payload_hash, recorded_at,"
        " quote_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '')", orders)
    conn.execute("COMMIT")
    conn.execute("ANALYZE")
    conn.close()


def baseline_tiers(path: Path) -> Counter[str]:
    """GROUP BY for (orders, net amount) in the window, then the thresholds in a Python loop."""
    from bench.baseline import stamp

    conn = sqlite3.connect(path)
    metrics = {member_id: (orders, amount) for member_id, orders, amount in conn.execute(
        "SELECT member_id, SUM(CASE WHEN amount_fen > refunded_fen THEN 1 ELSE 0 END),"
        " SUM(amount_fen - refunded_fen) FROM orders WHERE paid_at >= ? AND paid_at < ? GROUP BY member_id",
        (stamp(WINDOW[0]), stamp(WINDOW[1])))}
    tiers: Counter[str] = Counter()
    for member_id, invited in conn.execute("SELECT id, invited FROM members ORDER BY id"):
        orders, amount = metrics.get(member_id, (0, 0))
        tiers[next((tier for tier, least_orders, least_fen, needs_invitation in THRESHOLDS
                    if (orders >= least_orders or amount >= least_fen) and (invited or not needs_invitation)),
                   "bronze")] += 1
    conn.close()
    return tiers


def main() -> None:
    args = harness.arguments(__doc__ or "", RUNS, BUDGET)
    site = harness.Site("tiers")
    harness.start_django(site)

    from django.db import connection

    from loyalty.clock import FixedClock
    from loyalty.services import rulesets
    from loyalty.services.tiers import evaluate_tiers

    harness.migrate_and_publish(workload.RULES_FROM)
    connection.close()
    seed(site.live)
    harness.freeze(site)
    clock = FixedClock(AS_OF)
    outcomes: dict[str, Counter[str]] = {}

    def service_run() -> float:
        harness.thaw(site)
        rulesets.in_force(AS_OF)
        seconds = harness.timed(lambda: outcomes.__setitem__("service", evaluate_tiers(AS_OF, clock=clock).tiers))
        return seconds

    def dry_run() -> float:
        harness.thaw(site)
        rulesets.in_force(AS_OF)
        return harness.timed(lambda: evaluate_tiers(AS_OF, clock=clock, dry_run=True))

    def baseline_run() -> float:
        return harness.timed(lambda: outcomes.__setitem__("baseline", baseline_tiers(site.template)))

    service, dry, raw = harness.alternate(args.runs, args.budget, service_run, dry_run, baseline_run)
    agree = outcomes["service"] == outcomes["baseline"]
    print(f"tiers: evaluate_tiers at {AS_OF.isoformat()}, {MEMBERS:,} members, {ORDERS:,} orders")
    harness.Result(
        "tiers", "evaluate_tiers (writes the changes)", "s", harness.median(service), harness.median(raw),
        "none set (the issue names none)", higher_is_better=False, runs=service, baseline_runs=raw,
        notes=[f"dry_run=True (no writes): median {harness.median(dry):.2f} s "
               f"({', '.join(f'{v:.2f}' for v in dry)})",
               f"tiers after evaluation: {dict(sorted(outcomes['service'].items()))}",
               "the baseline assigns the same tiers" if agree
               else f"the baseline's tiers differ: {dict(sorted(outcomes['baseline'].items()))}"],
    ).show()


if __name__ == "__main__":
    main()
