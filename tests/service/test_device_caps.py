"""Members per device and per address (docs/abuse.md, Limits): the first N members seen with a
value earn as usual; the N+1-th and later are recorded with the reason and credit nothing.

Default ruleset: `members_per_device: 3`, `members_per_address: 5`. A Monday order of ¥128 (no
fresh food, under ¥300) earns floor(128 × 1) = 128 growth and 128 points; a check-in 5 growth.
"""

from __future__ import annotations

from typing import Any

import pytest

from loyalty.domain.errors import InvalidInput
from loyalty.domain.events import parse_action, parse_order
from loyalty.services.actions import record_action, record_actions
from loyalty.services.imports import import_orders, parse_rows
from loyalty.services.ledger import payload_hash
from loyalty.services.members import register_many, register_member
from loyalty.services.orders import record_order, record_orders
from loyalty.store.models import Action, LedgerEntry, LinkedValue, MemberLink, Order
from tests.conftest import at
from tests.service.support import ledger_problems_by_member, member, refund

MONDAY = at("2027-01-04 10:00")


def order(order_id: str, who: str, amount: str = "128.00", paid_at=MONDAY, **origin: str):
    return parse_order({"order_id": order_id, "member": who, "paid_at": paid_at.isoformat(), "amount": amount,
                        **origin})


def action(event_id: str, who: str, kind: str = "check_in", when=MONDAY, **origin: str):
    return parse_action({"event_id": event_id, "member": who, "type": kind, "at": when.isoformat(), **origin})


@pytest.fixture
def members(default_rules, clock):
    for i in range(1, 51):
        register_member(f"m{i}", clock=clock)
    return clock


def test_fifty_accounts_ordering_from_one_device_only_the_first_three_earn(members):
    outcomes = [record_order(order(f"o{i}", f"m{i}", device_id="phone-1"), clock=members) for i in range(1, 51)]
    assert [(o.growth, o.points, o.capped_reason) for o in outcomes[:3]] == [(128, 128, "")] * 3
    assert {(o.growth, o.points, o.capped_reason) for o in outcomes[3:]} == {(0, 0, "device_shared")}
    # Every order is recorded; the capped ones are still purchases (totals) but post no entry.
    assert Order.objects.filter(capped_reason="device_shared").count() == 47
    assert Order.objects.filter(device_id="phone-1").count() == 50
    assert LedgerEntry.objects.count() == 3 * 2
    assert (member("m50").orders_count, member("m50").paid_fen, member("m50").growth_balance) == (1, 12800, 0)
    assert sorted(MemberLink.objects.filter(kind="device").values_list("seat", flat=True)) == list(range(1, 51))
    assert LinkedValue.objects.get(kind="device", value="phone-1").members == 50
    assert all(problems == [] for problems in ledger_problems_by_member().values())


def test_fifty_check_ins_from_one_device_in_one_batch_credit_the_first_three(members):
    outcomes = record_actions([action(f"c{i}", f"m{i}", device_id="phone-1") for i in range(1, 51)], clock=members)
    assert [o.capped_reason for o in outcomes] == [""] * 3 + ["device_shared"] * 47
    assert sum(o.growth for o in outcomes) == 3 * 5
    assert Action.objects.filter(capped_reason="device_shared", device_id="phone-1").count() == 47
    assert LedgerEntry.objects.count() == 3
    assert all(problems == [] for problems in ledger_problems_by_member().values())


def test_the_first_members_keep_earning_after_more_join_and_the_later_ones_stay_capped(members):
    for i in range(1, 6):
        record_order(order(f"o{i}", f"m{i}", device_id="phone-1"), clock=members)
    later = at("2027-01-05 10:00")
    again = [record_order(order(f"p{i}", f"m{i}", paid_at=later, device_id="phone-1"), clock=members)
             for i in (1, 3, 4, 5)]
    assert [(o.growth, o.capped_reason) for o in again] == [(128, ""), (128, ""), (0, "device_shared"),
                                                           (0, "device_shared")]
    # Without the device, m4 earns: the limit judges the value an event carries.
    assert record_order(order("q4", "m4", paid_at=later), clock=members).growth == 128
    assert MemberLink.objects.count() == 5  # a member is linked once per value


def test_a_sixth_member_at_one_address_is_capped_and_the_device_is_judged_first(members):
    outcomes = [record_order(order(f"o{i}", f"m{i}", address_hash="addr-9"), clock=members) for i in range(1, 8)]
    assert [o.capped_reason for o in outcomes] == [""] * 5 + ["address_shared"] * 2
    # m7 is the 7th at the address and the 4th on a device: the device's reason is given.
    for i in range(1, 4):
        record_order(order(f"d{i}", f"m{i}", device_id="phone-2"), clock=members)
    both = record_order(order("d7", "m7", device_id="phone-2", address_hash="addr-9"), clock=members)
    assert (both.growth, both.capped_reason) == (0, "device_shared")


def test_an_ip_is_linked_but_never_capped(members):
    outcomes = [record_order(order(f"o{i}", f"m{i}", ip="203.0.113.7"), clock=members) for i in range(1, 11)]
    assert {o.capped_reason for o in outcomes} == {""}
    assert LinkedValue.objects.get(kind="ip", value="203.0.113.7").members == 10


def test_without_limits_in_the_ruleset_nothing_is_capped_but_members_are_linked(publish, clock):
    publish("default", risk={"members_per_device": None, "members_per_address": None})
    for i in range(1, 6):
        register_member(f"m{i}", clock=clock)
    outcomes = [record_order(order(f"o{i}", f"m{i}", device_id="phone-1", address_hash="a"), clock=clock)
                for i in range(1, 6)]
    assert {(o.growth, o.capped_reason) for o in outcomes} == {(128, "")}
    assert MemberLink.objects.count() == 10


def test_a_capped_order_replayed_answers_the_same_and_links_nothing_more(members):
    for i in range(1, 5):
        record_order(order(f"o{i}", f"m{i}", device_id="phone-1"), clock=members)
    again = record_order(order("o4", "m4", device_id="phone-1"), clock=members)
    assert (again.growth, again.capped_reason, again.replayed) == (0, "device_shared", True)
    with pytest.raises(Exception) as conflict:
        record_order(order("o4", "m4", device_id="phone-2"), clock=members)
    assert getattr(conflict.value, "code", None) == "exists_with_different_payload"
    assert MemberLink.objects.count() == 4
    assert LinkedValue.objects.get(kind="device", value="phone-1").members == 4


def test_a_member_with_two_events_on_one_device_in_a_batch_takes_one_seat(members):
    events = [order("o1", "m1", device_id="d"), order("o2", "m1", device_id="d"), order("o3", "m2", device_id="d")]
    outcomes = record_orders(events, clock=members)
    assert [o.capped_reason for o in outcomes] == ["", "", ""]
    assert list(MemberLink.objects.order_by("seat").values_list("member__external_id", "seat")) == [("m1", 1),
                                                                                                     ("m2", 2)]


def test_an_event_that_fails_takes_no_seat(members):
    outcomes = record_orders([order("o1", "nobody", device_id="d"), order("o2", "m2", device_id="d")], clock=members)
    assert getattr(outcomes[0], "code", None) == "unknown_member"
    assert MemberLink.objects.get().seat == 1


def test_refunding_a_capped_order_reverses_nothing_and_keeps_the_ledger_whole(members):
    for i in range(1, 5):
        record_order(order(f"o{i}", f"m{i}", device_id="phone-1"), clock=members)
    outcome = refund("r4", "o4", "128.00", at("2027-01-05 10:00"), members)
    assert (outcome.growth_reversed, outcome.points_reversed) == (0, 0)
    assert (member("m4").paid_fen, member("m4").refunded_fen) == (12800, 12800)
    assert all(problems == [] for problems in ledger_problems_by_member().values())


def test_twenty_shares_in_a_day_credit_three_and_record_seventeen_capped(members):
    outcomes = [record_action(action(f"s{i}", "m1", "share", at(f"2027-01-04 10:{i:02d}")), clock=members)
                for i in range(20)]
    assert [o.growth for o in outcomes] == [20] * 3 + [0] * 17
    assert Action.objects.filter(member__external_id="m1", capped_reason="per_day_limit").count() == 17
    assert member("m1").growth_balance == 60


# --- the events' new fields -----------------------------------------------------------------------

ORDER: dict[str, Any] = {"order_id": "o1", "member": "m1", "paid_at": "2027-01-04T10:00:00+08:00", "amount": "128.00"}


def test_an_event_without_the_new_fields_keeps_its_hash():
    # The fingerprints as they were before devices: every stored event's replay still matches.
    before = {"order_id": "o1", "member": "m1", "paid_at": "2027-01-04T02:00:00+00:00", "amount_fen": 12800,
              "items": [["", None, 12800]]}
    assert payload_hash(parse_order(ORDER).fingerprint()) == payload_hash(before)
    check_in = {"event_id": "e1", "member": "m1", "type": "check_in", "at": "2027-01-04T10:00:00+08:00"}
    assert parse_action(check_in).fingerprint() == {**check_in, "at": "2027-01-04T02:00:00+00:00", "ref": ""}
    assert parse_order({**ORDER, "device_id": "", "ip": None}).fingerprint() == parse_order(ORDER).fingerprint()


def test_an_event_with_a_device_hashes_differently():
    assert parse_order({**ORDER, "device_id": "d"}).fingerprint()["device_id"] == "d"
    assert payload_hash(parse_order({**ORDER, "device_id": "d"}).fingerprint()) != payload_hash(
        parse_order(ORDER).fingerprint())


@pytest.mark.parametrize(("ip", "stored"), [("203.0.113.7", "203.0.113.7"), ("2001:0DB8:0:0::1", "2001:db8::1"),
                                            (" 10.0.0.1 ", "10.0.0.1"), ("::ffff:1.2.3.4", "::ffff:102:304")])
def test_an_ip_is_kept_in_canonical_form(ip, stored):
    assert parse_order({**ORDER, "ip": ip}).origin.ip == stored


@pytest.mark.parametrize(("field", "value"), [("ip", "1.2.3"), ("ip", "fe80::1%eth0"), ("ip", "localhost"),
                                              ("ip", 17), ("device_id", "x" * 129), ("device_id", "a\x00b"),
                                              ("address_hash", "h\n"), ("device_id", 5)])
def test_a_bad_origin_field_is_refused_naming_it(field, value):
    with pytest.raises(InvalidInput) as refused:
        parse_order({**ORDER, field: value})
    assert refused.value.field == field
    with pytest.raises(InvalidInput) as refused:
        parse_action({"event_id": "e1", "member": "m1", "type": "share", "at": ORDER["paid_at"], field: value})
    assert refused.value.field == field


def test_an_imported_csv_carries_the_device_and_is_capped_alike(default_rules, clock):
    rows = [(i + 1, {"order_id": f"o{i}", "member": f"m{i}", "paid_at": MONDAY.isoformat(), "amount": "128.00",
                     "device_id": "phone-1", "ip": "", "address_hash": ""}) for i in range(1, 6)]
    summary = import_orders(parse_rows(rows), clock=clock)
    assert (summary.orders, summary.growth) == (5, 3 * 128)
    assert list(Order.objects.order_by("order_id").values_list("capped_reason", flat=True)) == [""] * 3 + [
        "device_shared"] * 2
    with pytest.raises(InvalidInput) as refused:
        parse_rows([(2, {**rows[0][1], "ip": "nope"})])
    assert refused.value.field == "ip"


def test_a_large_batch_links_every_member_in_one_go(default_rules, clock):
    register_many({f"b{i}": MONDAY for i in range(150)}, clock=clock)
    events = [action(f"c{i}", f"b{i}", device_id=f"phone-{i // 2}", ip="198.51.100.1") for i in range(150)]
    outcomes = record_actions(events, clock=clock)
    assert {o.capped_reason for o in outcomes} == {""}
    assert MemberLink.objects.filter(kind="device").count() == 150
    assert MemberLink.objects.filter(kind="ip").count() == 150
    assert sorted(set(LinkedValue.objects.filter(kind="device").values_list("members", flat=True))) == [2]
    assert LinkedValue.objects.get(kind="ip").members == 150
