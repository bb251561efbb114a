"""Benchmark 1: `record_order`, one transaction per order, against the same rows written one
transaction per order with stdlib `sqlite3` (BEGIN IMMEDIATE, WAL, synchronous=NORMAL).

Figure: orders per second. Target (the issue): service >= 0.3 x baseline.
"""

from __future__ import annotations

from bench import baseline, harness, workload

ORDERS = 3000
MEMBERS = 300
RUNS = 5
BUDGET = 80.0  # seconds of timed rounds; fewer than RUNS rounds while the service is slow


def main() -> None:
    args = harness.arguments(__doc__ or "", RUNS, BUDGET)
    site = harness.Site("record-order")
    harness.start_django(site)

    from loyalty.clock import FixedClock
    from loyalty.domain.events import parse_order
    from loyalty.services import rulesets
    from loyalty.services.orders import record_order

    members = workload.member_names(MEMBERS)
    workload.seed_shop(members)
    ids = workload.member_ids()
    harness.freeze(site)
    events = [parse_order(doc) for doc in workload.order_documents(ORDERS, members, seed=1)]
    clock = FixedClock(workload.NOW)
    rows = baseline.rows_for_events(events, ids, clock.now())

    def service_run() -> float:
        harness.thaw(site)
        rulesets.in_force(workload.NOW)  # connect, and parse the ruleset once, outside the clock

        def work() -> None:
            for event in events:
                record_order(event, clock=clock)

        return harness.timed(work)

    def baseline_run() -> float:
        conn = harness.fresh_baseline(site)

        def work() -> None:
            for order in rows:
                baseline.write_one(conn, order)

        seconds = harness.timed(work)
        conn.close()
        return seconds

    seconds, raw_seconds = harness.alternate(args.runs, args.budget, service_run, baseline_run)
    service, raw = [ORDERS / s for s in seconds], [ORDERS / s for s in raw_seconds]
    print(f"record_order: {ORDERS:,} orders, {MEMBERS} members, one transaction per order")
    harness.Result(
        "record_order", "record_order throughput", "orders/s", harness.median(service), harness.median(raw),
        "service >= 0.3 x baseline", runs=service, baseline_runs=raw,
        notes=[f"{ORDERS:,} orders of 1-3 categorised items, {MEMBERS} members, default ruleset"],
    ).show()


if __name__ == "__main__":
    main()
