"""Templates, revoking and entitlements over HTTP: the new refusals of a redemption (409
`template_already_used`, 409 `stacking_conflict`, 422 `coupon_revoked`), the welcome pack of a
member registered through the API, and the tier benefits in the member's status."""

from __future__ import annotations

from typing import Any

import pytest
from django.conf import settings

from loyalty.domain.grants import coupon_code
from loyalty.services.coupons import revoke_coupon
from loyalty.store.models import Coupon, Member, OutboxEvent
from tests.api.support import Api, answer, error_of, is_replay, order, snapshot
from tests.conftest import at

pytestmark = pytest.mark.django_db
LONG = (at("2020-01-01 00:00"), at("2100-01-01 00:00"))  # redemption is judged at the real clock's now


def give(member: str, key: str, value_fen: int = 800, **fields: Any) -> str:
    code = coupon_code(key, settings.SECRET_KEY.encode())
    Coupon.objects.create(member=Member.objects.get(external_id=member), code=code, key=key, kind="monthly",
                          value_fen=value_fen, issued_at=LONG[0], valid_from=LONG[0], valid_until=LONG[1],
                          ruleset_version=1, **fields)
    return code


def redeem(api: Api, code: str, order_id: str = "o-1") -> Any:
    return api.post(f"/coupons/{code}/redeem", {"member": "m-1", "order_id": order_id})


@pytest.fixture
def world(shop: Api) -> Api:
    answer(shop.post("/events/orders", order("o-1", amount="100.00")), 201)
    return shop


def test_a_second_coupon_of_a_once_per_member_template_is_409(world):
    first = give("m-1", "n1", template="newcomer", usage="once_per_member")
    second = give("m-1", "n2", template="newcomer", usage="once_per_member")
    answer(redeem(world, first), 201)
    before = snapshot()
    error = error_of(redeem(world, second, order_id="o-2"), 409)
    assert (error["code"], error["field"]) == ("template_already_used", "code")
    assert snapshot() == before


def test_two_coupons_of_one_stacking_group_on_an_order_is_409_naming_the_group(world):
    answer(redeem(world, give("m-1", "c1")), 201)
    more_cash = give("m-1", "c2", 500)
    before = snapshot()
    error = error_of(redeem(world, more_cash), 409)
    assert (error["code"], error["field"]) == ("stacking_conflict", "code") and "'cash'" in error["message"]
    assert snapshot() == before
    delivery = answer(redeem(world, give("m-1", "d1", 0, stacking_group="delivery")), 201)
    assert (delivery["coupon"]["stacking_group"], delivery["coupon"]["state"]) == ("delivery", "redeemed")


def test_a_revoked_coupon_is_422_and_shows_as_revoked_in_the_wallet(world):
    code = give("m-1", "c1")
    revoke_coupon(code, reason="sent to the wrong member", by="ops:li")
    error = error_of(redeem(world, code), 422)
    assert (error["code"], error["field"]) == ("coupon_revoked", "code")
    shown = answer(world.get("/members/m-1/coupons", state="revoked"), 200)["coupons"]
    assert [(c["code"], c["state"]) for c in shown] == [(code, "revoked")]


def test_a_member_registered_through_the_api_gets_the_welcome_pack_once(shop):
    again = shop.post("/members", {"external_id": "m-1", "birthday": "1990-05-17"})
    assert answer(again, 201) and is_replay(again)
    wallet = answer(shop.get("/members/m-1/coupons"), 200)["coupons"]
    assert [(c["kind"], c["value"], c["min_spend"], c["template"], c["usage"], c["state"]) for c in wallet] == [
        ("welcome", "5.00", "50.00", "newcomer", "single", "issued")]
    assert OutboxEvent.objects.filter(type="coupon.issued").count() == 1


def test_the_status_shows_the_current_and_the_next_tiers_benefits(shop):
    Member.objects.filter(external_id="m-1").update(tier="gold")
    body = answer(shop.get("/members/m-1"), 200)
    assert body["benefits"] == {"monthly_coupons": [{"value": "8.00", "count": 2, "min_spend": "0.00"}],
                                "free_delivery_per_month": 1, "discount": "0", "flags": ["refund_priority"]}
    assert body["next_tier"] == {"code": "platinum", "name": "铂金", "benefits": {
        "monthly_coupons": [{"value": "12.00", "count": 3, "min_spend": "0.00"}], "free_delivery_per_month": 3,
        "discount": "0", "flags": ["dedicated_service", "refund_priority"]}}


def test_a_diamond_members_status_shows_unlimited_free_delivery_and_its_flags(shop):
    Member.objects.filter(external_id="m-1").update(tier="diamond")
    body = answer(shop.get("/members/m-1"), 200)
    assert body["benefits"] == {"monthly_coupons": [{"value": "20.00", "count": 5, "min_spend": "0.00"}],
                                "free_delivery_per_month": "unlimited", "discount": "0",
                                "flags": ["birthday_pack", "priority_delivery", "refund_priority"]}
    assert body["next_tier"]["code"] == "black_gold"
    assert body["next_tier"]["benefits"]["free_delivery_per_month"] == "unlimited"
