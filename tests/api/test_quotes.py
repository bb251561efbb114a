"""Price quotes over HTTP: the line-level breakdown, 422s naming the field, unknown members and
other members' coupons, a quote that writes nothing, and the order event that cites it."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from django.conf import settings

from loyalty.domain.events import parse_order
from loyalty.domain.grants import coupon_code
from loyalty.services.ledger import payload_hash
from loyalty.store.models import Coupon, Member, Order
from tests.api.support import Api, answer, counts, error_of, is_replay, order, snapshot
from tests.conftest import at

pytestmark = pytest.mark.django_db

WEDNESDAY = "2027-01-06T10:00:00+08:00"
LONG = (at("2020-01-01 00:00"), at("2100-01-01 00:00"))


def give(member: str, key: str, value_fen: int = 1_000, *, min_spend_fen: int = 0, kind: str = "monthly",
         valid: tuple[Any, Any] = LONG) -> str:
    code = coupon_code(key, settings.SECRET_KEY.encode())
    Coupon.objects.create(member=Member.objects.get(external_id=member), code=code, key=key, kind=kind,
                          value_fen=value_fen, min_spend_fen=min_spend_fen, issued_at=valid[0], valid_from=valid[0],
                          valid_until=valid[1], ruleset_version=1)
    return code


def cart(member: str = "m-1", **extra: Any) -> dict[str, Any]:
    return {"member": member, "at": WEDNESDAY, "delivery_fee": "8.00",
            "lines": [{"sku": "sku-42", "category": "fresh", "unit_price": "12.30", "quantity": 2},
                      {"sku": "sku-7", "unit_price": "99.00", "quantity": 1}], **extra}


@pytest.fixture
def world(shop: Api) -> Api:
    answer(shop.post("/members", {"external_id": "m-2"}), 201)
    return shop


def test_a_quote_breaks_every_line_down_and_previews_the_earnings(world):
    code = give("m-1", "c1", 1_000, min_spend_fen=5_000)
    body = answer(world.post("/quotes", cart(coupon=code)), 200)
    # Wednesday, bronze: 12% member day per line: 24.60 → 2.95 off (2.952) → 21.65; 99.00 → 11.88
    # off → 87.12. The 10.00 coupon (min 50.00 ≤ 108.77) by largest remainder: 1.99 and 8.01.
    assert body["lines"] == [
        {"sku": "sku-42", "category": "fresh", "quantity": 2, "unit_price": "12.30", "amount": "24.60",
         "member_day_discount": "2.95", "tier_discount": "0.00", "coupon_discount": "1.99", "total": "19.66"},
        {"sku": "sku-7", "category": None, "quantity": 1, "unit_price": "99.00", "amount": "99.00",
         "member_day_discount": "11.88", "tier_discount": "0.00", "coupon_discount": "8.01", "total": "79.11"},
    ]
    assert body["discounts"] == {"member_day": "14.83", "tier": "0.00", "coupon": "10.00", "delivery": "0.00"}
    assert (body["subtotal"], body["goods_total"], body["delivery_charged"], body["total"]) == (
        "123.60", "98.77", "8.00", "106.77")
    assert (body["applied"], body["member_day_rate"], body["tier_rate"], body["tier"]) == (
        "member_day", "0.12", "0", "bronze")
    assert body["coupon"] == {"code": code, "kind": "monthly", "applied": True, "discount": "10.00",
                              "reason": None, "message": None}
    # growth floor(19.66 × 1.5 + 79.11) = floor(108.60) = 108, no bonus (< 300); points floor(98.77)
    assert body["earns"] == {"growth": 108, "points": 98}
    assert (body["ruleset_version"], body["at"], body["delivery_waived"]) == (1, "2027-01-06T02:00:00Z", False)
    assert body["quote_id"].startswith("QT") and len(body["quote_id"]) == 26


def test_the_same_request_at_the_same_moment_has_the_same_quote_id(world):
    first = answer(world.post("/quotes", cart()), 200)["quote_id"]
    assert answer(world.post("/quotes", cart()), 200)["quote_id"] == first
    assert answer(world.post("/quotes", cart(at="2027-01-06T10:00:01+08:00")), 200)["quote_id"] != first
    assert answer(world.post("/quotes", cart(delivery_fee="8.01")), 200)["quote_id"] != first


def test_without_at_the_server_clock_prices_the_cart(world):
    body = answer(world.post("/quotes", {k: v for k, v in cart().items() if k != "at"}), 200)
    assert body["at"] and body["ruleset_version"] == 1


def test_a_diamond_member_gets_free_delivery_and_keeps_a_free_delivery_coupon(world):
    Member.objects.filter(external_id="m-1").update(tier="diamond")
    code = give("m-1", "fd", 0, kind="free_delivery")
    body = answer(world.post("/quotes", cart(coupon=code, at="2027-01-04T10:00:00+08:00")), 200)
    assert (body["delivery_waived"], body["delivery_waived_by"], body["delivery_charged"]) == (True, "tier", "0.00")
    assert body["discounts"]["delivery"] == "8.00" and body["total"] == body["goods_total"] == "123.60"
    assert (body["coupon"]["applied"], body["coupon"]["reason"]) == (False, "delivery_already_free")


def test_a_coupon_the_rules_refuse_is_reported_with_its_reason(world):
    expired = give("m-1", "old", valid=(at("2020-01-01 00:00"), at("2021-01-01 00:00")))
    big = give("m-1", "big", min_spend_fen=20_000)
    for code, reason in ((expired, "coupon_expired"), (big, "below_min_spend")):
        body = answer(world.post("/quotes", cart(coupon=code)), 200)
        assert (body["coupon"]["applied"], body["coupon"]["reason"], body["discounts"]["coupon"]) == (
            False, reason, "0.00")
        assert body["total"] == "116.77"  # 108.77 + 8.00: the coupon changed nothing
        assert body["coupon"]["message"]


@pytest.mark.parametrize(("change", "field"), [
    ({"lines": []}, "lines"),
    ({"lines": [{"sku": "s", "unit_price": "1.00", "quantity": 0}]}, "lines[0].quantity"),
    ({"lines": [{"sku": "s", "unit_price": "1.00", "quantity": 10_000}]}, "lines[0].quantity"),
    ({"lines": [{"sku": "s", "unit_price": "1.00", "quantity": "2"}]}, "lines[0].quantity"),
    ({"lines": [{"sku": "s", "unit_price": "1.234", "quantity": 1}]}, "lines[0].unit_price"),
    ({"lines": [{"sku": "s", "unit_price": "-1.00", "quantity": 1}]}, "lines[0].unit_price"),
    ({"lines": [{"sku": "s", "unit_price": "x", "quantity": 1}]}, "lines[0].unit_price"),
    ({"lines": [{"sku": "a b", "unit_price": "1.00", "quantity": 1}]}, "lines[0].sku"),
    ({"lines": [{"unit_price": "1.00", "quantity": 1}]}, "lines[0].sku"),
    ({"lines": [{"sku": "s", "unit_price": "1.00", "quantity": 1}] * 501}, "lines"),
    ({"delivery_fee": "8.001"}, "delivery_fee"),
    ({"delivery_fee": None}, "delivery_fee"),
    ({"at": "2027-01-06T10:00:00"}, "at"),
    ({"member": "m 1"}, "member"),
    ({"coupon": "x" * 33}, "coupon"),
])
def test_a_bad_quote_is_422_naming_the_field_and_changes_nothing(world, change, field):
    before = snapshot()
    error = error_of(world.post("/quotes", cart(**change)), 422)
    assert error["field"] == field, error
    assert snapshot() == before


def test_an_unknown_member_is_404(world):
    error = error_of(world.post("/quotes", cart("nobody")), 404)
    assert (error["code"], error["field"]) == ("unknown_member", "member")


def test_another_members_coupon_is_404_as_an_unknown_code(world):
    theirs = give("m-2", "theirs")
    for code in (theirs, "LYNOSUCHCODE"):
        error = error_of(world.post("/quotes", cart(coupon=code)), 404)
        assert (error["code"], error["field"]) == ("unknown_coupon", "coupon")


def test_a_member_token_quotes_only_its_own_member(world):
    token = answer(world.post("/members/m-1/token", {}), 201)["token"]
    assert answer(world.post("/quotes", cart(), token=token), 200)["member"] == "m-1"
    for other in ("m-2", "nobody"):
        error = error_of(world.post("/quotes", cart(other), token=token), 404)
        assert (error["code"], error["field"]) == ("unknown_member", "member")


def test_a_quote_writes_nothing(world):
    answer(world.post("/events/orders", order("o-1", amount="100.00")), 201)
    give("m-1", "c1", 1_000)
    before, rows = snapshot(), counts()
    for extra in ({}, {"coupon": Coupon.objects.get(key="c1").code}):
        answer(world.post("/quotes", cart(**extra)), 200)
    assert counts() == rows and snapshot() == before


def _order_from(quote: dict[str, Any], order_id: str, **extra: Any) -> dict[str, Any]:
    """The order the platform sends after the quote: its line totals as items, citing it."""
    items = [{"sku": line["sku"], "category": line["category"], "amount": line["total"]}
             for line in quote["lines"] if line["total"] != "0.00"]
    return order(order_id, amount=quote["goods_total"], paid_at=quote["at"], items=items,
                 quote_id=quote["quote_id"], **extra)


def test_an_order_citing_its_quote_stores_it_earns_the_preview_and_is_replay_safe(world):
    quote = answer(world.post("/quotes", cart()), 200)
    event = _order_from(quote, "o-q")
    recorded = answer(world.post("/events/orders", event), 201)
    assert (recorded["growth"], recorded["points"]) == (quote["earns"]["growth"], quote["earns"]["points"])
    assert Order.objects.get(order_id="o-q").quote_id == quote["quote_id"]
    replay = world.post("/events/orders", event)
    assert answer(replay, 201) == recorded and is_replay(replay)
    before = snapshot()
    error = error_of(world.post("/events/orders", {**event, "quote_id": "QTANOTHERQUOTE"}), 409)
    assert error["code"] == "exists_with_different_payload"
    error = error_of(world.post("/events/orders", {k: v for k, v in event.items() if k != "quote_id"}), 409)
    assert error["code"] == "exists_with_different_payload"
    assert snapshot() == before


@pytest.mark.parametrize("quote_id", ["", "a b", "x" * 65, "\u0000"])
def test_a_malformed_quote_id_on_an_order_is_422(world, quote_id):
    before = snapshot()
    error = error_of(world.post("/events/orders", order("o-bad", quote_id=quote_id)), 422)
    assert error["field"] == "quote_id"
    assert snapshot() == before


def test_an_order_without_a_quote_keeps_the_hash_it_always_had(world):
    event = order("o-plain", amount="100.00")
    answer(world.post("/events/orders", event), 201)
    stored = Order.objects.get(order_id="o-plain")
    assert stored.quote_id == ""
    # The fingerprint of orders recorded before quotes existed, written out by hand.
    old = {"order_id": "o-plain", "member": "m-1", "paid_at": "2027-01-04T02:00:00+00:00", "amount_fen": 10_000,
           "items": [["", None, 10_000]]}
    assert stored.payload_hash == hashlib.sha256(repr(old).encode()).hexdigest()
    assert payload_hash(parse_order(event).fingerprint()) == stored.payload_hash


def test_a_batched_order_carries_its_quote_id_too(world):
    quote = answer(world.post("/quotes", cart()), 200)
    body = answer(world.post("/events/orders:batch", {"events": [_order_from(quote, "o-b")]}), 200)
    assert body["applied"] == 1
    assert Order.objects.get(order_id="o-b").quote_id == quote["quote_id"]


@pytest.mark.parametrize(("line", "field"), [
    ({"sku": "s\u0000", "unit_price": "1.00", "quantity": 1}, "lines[0].sku"),
    ({"sku": "s", "category": "fresh\u0000", "unit_price": "1.00", "quantity": 1}, "lines[0].category"),
    ({"sku": "s", "category": "x" * 65, "unit_price": "1.00", "quantity": 1}, "lines[0].category"),
    ({"sku": "s", "unit_price": "1e999999999", "quantity": 1}, "lines[0].unit_price"),
])
def test_hostile_text_and_numbers_in_a_line_are_422(world, line, field):
    assert error_of(world.post("/quotes", cart(lines=[line])), 422)["field"] == field
