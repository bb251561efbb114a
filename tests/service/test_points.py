from dataclasses import replace

import pytest

from loyalty.domain.errors import Conflict, InvalidInput, NotFound, Refused
from loyalty.services.adjustments import adjust
from loyalty.services.members import register_member
from loyalty.services.points import expire_points, redeem_points
from loyalty.store.models import LedgerEntry, PointsLot, Redemption
from tests.conftest import at
from tests.service.support import ledger_problems, member, pay, snapshot

MONDAY = at("2027-01-04 10:00")


@pytest.fixture
def m1(default_rules, clock):
    return register_member("m1", clock=clock).member


def remaining() -> dict[str, int]:
    return dict(PointsLot.objects.values_list("key", "remaining"))


def test_redeeming_draws_the_soonest_expiring_lot_first_not_the_oldest(publish, clock):
    publish("default")  # v1: lots expire at the end of the year
    publish("default", effective_from=at("2027-01-05 00:00"),
            points={"expiry": {"policy": "days_after_earning", "days": 30}})
    register_member("m1", clock=clock)
    pay("old", "m1", MONDAY, "100", clock)  # expires 2028-01-01
    pay("new", "m1", at("2027-01-05 10:00"), "100", clock)  # expires 2027-02-04
    assert PointsLot.objects.get(key="order:new:points").expires_at == at("2027-02-04 10:00")
    clock.advance(days=10)
    redeem_points("m1", 120, redemption_id="x1", clock=clock)
    assert remaining() == {"order:old:points": 80, "order:new:points": 0}
    assert member("m1").points_balance == 80
    assert ledger_problems("m1") == []


def test_lots_that_never_expire_are_spent_last(publish, clock):
    publish("default", points={"expiry": {"policy": "never"}})
    publish("default", effective_from=at("2027-01-05 00:00"))
    register_member("m1", clock=clock)
    pay("forever", "m1", MONDAY, "100", clock)
    pay("yearly", "m1", at("2027-01-05 10:00"), "100", clock)
    clock.advance(days=10)
    redeem_points("m1", 150, redemption_id="x1", clock=clock)
    assert remaining() == {"order:forever:points": 50, "order:yearly:points": 0}


def test_a_redemption_writes_one_keyed_entry_and_a_redemption_row(m1, clock):
    pay("o1", "m1", MONDAY, "100", clock)
    clock.advance(days=8)
    outcome = redeem_points("m1", 40, redemption_id="x1", note="a mug", clock=clock)
    assert (outcome.points, outcome.replayed) == (40, False)
    entry = LedgerEntry.objects.get(source="redemption")
    assert (entry.idempotency_key, entry.delta, entry.occurred_at) == ("redemption:x1", -40, clock.now())
    assert Redemption.objects.get().note == "a mug"
    assert ledger_problems("m1") == []


def test_pending_points_cannot_be_spent_and_nothing_is_written(m1, clock):
    pay("o1", "m1", MONDAY, "100", clock)
    clock.at = at("2027-01-11 09:59")  # one minute before the lot becomes available
    before = snapshot()
    with pytest.raises(Refused) as caught:
        redeem_points("m1", 1, redemption_id="x1", clock=clock)
    assert (caught.value.code, caught.value.field) == ("insufficient_points", "points")
    assert snapshot() == before
    clock.at = at("2027-01-11 10:00")
    assert redeem_points("m1", 100, redemption_id="x1", clock=clock).points == 100


def test_redeeming_more_than_the_spendable_points_is_refused_and_writes_nothing(m1, clock):
    adjust("m1", "points", 30, reason="welcome", actor="ops", adjustment_id="a1", clock=clock)
    pay("o1", "m1", clock.now(), "100", clock)  # pending
    before = snapshot()
    with pytest.raises(Refused) as caught:
        redeem_points("m1", 31, redemption_id="x1", clock=clock)
    assert caught.value.code == "insufficient_points"
    assert snapshot() == before
    assert PointsLot.objects.get(key="adjustment:a1").remaining == 30


def test_an_expired_lot_cannot_be_spent_even_before_the_job_runs(m1, clock):
    pay("o1", "m1", at("2027-12-20 10:00"), "100", clock)
    clock.at = at("2028-01-01 00:00")
    with pytest.raises(Refused):
        redeem_points("m1", 1, redemption_id="x1", clock=clock)


@pytest.mark.parametrize(("points", "redemption_id", "field"), [
    (0, "x1", "points"), (-5, "x1", "points"), (True, "x1", "points"), (2.0, "x1", "points"),
    (5, "", "redemption_id"), (5, "x" * 65, "redemption_id"),
])
def test_a_malformed_redemption_names_the_field_and_writes_nothing(m1, clock, points, redemption_id, field):
    before = snapshot()
    with pytest.raises(InvalidInput) as caught:
        redeem_points("m1", points, redemption_id=redemption_id, clock=clock)
    assert caught.value.field == field
    assert snapshot() == before


def test_a_redemption_for_an_unknown_member_is_not_found(m1, clock):
    with pytest.raises(NotFound) as caught:
        redeem_points("nobody", 5, redemption_id="x1", clock=clock)
    assert caught.value.code == "unknown_member"


def test_a_replayed_redemption_returns_the_first_result_and_changes_nothing(m1, clock):
    adjust("m1", "points", 30, reason="welcome", actor="ops", adjustment_id="a1", clock=clock)
    first = redeem_points("m1", 30, redemption_id="x1", clock=clock)
    before = snapshot()
    assert redeem_points("m1", 30, redemption_id="x1", clock=clock) == replace(first, replayed=True)
    assert snapshot() == before


def test_a_replayed_redemption_with_a_different_payload_is_a_conflict(m1, clock):
    adjust("m1", "points", 30, reason="welcome", actor="ops", adjustment_id="a1", clock=clock)
    redeem_points("m1", 10, redemption_id="x1", clock=clock)
    before = snapshot()
    with pytest.raises(Conflict) as caught:
        redeem_points("m1", 11, redemption_id="x1", clock=clock)
    assert (caught.value.code, caught.value.field) == ("exists_with_different_payload", "redemption_id")
    assert snapshot() == before


def test_expiry_removes_what_is_left_of_due_lots_and_nothing_else(m1, clock):
    pay("o1", "m1", at("2027-03-01 10:00"), "100", clock)
    pay("o2", "m1", at("2028-02-01 10:00"), "70", clock)
    clock.at = at("2027-06-01 10:00")
    redeem_points("m1", 40, redemption_id="x1", clock=clock)
    assert expire_points(at("2027-12-31 23:59"), clock=clock) == 0
    assert expire_points(at("2028-01-01 00:00"), clock=clock) == 60
    assert remaining() == {"order:o1:points": 0, "order:o2:points": 70}
    entry = LedgerEntry.objects.get(source="expiry")
    assert (entry.idempotency_key, entry.delta, entry.occurred_at) == (
        "expiry:order:o1:points", -60, at("2028-01-01 00:00"))
    assert member("m1").points_balance == 70
    assert ledger_problems("m1") == []


def test_running_expiry_again_changes_nothing(m1, clock):
    register_member("m2", clock=clock)
    pay("o1", "m1", MONDAY, "100", clock)
    pay("o2", "m2", MONDAY, "50", clock)
    assert expire_points(at("2028-01-02 00:00"), clock=clock) == 150
    before = snapshot()
    assert expire_points(at("2028-01-02 00:00"), clock=clock) == 0
    assert expire_points(at("2029-01-01 00:00"), clock=clock) == 0
    assert snapshot() == before
    assert ledger_problems("m1") == ledger_problems("m2") == []


def test_expiry_works_through_many_lots_in_chunks(m1, clock):
    for i in range(7):
        pay(f"o{i}", "m1", MONDAY, "10", clock)
    assert expire_points(at("2028-01-01 00:00"), clock=clock, chunk=3) == 70
    assert member("m1").points_balance == 0
    assert LedgerEntry.objects.filter(source="expiry").count() == 7
