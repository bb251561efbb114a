"""Set-based writes for the hot paths: many rows per statement, no model instances.

The ORM's bulk_create builds a model object per row; ingesting 60,000 orders a minute needs
plain `executemany`. Columns are named by model field, values are converted once per column
with the backend's own adapters, so SQLite, PostgreSQL and MariaDB all get what they expect.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from django.db import connection, models

Row = Sequence[Any]


def _field(model: type[models.Model], name: str) -> models.Field[Any, Any]:
    field = model._meta.get_field(name)
    assert isinstance(field, models.Field)
    return field


def _column(model: type[models.Model], name: str) -> str:
    return connection.ops.quote_name(_field(model, name).column)


def _sqlite_datetime(value: datetime) -> str:
    # The text Django's SQLite backend stores for an aware datetime (naive UTC, str() form),
    # without its per-value settings lookups: this runs for millions of values on import.
    return str(value.astimezone(UTC).replace(tzinfo=None))


def _adapter(field: models.Field[Any, Any]) -> Callable[[Any], Any] | None:
    ops = connection.ops
    if isinstance(field, models.DateTimeField):
        return _sqlite_datetime if connection.vendor == "sqlite" else ops.adapt_datetimefield_value
    if isinstance(field, models.DateField):
        return ops.adapt_datefield_value
    return None


def insert_rows(model: type[models.Model], fields: Sequence[str], rows: Iterable[Row]) -> int:
    """INSERT rows (tuples in `fields` order) into `model`'s table. Returns the row count."""
    rows = list(rows)
    if not rows:
        return 0
    meta = model._meta
    columns = [_field(model, name) for name in fields]
    # Fields left out take their model default, as the ORM would give them.
    defaulted = [f for f in meta.concrete_fields if f.has_default() and f.name not in fields]
    defaults = tuple(f.get_default() for f in defaulted)
    columns += defaulted
    adapters = [_adapter(field) for field in columns]
    if any(adapters) or defaults:
        rows = [
            tuple(adapt(value) if adapt and value is not None else value
                  for adapt, value in zip(adapters, (*row, *defaults), strict=True))
            for row in rows
        ]
    names = ", ".join(connection.ops.quote_name(field.column) for field in columns)
    marks = ", ".join(["%s"] * len(columns))
    table = connection.ops.quote_name(meta.db_table)
    with connection.cursor() as cursor:
        cursor.executemany(f"INSERT INTO {table} ({names}) VALUES ({marks})", rows)
    return len(rows)


def add_to_columns(model: type[models.Model], fields: Sequence[str], rows: Iterable[Row]) -> None:
    """UPDATE t SET f1 = f1 + %s, ... WHERE id = %s for each (delta1, ..., id) row."""
    rows = list(rows)
    if not rows:
        return
    meta = model._meta
    quote = connection.ops.quote_name
    sets = ", ".join(f"{_column(model, f)} = {_column(model, f)} + %s" for f in fields)
    with connection.cursor() as cursor:
        cursor.executemany(f"UPDATE {quote(meta.db_table)} SET {sets} WHERE id = %s", rows)


def update_rows(model: type[models.Model], fields: Sequence[str], where: Sequence[str], rows: Iterable[Row]) -> None:
    """UPDATE t SET f1 = %s, ... WHERE w1 = %s AND ... for each (f-values..., w-values...) row."""
    rows = list(rows)
    if not rows:
        return
    meta = model._meta
    quote = connection.ops.quote_name
    columns = [_field(model, name) for name in (*fields, *where)]
    adapters = [_adapter(field) for field in columns]
    rows = [tuple(adapt(v) if adapt and v is not None else v for adapt, v in zip(adapters, row, strict=True))
            for row in rows]
    sets = ", ".join(f"{_column(model, f)} = %s" for f in fields)
    conditions = " AND ".join(f"{_column(model, w)} = %s" for w in where)
    with connection.cursor() as cursor:
        cursor.executemany(f"UPDATE {quote(meta.db_table)} SET {sets} WHERE {conditions}", rows)
