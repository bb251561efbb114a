"""What the PostgreSQL and MariaDB benchmarks share: a dedicated database per benchmark (created
and dropped here, migrated by Django, seeded as a `Shop`), a reset between timed runs, concurrent
clients, the timed sides built on them and the printing of their results.

The server is the one `make test` uses (`LOYALTY_BENCH_POSTGRES_URL` / `LOYALTY_BENCH_MARIADB_URL`
override it); the benchmark's own database is created next to `test` and dropped at exit. Every
timed run, service or baseline, starts from the seeded state: the tables the runs write are
emptied and the members' cached totals zeroed (`reset`), which costs a fraction of a second
where re-migrating would cost many.
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import multiprocessing
import os
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import unquote, urlsplit

from bench import baseline, harness, workload

if TYPE_CHECKING:
    from loyalty.clock import FixedClock
    from loyalty.domain.events import OrderEvent

POSTGRES_URL = os.environ.get("LOYALTY_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
MARIADB_URL = os.environ.get("LOYALTY_BENCH_MARIADB_URL", "mysql://root@127.0.0.1:3306/test")

GROUPS = 8
MEMBERS_PER_GROUP = 40
ORDERS_PER_GROUP = 60  # 480 orders per record_order run
BATCH = 1_000  # orders per transaction when ingesting

State = TypeVar("State")
Item = TypeVar("Item")
Side = Callable[[], float]  # one timed run, answering its figure
Spawn = Callable[[int, Callable[[int], None], Callable[[int, None], object]], float]  # in_threads, in_processes


@dataclass(frozen=True)
class Server:
    scheme: str  # "postgresql" or "mysql"
    host: str
    port: int
    user: str
    password: str
    admin_db: str  # the database we connect to while creating and dropping ours

    @classmethod
    def parse(cls, url: str) -> Server:
        parts = urlsplit(url)
        scheme = "postgresql" if parts.scheme.startswith("postgres") else "mysql"
        return cls(scheme, parts.hostname or "127.0.0.1", parts.port or (5432 if scheme == "postgresql" else 3306),
                   unquote(parts.username or ""), unquote(parts.password or ""), parts.path.lstrip("/"))

    @property
    def name(self) -> str:
        return "PostgreSQL" if self.scheme == "postgresql" else "MariaDB"

    def url(self, database: str) -> str:
        auth = self.user + (f":{self.password}" if self.password else "")
        return f"{self.scheme}://{auth}@{self.host}:{self.port}/{database}"

    def connect(self, database: str | None = None, *, autocommit: bool = False, timeout: int = 10) -> Any:
        """A plain driver connection (psycopg 3 or MySQLdb), not Django's."""
        database = database or self.admin_db
        if self.scheme == "postgresql":
            import psycopg

            return psycopg.connect(host=self.host, port=self.port, user=self.user, password=self.password or None,
                                   dbname=database, autocommit=autocommit, connect_timeout=timeout)
        import MySQLdb

        conn = MySQLdb.connect(host=self.host, port=self.port, user=self.user, password=self.password,
                               database=database, charset="utf8mb4", connect_timeout=timeout)
        conn.autocommit(autocommit)
        return conn

    def unavailable(self) -> str | None:
        """Why the server cannot be used, or None when it answers."""
        try:
            conn = self.connect(autocommit=True, timeout=3)
        except ImportError as error:
            return f"the {self.name} driver is not installed ({error})"
        except Exception as error:  # the drivers' own OperationalError types
            return f"{self.name} at {self.host}:{self.port} does not answer: {str(error).strip().splitlines()[0]}"
        conn.close()
        return None

    def create(self, database: str) -> None:
        """(Re)create an empty database; dropped again when the process exits."""
        self.drop(database)
        conn = self.connect(autocommit=True)
        try:
            cursor = conn.cursor()
            if self.scheme == "postgresql":
                cursor.execute(f'CREATE DATABASE "{database}"')
            else:
                cursor.execute(f"CREATE DATABASE `{database}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
        finally:
            conn.close()
        atexit.register(self.drop, database)

    def drop(self, database: str) -> None:
        from django.conf import settings

        if settings.configured:
            from django.db import connections

            connections.close_all()
        conn = self.connect(autocommit=True)
        try:
            cursor = conn.cursor()
            if self.scheme == "postgresql":
                cursor.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
            else:
                cursor.execute(f"DROP DATABASE IF EXISTS `{database}`")
        finally:
            conn.close()


def open_or_skip(bench: str, url: str, database: str) -> Server | None:
    """The server, with `database` created on it and Django set up on that database; or None after
    printing why the benchmark is skipped."""
    server = Server.parse(url)
    reason = server.unavailable()
    if reason:
        skip(bench, reason)
        return None
    server.create(database)
    os.environ["LOYALTY_DATABASE_URL"] = server.url(database)
    os.environ["DJANGO_SETTINGS_MODULE"] = "loyalty.settings"
    import django

    django.setup()
    return server


def skip(bench: str, reason: str) -> None:
    """Say why the benchmark cannot run here; `python -m bench` reports it as skipped, not failed."""
    print(f"{harness.SKIP_PREFIX}{bench}: {reason}", flush=True)


# --- resetting between runs ---------------------------------------------------------------

TOTALS = ("growth_balance", "points_balance", "points_debt", "orders_count", "paid_fen", "refunded_fen")


def run_tables() -> list[str]:
    """The service's tables that are empty in the seeded state: the ones a run fills."""
    from django.apps import apps
    from django.db import connection

    tables = []
    with connection.cursor() as cursor:
        for model in apps.get_app_config("loyalty").get_models():
            table = model._meta.db_table
            cursor.execute(f"SELECT COUNT(*) FROM {connection.ops.quote_name(table)}")
            if cursor.fetchone()[0] == 0:
                tables.append(table)
    return tables


def reset(tables: Sequence[str]) -> None:
    """Back to the seeded state: `tables` emptied, the members' cached totals zeroed."""
    from django.db import connection

    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"TRUNCATE {', '.join(quote(t) for t in tables)} RESTART IDENTITY")
        else:
            cursor.execute("SET FOREIGN_KEY_CHECKS = 0")
            for table in tables:
                cursor.execute(f"TRUNCATE TABLE {quote(table)}")
            cursor.execute("SET FOREIGN_KEY_CHECKS = 1")
        cursor.execute(f"UPDATE members SET {', '.join(f'{c} = 0' for c in TOTALS)}")
    connection.close()


def check_recorded(expected: int) -> None:
    """The run left `expected` orders behind, counted in the members' totals too (outside the clock)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT (SELECT COUNT(*) FROM orders), (SELECT SUM(orders_count) FROM members),"
                       " (SELECT COUNT(*) FROM ledger_entries), (SELECT COUNT(*) FROM points_lots)")
        orders, counted, entries, lots = (int(value or 0) for value in cursor.fetchone())
    connection.close()
    if (orders, counted, entries, lots) != (expected, expected, 2 * expected, expected):
        raise AssertionError(f"expected {expected} orders (and their rows) recorded, found orders={orders} "
                             f"orders_count={counted} ledger entries={entries} lots={lots}")


# --- the baseline's rows and statements in the drivers' own forms -------------------------

def native_sql(sql: str, scheme: str) -> str:
    """baseline.py's statements (`?` placeholders) for psycopg / MySQLdb (`%s`; MariaDB reserves `key`)."""
    sql = sql.replace("?", "%s")
    return sql.replace(" key,", " `key`,") if scheme == "mysql" else sql


def moment_for(scheme: str) -> Callable[[datetime], Any]:
    """PostgreSQL takes aware datetimes (timestamptz); Django stores naive UTC on MariaDB."""
    if scheme == "postgresql":
        return lambda value: value
    return lambda value: value.astimezone(UTC).replace(tzinfo=None)


def baseline_rows(events: Sequence[Any], ids: dict[str, int], recorded_at: datetime, scheme: str
                  ) -> list[baseline.OrderRows]:
    return baseline.rows_for_events(events, ids, recorded_at, moment=moment_for(scheme), on_day=lambda day: day)


def _placeholders_only(sql: str) -> tuple[str, tuple[int | str, ...]]:
    """`INSERT ... VALUES (%s, %s, 0)` -> (`INSERT ... VALUES (%s, %s, %s)`, (0,)): the literals bound
    instead (appended to each row). MySQLdb sends an `executemany` as one multi-row INSERT only when
    VALUES holds nothing but placeholders; otherwise it runs one statement per row."""
    head, values = sql.split(" VALUES ", 1)
    marks = [value.strip() for value in values.strip().strip("()").split(",")]
    extra = tuple("" if mark == "''" else int(mark) for mark in marks if mark != "%s")
    assert marks[:len(marks) - len(extra)] == ["%s"] * (len(marks) - len(extra)), "literals must come last"
    return f"{head} VALUES ({', '.join(['%s'] * len(marks))})", extra


class Statements:
    """baseline.py's statements for a server driver; the order's literal zeros are bound (`order_row`)."""

    def __init__(self, scheme: str):
        self.order, self.order_extra = _placeholders_only(native_sql(baseline.ORDER_SQL, scheme))
        self.item, self.entry, self.lot, self.totals = (
            native_sql(sql, scheme) for sql in (baseline.ITEM_SQL, baseline.ENTRY_SQL, baseline.LOT_SQL,
                                                baseline.TOTALS_SQL))

    def order_row(self, rows: baseline.OrderRows) -> tuple[Any, ...]:
        return (*rows.order, *self.order_extra)


def _summed_totals(batch: Sequence[baseline.OrderRows]) -> list[tuple[int, ...]]:
    totals: dict[int, list[int]] = defaultdict(lambda: [0] * 6)
    for order in batch:
        row = totals[order.member_id]
        for index, delta in enumerate(order.totals[:6]):
            row[index] += delta
    return [(*deltas, member) for member, deltas in sorted(totals.items())]


def write_batches(conn: Any, statements: Statements, rows: Sequence[baseline.OrderRows], size: int = 1000) -> None:
    """baseline.write_batch on a DB-API server connection (not autocommit): one transaction per
    `size` orders, one `executemany` per statement, member totals summed per batch."""
    cursor = conn.cursor()
    for start in range(0, len(rows), size):
        batch = rows[start:start + size]
        cursor.executemany(statements.order, [statements.order_row(order) for order in batch])
        cursor.executemany(statements.item, [item for order in batch for item in order.items])
        cursor.executemany(statements.entry, [entry for order in batch for entry in order.entries])
        cursor.executemany(statements.lot, [order.lot for order in batch])
        cursor.executemany(statements.totals, _summed_totals(batch))
        conn.commit()
    cursor.close()


def copy_batches(conn: Any, statements: Statements, rows: Sequence[baseline.OrderRows], size: int = 1000) -> None:
    """As `write_batches`, but the four INSERTs as psycopg `COPY ... FROM STDIN`."""
    cursor = conn.cursor()
    targets = [sql.split(" VALUES ")[0].removeprefix("INSERT INTO ")
               for sql in (statements.order, statements.item, statements.entry, statements.lot)]
    for start in range(0, len(rows), size):
        batch = rows[start:start + size]
        for target, data in zip(targets, (
                [statements.order_row(order) for order in batch], [item for order in batch for item in order.items],
                [entry for order in batch for entry in order.entries], [order.lot for order in batch]), strict=True):
            with cursor.copy(f"COPY {target} FROM STDIN") as copy:
                for row in data:
                    copy.write_row(row)
        cursor.executemany(statements.totals, _summed_totals(batch))
        conn.commit()
    cursor.close()


# --- concurrent clients -------------------------------------------------------------------

def concurrently(count: int, setup: Callable[[int], State], work: Callable[[int, State], object],
                 teardown: Callable[[int, State | None], object]) -> float:
    """Run `count` client threads; each sets up (connects) before the clock starts, then all start
    together. Answers the seconds from the start until the last client is done."""
    barrier = threading.Barrier(count + 1)
    errors: list[BaseException] = []

    def client(index: int) -> None:
        state: State | None = None
        try:
            state = setup(index)
            barrier.wait()
            work(index, state)
        except BaseException as error:
            errors.append(error)
            barrier.abort()
        finally:
            teardown(index, state)

    threads = [threading.Thread(target=client, args=(index,), name=f"client-{index}") for index in range(count)]
    for thread in threads:
        thread.start()
    gc.collect()
    with contextlib.suppress(threading.BrokenBarrierError):
        barrier.wait()
    start = time.perf_counter()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - start
    if errors:
        raise next((e for e in errors if not isinstance(e, threading.BrokenBarrierError)), errors[0])
    return seconds


def in_threads(count: int, setup: Callable[[int], State], work: Callable[[int, State], object]) -> float:
    """`concurrently`, each client closing its thread's Django connection when done."""
    from django.db import connection

    return concurrently(count, setup, work, lambda _index, _state: connection.close())


def in_processes(count: int, setup: Callable[[int], State], work: Callable[[int, State], object]) -> float:
    """Run `count` clients as forked processes, as a deployment runs one worker process per
    client (threads in one process would share one interpreter lock). Each connects before the
    clock starts, then all start together. Answers the seconds until the last client is done."""
    from django.db import connections

    connections.close_all()  # IMPORTANT: no connection may be shared across fork
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(count + 1)

    def client(index: int) -> None:
        state = setup(index)
        barrier.wait()
        work(index, state)
        connections.close_all()

    processes = [context.Process(target=client, args=(index,)) for index in range(count)]
    for process in processes:
        process.start()
    barrier.wait(timeout=120)
    start = time.perf_counter()
    for process in processes:
        process.join()
    seconds = time.perf_counter() - start
    failed = [p.exitcode for p in processes if p.exitcode]
    if failed:
        raise RuntimeError(f"{len(failed)} client processes failed (exit codes {failed})")
    return seconds


def shares(groups: Sequence[Sequence[Item]], clients: int) -> list[list[Item]]:
    """Deal the member groups (each its own members' orders) to `clients`: group g to client
    g % clients, so no two clients ever touch the same member and every count records the same orders."""
    out: list[list[Item]] = [[] for _ in range(clients)]
    for index, group in enumerate(groups):
        out[index % clients].extend(group)
    return out


# --- the seeded shop and the timed sides on it --------------------------------------------

@dataclass
class Shop:
    """A benchmark's database on the server as every timed run starts it: migrated, the default
    ruleset published, the members registered."""

    server: Server
    database: str
    members: list[str]
    ids: dict[str, int]
    tables: list[str]  # the ones a run fills, emptied by `reset`
    clock: FixedClock

    @classmethod
    def open(cls, bench: str, url: str, database: str, members: int) -> Shop | None:
        """`open_or_skip`, then `seed`; None when the benchmark is skipped."""
        server = open_or_skip(bench, url, database)
        return None if server is None else cls.seed(server, database, members)

    @classmethod
    def seed(cls, server: Server, database: str, members: int) -> Shop:
        from loyalty.clock import FixedClock

        names = workload.member_names(members)
        workload.seed_shop(names)
        return cls(server, database, names, workload.member_ids(), run_tables(), FixedClock(workload.NOW))

    @property
    def statements(self) -> Statements:
        return Statements(self.server.scheme)

    def connect(self, *, autocommit: bool = False) -> Any:
        return self.server.connect(self.database, autocommit=autocommit)

    def rows(self, events: Sequence[OrderEvent]) -> list[baseline.OrderRows]:
        return baseline_rows(events, self.ids, self.clock.now(), self.server.scheme)

    def from_seed(self, orders: int, run: Callable[[], float]) -> float:
        """Orders per second of `run` (which answers its own seconds): started from the seeded state,
        and checked afterwards to have recorded every order."""
        reset(self.tables)
        seconds = run()
        check_recorded(orders)
        return orders / seconds

    def recording(self, groups: Sequence[Sequence[OrderEvent]], clients: int,
                  spawn: Spawn) -> Side:
        """`clients` clients (`in_threads` or `in_processes`) recording their shares of `groups` with
        record_order, one transaction per order."""
        from django.db import connection

        from loyalty.services import rulesets
        from loyalty.services.orders import record_order

        work = shares(groups, clients)

        def setup(_: int) -> None:
            rulesets.in_force(workload.NOW)  # this client's connection opened, outside the clock

        def record(index: int, _: None) -> None:
            for event in work[index]:
                record_order(event, clock=self.clock)

        def run() -> float:
            rulesets.in_force(workload.NOW)  # the process-wide ruleset cache filled before the clients start
            connection.close()
            return spawn(clients, setup, record)

        return lambda: self.from_seed(sum(len(group) for group in groups), run)

    def importing(self, events: Sequence[OrderEvent]) -> Side:
        """import_orders on the events, numbered as the lines of an import file."""
        from loyalty.services import rulesets
        from loyalty.services.imports import import_orders

        numbered = list(enumerate(events, start=2))

        def run() -> float:
            rulesets.in_force(workload.NOW)  # connect, and parse the ruleset once, outside the clock
            return harness.timed(lambda: import_orders(numbered, clock=self.clock))

        return lambda: self.from_seed(len(numbered), run)

    def batches(self, connect: Callable[[], Any], rows: Sequence[baseline.OrderRows],
                write: Callable[[Any, Statements, Sequence[baseline.OrderRows], int], None]) -> Side:
        """`rows` written by `write` (`write_batches` or `copy_batches`), BATCH orders per transaction,
        on a connection opened outside the clock."""
        statements = self.statements

        def run() -> float:
            conn = connect()
            seconds = harness.timed(lambda: write(conn, statements, rows, BATCH))
            conn.close()
            return seconds

        return lambda: self.from_seed(len(rows), run)


def member_groups(members: list[str]) -> list[list[OrderEvent]]:
    """The record_order benchmarks' work: GROUPS groups of MEMBERS_PER_GROUP members (the first of
    `members`), each group with ORDERS_PER_GROUP orders of its own."""
    from loyalty.domain.events import parse_order

    return [[parse_order(doc) for doc in workload.order_documents(
        ORDERS_PER_GROUP, members[g * MEMBERS_PER_GROUP:(g + 1) * MEMBERS_PER_GROUP], seed=10 + g, prefix=f"g{g}-")]
        for g in range(GROUPS)]


def groups_text() -> str:
    """How `member_groups` is recorded, for the record_order benchmarks' headings."""
    return (f"{GROUPS * ORDERS_PER_GROUP:,} orders per run, {GROUPS * MEMBERS_PER_GROUP} members in {GROUPS} "
            "groups, one transaction per order")


def ingest_events(count: int, members: list[str]) -> list[OrderEvent]:
    """The ingest benchmarks' orders, by payment time as an import file lists them."""
    from loyalty.domain.events import parse_order

    return sorted((parse_order(doc) for doc in workload.order_documents(count, members, seed=2)),
                  key=lambda event: event.paid_at)


def ingest_text(orders: int, members: int) -> str:
    """The ingest benchmarks' work, for their headings."""
    return f"{orders:,} orders in batches of {BATCH:,}, {members:,} members"


# --- results ------------------------------------------------------------------------------

def result(bench: str, figure: str, unit: str, service: list[float], base: list[float], target: str,
           notes: list[str]) -> harness.Result:
    """The figure and its baseline as the medians of their runs."""
    return harness.Result(bench, figure, unit, harness.median(service), harness.median(base), target,
                          runs=service, baseline_runs=base, notes=notes)


def per_client(counts: Sequence[int], service: Callable[[int], Side], base: Callable[[int], Side]) -> list[Side]:
    """A service side then a baseline side for each client count, for `harness.alternate`."""
    return [side for clients in counts for side in (service(clients), base(clients))]


def show_per_client(counts: Sequence[int], measured: Sequence[list[float]],
                    result_for: Callable[[int, list[float], list[float]], harness.Result]) -> None:
    """Print each count's result from `measured`, which `alternate` filled in `per_client`'s order."""
    for index, clients in enumerate(counts):
        print(f" {clients} client{'s' if clients > 1 else ''}:")
        result_for(clients, measured[2 * index], measured[2 * index + 1]).show()
