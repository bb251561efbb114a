"""Coupons over HTTP: the wallet (operator's key or the member's own token) and redemption with
its replay, conflict and refusals; a full refund through the events API gives the coupon back."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from django.conf import settings

from loyalty.domain.grants import coupon_code
from loyalty.store.models import Coupon, Member
from tests.api.support import Api, answer, error_of, is_replay, key_for, order, refund, snapshot
from tests.conftest import at

pytestmark = pytest.mark.django_db

# Valid for years around the suite's dates: redemption is judged at the real clock's now.
LONG = (at("2020-01-01 00:00"), at("2100-01-01 00:00"))


def give(member: str, key: str, value_fen: int = 800, *, min_spend_fen: int = 0,
         valid: tuple[datetime, datetime] = LONG) -> str:
    code = coupon_code(key, settings.SECRET_KEY.encode())
    Coupon.objects.create(member=Member.objects.get(external_id=member), code=code, key=key, kind="monthly",
                          value_fen=value_fen, min_spend_fen=min_spend_fen, issued_at=valid[0], valid_from=valid[0],
                          valid_until=valid[1], ruleset_version=1)
    return code


@pytest.fixture
def world(shop: Api) -> Api:
    answer(shop.post("/members", {"external_id": "m-2"}), 201)
    answer(shop.post("/events/orders", order("o-1", amount="100.00")), 201)
    Coupon.objects.filter(kind="welcome").delete()  # the welcome packs (test_coupon_templates.py), out of the way
    return shop


def redeem(api: Api, code: str, member: str = "m-1", order_id: str = "o-1", **extra: Any) -> Any:
    return api.post(f"/coupons/{code}/redeem", {"member": member, "order_id": order_id, **extra})


def test_the_wallet_lists_coupons_with_money_as_decimal_strings(world):
    expired = give("m-1", "old", valid=(at("2020-01-01 00:00"), at("2021-01-01 00:00")))
    code = give("m-1", "new", 1_250, min_spend_fen=5_000)
    give("m-2", "theirs")
    body = answer(world.get("/members/m-1/coupons"), 200)
    assert body["next_cursor"] is None
    assert [c["code"] for c in body["coupons"]] == [code, expired]
    first = body["coupons"][0]
    assert first == {"code": code, "kind": "monthly", "value": "12.50", "min_spend": "50.00",
                     "issued_at": "2019-12-31T16:00:00Z", "valid_from": "2019-12-31T16:00:00Z",
                     "valid_until": "2099-12-31T16:00:00Z", "state": "issued", "redeemed_at": None, "order_id": None,
                     "template": "", "stacking_group": "cash", "usage": "single"}
    assert body["coupons"][1]["state"] == "expired"
    only_expired = answer(world.get("/members/m-1/coupons", state="expired"), 200)["coupons"]
    assert [c["code"] for c in only_expired] == [expired]


def test_the_wallet_pages_with_a_cursor(world):
    codes = [give("m-1", f"c{n}") for n in range(5)]
    first = answer(world.get("/members/m-1/coupons", limit=2), 200)
    second = answer(world.get("/members/m-1/coupons", limit=2, cursor=first["next_cursor"]), 200)
    third = answer(world.get("/members/m-1/coupons", limit=2, cursor=second["next_cursor"]), 200)
    seen = [c["code"] for page in (first, second, third) for c in page["coupons"]]
    assert seen == codes[::-1] and third["next_cursor"] is None


@pytest.mark.parametrize(("query", "field"), [({"state": "used"}, "state"), ({"limit": 0}, "limit"),
                                              ({"cursor": "x"}, "cursor")])
def test_a_bad_wallet_query_is_422_naming_the_field(world, query, field):
    assert error_of(world.get("/members/m-1/coupons", **query), 422)["field"] == field


def test_a_member_token_sees_only_its_own_wallet(world):
    give("m-1", "mine")
    token = answer(world.post("/members/m-1/token", {}), 201)["token"]
    assert len(answer(world.get("/members/m-1/coupons", token=token), 200)["coupons"]) == 1
    for other in ("m-2", "nobody"):
        error = error_of(world.get(f"/members/{other}/coupons", token=token), 404)
        assert (error["code"], error["field"]) == ("unknown_member", "member")
    redeeming = world.post("/coupons/LYX/redeem", {"member": "m-1", "order_id": "o-1"}, token=token)
    assert error_of(redeeming, 403)["code"] == "forbidden"


def test_redeeming_answers_201_and_a_replay_answers_the_same(world):
    code = give("m-1", "c1")
    first = redeem(world, code)
    body = answer(first, 201)
    assert not is_replay(first)
    assert body["member"] == "m-1"
    assert (body["coupon"]["state"], body["coupon"]["order_id"], body["coupon"]["value"]) == ("redeemed", "o-1", "8.00")
    before = snapshot()
    again = redeem(world, code)
    assert is_replay(again) and answer(again, 201) == body
    assert snapshot() == before
    listed = answer(world.get("/members/m-1/coupons", state="redeemed"), 200)["coupons"]
    assert listed == [body["coupon"]]


def test_the_same_coupon_on_another_order_is_409(world):
    code = give("m-1", "c1")
    answer(redeem(world, code), 201)
    before = snapshot()
    error = error_of(redeem(world, code, order_id="o-2", amount="10.00"), 409)
    assert (error["code"], error["field"]) == ("coupon_already_redeemed", "code")
    assert snapshot() == before


def test_another_members_code_is_404_as_if_it_did_not_exist(world):
    code = give("m-1", "c1")
    before = snapshot()
    theirs = error_of(redeem(world, code, member="m-2"), 404)
    made_up = error_of(redeem(world, "LYAAAAAAAAAAAAAAAA", member="m-2"), 404)
    assert (theirs["code"], theirs["field"]) == (made_up["code"], made_up["field"]) == ("unknown_coupon", "code")
    assert snapshot() == before


def test_below_the_minimum_spend_is_422_naming_the_amount(world):
    code = give("m-1", "c1", 1_000, min_spend_fen=20_000)
    before = snapshot()
    recorded = error_of(redeem(world, code), 422)  # o-1 paid 100.00 (+10.00 face value) < 200.00
    assert (recorded["code"], recorded["field"]) == ("below_min_spend", "amount")
    missing = error_of(redeem(world, code, order_id="o-new"), 422)
    assert (missing["code"], missing["field"]) == ("invalid_input", "amount")
    assert snapshot() == before
    assert answer(redeem(world, code, order_id="o-new", amount="200.00"), 201)["coupon"]["order_id"] == "o-new"


@pytest.mark.parametrize(("body", "field"), [
    ({"order_id": "o-1"}, "member"), ({"member": "m-1"}, "order_id"),
    ({"member": "m-1", "order_id": "o-1", "amount": "1.234"}, "amount"),
    ({"member": "m-1", "order_id": "o-1", "amount": "-1.00"}, "amount"),
    ({"member": "m-1", "order_id": "o-1", "amount": "abc"}, "amount"),
    ({"member": "m/1", "order_id": "o-1"}, "member"), ({"member": "m-1", "order_id": "o 1"}, "order_id"),
])
def test_a_malformed_redemption_is_422_naming_the_field(world, body, field):
    code = give("m-1", "c1")
    before = snapshot()
    assert error_of(world.post(f"/coupons/{code}/redeem", body), 422)["field"] == field
    assert snapshot() == before


def test_redeeming_needs_the_coupons_scope(world):
    code = give("m-1", "c1")
    error = error_of(redeem(Api(key_for("reader", "members:read", "events:write")), code), 403)
    assert error["code"] == "missing_scope"


def test_a_full_refund_through_the_events_api_gives_the_coupon_back(world):
    code = give("m-1", "c1")
    answer(redeem(world, code), 201)
    answer(world.post("/events/refunds", refund("r-1", "o-1", "40.00")), 201)
    assert answer(world.get("/members/m-1/coupons"), 200)["coupons"][0]["state"] == "redeemed"
    answer(world.post("/events/refunds", refund("r-2", "o-1", "60.00")), 201)
    coupon = answer(world.get("/members/m-1/coupons"), 200)["coupons"][0]
    assert (coupon["state"], coupon["order_id"], coupon["redeemed_at"]) == ("issued", None, None)
    refused = error_of(redeem(world, code), 422)  # not again on the refunded order
    assert (refused["code"], refused["field"]) == ("order_refunded", "order_id")
