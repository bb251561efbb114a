"""The outbox: what the platform will hear about, written in the same transaction as the change.

An event exists if and only if its change committed: `emit` inserts into the caller's
transaction and never commits on its own; the webhook dispatcher (`services/webhooks.py`)
delivers it later. Emitting is idempotent by key, per type: the changes that emit are
idempotent themselves, and a second emit of the same (type, key) writes nothing.

The body is the exact JSON text every delivery sends and signs, canonical (sorted keys, no
spaces, ASCII only), e.g.:

    {"created_at":"2027-01-04T01:00:00Z","data":{"actor":"ops:li","adjustment_id":"a1",
     "delta":50,"member":"m1","reason":"goodwill"},"id":"evt_5f0c…","type":"points.adjusted"}

Money goes in as `Decimal` (or a decimal string) and comes out a decimal string; a float is
refused. Datetimes come out ISO 8601 in UTC with a `Z`.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from django.db import connection

from loyalty.domain.errors import InvalidInput
from loyalty.store.bulk import insert_rows
from loyalty.store.models import WEBHOOK_EVENTS, OutboxEvent

OUTBOX_FIELDS = ("member", "event_id", "key", "type", "body", "created_at")
KEY = OUTBOX_FIELDS.index("key")
LOOKUP_CHUNK = 500  # keys per `IN (...)` when looking for events already emitted


@dataclass(frozen=True)
class Emission:
    """One event to emit: `key` names the change (its own idempotency key or client id)."""

    member_id: int
    type: str
    key: str
    data: Mapping[str, Any]
    at: datetime
    plain: bool = False  # `data` holds JSON's own types only (times as `utc_text`): not converted again


def emit(member_id: int, type: str, key: str, data: Mapping[str, Any], at: datetime) -> int:
    """Emit one event in the caller's transaction; answers 1, or 0 when it was emitted before."""
    return emit_many([Emission(member_id, type, key, data, at)])


def emit_many(emissions: Iterable[Emission], *, new: bool = False) -> int:
    """Emit events set-based in the caller's transaction; answers how many rows were written.
    `new=True` skips looking for events emitted before: for a caller that has just written, in
    this transaction, a row whose UNIQUE key names each event's change (a tier change, a grant's
    coupons), so none can exist. Were one there all the same, the outbox's own UNIQUE key would
    refuse it and roll the change back with it: never a second event."""
    return emit_rows(event_rows(emissions), new=new)


def event_rows(emissions: Iterable[Emission]) -> list[tuple[Any, ...]]:
    """The outbox rows of these events, one per (type, key), bodies written: no database, so a
    batch job can build them while the previous batch is written (`services.overlap`)."""
    fresh: dict[str, Emission] = {}
    for emission in emissions:
        if emission.type not in WEBHOOK_EVENTS:
            raise InvalidInput(f"unknown event type {emission.type!r}; one of {', '.join(WEBHOOK_EVENTS)}",
                               field="type")
        fresh.setdefault(stored_key(emission.type, emission.key), emission)
    times: dict[datetime, str] = {}
    return [_row(key, emission, times) for key, emission in fresh.items()]


def emit_rows(rows: list[tuple[Any, ...]], *, new: bool = False) -> int:
    """Write rows from `event_rows` in the caller's transaction (`emit_many`'s `new` likewise)."""
    # IMPORTANT: the event must commit or roll back with its change, so it never commits alone.
    if not connection.in_atomic_block:
        raise RuntimeError("emit inside the transaction of the change the event describes")
    if not new:
        emitted = _emitted([row[KEY] for row in rows])
        rows = [row for row in rows if row[KEY] not in emitted]
    return insert_rows(OutboxEvent, OUTBOX_FIELDS, rows)


def stored_key(type: str, key: str) -> str:
    """The outbox row's unique key: one event per type per change."""
    return f"{type}:{key}"


def _emitted(keys: list[str]) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(keys), LOOKUP_CHUNK):
        chunk = keys[start:start + LOOKUP_CHUNK]
        found.update(OutboxEvent.objects.filter(key__in=chunk).values_list("key", flat=True))
    return found


def _row(key: str, emission: Emission, times: dict[datetime, str]) -> tuple[Any, ...]:
    event_id = f"evt_{secrets.token_hex(16)}"
    data = emission.data if emission.plain else _plain(emission.data, times)
    body = _dumps({"id": event_id, "type": emission.type, "created_at": _plain(emission.at, times), "data": data})
    return (emission.member_id, event_id, key, emission.type, body, emission.at)


def canonical_json(value: Any) -> str:
    """Sorted keys, no whitespace, ASCII: the same data always gives the same text and bytes."""
    return _dumps(_plain(value, {}))


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def utc_text(moment: datetime) -> str:
    """ISO 8601 in UTC, `Z`-suffixed: 2027-01-04T01:00:00Z."""
    if moment.tzinfo is None:
        raise ValueError("event times must be timezone-aware")
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _plain(value: Any, times: dict[datetime, str]) -> Any:
    """`value` in JSON's own types: Decimal as its string, datetimes as UTC text (each distinct
    one converted once per batch, in `times`), dates as ISO dates. A float is refused: money is
    a decimal string at the edges, and a binary float in a body is a bug, not a rounding."""
    kind = type(value)  # the common kinds first, by exact type: a month end converts millions of values
    if kind is str or kind is int or value is None:
        return value
    if kind is dict:
        return {name: _plain(item, times) for name, item in value.items()}
    if isinstance(value, str | int):
        return value
    if isinstance(value, float):
        raise TypeError("a float is not allowed in an event body; pass money as Decimal")
    if isinstance(value, datetime):
        text = times.get(value)
        if text is None:
            text = times[value] = utc_text(value)
        return text
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict | Mapping):
        return {name: _plain(item, times) for name, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item, times) for item in value]
    raise TypeError(f"{type(value).__name__} is not allowed in an event body")
