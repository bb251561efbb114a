from dataclasses import replace

import pytest

from loyalty.domain.errors import Conflict, InvalidInput, NotFound, Refused
from loyalty.services.members import register_member
from loyalty.services.orders import record_orders
from loyalty.services.points import redeem_points
from loyalty.services.refunds import record_refund, record_refunds
from loyalty.store.models import LedgerEntry, Order, PointsDebt, PointsLot, Refund
from tests.conftest import at
from tests.service.support import ledger_problems, member, order_event, pay, refund, refund_event, snapshot

MONDAY = at("2027-01-04 10:00")
TUESDAY = at("2027-01-05 10:00")


@pytest.fixture
def m1(default_rules, clock):
    return register_member("m1", clock=clock).member


def test_a_partial_refund_takes_back_growth_and_points_in_proportion(m1, clock):
    pay("o1", "m1", MONDAY, "400", clock)  # 400 + 50 bonus growth, 400 points
    outcome = refund("r1", "o1", "100", TUESDAY, clock)
    assert (outcome.growth_reversed, outcome.points_reversed) == (100, 100)
    assert (outcome.points_debt_created, outcome.points_written_off, outcome.replayed) == (0, 0, False)
    m = member("m1")
    assert (m.growth_balance, m.points_balance, m.refunded_fen) == (350, 300, 10000)
    order = Order.objects.get(order_id="o1")
    assert (order.refunded_fen, order.growth_reversed, order.points_reversed) == (10000, 100, 100)
    assert PointsLot.objects.get(key="order:o1:points").remaining == 300
    assert ledger_problems("m1") == []


def test_refund_entries_point_at_the_order_entries_they_reverse(m1, clock):
    pay("o1", "m1", MONDAY, "400", clock)
    refund("r1", "o1", "100", TUESDAY, clock)
    originals = dict(LedgerEntry.objects.filter(source="order").values_list("ledger", "id"))
    reversals = LedgerEntry.objects.filter(source="refund")
    assert {(e.idempotency_key, e.delta, e.reverses_id, e.reference) for e in reversals} == {
        ("refund:r1:growth", -100, originals["growth"], "r1"),
        ("refund:r1:points", -100, originals["points"], "r1"),
    }


def test_partial_refunds_that_add_up_to_the_whole_return_growth_to_its_prior_value(m1, clock):
    pay("o0", "m1", MONDAY, "10", clock)
    prior = (member("m1").growth_balance, member("m1").points_balance)
    pay("o1", "m1", MONDAY, "333.33", clock)  # 333 + 50 growth, 333 points
    outcomes = [refund(f"r{i}", "o1", "111.11", TUESDAY, clock) for i in range(3)]
    assert sum(o.growth_reversed for o in outcomes) == 383
    assert sum(o.points_reversed for o in outcomes) == 333
    assert (member("m1").growth_balance, member("m1").points_balance) == prior
    assert ledger_problems("m1") == []


def test_uneven_partial_refunds_never_take_back_more_than_was_awarded(m1, clock):
    pay("o1", "m1", at("2027-01-02 10:00"), "0.07", clock)  # Saturday: floor(0.07 × 2) = 0 growth
    pay("o2", "m1", at("2027-01-02 10:00"), "9.99", clock)  # floor(19.98) = 19 growth, 9 points
    taken = [refund(f"r{i}", "o2", amount, TUESDAY, clock) for i, amount in enumerate(["3.33", "3.33", "3.33"])]
    assert [t.growth_reversed for t in taken] == [6, 6, 7]
    assert [t.points_reversed for t in taken] == [3, 3, 3]
    assert member("m1").growth_balance == 0


def test_a_refund_that_keeps_less_than_300_takes_back_the_bonus(m1, clock):
    pay("o1", "m1", MONDAY, "400", clock)
    assert refund("r1", "o1", "50", TUESDAY, clock).growth_reversed == 50  # 350 kept: bonus stays
    assert refund("r2", "o1", "60", TUESDAY, clock).growth_reversed == 60 + 50  # 290 kept: bonus goes
    assert refund("r3", "o1", "290", TUESDAY, clock).growth_reversed == 290
    assert member("m1").growth_balance == 0


def test_a_refund_keeping_exactly_300_keeps_the_bonus(m1, clock):
    pay("o1", "m1", MONDAY, "400", clock)
    assert refund("r1", "o1", "100", TUESDAY, clock).growth_reversed == 100
    assert member("m1").growth_balance == 350


def test_a_refund_uses_the_rules_that_awarded_the_order(m1, clock, publish):
    pay("o1", "m1", MONDAY, "400", clock)
    publish("default", effective_from=at("2027-01-05 00:00"),
            growth={"large_order_bonus": {"min_amount": "500", "growth": 80}})
    assert refund("r1", "o1", "50", TUESDAY, clock).growth_reversed == 50  # 350 ≥ 300 under version 1


def test_refunding_more_than_was_paid_is_refused_and_writes_nothing(m1, clock):
    pay("o1", "m1", MONDAY, "100", clock)
    before = snapshot()
    with pytest.raises(Refused) as caught:
        refund("r1", "o1", "100.01", TUESDAY, clock)
    assert (caught.value.code, caught.value.field) == ("refund_exceeds_paid", "amount")
    assert snapshot() == before


def test_refunding_more_than_is_left_after_a_partial_refund_is_refused(m1, clock):
    pay("o1", "m1", MONDAY, "100", clock)
    refund("r1", "o1", "60", TUESDAY, clock)
    before = snapshot()
    with pytest.raises(Refused) as caught:
        refund("r2", "o1", "40.01", TUESDAY, clock)
    assert caught.value.code == "refund_exceeds_paid"
    assert snapshot() == before
    assert refund("r3", "o1", "40", TUESDAY, clock).growth_reversed == 40


def test_a_refund_of_an_unknown_order_is_not_found_and_writes_nothing(m1, clock):
    before = snapshot()
    with pytest.raises(NotFound) as caught:
        refund("r1", "nope", "1", TUESDAY, clock)
    assert (caught.value.code, caught.value.field) == ("unknown_order", "order_id")
    assert snapshot() == before


def test_a_second_refund_after_a_full_refund_is_refused(m1, clock):
    pay("o1", "m1", MONDAY, "100", clock)
    refund("r1", "o1", "100", TUESDAY, clock)
    before = snapshot()
    with pytest.raises(Refused) as caught:
        refund("r2", "o1", "0.01", TUESDAY, clock)
    assert caught.value.code == "refund_exceeds_paid"
    assert snapshot() == before


def test_a_refund_id_is_not_an_order_that_can_be_refunded(m1, clock):
    pay("o1", "m1", MONDAY, "100", clock)
    refund("r1", "o1", "50", TUESDAY, clock)
    before = snapshot()
    with pytest.raises(NotFound) as caught:
        refund("r2", "r1", "10", TUESDAY, clock)
    assert caught.value.code == "unknown_order"
    assert snapshot() == before


def test_a_refund_before_the_order_was_paid_is_refused_naming_refunded_at(m1, clock):
    pay("o1", "m1", MONDAY, "100", clock)
    before = snapshot()
    with pytest.raises(InvalidInput) as caught:
        refund("r1", "o1", "10", at("2027-01-04 09:59"), clock)
    assert caught.value.field == "refunded_at"
    assert snapshot() == before


def test_a_refund_at_the_moment_of_payment_is_accepted(m1, clock):
    pay("o1", "m1", MONDAY, "100", clock)
    assert refund("r1", "o1", "100", MONDAY, clock).growth_reversed == 100


def test_a_replayed_refund_returns_the_first_result_and_changes_nothing(m1, clock):
    pay("o1", "m1", MONDAY, "400", clock)
    first = refund("r1", "o1", "150", TUESDAY, clock)
    before = snapshot()
    again = refund("r1", "o1", "150", TUESDAY, clock)
    assert again == replace(first, replayed=True)
    assert snapshot() == before


def test_a_replayed_full_refund_is_answered_not_refused(m1, clock):
    pay("o1", "m1", MONDAY, "100", clock)
    first = refund("r1", "o1", "100", TUESDAY, clock)
    assert refund("r1", "o1", "100", TUESDAY, clock) == replace(first, replayed=True)


@pytest.mark.parametrize(("order_id", "amount", "when"), [
    ("o1", "151", TUESDAY), ("o2", "150", TUESDAY), ("o1", "150", at("2027-01-05 10:01"))])
def test_a_replayed_refund_with_a_different_payload_is_a_conflict_and_writes_nothing(m1, clock, order_id,
                                                                                     amount, when):
    pay("o1", "m1", MONDAY, "400", clock)
    pay("o2", "m1", MONDAY, "400", clock)
    refund("r1", "o1", "150", TUESDAY, clock)
    before = snapshot()
    with pytest.raises(Conflict) as caught:
        record_refund(refund_event("r1", order_id, amount, when), clock=clock)
    assert (caught.value.code, caught.value.field) == ("exists_with_different_payload", "refund_id")
    assert snapshot() == before


def test_a_refund_claws_back_its_own_pending_lot_first(m1, clock):
    pay("o1", "m1", MONDAY, "100", clock)
    pay("o2", "m1", TUESDAY, "100", clock)
    refund("r1", "o2", "100", TUESDAY, clock)
    lots = dict(PointsLot.objects.values_list("key", "remaining"))
    assert lots == {"order:o1:points": 100, "order:o2:points": 0}


def test_a_refund_after_its_own_lot_was_spent_takes_from_other_lots(m1, clock):
    pay("o1", "m1", MONDAY, "100", clock)
    pay("o2", "m1", TUESDAY, "100", clock)
    clock.advance(days=10)
    redeem_points("m1", 100, redemption_id="x1", clock=clock)  # the older lot goes first
    outcome = refund("r1", "o1", "100", clock.now(), clock)
    assert (outcome.points_reversed, outcome.points_debt_created) == (100, 0)
    assert dict(PointsLot.objects.values_list("key", "remaining")) == {
        "order:o1:points": 0, "order:o2:points": 0}
    assert (member("m1").points_balance, member("m1").points_debt) == (0, 0)
    assert ledger_problems("m1") == []


def test_spent_points_become_a_debt_that_the_next_award_pays_first(m1, clock):
    pay("o1", "m1", MONDAY, "100", clock)
    clock.advance(days=10)
    redeem_points("m1", 80, redemption_id="x1", clock=clock)
    outcome = refund("r1", "o1", "100", clock.now(), clock)
    assert (outcome.points_reversed, outcome.points_debt_created, outcome.points_written_off) == (100, 80, 0)
    m = member("m1")
    assert (m.points_balance, m.points_debt) == (-80, 80)
    debt = PointsDebt.objects.get()
    assert (debt.key, debt.reference, debt.amount, debt.remaining) == ("refund:r1:debt", "r1", 80, 80)
    assert ledger_problems("m1") == []

    pay("o2", "m1", clock.now(), "200", clock)
    assert PointsDebt.objects.get().remaining == 0
    assert PointsLot.objects.get(key="order:o2:points").remaining == 120
    assert PointsLot.objects.get(key="order:o2:points").points == 120
    m = member("m1")
    assert (m.points_balance, m.points_debt) == (120, 0)
    assert ledger_problems("m1") == []


def test_an_award_smaller_than_the_debt_pays_part_of_it_and_makes_no_lot(m1, clock):
    pay("o1", "m1", MONDAY, "100", clock)
    clock.advance(days=10)
    redeem_points("m1", 100, redemption_id="x1", clock=clock)
    refund("r1", "o1", "100", clock.now(), clock)
    pay("o2", "m1", clock.now(), "30", clock)
    assert PointsDebt.objects.get().remaining == 70
    assert not PointsLot.objects.filter(key="order:o2:points").exists()
    assert (member("m1").points_balance, member("m1").points_debt) == (-70, 70)
    assert ledger_problems("m1") == []


def test_under_within_balance_spent_points_are_written_off_and_the_balance_stays_at_zero(publish, clock):
    publish("default", points={"return_policy": "within_balance"})
    register_member("m1", clock=clock)
    pay("o1", "m1", MONDAY, "100", clock)
    clock.advance(days=10)
    redeem_points("m1", 80, redemption_id="x1", clock=clock)
    outcome = refund("r1", "o1", "100", clock.now(), clock)
    assert (outcome.points_reversed, outcome.points_debt_created, outcome.points_written_off) == (100, 0, 80)
    assert Refund.objects.get().points_written_off == 80
    assert LedgerEntry.objects.get(idempotency_key="refund:r1:points").delta == -20
    m = member("m1")
    assert (m.points_balance, m.points_debt) == (0, 0)
    assert not PointsDebt.objects.exists()
    assert ledger_problems("m1") == []

    pay("o2", "m1", clock.now(), "50", clock)
    assert member("m1").points_balance == 50
    assert PointsLot.objects.get(key="order:o2:points").remaining == 50


def test_under_within_balance_unspent_points_are_taken_back_in_full(publish, clock):
    publish("default", points={"return_policy": "within_balance"})
    register_member("m1", clock=clock)
    pay("o1", "m1", MONDAY, "100", clock)
    outcome = refund("r1", "o1", "40", TUESDAY, clock)
    assert (outcome.points_reversed, outcome.points_written_off) == (40, 0)
    assert member("m1").points_balance == 60


def test_two_orders_in_one_batch_pay_a_debt_in_turn(m1, clock):
    pay("o1", "m1", MONDAY, "100", clock)
    clock.advance(days=10)
    redeem_points("m1", 100, redemption_id="x1", clock=clock)
    refund("r1", "o1", "100", clock.now(), clock)
    results = record_orders([order_event("o2", "m1", clock.now(), "60"),
                             order_event("o3", "m1", clock.now(), "60")], clock=clock)
    assert [r.points for r in results] == [60, 60]
    assert dict(PointsLot.objects.filter(key__in=["order:o2:points", "order:o3:points"])
                .values_list("key", "remaining")) == {"order:o3:points": 20}
    assert (member("m1").points_balance, member("m1").points_debt) == (20, 0)
    assert ledger_problems("m1") == []


def test_an_award_pays_the_oldest_debt_first(m1, clock):
    pay("o1", "m1", MONDAY, "100", clock)
    pay("o2", "m1", MONDAY, "50", clock)
    clock.advance(days=10)
    redeem_points("m1", 150, redemption_id="x1", clock=clock)
    refund("r1", "o1", "100", clock.now(), clock)
    refund("r2", "o2", "50", clock.now(), clock)
    pay("o3", "m1", clock.now(), "120", clock)
    assert dict(PointsDebt.objects.values_list("key", "remaining")) == {"refund:r1:debt": 0, "refund:r2:debt": 30}
    assert (member("m1").points_balance, member("m1").points_debt) == (-30, 30)


def test_a_batch_of_refunds_answers_each_event_and_counts_earlier_refunds_in_the_batch(m1, clock):
    pay("o1", "m1", MONDAY, "400", clock)
    events = [
        refund_event("r1", "o1", "100", TUESDAY),
        refund_event("r2", "nope", "1", TUESDAY),
        refund_event("r1", "o1", "100", TUESDAY),
        refund_event("r1", "o1", "101", TUESDAY),
        refund_event("r3", "o1", "300.01", TUESDAY),
        refund_event("r4", "o1", "1", at("2027-01-04 09:00")),
        refund_event("r5", "o1", "300", TUESDAY),
    ]
    results = record_refunds(events, clock=clock)
    assert [getattr(r, "code", None) or (r.growth_reversed, r.replayed) for r in results] == [
        (100, False), "unknown_order", (100, True), "exists_with_different_payload", "refund_exceeds_paid",
        "invalid_input", (350, False)]
    assert results[5].field == "refunded_at"
    assert sorted(Refund.objects.values_list("refund_id", flat=True)) == ["r1", "r5"]
    assert Order.objects.get(order_id="o1").refunded_fen == 40000
    assert (member("m1").growth_balance, member("m1").points_balance) == (0, 0)
    assert ledger_problems("m1") == []


def test_a_refund_after_the_points_expired_does_not_take_them_a_second_time(m1, clock):
    from loyalty.services.points import expire_points

    pay("late", "m1", at("2026-12-20 10:00"), "100", clock)  # 100 points expiring 2027-01-01 00:00
    assert expire_points(at("2027-01-01 00:00"), clock=clock) == 100
    outcome = refund("r-late", "late", "100", at("2027-01-03 10:00"), clock)
    assert (outcome.points_reversed, outcome.points_debt_created) == (0, 0)
    m = member("m1")
    assert (m.points_balance, m.points_debt, m.growth_balance) == (0, 0, 0)
    assert ledger_problems("m1") == []


def test_a_partly_spent_lot_that_expired_claws_back_only_what_was_spent(m1, clock):
    from loyalty.services.points import expire_points

    pay("spent", "m1", at("2026-12-01 10:00"), "100", clock)  # 100 points, spendable from 12-08
    redeem_points("m1", 30, redemption_id="rd-1", clock=type(clock)(at("2026-12-10 10:00")))
    expire_points(at("2027-01-01 00:00"), clock=clock)  # the other 70 expire
    outcome = refund("r-spent", "spent", "100", at("2027-01-03 10:00"), clock)
    assert (outcome.points_reversed, outcome.points_debt_created) == (30, 30)
    assert (member("m1").points_balance, member("m1").points_debt) == (-30, 30)
    assert ledger_problems("m1") == []
