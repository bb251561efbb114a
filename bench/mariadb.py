"""Benchmark 7: the two write shapes on MariaDB, each against hand-written MySQLdb in the same run.

  record_order  one transaction per order, 1 and 8 concurrent clients (threads, each its own
                connection and its own members' orders, as in pg_record_order). Baseline at the
                same client counts: per order BEGIN; INSERT the order, its items (executemany),
                2 ledger entries, 1 points lot; UPDATE the member's totals; COMMIT.
  ingest        import_orders, 1,000 orders per batch, against the same rows with MySQLdb
                `executemany` (which sends multi-row INSERTs), 1,000 orders per transaction.

Baseline sessions use READ COMMITTED, as Django's connection is configured. Every run, service or
baseline, starts from the seeded state. Figures: orders per second. Target: service >= 0.3 x baseline.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from bench import baseline, harness, servers, workload

RECORD_CLIENTS = (1, 8)
GROUPS = 8
MEMBERS_PER_GROUP = 40
ORDERS_PER_GROUP = 60  # 480 orders per record_order run
INGEST_ORDERS = 3_000
MEMBERS = 1_000  # the first GROUPS x MEMBERS_PER_GROUP are the record_order clients' members
RUNS = 3
BUDGET = 50.0
DATABASE = "loyalty_bench_mariadb"


def write_one(cursor: Any, statements: servers.Statements, rows: baseline.OrderRows) -> None:
    """One order, one transaction (autocommit connection, explicit BEGIN / COMMIT)."""
    cursor.execute("BEGIN")
    cursor.execute(statements.order, statements.order_row(rows))
    cursor.executemany(statements.item, rows.items)
    cursor.executemany(statements.entry, rows.entries)
    cursor.execute(statements.lot, rows.lot)
    cursor.execute(statements.totals, rows.totals)
    cursor.execute("COMMIT")


def main() -> None:
    args = harness.arguments(__doc__ or "", RUNS, BUDGET)
    server = servers.open_or_skip("mariadb", servers.MARIADB_URL, DATABASE)
    if server is None:
        return

    from django.db import connection

    from loyalty.clock import FixedClock
    from loyalty.domain.events import parse_order
    from loyalty.services import rulesets
    from loyalty.services.imports import import_orders
    from loyalty.services.orders import record_order

    members = workload.member_names(MEMBERS)
    workload.seed_shop(members)
    ids = workload.member_ids()
    tables = servers.run_tables()
    clock = FixedClock(workload.NOW)
    statements = servers.Statements(server.scheme)

    groups = [[parse_order(doc) for doc in workload.order_documents(
        ORDERS_PER_GROUP, members[g * MEMBERS_PER_GROUP:(g + 1) * MEMBERS_PER_GROUP], seed=10 + g, prefix=f"g{g}-")]
        for g in range(GROUPS)]
    row_groups = [servers.baseline_rows(group, ids, clock.now(), server.scheme) for group in groups]
    recorded = GROUPS * ORDERS_PER_GROUP

    events = sorted((parse_order(doc) for doc in workload.order_documents(INGEST_ORDERS, members, seed=2)),
                    key=lambda event: event.paid_at)
    numbered = [(line, event) for line, event in enumerate(events, start=2)]
    ingest_rows = servers.baseline_rows(events, ids, clock.now(), server.scheme)

    def session(autocommit: bool) -> Any:
        conn = server.connect(DATABASE, autocommit=autocommit)
        cursor = conn.cursor()
        cursor.execute("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
        cursor.close()
        return conn

    def record_service(clients: int) -> Callable[[], float]:
        work = servers.shares(groups, clients)

        def record(index: int, _: None) -> None:
            for event in work[index]:
                record_order(event, clock=clock)

        def run() -> float:
            servers.reset(tables)
            rulesets.in_force(workload.NOW)  # the process-wide ruleset cache filled before the threads start
            connection.close()
            seconds = servers.concurrently(clients, lambda _: rulesets.in_force(workload.NOW), record,
                                           lambda _i, _s: connection.close())
            servers.check_recorded(recorded)
            return recorded / seconds

        return run

    def record_baseline(clients: int) -> Callable[[], float]:
        work: list[Sequence[baseline.OrderRows]] = servers.shares(row_groups, clients)

        def write(index: int, conn: Any) -> None:
            cursor = conn.cursor()
            for rows in work[index]:
                write_one(cursor, statements, rows)
            cursor.close()

        def run() -> float:
            servers.reset(tables)
            seconds = servers.concurrently(clients, lambda _: session(True), write,
                                           lambda _i, conn: conn and conn.close())
            servers.check_recorded(recorded)
            return recorded / seconds

        return run

    def ingest_service() -> float:
        servers.reset(tables)
        rulesets.in_force(workload.NOW)
        seconds = harness.timed(lambda: import_orders(numbered, clock=clock))
        servers.check_recorded(INGEST_ORDERS)
        return INGEST_ORDERS / seconds

    def ingest_baseline() -> float:
        servers.reset(tables)
        conn = session(False)
        seconds = harness.timed(lambda: servers.write_batches(conn, statements, ingest_rows, 1000))
        conn.close()
        servers.check_recorded(INGEST_ORDERS)
        return INGEST_ORDERS / seconds

    sides = [side for clients in RECORD_CLIENTS for side in (record_service(clients), record_baseline(clients))]
    measured = harness.alternate(args.runs, args.budget, *sides, ingest_service, ingest_baseline)
    print(f"mariadb: record_order, {recorded:,} orders per run, {GROUPS * MEMBERS_PER_GROUP} members in {GROUPS} "
          f"groups, one transaction per order")
    for index, clients in enumerate(RECORD_CLIENTS):
        service, raw = measured[2 * index], measured[2 * index + 1]
        print(f" {clients} client{'s' if clients > 1 else ''}:")
        harness.Result(
            f"mariadb record c={clients}", f"record_order, {clients} clients (MariaDB)", "orders/s",
            harness.median(service), harness.median(raw), "service >= 0.3 x baseline",
            runs=service, baseline_runs=raw,
            notes=[f"baseline: MySQLdb, {clients} threads, BEGIN; order, items, 2 entries, lot, totals; COMMIT"],
        ).show()
    service, raw = measured[-2], measured[-1]
    print(f"mariadb: import_orders, {INGEST_ORDERS:,} orders in batches of 1,000, {MEMBERS:,} members")
    harness.Result(
        "mariadb ingest", "import_orders throughput (MariaDB)", "orders/s", harness.median(service),
        harness.median(raw), "service >= 0.3 x baseline", runs=service, baseline_runs=raw,
        notes=["baseline: MySQLdb executemany (multi-row INSERTs), 1,000 orders per transaction"],
    ).show()


if __name__ == "__main__":
    main()
