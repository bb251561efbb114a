"""Set-based writes for the hot paths: many rows per statement, no model instances.

The ORM's bulk_create builds a model object per row; ingesting tens of thousands of orders a
minute needs plain `executemany`. Columns are named by model field; date and time values are
converted with the backend's own adapters. Each statement's plan (SQL text, adapters,
defaults) is worked out once per database connection, since resolving fields, quoting names
and reaching the thread's connection cost more than the insert itself on the per-order path.
On PostgreSQL, many rows go in as one COPY, and many additions as one UPDATE over arrays: the
server then spends a fraction of what a pipelined statement per row cost it (a month end writes a
million rows).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import models
from django.db.backends.base.base import BaseDatabaseWrapper

from loyalty.store import raw

Row = Sequence[Any]


COPY_FROM = 100  # rows from which an insert on PostgreSQL is sent as COPY


@dataclass(frozen=True)
class _Plan:
    sql: str
    adapters: tuple[tuple[int, Callable[[Any], Any]], ...]  # (column index, adapter)
    defaults: tuple[Any, ...]
    copy: str = ""  # the same insert as COPY ... FROM STDIN (inserts on PostgreSQL)
    arrays: str = ""  # the same additions as one UPDATE ... FROM unnest(arrays) (on PostgreSQL)


def _field(model: type[models.Model], name: str) -> models.Field[Any, Any]:
    field = model._meta.get_field(name)
    assert isinstance(field, models.Field)
    return field


def _adapter(db: BaseDatabaseWrapper, field: models.Field[Any, Any]) -> Callable[[Any], Any] | None:
    if isinstance(field, models.DateTimeField):
        return raw.sqlite_datetime if db.vendor == "sqlite" else db.ops.adapt_datetimefield_value
    if isinstance(field, models.DateField):
        return db.ops.adapt_datefield_value
    return None


def _plan(kind: str, model: type[models.Model], fields: tuple[str, ...], where: tuple[str, ...] = ()
          ) -> tuple[BaseDatabaseWrapper, _Plan]:
    db = raw.database()
    plans: dict[tuple[Any, ...], _Plan] = db.__dict__.setdefault("_loyalty_plans", {})
    key = (kind, model, fields, where)
    if key not in plans:
        plans[key] = _make_plan(db, kind, model, fields, where)
    return db, plans[key]


def _make_plan(db: BaseDatabaseWrapper, kind: str, model: type[models.Model], fields: tuple[str, ...],
               where: tuple[str, ...]) -> _Plan:
    quote, table = db.ops.quote_name, db.ops.quote_name(model._meta.db_table)
    columns = [_field(model, name) for name in (*fields, *where)]
    names = [quote(f.column) for f in columns]
    defaults: tuple[Any, ...] = ()
    copy = arrays = ""
    if kind == "insert":
        # Fields left out take their model default, as the ORM would give them.
        defaulted = [f for f in model._meta.concrete_fields if f.has_default() and f.name not in fields]
        defaults = tuple(f.get_default() for f in defaulted)
        columns += defaulted
        names += [quote(f.column) for f in defaulted]
        sql = f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join(['%s'] * len(names))})"
        copy = f"COPY {table} ({', '.join(names)}) FROM STDIN" if db.vendor == "postgresql" else ""
    elif kind == "add":
        sql = f"UPDATE {table} SET {', '.join(f'{n} = {n} + %s' for n in names[:len(fields)])} WHERE id = %s"
        if db.vendor == "postgresql":
            added = names[:len(fields)]
            arrays = (f"UPDATE {table} AS t SET {', '.join(f'{n} = t.{n} + v.{n}' for n in added)} "
                      f"FROM unnest({', '.join(['%s::bigint[]'] * (len(added) + 1))}) AS v({', '.join(added)}, id) "
                      f"WHERE t.id = v.id")
    else:
        sets = ", ".join(f"{n} = %s" for n in names[:len(fields)])
        sql = f"UPDATE {table} SET {sets} WHERE {' AND '.join(f'{n} = %s' for n in names[len(fields):])}"
    adapters = tuple((i, a) for i, a in enumerate(_adapter(db, f) for f in columns) if a is not None)
    return _Plan(sql, adapters, defaults, copy, arrays)


def _execute(db: BaseDatabaseWrapper, plan: _Plan, rows: list[Row]) -> None:
    if plan.defaults:
        rows = [(*row, *plan.defaults) for row in rows]
    if plan.adapters:
        rows = _adapted(plan.adapters, rows)
    if len(rows) >= COPY_FROM:
        if plan.copy:
            # Even inside a `raw.pipeline()`, where it runs at once, ahead of the statements
            # gathered so far: the order of inserts within a transaction does not matter on
            # PostgreSQL, whose foreign keys (Django's, DEFERRABLE) are checked at commit.
            raw.copy_rows(plan.copy, rows, db)
            return
        if plan.arrays and db.__dict__.get("_loyalty_buffer") is None:
            # One statement for every member's additions. Callers hold the members' locks already
            # (every posting path locks its members first, in id order), so the order in which
            # this statement reaches the rows cannot deadlock.
            raw.execute_bound(plan.arrays, [list(column) for column in zip(*rows, strict=True)], db)
            return
    raw.execute_many(plan.sql, rows, db)


def _adapted(adapters: Sequence[tuple[int, Callable[[Any], Any]]], rows: list[Row]) -> list[Row]:
    """Rows with date and time values in the backend's form; each distinct value is adapted once
    (an order's entries, lot and items share its times, a batch shares its `recorded_at`)."""
    seen: dict[Any, Any] = {None: None}
    out: list[Row] = []
    for row in rows:
        values = list(row)
        for i, adapt in adapters:
            value = values[i]
            adapted = seen.get(value, seen)
            if adapted is seen:
                adapted = seen[value] = adapt(value)
            values[i] = adapted
        out.append(values)
    return out


def insert_rows(model: type[models.Model], fields: Sequence[str], rows: Iterable[Row]) -> int:
    """INSERT rows (tuples in `fields` order) into `model`'s table. Returns the row count."""
    rows = list(rows)
    if rows:
        _execute(*_plan("insert", model, tuple(fields)), rows)
    return len(rows)


def add_to_columns(model: type[models.Model], fields: Sequence[str], rows: Iterable[Row]) -> None:
    """UPDATE t SET f1 = f1 + %s, ... WHERE id = %s for each (delta1, ..., id) row."""
    rows = list(rows)
    if rows:
        _execute(*_plan("add", model, tuple(fields)), rows)


def update_rows(model: type[models.Model], fields: Sequence[str], where: Sequence[str], rows: Iterable[Row]) -> None:
    """UPDATE t SET f1 = %s, ... WHERE w1 = %s AND ... for each (f-values..., w-values...) row."""
    rows = list(rows)
    if rows:
        _execute(*_plan("set", model, tuple(fields), tuple(where)), rows)
