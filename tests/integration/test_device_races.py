"""Members per device under concurrency (PostgreSQL and MariaDB, real row locks, committed
transactions): writers racing for the seats on one device never admit more than the limit, and
a duplicate event sent by twenty writers at once is recorded and credited once.

Default ruleset: `members_per_device: 3`. A Monday order of ¥128 earns 128 growth and 128 points.
"""

from __future__ import annotations

import pytest
from django.db.models import Sum

from loyalty.domain.events import parse_action, parse_order
from loyalty.services.actions import record_action
from loyalty.services.members import register_member
from loyalty.services.orders import record_order
from loyalty.store.models import Action, LedgerEntry, LinkedValue, Member, MemberLink, Order
from tests.integration.test_concurrency import in_parallel
from tests.service.support import ledger_problems_by_member

pytestmark = [pytest.mark.server_db, pytest.mark.django_db(transaction=True)]

WRITERS = 20
PAID_AT = "2027-01-04T10:00:00+08:00"


def order(order_id: str, who: str, device: str):
    return parse_order({"order_id": order_id, "member": who, "paid_at": PAID_AT, "amount": "128.00",
                        "device_id": device})


@pytest.fixture
def shop(publish, clock):
    publish("default")
    for i in range(WRITERS):
        register_member(f"m{i}", clock=clock)
    return clock


def test_twenty_members_racing_onto_a_new_device_admit_exactly_three(shop):
    results = in_parallel(lambda i: record_order(order(f"o{i}", f"m{i}", "phone-1"), clock=shop), WRITERS)
    credited = [r for r in results if not r.capped_reason]
    assert len(credited) == 3 and {r.growth for r in credited} == {128}
    assert {(r.growth, r.points) for r in results if r.capped_reason == "device_shared"} == {(0, 0)}
    assert sorted(MemberLink.objects.values_list("seat", flat=True)) == list(range(1, WRITERS + 1))
    assert LinkedValue.objects.get(kind="device", value="phone-1").members == WRITERS
    assert Order.objects.count() == WRITERS and Order.objects.filter(capped_reason="").count() == 3
    assert LedgerEntry.objects.filter(ledger="growth").aggregate(total=Sum("delta"))["total"] == 3 * 128
    assert all(problems == [] for problems in ledger_problems_by_member().values())


def test_members_racing_for_the_last_seat_of_a_device_admit_one(shop):
    for i in range(2):
        record_order(order(f"first{i}", f"m{i}", "phone-2"), clock=shop)
    results = in_parallel(lambda i: record_order(order(f"o{i}", f"m{i + 2}", "phone-2"), clock=shop), WRITERS - 2)
    assert sorted(r.capped_reason for r in results) == [""] + ["device_shared"] * (WRITERS - 3)
    seats = dict(MemberLink.objects.values_list("member__external_id", "seat"))
    winner = next(r.member for r in results if not r.capped_reason)
    assert seats[winner] == 3 and sorted(seats.values()) == list(range(1, WRITERS + 1))


def test_one_order_sent_by_twenty_writers_is_recorded_and_credited_once(shop):
    results = in_parallel(lambda _: record_order(order("dup", "m1", "phone-3"), clock=shop), WRITERS)
    assert {(r.order_id, r.growth, r.points, r.capped_reason) for r in results} == {("dup", 128, 128, "")}
    assert sorted(r.replayed for r in results) == [False] + [True] * (WRITERS - 1)
    assert Order.objects.filter(order_id="dup").count() == 1 and MemberLink.objects.count() == 1
    assert Member.objects.get(external_id="m1").growth_balance == 128


def test_one_check_in_sent_by_twenty_writers_is_recorded_and_credited_once(shop):
    event = parse_action({"event_id": "c1", "member": "m1", "type": "check_in", "at": PAID_AT,
                          "device_id": "phone-4", "ip": "203.0.113.9"})
    results = in_parallel(lambda _: record_action(event, clock=shop), WRITERS)
    assert {(r.growth, r.capped_reason) for r in results} == {(5, "")}
    assert sorted(r.replayed for r in results) == [False] + [True] * (WRITERS - 1)
    assert Action.objects.filter(event_id="c1").count() == 1 and MemberLink.objects.count() == 2
    assert Member.objects.get(external_id="m1").growth_balance == 5


def test_one_order_id_sent_from_two_devices_at_once_is_one_order_and_conflicts(shop):
    results = in_parallel(lambda i: record_order(order("contested", "m1", f"phone-{i % 2}"), clock=shop), WRITERS)
    stored = Order.objects.get(order_id="contested").device_id
    for index, result in enumerate(results):
        if f"phone-{index % 2}" == stored:
            assert result.order_id == "contested" and result.growth == 128
        else:
            assert result.code == "exists_with_different_payload"
    assert Member.objects.get(external_id="m1").growth_balance == 128
