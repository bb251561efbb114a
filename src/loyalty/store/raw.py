"""Statements sent straight to the driver, inside Django's connection and transaction.

Django's cursor wrapper rewrites every SQL text for SQLite (a regex per execute) and runs its
execute wrappers; on the per-order path that costs as much as the statement. Here the text is
rewritten once and cached, and driver errors are still raised as Django's (IntegrityError…).
"""

from __future__ import annotations

from collections.abc import Sequence
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
            cursor.executemany(_native(sql, db.vendor), rows)
        finally:
            cursor.close()
