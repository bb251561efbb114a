"""Every client mistake is a 4xx in the one error shape, names its field, and writes nothing.

Each case runs against a shop with the default ruleset, member m-1 and order o-1 recorded; the
whole store (every row of every table) is compared before and after the request.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest
from django.test import Client

from tests.api.support import BASE, Api, answer, error_of, order, refund, snapshot

pytestmark = pytest.mark.django_db

REDEEM = {"redemption_id": "rd-1", "points": 10}
ADJUST = {"adjustment_id": "adj-1", "ledger": "points", "delta": 10, "reason": "goodwill"}
ACTION = {"event_id": "a-1", "member": "m-1", "type": "check_in", "at": "2027-01-04T08:00:00+08:00"}
ORDER = order("o-9", amount="10.00")
ORDER_TEXT = json.dumps(ORDER)


def _order_with(amount_json: str) -> str:
    """An order body with `amount` written exactly as given (a raw JSON number or literal)."""
    return ORDER_TEXT.replace('"amount": "10.00"', f'"amount": {amount_json}')


def _without(body: dict[str, Any], field: str) -> dict[str, Any]:
    return {key: value for key, value in body.items() if key != field}


@dataclass(frozen=True)
class Mistake:
    name: str
    path: str
    body: Any = None  # a JSON-able body, or the raw text when `raw`
    raw: str | bytes | None = None
    status: int = 422
    code: str = "invalid_input"
    field: str | None = None
    method: str = "post"


MISTAKES = [
    # The body is not a JSON object at all.
    Mistake("malformed JSON", "/events/orders", raw='{"order_id": ', status=400, code="malformed_json"),
    Mistake("a JSON array body", "/events/orders", raw=json.dumps([ORDER]), status=400, code="malformed_json"),
    Mistake("a JSON string body", "/members", raw='"m-1"', status=400, code="malformed_json"),
    Mistake("a JSON null body", "/events/refunds", raw="null", status=400, code="malformed_json"),
    Mistake("a form-encoded body", "/members", raw="external_id=m-2", status=400, code="malformed_json"),
    Mistake("bytes that are not UTF-8", "/events/orders", raw=b'{"order_id": "\xff\xfe"}', status=400,
            code="malformed_json"),
    Mistake("JSON nested deeper than any parser goes", "/events/orders", raw="[" * 100_000 + "]" * 100_000,
            status=400, code="malformed_json"),
    Mistake("a NaN literal", "/events/orders", raw=_order_with("NaN"), status=400, code="malformed_json"),
    Mistake("an Infinity literal", "/events/orders", raw=_order_with("Infinity"), status=400, code="malformed_json"),
    Mistake("a -Infinity literal", "/events/orders", raw=_order_with("-Infinity"), status=400,
            code="malformed_json"),
    Mistake("a body over 4 MB", "/events/orders", raw='{"pad": "' + "x" * (4 * 1024 * 1024) + '"}', status=413,
            code="body_too_large"),
    # Wrong types.
    Mistake("a number for order_id", "/events/orders", {**ORDER, "order_id": 12}, field="order_id"),
    Mistake("a number for member", "/events/actions", {**ACTION, "member": 1}, field="member"),
    Mistake("a string for points", "/members/m-1/points/redeem", {**REDEEM, "points": "10"}, field="points"),
    Mistake("a fraction for points", "/members/m-1/points/redeem", raw='{"redemption_id": "rd-1", "points": 10.5}',
            field="points"),
    Mistake("true for points", "/members/m-1/points/redeem", {**REDEEM, "points": True}, field="points"),
    Mistake("a string for delta", "/members/m-1/adjustments", {**ADJUST, "delta": "10"}, field="delta"),
    Mistake("a string for ttl_seconds", "/members/m-1/token", {"ttl_seconds": "600"}, field="ttl_seconds"),
    Mistake("true for an amount", "/events/orders", {**ORDER, "amount": True}, field="amount"),
    Mistake("an object for items", "/events/orders", {**ORDER, "items": {"amount": "10.00"}}, field="items"),
    Mistake("a list for a ruleset document", "/rulesets", {"document": [], "effective_from": "2027-02-01T00:00:00Z"},
            field="document"),
    Mistake("a number inside a batch's events", "/events/orders:batch", {"events": [ORDER, 7]}, field="events[1]"),
    # Amounts.
    Mistake("three decimals as a JSON number", "/events/orders", raw=_order_with("12.345"), field="amount"),
    Mistake("three decimals as a string", "/events/orders", {**ORDER, "amount": "12.345"}, field="amount"),
    Mistake("three decimals in an item", "/events/orders",
            {**ORDER, "items": [{"sku": "a", "amount": "5.005"}, {"sku": "b", "amount": "4.995"}]},
            field="items[0].amount"),
    Mistake("a negative amount", "/events/orders", {**ORDER, "amount": "-10.00"}, field="amount"),
    Mistake("a zero amount", "/events/orders", {**ORDER, "amount": "0.00"}, field="amount"),
    Mistake("a zero JSON number", "/events/orders", raw=_order_with("0"), field="amount"),
    Mistake("an absurd amount as a JSON number", "/events/orders", raw=_order_with("1e20"), field="amount"),
    Mistake("an absurd amount as a string", "/events/orders", {**ORDER, "amount": "1e20"}, field="amount"),
    Mistake("an exponent too large for any context", "/events/orders", {**ORDER, "amount": "1e999999999"},
            field="amount"),
    Mistake("NaN as a string", "/events/orders", {**ORDER, "amount": "NaN"}, field="amount"),
    Mistake("Infinity as a string", "/events/orders", {**ORDER, "amount": "Infinity"}, field="amount"),
    Mistake("a word for an amount", "/events/orders", {**ORDER, "amount": "ten"}, field="amount"),
    Mistake("items that do not add up", "/events/orders", {**ORDER, "items": [{"sku": "a", "amount": "9.00"}]},
            field="items"),
    Mistake("a negative refund", "/events/refunds", refund("r-1", "o-1", "-1.00"), field="amount"),
    Mistake("a refund of more than was paid", "/events/refunds", refund("r-1", "o-1", "100.01"),
            code="refund_exceeds_paid", field="amount"),
    Mistake("zero points", "/members/m-1/points/redeem", {**REDEEM, "points": 0}, field="points"),
    Mistake("a zero adjustment", "/members/m-1/adjustments", {**ADJUST, "delta": 0}, field="delta"),
    Mistake("an absurd adjustment", "/members/m-1/adjustments", {**ADJUST, "delta": 10**15}, field="delta"),
    Mistake("a token for longer than a day", "/members/m-1/token", {"ttl_seconds": 86401}, field="ttl_seconds"),
    # Times.
    Mistake("a naive paid_at", "/events/orders", {**ORDER, "paid_at": "2027-01-04T10:00:00"}, field="paid_at"),
    Mistake("a naive refunded_at", "/events/refunds", refund("r-1", "o-1", "1.00", "2027-01-05T09:00:00"),
            field="refunded_at"),
    Mistake("a naive action time", "/events/actions", {**ACTION, "at": "2027-01-04 08:00"}, field="at"),
    Mistake("a naive effective_from", "/rulesets", {"document": {}, "effective_from": "2027-02-01T00:00:00"},
            field="effective_from"),
    Mistake("a date that does not exist", "/events/orders", {**ORDER, "paid_at": "2027-02-30T10:00:00+08:00"},
            field="paid_at"),
    Mistake("a birthday that does not exist", "/members", {"external_id": "m-2", "birthday": "1990-13-45"},
            field="birthday"),
    # Unknown things.
    Mistake("an order for an unknown member", "/events/orders", {**ORDER, "member": "nobody"}, status=404,
            code="unknown_member", field="member"),
    Mistake("an action for an unknown member", "/events/actions", {**ACTION, "member": "nobody"}, status=404,
            code="unknown_member", field="member"),
    Mistake("a refund of an unknown order", "/events/refunds", refund("r-1", "o-unknown", "1.00"), status=404,
            code="unknown_order", field="order_id"),
    Mistake("the status of an unknown member", "/members/nobody", method="get", status=404, code="unknown_member",
            field="member"),
    Mistake("the ledger of an unknown member", "/members/nobody/ledger", method="get", status=404,
            code="unknown_member", field="member"),
    Mistake("a token for an unknown member", "/members/nobody/token", {}, status=404, code="unknown_member",
            field="member"),
    Mistake("a redemption for an unknown member", "/members/nobody/points/redeem", REDEEM, status=404,
            code="unknown_member", field="member"),
    Mistake("an adjustment for an unknown member", "/members/nobody/adjustments", ADJUST, status=404,
            code="unknown_member", field="member"),
    # Missing or malformed fields, named where they are, however deep.
    Mistake("an order without amount", "/events/orders", _without(ORDER, "amount"), field="amount"),
    Mistake("an order without order_id", "/events/orders", _without(ORDER, "order_id"), field="order_id"),
    Mistake("an order without paid_at", "/events/orders", _without(ORDER, "paid_at"), field="paid_at"),
    Mistake("an item without amount", "/events/orders", {**ORDER, "items": [{"sku": "a", "category": "fresh"}]},
            field="items[0].amount"),
    Mistake("the second item without amount", "/events/orders",
            {**ORDER, "items": [{"sku": "a", "amount": "5.00"}, {"sku": "b"}]}, field="items[1].amount"),
    Mistake("a refund without refunded_at", "/events/refunds", _without(refund("r-1", "o-1", "1.00"), "refunded_at"),
            field="refunded_at"),
    Mistake("an action without type", "/events/actions", _without(ACTION, "type"), field="type"),
    Mistake("an action of an unknown type", "/events/actions", {**ACTION, "type": "dance"}, field="type"),
    Mistake("a review without the order it reviews", "/events/actions", {**ACTION, "type": "review"}, field="ref"),
    Mistake("a member without external_id", "/members", {"birthday": "1990-05-17"}, field="external_id"),
    Mistake("an external_id with a space", "/members", {"external_id": "m 2"}, field="external_id"),
    Mistake("an external_id too long", "/members", {"external_id": "m" * 65}, field="external_id"),
    Mistake("an order_id with a space", "/events/orders", {**ORDER, "order_id": "o 9"}, field="order_id"),
    Mistake("a redemption without redemption_id", "/members/m-1/points/redeem", {"points": 10},
            field="redemption_id"),
    Mistake("an adjustment without a reason", "/members/m-1/adjustments", _without(ADJUST, "reason"),
            field="reason"),
    Mistake("an adjustment with a blank reason", "/members/m-1/adjustments", {**ADJUST, "reason": "   "},
            field="reason"),
    Mistake("an adjustment of an unknown ledger", "/members/m-1/adjustments", {**ADJUST, "ledger": "stars"},
            field="ledger"),
    Mistake("a batch without events", "/events/orders:batch", {}, field="events"),
    Mistake("an empty batch", "/events/refunds:batch", {"events": []}, field="events"),
    Mistake("a ruleset without effective_from", "/rulesets", {"document": {}}, field="effective_from"),
    Mistake("an empty ruleset document", "/rulesets", {"document": {}, "effective_from": "2027-02-01T00:00:00Z"},
            code="ruleset_invalid"),
    # Query strings.
    Mistake("an unknown ledger filter", "/members/m-1/ledger?ledger=stars", method="get", field="ledger"),
    Mistake("a page of zero entries", "/members/m-1/ledger?limit=0", method="get", field="limit"),
    Mistake("a page too large", "/members/m-1/ledger?limit=201", method="get", field="limit"),
    Mistake("a cursor that is not one", "/members/m-1/ledger?cursor=abc", method="get", field="cursor"),
    Mistake("a ruleset version that is not a number", "/rulesets/one", method="get", field="version"),
]


@pytest.fixture
def world(shop: Api) -> Api:
    answer(shop.post("/events/orders", order("o-1", amount="100.00")), 201)
    return shop


@pytest.mark.parametrize("mistake", MISTAKES, ids=[mistake.name for mistake in MISTAKES])
def test_a_client_mistake_is_a_4xx_naming_the_field_and_changes_nothing(world, mistake):
    before = snapshot()
    if mistake.method == "get":
        response = world.get(mistake.path)
    else:
        response = world.post(mistake.path, mistake.body, raw=mistake.raw)
    error = error_of(response, mistake.status)
    assert error["code"] == mistake.code, error
    if mistake.field is not None or mistake.code != "ruleset_invalid":
        assert error["field"] == mistake.field, error
    assert snapshot() == before


def test_every_mistake_in_the_table_has_a_distinct_name():
    assert len({mistake.name for mistake in MISTAKES}) == len(MISTAKES)


def test_a_ruleset_document_with_several_mistakes_names_every_path(world):
    document = answer(world.get("/rulesets/1"), 200)["document"]
    document["tiers"][1]["when"] = {"any": [{"orders": ">= lots"}]}
    document["points"]["per_yuan"] = "-1"
    before = snapshot()
    error = error_of(world.post("/rulesets", {"document": document, "effective_from": "2027-02-01T00:00:00Z"}), 422)
    assert error["code"] == "ruleset_invalid"
    assert "tiers[1].when.any[0]" in error["message"]
    assert "points.per_yuan" in error["message"]
    assert snapshot() == before


@pytest.mark.parametrize("path", ["/nothing-here", "/", "/members/m-1/", "/members/m-1/ledger/more",
                                  "/events/orders:replay", "/rulesets/1/document"])
@pytest.mark.parametrize("method", ["GET", "POST", "DELETE"])
def test_an_unknown_path_under_the_api_is_a_json_404(world, path, method):
    before = snapshot()
    for token in (None, ""):  # with the operator's key, and without any
        response = world.client.generic(method, BASE + path, "{}", content_type="application/json",
                                        headers=world._headers(token))
        error = error_of(response, 404)
        assert (error["code"], error["field"]) == ("not_found", None), error
        assert "/api/v1/docs" in error["message"]
    assert snapshot() == before


@pytest.mark.parametrize(("method", "path", "allowed"), [
    ("DELETE", "/members", "POST"),
    ("GET", "/events/orders", "POST"),
    ("PUT", "/rulesets", "GET, POST"),
    ("PATCH", "/members/m-1", "GET"),
    ("POST", "/members/m-1/ledger", "GET"),
    ("GET", "/events/orders:batch", "POST"),
])
def test_a_method_the_path_does_not_take_is_a_json_405_with_allow(world, method, path, allowed):
    before = snapshot()
    response = world.client.generic(method, BASE + path, json.dumps(order("o-9")), content_type="application/json",
                                    headers=world._headers(None))
    error = error_of(response, 405)
    assert (error["code"], error["field"]) == ("method_not_allowed", None), error
    assert response["Allow"] == allowed
    assert allowed in error["message"]
    assert snapshot() == before


def test_under_debug_an_unknown_api_path_is_still_json(world, settings):
    settings.DEBUG = True  # Django's technical 404 page otherwise
    assert error_of(world.get("/nothing-here"), 404)["code"] == "not_found"


def test_paths_outside_the_api_keep_djangos_answers(world):
    client = Client()
    for response, status in ((client.get("/nothing-here"), 404), (client.get("/api/v1x/members"), 404),
                             (client.post("/healthz"), 405)):
        assert response.status_code == status
        assert not response["Content-Type"].startswith("application/json"), response["Content-Type"]
    assert client.post("/healthz")["Allow"] == "GET, HEAD"
    assert client.get("/admin/nothing-here").status_code == 302  # to the admin's login, as before
