"""Large writes take other routes than small ones (`store.bulk`): on PostgreSQL, from COPY_FROM
rows on, inserts go as one COPY and balance additions as one UPDATE over arrays; elsewhere, and
below that size, one statement per row. Both routes must leave the same books: here a points
expiry for more members than COPY_FROM, then every member's balances against their ledger."""

from __future__ import annotations

from loyalty.services.members import register_many
from loyalty.services.points import expire_points
from loyalty.store.bulk import COPY_FROM
from loyalty.store.models import LedgerEntry, Member, PointsLot
from tests.conftest import at
from tests.service.support import ledger_problems_by_member, pay

MONDAY = at("2027-01-04 10:00")
AFTER_EXPIRY = at("2028-01-01 00:00")  # the default ruleset's lots expire at the year's end


def test_an_expiry_larger_than_copy_from_keeps_every_members_books(default_rules, clock):
    names = [f"m{index:03d}" for index in range(COPY_FROM + 20)]
    register_many(dict.fromkeys(names, MONDAY), clock=clock)
    for index, name in enumerate(names):
        pay(f"o{index}", name, MONDAY, f"{100 + index}.00", clock)
    clock.advance(days=400)

    expired = expire_points(AFTER_EXPIRY, clock=clock)

    assert expired == sum(100 + index for index in range(len(names)))  # a point per yuan
    assert not PointsLot.objects.filter(remaining__gt=0).exists()
    assert LedgerEntry.objects.filter(source="expiry").count() == len(names)
    assert set(Member.objects.values_list("points_balance", flat=True)) == {0}
    assert all(problems == [] for problems in ledger_problems_by_member().values())
    assert expire_points(AFTER_EXPIRY, clock=clock) == 0  # and again: nothing left to expire
