"""A member's whole benefit life through the API, under the default ruleset, as the shop's
platform and the scheduler see it: the welcome pack on registration, three orders to gold, the
monthly coupons and free delivery of the 1st, a member-day quote that uses the free delivery,
the birthday coupon, a coupon spent on an order that is then refunded and given back, and
points spent on a reward, soonest-expiring lots first.

The server's clock is the one clock every service reads (`loyalty.clock.system_clock`); the
test sets it, as a scheduler's clock would move, so that validity is judged where the story is.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from loyalty.clock import FixedClock, SystemClock
from loyalty.services.jobs import run_due
from loyalty.store.models import Reward
from tests.api.support import Api, answer, error_of, order, refund
from tests.conftest import at

pytestmark = pytest.mark.django_db

MEMBER = "m-life"


@pytest.fixture
def server_clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[FixedClock]:
    moving = FixedClock(at("2027-01-04 10:00"))
    monkeypatch.setattr(SystemClock, "now", lambda self: moving.now())
    yield moving


def wallet(api: Api) -> dict[str, dict[str, Any]]:
    return {c["code"]: c for c in answer(api.get(f"/members/{MEMBER}/coupons"), 200)["coupons"]}


def of_kind(coupons: dict[str, dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [c for c in coupons.values() if c["kind"] == kind]


def redeem(api: Api, code: str, order_id: str) -> Any:
    return api.post(f"/coupons/{code}/redeem", {"member": MEMBER, "order_id": order_id})


def test_a_members_benefit_life(default_rules, api, server_clock):
    # Registration: the welcome pack (one ¥5 coupon for orders from ¥50, 30 days).
    answer(api.post("/members", {"external_id": MEMBER, "birthday": "1990-02-14"}), 201)
    [welcome] = of_kind(wallet(api), "welcome")
    assert (welcome["value"], welcome["min_spend"], welcome["state"]) == ("5.00", "50.00", "issued")

    # Three orders (¥120 + ¥300 + ¥500 = ¥920: gold needs 3 orders or ¥800); the welcome coupon on
    # the first, recorded order: paid 120 + face value 5 = 125 ≥ 50.
    answer(api.post("/events/orders", order("o-1", MEMBER, "120.00", "2027-01-04T10:05:00+08:00")), 201)
    assert answer(redeem(api, welcome["code"], "o-1"), 201)["coupon"]["state"] == "redeemed"
    answer(api.post("/events/orders", order("o-2", MEMBER, "300.00", "2027-01-11T10:00:00+08:00")), 201)
    answer(api.post("/events/orders", order("o-3", MEMBER, "500.00", "2027-01-18T10:00:00+08:00")), 201)
    assert answer(api.get(f"/members/{MEMBER}"), 200)["tier"]["code"] == "bronze"  # tiers move on the 1st

    # The 1st of February: the evaluation makes the member gold, then gold's monthly benefits
    # (two ¥8 coupons and one free delivery) are issued, valid for February.
    server_clock.at = at("2027-02-01 00:00").replace(second=30)
    assert not run_due(server_clock.now(), clock=server_clock).failed
    server_clock.at = at("2027-02-03 10:00")  # a Wednesday in Shanghai: the member day
    status = answer(api.get(f"/members/{MEMBER}"), 200)
    assert status["tier"]["code"] == "gold"
    assert status["benefits"]["free_delivery_per_month"] == 1
    assert status["benefits"]["monthly_coupons"] == [{"value": "8.00", "count": 2, "min_spend": "0.00"}]
    coupons = wallet(api)
    monthly = of_kind(coupons, "monthly")
    [delivery] = of_kind(coupons, "free_delivery")
    assert sorted(c["value"] for c in monthly) == ["8.00", "8.00"]
    assert {c["valid_until"] for c in [*monthly, delivery]} == {"2027-02-28T16:00:00Z"}  # 1 March 00:00 local

    # A member-day quote with the free delivery: ¥100 of goods − 12% = ¥88, the ¥8 fee waived.
    # The first order after the upgrade earns base growth × 1.5: floor(88 × 1.5) = 132.
    cart = {"member": MEMBER, "lines": [{"sku": "tea", "unit_price": "50.00", "quantity": 2}],
            "delivery_fee": "8.00", "coupon": delivery["code"]}
    quote = answer(api.post("/quotes", cart), 200)
    assert (quote["applied"], quote["discounts"]["member_day"]) == ("member_day", "12.00")
    assert quote["goods_total"] == "88.00"
    assert (quote["delivery_waived_by"], quote["total"]) == ("coupon", "88.00")
    assert quote["earns"] == {"growth": 132, "points": 88}
    growth_before = answer(api.get(f"/members/{MEMBER}"), 200)["growth_balance"]
    answer(api.post("/events/orders", order("o-4", MEMBER, "88.00", "2027-02-03T10:01:00+08:00",
                                            quote_id=quote["quote_id"])), 201)
    assert answer(api.get(f"/members/{MEMBER}"), 200)["growth_balance"] - growth_before == 132
    answer(redeem(api, delivery["code"], "o-4"), 201)
    # The month's one free delivery is used: the next quote charges the fee.
    again = answer(api.post("/quotes", {**cart, "coupon": None}), 200)
    assert (again["delivery_waived"], again["total"]) == (False, "96.00")

    # The birthday (14 February): the birthday coupon (¥10, 30 days; gold has no birthday pack).
    server_clock.at = at("2027-02-14 00:00").replace(second=30)
    assert not run_due(server_clock.now(), clock=server_clock).failed
    [birthday] = of_kind(wallet(api), "birthday")
    assert (birthday["value"], birthday["state"]) == ("10.00", "issued")
    assert not of_kind(wallet(api), "birthday_pack")

    # A ¥8 coupon spent on an order; a second cash coupon on the same order is refused (one per
    # stacking group); the order is refunded in full and the coupon comes back, still valid.
    server_clock.at = at("2027-02-15 10:00")
    answer(api.post("/events/orders", order("o-5", MEMBER, "60.00", "2027-02-15T09:00:00+08:00")), 201)
    first, second = (c["code"] for c in monthly)
    assert answer(redeem(api, first, "o-5"), 201)["coupon"]["order_id"] == "o-5"
    assert error_of(redeem(api, second, "o-5"), 409)["code"] == "stacking_conflict"
    answer(api.post("/events/refunds", refund("r-5", "o-5", "60.00", "2027-02-15T11:00:00+08:00")), 201)
    returned = wallet(api)[first]
    assert (returned["state"], returned["order_id"], returned["redeemed_at"]) == ("issued", None, None)
    answer(api.post("/events/orders", order("o-6", MEMBER, "70.00", "2027-02-16T09:00:00+08:00")), 201)
    server_clock.at = at("2027-02-16 10:00")
    assert answer(redeem(api, first, "o-6"), 201)["coupon"]["order_id"] == "o-6"

    # Points on a reward: the January orders' 920 points (spendable after 7 days, expiring at the
    # end of 2027, all at the same instant) are drawn earliest earned first: 120, 300, then 80.
    Reward.objects.create(code="mug", name="Mug", kind="goods", points_cost=500,
                          created_at=server_clock.now(), updated_at=server_clock.now())
    spent = answer(api.post(f"/members/{MEMBER}/points/redeem", {"redemption_id": "rd-1", "reward": "mug"}), 201)
    assert spent["points"] == 500
    assert [lot["points"] for lot in spent["lots"]] == [120, 300, 80]
    status = answer(api.get(f"/members/{MEMBER}"), 200)
    assert status["points_balance"] == spent["balance_after"]
