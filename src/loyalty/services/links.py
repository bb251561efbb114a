"""Seats on shared devices and addresses, for the order and action batches (docs/abuse.md).

A batch reads the links of its events' values once, under lock, after its members
(`store/links.py: lock_values`); each event then takes its member's seat on every value it
carries (an existing seat, or the next one), and the new links and counts are written with the
batch's other rows. A batch whose events carry no device, address or IP sends nothing more.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import datetime

from loyalty.domain.events import Origin
from loyalty.store.bulk import add_to_columns, insert_rows
from loyalty.store.links import Key, lock_values
from loyalty.store.models import LinkedValue, MemberLink

LINK_FIELDS = ("member", "kind", "value", "seat", "first_seen_at")


class Links:
    def __init__(self) -> None:
        self.counted: dict[Key, tuple[int, int]] = {}  # (kind, value) -> (row id, members seen)
        self.seats: dict[tuple[Key, int], int] = {}  # ((kind, value), member id) -> seat
        self.new_links: list[tuple[int, str, str, int, datetime]] = []
        self.added: Counter[int] = Counter()  # linked_values row id -> members added by this batch

    def load(self, origins: Iterable[Origin], member_ids: Sequence[int]) -> None:
        """Lock the values the events carry and read the members' seats on them (nothing if none)."""
        keys = sorted({key for origin in origins for key in origin.links()})
        if keys:
            self.counted, self.seats = lock_values(keys, sorted(member_ids))

    def take_seats(self, member_id: int, origin: Origin, seen_at: datetime) -> dict[str, int]:
        """The member's seat on each value the event carries, by kind; a member seen with a value
        for the first time takes the next seat on it (and is linked to it)."""
        seats: dict[str, int] = {}
        for key in origin.links():
            seat = self.seats.get((key, member_id))
            if seat is None:
                row_id, members = self.counted[key]
                seat = members + 1
                self.counted[key] = (row_id, seat)
                self.seats[(key, member_id)] = seat
                self.new_links.append((member_id, key[0], key[1], seat, seen_at))
                self.added[row_id] += 1
            seats[key[0]] = seat
        return seats

    def flush(self) -> None:
        insert_rows(MemberLink, LINK_FIELDS, self.new_links)
        add_to_columns(LinkedValue, ("members",), [(added, row_id) for row_id, added in sorted(self.added.items())])
        self.new_links, self.added = [], Counter()
