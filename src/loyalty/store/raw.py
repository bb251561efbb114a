"""Statements sent straight to the driver, inside Django's connection and transaction.

Django's cursor wrapper rewrites every SQL text for SQLite (a regex per execute) and runs its
execute wrappers; on the per-order path that costs as much as the statement. Here the text is
rewritten once and cached, and driver errors are still raised as Django's (IntegrityError…).

On PostgreSQL, `pipeline()` and `fetch_all()` send several statements in one round trip
(psycopg's pipeline mode): the server still runs them one after the other, in order, so a
read sent after a `FOR UPDATE` sees what committed before the lock was granted.
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
    with db.wrap_database_errors, db.connection.pipeline():
        cursors = [db.connection.cursor() for _ in queries]
        for cursor, (sql, params) in zip(cursors, queries, strict=True):
            cursor.execute(sql, params)
    try:
        return [list(cursor.fetchall()) for cursor in cursors]
    finally:
        for cursor in cursors:
            cursor.close()


@contextmanager
def pipeline() -> Iterator[None]:
    """Statements sent inside share one round trip on PostgreSQL (errors surface at the end,
    still as Django's); elsewhere this changes nothing."""
    db = database()
    if db.vendor != "postgresql":
        yield
        return
    with db.wrap_database_errors, db.connection.pipeline():
        yield
