"""Benchmark 6: batched ingestion on PostgreSQL. `import_orders` on parsed events (the service
records them 1,000 per batch, a savepoint each, in one transaction) against the same rows written
with psycopg `executemany` (pipelined), 1,000 orders per transaction, in the same run. The same
rows written with COPY for the four INSERTs are measured too and printed as a note.

Both sides start from the same seeded database (migrated, default ruleset, 1,000 members);
members are registered before the clock starts on both sides. Figure: orders per second.
Target: service >= 0.3 x baseline.
"""

from __future__ import annotations

from bench import harness, servers, workload

ORDERS = 5_000
MEMBERS = 1_000
RUNS = 3
BUDGET = 40.0
DATABASE = "loyalty_bench_pg_ingest"


def main() -> None:
    args = harness.arguments(__doc__ or "", RUNS, BUDGET)
    server = servers.open_or_skip("pg_ingest", servers.POSTGRES_URL, DATABASE)
    if server is None:
        return

    from loyalty.clock import FixedClock
    from loyalty.domain.events import parse_order
    from loyalty.services import rulesets
    from loyalty.services.imports import import_orders

    members = workload.member_names(MEMBERS)
    workload.seed_shop(members)
    ids = workload.member_ids()
    tables = servers.run_tables()
    events = sorted((parse_order(doc) for doc in workload.order_documents(ORDERS, members, seed=2)),
                    key=lambda event: event.paid_at)
    numbered = [(line, event) for line, event in enumerate(events, start=2)]
    clock = FixedClock(workload.NOW)
    rows = servers.baseline_rows(events, ids, clock.now(), server.scheme)
    statements = servers.Statements(server.scheme)

    def service_run() -> float:
        servers.reset(tables)
        rulesets.in_force(workload.NOW)  # connect, and parse the ruleset once, outside the clock
        seconds = harness.timed(lambda: import_orders(numbered, clock=clock))
        servers.check_recorded(ORDERS)
        return ORDERS / seconds

    def baseline_run() -> float:
        servers.reset(tables)
        conn = server.connect(DATABASE)
        seconds = harness.timed(lambda: servers.write_batches(conn, statements, rows, 1000))
        conn.close()
        servers.check_recorded(ORDERS)
        return ORDERS / seconds

    def copy_run() -> float:
        servers.reset(tables)
        conn = server.connect(DATABASE)
        seconds = harness.timed(lambda: servers.copy_batches(conn, statements, rows, 1000))
        conn.close()
        servers.check_recorded(ORDERS)
        return ORDERS / seconds

    service, raw, copied = harness.alternate(args.runs, args.budget, service_run, baseline_run, copy_run)
    print(f"pg_ingest: import_orders on PostgreSQL, {ORDERS:,} orders in batches of 1,000, {MEMBERS:,} members")
    harness.Result(
        "pg_ingest", "import_orders throughput (PostgreSQL)", "orders/s", harness.median(service),
        harness.median(raw), "service >= 0.3 x baseline", runs=service, baseline_runs=raw,
        notes=[f"{ORDERS:,} parsed orders, {MEMBERS:,} members registered beforehand; "
               "baseline: psycopg executemany, 1,000 orders per transaction",
               f"the same rows with COPY for the INSERTs: {harness.median(copied):,.0f} orders/s (median of "
               f"{len(copied)}); service / COPY = {harness.median(service) / harness.median(copied):.3f}"],
    ).show()


if __name__ == "__main__":
    main()
