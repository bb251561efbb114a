"""Events that carry a device, a client IP or an address hash, over the API: the answer of a
capped event names why it credited nothing, a bad value is a 422 naming its field and writes
nothing, and the batch routes take the same fields (docs/api.md, docs/abuse.md).

Default ruleset: `members_per_device: 3`. ¥100 on a Monday earns 100 growth and 100 points.
"""

from __future__ import annotations

import pytest

from loyalty.store.models import MemberLink, Order
from tests.api.support import Api, action, answer, counts, error_of, is_replay, order

pytestmark = pytest.mark.django_db


@pytest.fixture
def four(shop: Api) -> Api:
    for i in range(2, 5):
        answer(shop.post("/members", {"external_id": f"m-{i}"}), 201)
    return shop


def test_the_fourth_member_on_a_device_is_answered_device_shared(four):
    for i in range(1, 4):
        body = answer(four.post("/events/orders", order(f"o-{i}", f"m-{i}", device_id="phone-1")), 201)
        assert (body["growth"], body["capped_reason"]) == (100, "")
    capped = four.post("/events/orders", order("o-4", "m-4", device_id="phone-1", ip="203.0.113.7"))
    assert answer(capped, 201) == {"order_id": "o-4", "member": "m-4", "growth": 0, "points": 0,
                                   "ruleset_version": 1, "capped_reason": "device_shared"}
    replay = four.post("/events/orders", order("o-4", "m-4", device_id="phone-1", ip="203.0.113.7"))
    assert is_replay(replay) and answer(replay, 201)["capped_reason"] == "device_shared"
    stored = Order.objects.get(order_id="o-4")
    assert (stored.device_id, stored.ip, stored.address_hash, stored.capped_reason) == (
        "phone-1", "203.0.113.7", "", "device_shared")
    check_in = answer(four.post("/events/actions", action("c-4", "m-4", device_id="phone-1")), 201)
    assert (check_in["growth"], check_in["capped_reason"]) == (0, "device_shared")


def test_a_batch_answers_each_capped_event_with_its_reason(four):
    events = [action(f"c-{i}", f"m-{i}", device_id="phone-1", address_hash="h1") for i in range(1, 5)]
    body = answer(four.post("/events/actions:batch", {"events": events}), 200)
    assert body["applied"] == 4
    assert [r["result"]["capped_reason"] for r in body["results"]] == ["", "", "", "device_shared"]
    assert MemberLink.objects.filter(kind="address", value="h1").count() == 4
    orders = [order(f"o-{i}", f"m-{i}", device_id="phone-2") for i in range(1, 5)]
    body = answer(four.post("/events/orders:batch", {"events": orders}), 200)
    assert [r["result"]["capped_reason"] for r in body["results"]] == ["", "", "", "device_shared"]


@pytest.mark.parametrize("route", ["/events/orders", "/events/actions"])
@pytest.mark.parametrize(("field", "value"), [("ip", "300.1.2.3"), ("ip", "not-an-ip"), ("device_id", "x" * 129),
                                              ("address_hash", "a\x00b"), ("device_id", "tab\there")])
def test_a_bad_origin_field_is_a_422_naming_it_and_changes_nothing(shop, route, field, value):
    before = counts()
    body = order("o-1", device_id="d") if route.endswith("orders") else action("c-1", device_id="d")
    error = error_of(shop.post(route, {**body, field: value}), 422)
    assert error["field"] == field, error
    assert counts() == before


def test_a_bad_ip_in_a_batch_fails_that_event_alone(shop):
    events = [order("o-1", ip="1.2.3.4.5"), order("o-2", ip="2001:db8::1")]
    body = answer(shop.post("/events/orders:batch", {"events": events}), 200)
    assert (body["applied"], body["failed"]) == (1, 1)
    assert body["results"][0]["error"]["field"] == "ip"
    assert Order.objects.get().ip == "2001:db8::1"
