"""Benchmark 2: batched ingestion. `import_orders` on parsed events (the service records them 1,000
per batch) against the same rows written with `executemany`, 1,000 orders per transaction.

Members are registered before the clock starts on both sides. Figure: orders per second.
Target (the issue): service >= 0.3 x baseline.
"""

from __future__ import annotations

from bench import baseline, harness, workload

ORDERS = 5_000
MEMBERS = 1_000
RUNS = 5
BUDGET = 30.0


def main() -> None:
    args = harness.arguments(__doc__ or "", RUNS, BUDGET)
    site = harness.Site("ingest")
    harness.start_django(site)

    from loyalty.clock import FixedClock
    from loyalty.domain.events import parse_order
    from loyalty.services import rulesets
    from loyalty.services.imports import import_orders

    members = workload.member_names(MEMBERS)
    workload.seed_shop(members)
    ids = workload.member_ids()
    harness.freeze(site)
    events = sorted((parse_order(doc) for doc in workload.order_documents(ORDERS, members, seed=2)),
                    key=lambda event: event.paid_at)
    numbered = [(line, event) for line, event in enumerate(events, start=2)]
    clock = FixedClock(workload.NOW)
    rows = baseline.rows_for_events(events, ids, clock.now())

    def service_run() -> float:
        harness.thaw(site)
        rulesets.in_force(workload.NOW)
        return harness.timed(lambda: import_orders(numbered, clock=clock))

    def baseline_run() -> float:
        conn = harness.fresh_baseline(site)
        seconds = harness.timed(lambda: baseline.write_batches(conn, rows, 1000))
        conn.close()
        return seconds

    seconds, raw_seconds = harness.alternate(args.runs, args.budget, service_run, baseline_run)
    service, raw = [ORDERS / s for s in seconds], [ORDERS / s for s in raw_seconds]
    print(f"ingest: import_orders, {ORDERS:,} orders in batches of 1,000, {MEMBERS:,} members")
    harness.Result(
        "ingest", "import_orders throughput", "orders/s", harness.median(service), harness.median(raw),
        "service >= 0.3 x baseline", runs=service, baseline_runs=raw,
        notes=[f"{ORDERS:,} parsed orders, {MEMBERS:,} members registered beforehand; "
               "baseline: executemany, 1,000 orders per transaction"],
    ).show()


if __name__ == "__main__":
    main()
