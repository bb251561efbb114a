"""Member links: which members were seen with which device, delivery-address hash or client IP.

A batch whose events carry such values calls `lock_values` right after it has locked its members:
it makes sure every value has its `linked_values` row, locks those rows in (kind, value) order
and reads the seats the batch's members already hold. Every writer takes members first, then
values, each in one order, so two batches sharing a device wait for each other instead of both
handing out its next seat. The new links and counts are written with the batch's other rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import groupby

from django.db import connection

from loyalty.store import raw
from loyalty.store.models import LinkedValue, MemberLink

Key = tuple[str, str]  # (kind, value)

VALUES, LINKS = LinkedValue._meta.db_table, MemberLink._meta.db_table
_IF_ABSENT = {
    # IMPORTANT: an existing row is left as it is; a row another batch is inserting is waited for.
    "mysql": " ON DUPLICATE KEY UPDATE members = members",
}


def _marks(count: int) -> str:
    return ", ".join(["%s"] * count)


def _where(keys: Sequence[Key], table: str = "") -> tuple[str, list[str]]:
    """`(kind = %s AND value IN (...)) OR ...`: one term per kind, each a range of the unique index."""
    prefix = f"{table}." if table else ""
    terms, params = [], []
    for kind, group in groupby(keys, key=lambda key: key[0]):
        values = [value for _, value in group]
        terms.append(f"({prefix}kind = %s AND {prefix}value IN ({_marks(len(values))}))")
        params += [kind, *values]
    return " OR ".join(terms), params


def lock_values(keys: Sequence[Key], member_ids: Sequence[int]
                ) -> tuple[dict[Key, tuple[int, int]], dict[tuple[Key, int], int]]:
    """Lock the values' rows (creating the missing ones) and read what the batch decides on:
    ({(kind, value): (row id, members seen)}, {((kind, value), member id): seat}). `keys` sorted."""
    if not keys:
        return {}, {}
    tail = _IF_ABSENT.get(connection.vendor, " ON CONFLICT (kind, value) DO NOTHING")
    raw.execute_many(f"INSERT INTO {VALUES} (kind, value, members) VALUES "
                     f"{', '.join(['(%s, %s, 0)'] * len(keys))}{tail}", [[part for key in keys for part in key]])
    where, params = _where(keys)
    lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
    counted = {(kind, value): (int(row_id), int(members)) for row_id, kind, value, members in raw.fetch(
        f"SELECT id, kind, value, members FROM {VALUES} WHERE {where} ORDER BY kind, value{lock}", params)}
    seats: dict[tuple[Key, int], int] = {}
    if member_ids:
        where, params = _where(keys, "l")
        rows = raw.fetch(f"SELECT l.kind, l.value, l.member_id, l.seat FROM {LINKS} l "
                         f"WHERE l.member_id IN ({_marks(len(member_ids))}) AND ({where})", [*member_ids, *params])
        seats = {((kind, value), int(member_id)): int(seat) for kind, value, member_id, seat in rows}
    return {key: counted[key] for key in keys if key in counted}, seats
