"""Statements sent straight to the driver, inside Django's connection and transaction.

Django's cursor wrapper rewrites every SQL text for SQLite (a regex per execute) and runs its
execute wrappers; on the per-order path that costs as much as the statement. Here the text is
rewritten once and cached, and driver errors are still raised as Django's (IntegrityError…).

On PostgreSQL, `pipeline()` and `fetch_all()` send several statements in one round trip (one
simple query): the server still runs them one after the other, in order, so a read sent after
a `FOR UPDATE` sees what committed before the lock was granted.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.backends.base.base import BaseDatabaseWrapper


@lru_cache(maxsize=512)
def _native(sql: str, vendor: str) -> str:
    """Our statements use `%s`; SQLite's driver wants `?`."""
    return sql.replace("%s", "?") if vendor == "sqlite" else sql


_pinned = threading.local()  # .db: this thread's connection while a snapshot() is open


def database() -> BaseDatabaseWrapper:
    """This thread's connection to the default database, opened if it is not yet. A connection kept
    from an earlier request is checked first (once per request, as Django's own cursors do), so
    a database restart costs a reconnect, not an error. Inside `snapshot()`, the one it pinned."""
    pinned = getattr(_pinned, "db", None)
    if pinned is not None:
        return pinned
    db = connections[DEFAULT_DB_ALIAS]
    db.close_if_health_check_failed()
    if db.connection is None:
        db.ensure_connection()
    return db


def sqlite_datetime(value: datetime) -> str:
    """The text Django's SQLite backend stores for an aware datetime (naive UTC, str() form),
    without its per-value settings lookups: this runs for millions of values on import."""
    return str(value.astimezone(UTC).replace(tzinfo=None))


def datetime_param(value: datetime, db: BaseDatabaseWrapper | None = None) -> Any:
    """An aware datetime as a statement's parameter, in the form the backend stores."""
    db = db or database()
    return sqlite_datetime(value) if db.vendor == "sqlite" else db.ops.adapt_datetimefield_value(value)


def read_datetime(value: datetime | None) -> datetime | None:
    """A datetime column as the driver returns it, made aware: SQLite (through the converter
    Django registers for `datetime` columns) and MariaDB give naive UTC, PostgreSQL aware."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def fetch(sql: str, params: Sequence[Any], db: BaseDatabaseWrapper | None = None) -> list[tuple[Any, ...]]:
    db = db or database()
    with db.wrap_database_errors:
        cursor = db.connection.cursor()
        try:
            cursor.execute(_native(sql, db.vendor), params)
            return list(cursor.fetchall())
        finally:
            cursor.close()


def execute_many(sql: str, rows: Sequence[Sequence[Any]], db: BaseDatabaseWrapper | None = None) -> None:
    db = db or database()
    buffer = db.__dict__.get("_loyalty_buffer")
    if buffer is not None:
        buffer.extend(_statements(sql, rows))
        return
    with db.wrap_database_errors:
        cursor = db.connection.cursor()
        try:
            if len(rows) == 1:  # the per-event path: a plain execute costs the driver less
                cursor.execute(_native(sql, db.vendor), rows[0])
            else:
                cursor.executemany(_native(sql, db.vendor), rows)
        finally:
            cursor.close()


def asynchronous_commit() -> None:
    """Inside a batch job's chunk transaction: on PostgreSQL, its COMMIT does not wait for the WAL
    to reach the disk (`SET LOCAL synchronous_commit TO OFF`), a fifth of a month end's time.
    Safe for jobs that resume from what the database holds: a crash of the server may lose the
    last chunks committed this way, but never a part of one. Under `jobs run-due` the run's own
    state is written with an ordinary commit afterwards, whose flush takes every earlier commit to
    disk with it: a run recorded as done has all its chunks on disk, and one that is not resumes
    and writes what is missing (run directly, such a job is simply run again). Elsewhere, a no-op
    (SQLite's WAL at synchronous=NORMAL already commits without a flush)."""
    db = database()
    if db.vendor == "postgresql" and db.in_atomic_block:
        with db.wrap_database_errors:
            db.connection.execute("SET LOCAL synchronous_commit TO OFF")


def fetch_by_keys(sql: str, column: str, keys: Sequence[Any], db: BaseDatabaseWrapper | None = None,
                  chunk: int = 500) -> list[tuple[Any, ...]]:
    """The rows of `sql` (ending in WHERE, or in AND) whose `column` is one of `keys`. On
    PostgreSQL the keys go as one array parameter bound by the server (`= ANY(%s)`), 10,000 at a
    time: Django's cursors bind every value into the SQL text in Python, which for a month end's
    million keys cost more than the lookups. Elsewhere, `IN (...)` `chunk` keys at a time."""
    db = db or database()
    rows: list[tuple[Any, ...]] = []
    if db.vendor == "postgresql":
        import psycopg

        with db.wrap_database_errors:
            cursor = psycopg.Cursor(db.connection)  # server-side binding
            try:
                for start in range(0, len(keys), 10_000):
                    cursor.execute(f"{sql} {column} = ANY(%s)", [list(keys[start:start + 10_000])])
                    rows += cursor.fetchall()
            finally:
                cursor.close()
        return rows
    for start in range(0, len(keys), chunk):
        part = keys[start:start + chunk]
        rows += fetch(f"{sql} {column} IN ({', '.join(['%s'] * len(part))})", part, db)
    return rows


def execute_bound(sql: str, params: Sequence[Any], db: BaseDatabaseWrapper) -> None:
    """One statement with its parameters bound by the server (PostgreSQL): for arrays of a
    thousand values, which Django's cursors would write into the SQL text one by one in Python."""
    import psycopg

    with db.wrap_database_errors:
        cursor = psycopg.Cursor(db.connection)
        try:
            cursor.execute(sql, params)
        finally:
            cursor.close()


def copy_rows(sql: str, rows: Sequence[Sequence[Any]], db: BaseDatabaseWrapper) -> None:
    """Send rows with `COPY ... FROM STDIN` (PostgreSQL), at once, even inside a `pipeline()`."""
    with db.wrap_database_errors:
        cursor = db.connection.cursor()
        try:
            with cursor.copy(sql) as copy:
                for row in rows:
                    copy.write_row(row)
        finally:
            cursor.close()


Query = tuple[str, Sequence[Any]]


def fetch_all(queries: Sequence[Query]) -> list[list[tuple[Any, ...]]]:
    """The rows of several queries, in order; one round trip on PostgreSQL."""
    db = database()
    if db.vendor != "postgresql":
        return [fetch(sql, params, db) for sql, params in queries]
    with db.wrap_database_errors:
        cursor = _send(db, queries)
        try:
            results = [list(cursor.fetchall())]
            while cursor.nextset():
                results.append(list(cursor.fetchall()))
            return results
        finally:
            cursor.close()


def _send(db: BaseDatabaseWrapper, queries: Sequence[Query]) -> Any:
    """Several statements as one simple query (Django's psycopg cursors bind client-side,
    ClientCursor); their results follow one another (`nextset`). Each statement is rendered on
    its own: psycopg caches the parse of statements with few values, not of one long text.
    Returns the open cursor (the caller closes it)."""
    cursor = db.connection.cursor()
    try:
        cursor.execute("; ".join(cursor.mogrify(sql, params) for sql, params in queries))
    except BaseException:
        cursor.close()
        raise
    return cursor


@contextmanager
def pipeline(*, last: bool = False) -> Iterator[None]:
    """On PostgreSQL, `execute_many` inside this block only renders its statements; they are
    sent together, as one simple query, when the block ends (errors surface there, still as
    Django's). Nothing inside may wait for a statement's result. Elsewhere this changes nothing.

    `last=True` promises that the block ends the work of the outermost transaction: its COMMIT
    then travels with the writes, which saves the commit's own round trip. Django's commit on
    leaving `atomic()` finds the transaction ended and sends nothing (psycopg skips it). A write
    that fails stops the query before the COMMIT, so the transaction is rolled back as usual."""
    db = database()
    if db.vendor != "postgresql" or db.__dict__.get("_loyalty_buffer") is not None:
        yield
        return
    buffer: list[Query] = []
    db.__dict__["_loyalty_buffer"] = buffer
    try:
        yield
    finally:
        db.__dict__["_loyalty_buffer"] = None
    if buffer:
        if last and _outermost(db):
            buffer.append(("COMMIT", ()))
        with db.wrap_database_errors:
            _send(db, buffer).close()


def _outermost(db: BaseDatabaseWrapper) -> bool:
    """Inside exactly one `atomic()` block that will commit (not a test's wrapping transaction)."""
    return (db.in_atomic_block and len(db.atomic_blocks) == 1 and not db.savepoint_ids
            and not db.needs_rollback and not getattr(db.atomic_blocks[0], "_from_testcase", False))


def _statements(sql: str, rows: Sequence[Sequence[Any]]) -> list[Query]:
    """An INSERT as one multi-row statement, others one statement per row."""
    head, values = sql.split(" VALUES ", 1) if sql.startswith("INSERT ") else ("", "")
    if head:
        return [(f"{head} VALUES " + ", ".join([values] * len(rows)), [value for row in rows for value in row])]
    return [(sql, row) for row in rows]


@contextmanager
def snapshot() -> Iterator[None]:
    """Several reads in one read transaction on SQLite: one consistent view, and one read lock on
    the shared WAL index instead of one per statement, which under concurrent requests cost more
    than the statements themselves. Inside a transaction already, or on a server database (where
    each statement is cheap to start and a transaction would cost two more round trips), a no-op.
    Only for reads: a write inside would have to upgrade the lock and may find the snapshot stale."""
    db = database()
    if db.vendor != "sqlite" or not db.get_autocommit() or db.connection.in_transaction:
        yield
        return
    with db.wrap_database_errors:
        db.connection.execute("BEGIN DEFERRED")
    _pinned.db = db  # the statements inside look the connection up once, here
    try:
        yield
    finally:
        _pinned.db = None
        with db.wrap_database_errors:
            db.connection.execute("COMMIT")
