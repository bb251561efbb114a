"""Statements sent straight to the driver, inside Django's connection and transaction.

Django's cursor wrapper rewrites every SQL text for SQLite (a regex per execute) and runs its
execute wrappers; on the per-order path that costs as much as the statement. Here the text is
rewritten once and cached, and driver errors are still raised as Django's (IntegrityError…).

On PostgreSQL, `pipeline()` and `fetch_all()` send several statements in one round trip (one
simple query): the server still runs them one after the other, in order, so a read sent after
a `FOR UPDATE` sees what committed before the lock was granted.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.backends.base.base import BaseDatabaseWrapper


@lru_cache(maxsize=512)
def _native(sql: str, vendor: str) -> str:
    """Our statements use `%s`; SQLite's driver wants `?`."""
    return sql.replace("%s", "?") if vendor == "sqlite" else sql


def database() -> BaseDatabaseWrapper:
    """This thread's connection to the default database, opened if it is not yet."""
    db = connections[DEFAULT_DB_ALIAS]
    if db.connection is None:
        db.ensure_connection()
    return db


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
        buffer.extend(_render(db, sql, rows))
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


Query = tuple[str, Sequence[Any]]


def fetch_all(queries: Sequence[Query]) -> list[list[tuple[Any, ...]]]:
    """The rows of several queries, in order; one round trip on PostgreSQL."""
    db = database()
    if db.vendor != "postgresql":
        return [fetch(sql, params, db) for sql, params in queries]
    with db.wrap_database_errors:
        cursor = db.connection.cursor()
        try:
            # Django's psycopg cursors bind client-side (ClientCursor), so several statements,
            # each rendered with its own values, go as one simple query; their results follow
            # one another (`nextset`).
            cursor.execute("; ".join(cursor.mogrify(sql, params) for sql, params in queries))
            results = [list(cursor.fetchall())]
            while cursor.nextset():
                results.append(list(cursor.fetchall()))
            return results
        finally:
            cursor.close()


@contextmanager
def pipeline() -> Iterator[None]:
    """On PostgreSQL, `execute_many` inside this block only renders its statements; they are
    sent together, as one simple query, when the block ends (errors surface there, still as
    Django's). Nothing inside may wait for a statement's result. Elsewhere this changes nothing."""
    db = database()
    if db.vendor != "postgresql" or db.__dict__.get("_loyalty_buffer") is not None:
        yield
        return
    buffer: list[str] = []
    db.__dict__["_loyalty_buffer"] = buffer
    try:
        yield
    finally:
        db.__dict__["_loyalty_buffer"] = None
    if buffer:
        with db.wrap_database_errors:
            cursor = db.connection.cursor()
            try:
                cursor.execute("; ".join(buffer))
            finally:
                cursor.close()


def _render(db: BaseDatabaseWrapper, sql: str, rows: Sequence[Sequence[Any]]) -> list[str]:
    """Statements with their values in: an INSERT as one multi-row statement, others one per row."""
    cursor = db.connection.cursor()
    try:
        head, values = sql.split(" VALUES ", 1) if sql.startswith("INSERT ") else ("", "")
        if head:
            return [f"{head} VALUES " + ", ".join(cursor.mogrify(values, row) for row in rows)]
        return [cursor.mogrify(sql, row) for row in rows]
    finally:
        cursor.close()
