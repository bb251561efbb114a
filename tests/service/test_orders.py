from dataclasses import replace
from datetime import date, timedelta

import pytest

from loyalty.domain.errors import Conflict, InvalidInput, NotFound
from loyalty.domain.events import parse_order
from loyalty.services.members import register_member
from loyalty.services.orders import record_order, record_orders
from loyalty.store.models import LedgerEntry, Order, OrderItem, PointsLot
from tests.conftest import at
from tests.service.support import ledger_problems, member, order_event, pay, snapshot

MONDAY = at("2027-01-04 10:00")


@pytest.fixture
def m1(default_rules, clock):
    return register_member("m1", clock=clock).member


def test_a_weekday_order_earns_growth_and_points_per_yuan(m1, clock):
    outcome = pay("o1", "m1", MONDAY, "123.45", clock)
    assert (outcome.growth, outcome.points, outcome.replayed) == (123, 123, False)
    assert (member("m1").growth_balance, member("m1").points_balance) == (123, 123)
    assert ledger_problems("m1") == []


def test_a_weekend_order_of_400_with_100_fresh_earns_950_growth(m1, clock):
    items = [{"sku": "a", "category": "fresh", "amount": "100"}, {"sku": "b", "amount": "300"}]
    outcome = pay("o1", "m1", at("2027-01-02 10:00"), "400", clock, items=items)
    assert outcome.growth == 950
    order = Order.objects.get(order_id="o1")
    assert (order.growth_base, order.growth_bonus) == (900, 50)
    assert sorted(OrderItem.objects.values_list("sku", "category", "amount_fen")) == [
        ("a", "fresh", 10000), ("b", "", 30000)]


def test_the_weekend_is_judged_in_shanghai_time(m1, clock):
    # Friday 23:30 UTC is already Saturday 07:30 in Shanghai.
    outcome = pay("o1", "m1", at("2027-01-02 07:30"), "100", clock)
    assert outcome.growth == 200


def test_the_large_order_bonus_starts_at_exactly_300(m1, clock):
    assert pay("o1", "m1", MONDAY, "299.99", clock).growth == 299
    assert pay("o2", "m1", MONDAY, "300", clock).growth == 350


def test_an_order_writes_keyed_entries_and_updates_the_member_totals(m1, clock):
    pay("o1", "m1", MONDAY, "350", clock)
    entries = dict(LedgerEntry.objects.values_list("idempotency_key", "delta"))
    assert entries == {"order:o1:growth": 400, "order:o1:points": 350}
    assert set(LedgerEntry.objects.values_list("source", "reference", "ruleset_version")) == {("order", "o1", 1)}
    m = member("m1")
    assert (m.orders_count, m.paid_fen, m.refunded_fen) == (1, 35000, 0)


def test_an_order_creates_a_pending_lot_that_expires_at_the_end_of_the_year(m1, clock):
    pay("o1", "m1", MONDAY, "100", clock)
    lot = PointsLot.objects.get()
    assert (lot.key, lot.points, lot.remaining) == ("order:o1:points", 100, 100)
    assert lot.earned_at == MONDAY
    assert lot.available_at == MONDAY + timedelta(days=7)
    assert lot.expires_at == at("2028-01-01 00:00")


def test_a_lot_earned_on_new_years_eve_in_shanghai_expires_at_the_end_of_that_year(m1, clock):
    pay("o1", "m1", at("2027-12-31 23:30"), "100", clock)
    assert PointsLot.objects.get().expires_at == at("2028-01-01 00:00")


def test_a_replayed_order_returns_the_first_result_and_changes_nothing(m1, clock):
    first = pay("o1", "m1", MONDAY, "400", clock)
    before = snapshot()
    clock.advance(hours=2)
    again = pay("o1", "m1", MONDAY, "400", clock)
    assert again == replace(first, replayed=True)
    assert snapshot() == before


def test_a_replayed_order_answers_from_its_own_ruleset_version_after_a_new_one(m1, clock, publish):
    first = pay("o1", "m1", MONDAY, "100", clock)
    publish("default", effective_from=at("2027-01-03 00:00"), growth={"per_yuan": 2})
    again = pay("o1", "m1", MONDAY, "100", clock)
    assert (again.growth, again.ruleset_version) == (first.growth, first.ruleset_version)


@pytest.mark.parametrize("change", [
    {"amount": "401"},
    {"paid_at": at("2027-01-04 10:01")},
    {"items": [{"sku": "a", "category": "fresh", "amount": "400"}]},
])
def test_a_replayed_order_with_a_different_payload_is_a_conflict_and_writes_nothing(m1, clock, change):
    pay("o1", "m1", MONDAY, "400", clock)
    before = snapshot()
    args = {"paid_at": MONDAY, "amount": "400", **change}
    with pytest.raises(Conflict) as caught:
        record_order(order_event("o1", "m1", **args), clock=clock)
    assert (caught.value.code, caught.value.field) == ("exists_with_different_payload", "order_id")
    assert snapshot() == before


def test_a_replayed_order_for_another_member_is_a_conflict(m1, clock):
    register_member("m2", clock=clock)
    pay("o1", "m1", MONDAY, "100", clock)
    before = snapshot()
    with pytest.raises(Conflict):
        pay("o1", "m2", MONDAY, "100", clock)
    assert snapshot() == before


def test_an_order_for_an_unknown_member_is_not_found_and_writes_nothing(m1, clock):
    before = snapshot()
    with pytest.raises(NotFound) as caught:
        pay("o1", "nobody", MONDAY, "100", clock)
    assert (caught.value.code, caught.value.field) == ("unknown_member", "member")
    assert snapshot() == before


def test_an_order_paid_before_any_ruleset_is_refused_and_writes_nothing(m1, clock):
    before = snapshot()
    with pytest.raises(NotFound) as caught:
        pay("o1", "m1", at("2019-12-31 23:59"), "100", clock)
    assert caught.value.code == "no_ruleset_in_force"
    assert snapshot() == before


@pytest.mark.parametrize(("raw", "field"), [
    ({"amount": "12.345"}, "amount"),
    ({"amount": "-5"}, "amount"),
    ({"amount": 12.5}, "amount"),
    ({"paid_at": "2027-01-04T10:00:00"}, "paid_at"),
    ({"order_id": "has space"}, "order_id"),
    ({"member": ""}, "member"),
    ({"items": [{"sku": "a", "amount": "50"}]}, "items"),
])
def test_a_malformed_order_names_the_field_and_writes_nothing(m1, clock, raw, field):
    before = snapshot()
    body = {"order_id": "o1", "member": "m1", "paid_at": MONDAY.isoformat(), "amount": "100", **raw}
    with pytest.raises(InvalidInput) as caught:
        record_order(parse_order(body), clock=clock)
    assert caught.value.field == field
    assert snapshot() == before


def test_a_batch_answers_each_event_and_writes_only_the_valid_ones(m1, clock):
    register_member("m2", clock=clock)
    pay("o0", "m1", MONDAY, "10", clock)
    events = [
        order_event("o1", "m1", MONDAY, "100"),
        order_event("o2", "nobody", MONDAY, "100"),
        order_event("o1", "m1", MONDAY, "100"),
        order_event("o1", "m1", MONDAY, "999"),
        order_event("o0", "m1", MONDAY, "10"),
        order_event("o0", "m1", MONDAY, "11"),
        order_event("o3", "m2", MONDAY, "300"),
    ]
    results = record_orders(events, clock=clock)
    assert [type(r).__name__ for r in results] == [
        "OrderOutcome", "NotFound", "OrderOutcome", "Conflict", "OrderOutcome", "Conflict", "OrderOutcome"]
    assert results[1].code == "unknown_member"
    assert results[3].code == results[5].code == "exists_with_different_payload"
    assert (results[0].replayed, results[2].replayed, results[4].replayed, results[6].replayed) == (
        False, True, True, False)
    assert results[2] == replace(results[0], replayed=True)
    assert sorted(Order.objects.values_list("order_id", "amount_fen")) == [
        ("o0", 1000), ("o1", 10000), ("o3", 30000)]
    assert (member("m1").growth_balance, member("m1").orders_count) == (110, 2)
    assert (member("m2").growth_balance, member("m2").points_balance) == (350, 300)
    assert ledger_problems("m1") == ledger_problems("m2") == []


def test_a_batch_where_every_event_fails_writes_nothing(m1, clock):
    before = snapshot()
    results = record_orders([order_event("o1", "nobody", MONDAY, "100"),
                             order_event("o2", "ghost", MONDAY, "200")], clock=clock)
    assert [r.code for r in results] == ["unknown_member", "unknown_member"]
    assert snapshot() == before


def test_the_daily_growth_cap_trims_the_order_that_crosses_it(publish, clock):
    publish("default", risk={"daily_growth_cap": 1000})
    register_member("m1", clock=clock)
    assert pay("o1", "m1", MONDAY, "800", clock).growth == 850
    assert pay("o2", "m1", at("2027-01-04 11:00"), "400", clock).growth == 150
    assert pay("o3", "m1", at("2027-01-04 12:00"), "100", clock).growth == 0
    capped = Order.objects.get(order_id="o2")
    assert (capped.growth_base, capped.growth_bonus) == (100, 50)
    assert not LedgerEntry.objects.filter(idempotency_key="order:o3:growth").exists()
    assert member("m1").growth_balance == 1000
    assert member("m1").points_balance == 1300  # the cap is on growth, not points
    assert ledger_problems("m1") == []


def test_the_daily_growth_cap_applies_within_one_batch(publish, clock):
    publish("default", risk={"daily_growth_cap": 1000})
    register_member("m1", clock=clock)
    results = record_orders([order_event(f"o{i}", "m1", MONDAY, "400") for i in range(3)], clock=clock)
    assert [r.growth for r in results] == [450, 450, 100]
    assert member("m1").growth_balance == 1000


def test_the_daily_growth_cap_resets_at_midnight_in_shanghai(publish, clock):
    publish("default", risk={"daily_growth_cap": 1000})
    register_member("m1", clock=clock)
    assert pay("o1", "m1", at("2027-01-04 23:30"), "1000", clock).growth == 1000
    assert pay("o2", "m1", at("2027-01-05 00:30"), "1000", clock).growth == 1000
    assert pay("o3", "m1", at("2027-01-05 23:59"), "1000", clock).growth == 0


def test_points_are_doubled_on_the_members_birthday_in_shanghai(default_rules, clock):
    register_member("m1", birthday=date(1990, 1, 4), clock=clock)
    # 00:30 on 4 January in Shanghai is still 3 January in UTC.
    birthday = pay("o1", "m1", at("2027-01-04 00:30"), "100", clock)
    other_day = pay("o2", "m1", at("2027-01-05 00:30"), "100", clock)
    assert (birthday.points, birthday.growth) == (200, 100)
    assert (other_day.points, other_day.growth) == (100, 100)
    assert PointsLot.objects.get(key="order:o1:points").points == 200


def test_a_member_without_a_birthday_never_gets_double_points(m1, clock):
    assert pay("o1", "m1", MONDAY, "100", clock).points == 100


def test_immediate_upgrade_moves_a_member_up_when_the_order_qualifies(publish, clock):
    from loyalty.store.models import Member, TierChange

    publish("default", evaluation={"immediate_upgrade": True})
    register_member("fast", clock=clock)
    record_order(parse_order({"order_id": "big", "member": "fast", "paid_at": "2027-01-04T10:00:00+08:00",
                              "amount": "900"}), clock=clock)
    member = Member.objects.get(external_id="fast")
    assert member.tier == "gold"
    assert TierChange.objects.filter(member=member, reason="upgrade", to_tier="gold").count() == 1


def test_an_empty_batch_answers_nothing_and_writes_nothing(default_rules, clock):
    before = snapshot()
    assert record_orders([], clock=clock) == []
    assert snapshot() == before
