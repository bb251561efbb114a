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

from typing import Any

from bench import baseline, harness, servers

RECORD_CLIENTS = (1, 8)
INGEST_ORDERS = 3_000
MEMBERS = 1_000  # the first GROUPS x MEMBERS_PER_GROUP are the record_order clients' members
RUNS = 3
BUDGET = 50.0
DATABASE = "loyalty_bench_mariadb"


def session(shop: servers.Shop, autocommit: bool) -> Any:
    """A MySQLdb connection at READ COMMITTED, as Django's connection is configured."""
    conn = shop.connect(autocommit=autocommit)
    cursor = conn.cursor()
    cursor.execute("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
    cursor.close()
    return conn


def write_one(cursor: Any, statements: servers.Statements, rows: baseline.OrderRows) -> None:
    """One order, one transaction (autocommit connection, explicit BEGIN / COMMIT)."""
    cursor.execute("BEGIN")
    cursor.execute(statements.order, statements.order_row(rows))
    cursor.executemany(statements.item, rows.items)
    cursor.executemany(statements.entry, rows.entries)
    cursor.execute(statements.lot, rows.lot)
    cursor.execute(statements.totals, rows.totals)
    cursor.execute("COMMIT")


def record_baseline(shop: servers.Shop, row_groups: list[list[baseline.OrderRows]], clients: int) -> servers.Side:
    """`clients` threads writing their shares of `row_groups` with `write_one`."""
    work = servers.shares(row_groups, clients)
    statements = shop.statements

    def write(index: int, conn: Any) -> None:
        cursor = conn.cursor()
        for rows in work[index]:
            write_one(cursor, statements, rows)
        cursor.close()

    def close(_: int, conn: Any | None) -> None:
        if conn is not None:
            conn.close()

    def run() -> float:
        return servers.concurrently(clients, lambda _: session(shop, True), write, close)

    return lambda: shop.from_seed(sum(len(rows) for rows in row_groups), run)


def main() -> None:
    args = harness.arguments(__doc__ or "", RUNS, BUDGET)
    shop = servers.Shop.open("mariadb", servers.MARIADB_URL, DATABASE, MEMBERS)
    if shop is None:
        return

    groups = servers.member_groups(shop.members)
    row_groups = [shop.rows(group) for group in groups]
    events = servers.ingest_events(INGEST_ORDERS, shop.members)
    sides = servers.per_client(RECORD_CLIENTS, lambda clients: shop.recording(groups, clients, servers.in_threads),
                               lambda clients: record_baseline(shop, row_groups, clients))
    measured = harness.alternate(args.runs, args.budget, *sides, shop.importing(events),
                                 shop.batches(lambda: session(shop, False), shop.rows(events), servers.write_batches))
    print(f"mariadb: record_order, {servers.groups_text()}")
    servers.show_per_client(RECORD_CLIENTS, measured, lambda clients, service, raw: servers.result(
        f"mariadb record c={clients}", f"record_order, {clients} clients (MariaDB)", "orders/s", service, raw,
        "service >= 0.3 x baseline",
        notes=[f"baseline: MySQLdb, {clients} threads, BEGIN; order, items, 2 entries, lot, totals; COMMIT"]))
    print(f"mariadb: import_orders, {servers.ingest_text(INGEST_ORDERS, MEMBERS)}")
    servers.result(
        "mariadb ingest", "import_orders throughput (MariaDB)", "orders/s", measured[-2], measured[-1],
        "service >= 0.3 x baseline",
        notes=["baseline: MySQLdb executemany (multi-row INSERTs), 1,000 orders per transaction"],
    ).show()


if __name__ == "__main__":
    main()
