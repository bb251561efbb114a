"""Benchmark 6: batched ingestion on PostgreSQL. `import_orders` on parsed events (the service
records them 1,000 per batch, a savepoint each, in one transaction) against the same rows written
with psycopg `executemany` (pipelined), 1,000 orders per transaction, in the same run. The same
rows written with COPY for the four INSERTs are measured too and printed as a note.

Both sides start from the same seeded database (migrated, default ruleset, 1,000 members);
members are registered before the clock starts on both sides. Figure: orders per second.
Target: service >= 0.3 x baseline.
"""

from __future__ import annotations

from bench import harness, servers

ORDERS = 5_000
MEMBERS = 1_000
RUNS = 3
BUDGET = 40.0
DATABASE = "loyalty_bench_pg_ingest"


def main() -> None:
    args = harness.arguments(__doc__ or "", RUNS, BUDGET)
    shop = servers.Shop.open("pg_ingest", servers.POSTGRES_URL, DATABASE, MEMBERS)
    if shop is None:
        return

    events = servers.ingest_events(ORDERS, shop.members)
    rows = shop.rows(events)
    service, raw, copied = harness.alternate(
        args.runs, args.budget, shop.importing(events), shop.batches(shop.connect, rows, servers.write_batches),
        shop.batches(shop.connect, rows, servers.copy_batches))
    print(f"pg_ingest: import_orders on PostgreSQL, {servers.ingest_text(ORDERS, MEMBERS)}")
    servers.result(
        "pg_ingest", "import_orders throughput (PostgreSQL)", "orders/s", service, raw, "service >= 0.3 x baseline",
        notes=[f"{ORDERS:,} parsed orders, {MEMBERS:,} members registered beforehand; "
               "baseline: psycopg executemany, 1,000 orders per transaction",
               f"the same rows with COPY for the INSERTs: {harness.median(copied):,.0f} orders/s (median of "
               f"{len(copied)}); service / COPY = {harness.median(service) / harness.median(copied):.3f}"],
    ).show()


if __name__ == "__main__":
    main()
