"""Coupons under concurrency (PostgreSQL and MariaDB, real row locks, committed transactions):
one coupon raced for several orders is redeemed exactly once; raced for one order it is
redeemed once and answered as a replay to every other writer; a redemption racing the full
refund of its order never leaves the coupon spent on a refunded order."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings

from loyalty.domain.errors import LoyaltyError
from loyalty.domain.events import RefundEvent
from loyalty.domain.grants import coupon_code
from loyalty.services.coupons import redeem_coupon
from loyalty.services.members import register_member
from loyalty.services.orders import record_order
from loyalty.services.refunds import record_refund
from loyalty.store.models import Coupon, Member
from tests.conftest import at
from tests.integration.test_concurrency import MONDAY, WRITERS, in_parallel, order

pytestmark = [pytest.mark.server_db, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def shop(publish, clock):
    publish("default")
    register_member("m1", clock=clock)
    return clock


def give(key: str) -> str:
    code = coupon_code(key, settings.SECRET_KEY.encode())
    Coupon.objects.create(member=Member.objects.get(external_id="m1"), code=code, key=key, kind="monthly",
                          value_fen=800, issued_at=at("2027-01-01 00:00"), valid_from=at("2027-01-01 00:00"),
                          valid_until=at("2027-02-01 00:00"), ruleset_version=1)
    return code


def test_one_coupon_raced_for_several_orders_is_redeemed_exactly_once(shop):
    code = give("c1")
    results = in_parallel(lambda i: redeem_coupon(code, member="m1", order_id=f"o{i}", clock=shop))
    won = [r for r in results if not isinstance(r, LoyaltyError)]
    lost = [r for r in results if isinstance(r, LoyaltyError)]
    assert len(won) == 1 and not won[0].replayed
    assert {error.code for error in lost} == {"coupon_already_redeemed"} and len(lost) == WRITERS - 1
    assert Coupon.objects.get(code=code).order_id == won[0].coupon.order_id


def test_one_coupon_raced_for_one_order_is_redeemed_once_and_replayed_to_the_rest(shop):
    code = give("c1")
    results = in_parallel(lambda _: redeem_coupon(code, member="m1", order_id="o1", clock=shop))
    assert sorted(r.replayed for r in results) == [False] + [True] * (WRITERS - 1)
    assert len({r.coupon for r in results}) == 1


def test_a_redemption_racing_the_full_refund_of_its_order_never_spends_the_coupon_on_it(shop):
    for round_ in range(5):
        code = give(f"c{round_}")
        record_order(order(f"o{round_}", "m1", 10_000), clock=shop)
        refund = RefundEvent(f"r{round_}", f"o{round_}", 10_000, MONDAY + timedelta(hours=1))

        def work(index: int, code: str = code, round_: int = round_, refund: RefundEvent = refund) -> object:
            if index == 0:
                return record_refund(refund, clock=shop)
            return redeem_coupon(code, member="m1", order_id=f"o{round_}", clock=shop)

        results = in_parallel(work, writers=2)
        coupon = Coupon.objects.get(code=code)
        # Either the redemption came first and the refund gave the coupon back, or the refund came
        # first and the redemption was refused: the coupon is issued and unspent either way.
        assert (coupon.state, coupon.order_id) == ("issued", ""), results
        if isinstance(results[1], LoyaltyError):
            assert results[1].code == "order_refunded"
