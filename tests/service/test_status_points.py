"""The status read sums a member's spendable points in SQL (`sql.member_for_status`); the rules
engine's `spendable_balance` over the same lots is the reference. Instants fall on, just before and
just after the lots' availability and expiry, where `<=` against `<` would show."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loyalty.domain.points import Lot, spendable_balance
from loyalty.services.members import register_member
from loyalty.store import sql
from loyalty.store.models import PointsLot
from tests.conftest import at

START = at("2027-01-04 10:00")
OFFSETS = st.integers(min_value=0, max_value=40).map(lambda hours: timedelta(hours=hours))
TINY = st.sampled_from([timedelta(0), timedelta(microseconds=1), -timedelta(microseconds=1)])

lots = st.lists(st.tuples(st.integers(min_value=0, max_value=500), OFFSETS, OFFSETS,
                          st.one_of(st.none(), OFFSETS)), max_size=6)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=lots, pick=st.integers(min_value=0, max_value=20), nudge=TINY)
def test_the_sql_sum_of_spendable_points_equals_the_rules_engine(default_rules, rows, pick, nudge):
    PointsLot.objects.all().delete()
    member = register_member("m1").member
    stored = []
    for index, (remaining, available, expiry, lifetime) in enumerate(rows):
        available_at = START + available
        expires_at = None if lifetime is None else available_at + expiry
        lot = PointsLot.objects.create(member=member, key=f"k{index}", source="order", reference=f"o{index}",
                                       points=max(remaining, 1), remaining=remaining, earned_at=START,
                                       available_at=available_at, expires_at=expires_at)
        stored.append(Lot(lot.id, remaining, START, available_at, expires_at))
    instants = [START] + [lot.available_at for lot in stored] + [lot.expires_at for lot in stored if lot.expires_at]
    as_of = instants[pick % len(instants)] + nudge
    row = sql.member_for_status("m1", as_of)
    assert row is not None
    assert row.points_spendable == spendable_balance(stored, as_of)
