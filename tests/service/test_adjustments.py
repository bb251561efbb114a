from dataclasses import replace

import pytest

from loyalty.domain.errors import Conflict, InvalidInput, NotFound, Refused
from loyalty.services.adjustments import adjust
from loyalty.services.members import register_member
from loyalty.services.points import redeem_points
from loyalty.store.models import Adjustment, LedgerEntry, PointsLot
from tests.conftest import at
from tests.service.support import ledger_problems, member, pay, refund, snapshot


@pytest.fixture
def m1(default_rules, clock):
    return register_member("m1", clock=clock).member


def credit(ledger, delta, clock, adjustment_id="a1", reason="goodwill after a late delivery", who="ops:li"):
    return adjust("m1", ledger, delta, reason=reason, actor=who, adjustment_id=adjustment_id, clock=clock)


def test_a_growth_credit_is_an_entry_with_its_reason_and_operator(m1, clock):
    outcome = credit("growth", 120, clock)
    assert (outcome.ledger, outcome.delta, outcome.replayed) == ("growth", 120, False)
    entry = LedgerEntry.objects.get()
    assert (entry.source, entry.reference, entry.idempotency_key, entry.delta) == (
        "adjustment", "a1", "adjustment:a1", 120)
    assert entry.occurred_at == clock.now()
    row = Adjustment.objects.get()
    assert (row.reason, row.actor, row.member_id) == ("goodwill after a late delivery", "ops:li", m1.id)
    assert member("m1").growth_balance == 120


def test_a_points_credit_is_a_lot_spendable_at_once_that_expires_with_the_year(m1, clock):
    credit("points", 50, clock)
    lot = PointsLot.objects.get()
    assert (lot.key, lot.source, lot.points, lot.remaining) == ("adjustment:a1", "adjustment", 50, 50)
    assert lot.available_at == clock.now()
    assert lot.expires_at == at("2028-01-01 00:00")
    assert redeem_points("m1", 50, redemption_id="x1", clock=clock).points == 50
    assert ledger_problems("m1") == []


def test_a_growth_debit_within_the_balance_is_allowed(m1, clock):
    credit("growth", 100, clock)
    credit("growth", -100, clock, adjustment_id="a2")
    assert member("m1").growth_balance == 0


def test_a_points_debit_draws_spendable_lots(m1, clock):
    credit("points", 50, clock)
    credit("points", -30, clock, adjustment_id="a2")
    assert PointsLot.objects.get().remaining == 20
    assert member("m1").points_balance == 20
    assert ledger_problems("m1") == []


@pytest.mark.parametrize("reason", ["", "   "])
def test_an_adjustment_without_a_reason_is_refused_and_writes_nothing(m1, clock, reason):
    before = snapshot()
    with pytest.raises(InvalidInput) as caught:
        credit("growth", 10, clock, reason=reason)
    assert caught.value.field == "reason"
    assert snapshot() == before


@pytest.mark.parametrize(("ledger", "delta", "who", "adjustment_id", "field"), [
    ("coins", 10, "ops:li", "a1", "ledger"),
    ("growth", 0, "ops:li", "a1", "delta"),
    ("growth", True, "ops:li", "a1", "delta"),
    ("points", 1.5, "ops:li", "a1", "delta"),
    ("growth", 10, " ", "a1", "actor"),
    ("growth", 10, "ops:li", "", "adjustment_id"),
    ("growth", 10, "ops:li", "a" * 65, "adjustment_id"),
])
def test_a_malformed_adjustment_names_the_field_and_writes_nothing(m1, clock, ledger, delta, who,
                                                                  adjustment_id, field):
    before = snapshot()
    with pytest.raises(InvalidInput) as caught:
        credit(ledger, delta, clock, adjustment_id=adjustment_id, who=who)
    assert caught.value.field == field
    assert snapshot() == before


def test_a_growth_debit_below_zero_is_refused_and_writes_nothing(m1, clock):
    credit("growth", 10, clock)
    before = snapshot()
    with pytest.raises(Refused) as caught:
        credit("growth", -11, clock, adjustment_id="a2")
    assert (caught.value.code, caught.value.field) == ("insufficient_growth", "delta")
    assert snapshot() == before


def test_a_points_debit_larger_than_the_spendable_points_is_refused_and_writes_nothing(m1, clock):
    credit("points", 10, clock)
    pay("o1", "m1", clock.now(), "100", clock)  # pending for 7 days: not spendable yet
    before = snapshot()
    with pytest.raises(Refused) as caught:
        credit("points", -11, clock, adjustment_id="a2")
    assert (caught.value.code, caught.value.field) == ("insufficient_points", "delta")
    assert snapshot() == before


def test_a_points_credit_pays_an_outstanding_debt_first(m1, clock):
    pay("o1", "m1", at("2027-01-04 10:00"), "100", clock)
    clock.advance(days=10)
    redeem_points("m1", 100, redemption_id="x1", clock=clock)
    refund("r1", "o1", "100", clock.now(), clock)
    credit("points", 150, clock)
    assert PointsLot.objects.get(key="adjustment:a1").remaining == 50
    assert (member("m1").points_balance, member("m1").points_debt) == (50, 0)
    assert ledger_problems("m1") == []


def test_an_adjustment_for_an_unknown_member_is_not_found_and_writes_nothing(m1, clock):
    before = snapshot()
    with pytest.raises(NotFound) as caught:
        adjust("nobody", "growth", 5, reason="why not", actor="ops:li", adjustment_id="a1", clock=clock)
    assert caught.value.code == "unknown_member"
    assert snapshot() == before


def test_a_replayed_adjustment_returns_the_first_result_and_changes_nothing(m1, clock):
    first = credit("points", 30, clock)
    before = snapshot()
    clock.advance(days=1)
    assert credit("points", 30, clock) == replace(first, replayed=True)
    assert snapshot() == before


def test_a_replayed_debit_that_would_now_overdraw_is_still_answered(m1, clock):
    credit("points", 30, clock)
    first = credit("points", -30, clock, adjustment_id="a2")
    assert credit("points", -30, clock, adjustment_id="a2") == replace(first, replayed=True)


@pytest.mark.parametrize("change", [{"delta": 31}, {"ledger": "growth"}, {"reason": "another reason"}])
def test_a_replayed_adjustment_with_a_different_payload_is_a_conflict_and_writes_nothing(m1, clock, change):
    credit("points", 30, clock)
    before = snapshot()
    args = {"ledger": "points", "delta": 30, **change}
    with pytest.raises(Conflict) as caught:
        credit(args.pop("ledger"), args.pop("delta"), clock, **args)
    assert (caught.value.code, caught.value.field) == ("exists_with_different_payload", "adjustment_id")
    assert snapshot() == before
