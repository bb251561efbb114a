"""The coupon lifecycle: issued -> redeemed on an order (only by its owner, while valid, above its
minimum spend, idempotent on code and order) -> given back when the order is fully refunded
(issued while still valid, expired after). Refusals write nothing."""

from __future__ import annotations

from typing import Any

import pytest

from loyalty.clock import FixedClock
from loyalty.domain.errors import LoyaltyError
from loyalty.services import grants
from loyalty.services.coupons import redeem_coupon, wallet
from loyalty.services.members import register_member
from loyalty.services.refunds import record_refunds
from loyalty.store.models import Coupon, Member
from tests.conftest import at
from tests.service.support import give_coupon, ledger_problems, pay, refund, refund_event, snapshot


@pytest.fixture
def shop(default_rules: Any, clock: FixedClock) -> FixedClock:
    for name in ("m1", "m2"):
        register_member(name, clock=clock, registered_at=at("2026-12-01 10:00"))
    return clock




def stored(code: str) -> tuple[Any, ...]:
    return Coupon.objects.filter(code=code).values_list("state", "order_id", "redeemed_at").get()


def everything() -> dict[str, Any]:
    """`snapshot()` and every coupon row: the "nothing was written" check of this file."""
    return {**snapshot(), "coupons": list(Coupon.objects.order_by("id").values_list())}


def refused(work: Any) -> LoyaltyError:
    """The error `work` raises, having checked that it changed nothing."""
    before = everything()
    with pytest.raises(LoyaltyError) as caught:
        work()
    assert everything() == before
    return caught.value


def test_a_monthly_coupon_is_redeemed_and_given_back_when_its_order_is_fully_refunded(shop):
    Member.objects.filter(external_id="m1").update(tier="gold")
    grants.monthly_benefits(at("2027-02-01 00:00"), clock=shop)
    code = Coupon.objects.get(member__external_id="m1", kind="monthly", key__contains=":coupon:1:").code
    shop.at = at("2027-02-03 12:00")
    pay("o1", "m1", at("2027-02-03 11:50"), "92.00", shop)

    redeemed = redeem_coupon(code, member="m1", order_id="o1", clock=shop)
    assert (redeemed.coupon.state, redeemed.coupon.order_id, redeemed.coupon.redeemed_at) == (
        "redeemed", "o1", at("2027-02-03 12:00"))
    assert (redeemed.coupon.value_fen, redeemed.replayed) == (800, False)

    shop.advance(days=1)
    refund("r1", "o1", "92.00", at("2027-02-04 09:00"), shop)
    assert stored(code) == ("issued", "", None)
    assert wallet("m1", state="issued", clock=shop).coupons[-1].code == code
    assert ledger_problems("m1") == []
    # Back in the wallet, it pays for the next order.
    pay("o2", "m1", at("2027-02-05 10:00"), "50.00", shop)
    assert redeem_coupon(code, member="m1", order_id="o2", clock=shop).coupon.order_id == "o2"


def test_a_partial_refund_keeps_the_coupon_redeemed_until_the_refund_that_completes_the_order(shop):
    code = give_coupon("m1", "c1")
    pay("o1", "m1", at("2027-01-04 08:00"), "100.00", shop)
    redeem_coupon(code, member="m1", order_id="o1", clock=shop)
    refund("r1", "o1", "40.00", at("2027-01-04 10:00"), shop)
    assert stored(code)[:2] == ("redeemed", "o1")
    refund("r2", "o1", "60.00", at("2027-01-04 11:00"), shop)
    assert stored(code) == ("issued", "", None)


def test_a_cancellation_refunds_the_whole_order_and_gives_the_coupon_back(shop):
    code = give_coupon("m1", "c1")
    pay("o1", "m1", at("2027-01-04 08:00"), "100.00", shop)
    redeem_coupon(code, member="m1", order_id="o1", clock=shop)
    refund("cancel-o1", "o1", "100.00", at("2027-01-04 08:05"), shop)
    assert stored(code)[0] == "issued"


def test_two_refunds_completing_an_order_in_one_batch_give_the_coupon_back_once(shop):
    code = give_coupon("m1", "c1")
    pay("o1", "m1", at("2027-01-04 08:00"), "100.00", shop)
    redeem_coupon(code, member="m1", order_id="o1", clock=shop)
    outcomes = record_refunds([refund_event("r1", "o1", "30.00", at("2027-01-04 10:00")),
                               refund_event("r2", "o1", "70.00", at("2027-01-04 10:01"))], clock=shop)
    assert not any(isinstance(o, LoyaltyError) for o in outcomes)
    assert stored(code) == ("issued", "", None)


def test_a_coupon_whose_validity_passed_before_the_full_refund_becomes_expired(shop):
    code = give_coupon("m1", "c1")
    pay("o1", "m1", at("2027-01-30 08:00"), "100.00", shop)
    shop.at = at("2027-01-30 09:00")
    redeem_coupon(code, member="m1", order_id="o1", clock=shop)
    shop.at = at("2027-02-01 00:00")  # valid_until is exclusive
    refund("r1", "o1", "100.00", at("2027-01-31 23:00"), shop)
    assert stored(code) == ("expired", "", None)
    assert refused(lambda: redeem_coupon(code, member="m1", order_id="o2", clock=shop)).code == "coupon_expired"


def test_a_replayed_refund_gives_nothing_back_again(shop):
    code = give_coupon("m1", "c1")
    pay("o1", "m1", at("2027-01-04 08:00"), "100.00", shop)
    pay("o2", "m1", at("2027-01-04 08:30"), "100.00", shop)
    redeem_coupon(code, member="m1", order_id="o1", clock=shop)
    refund("r1", "o1", "100.00", at("2027-01-04 10:00"), shop)
    redeem_coupon(code, member="m1", order_id="o2", clock=shop)
    before = everything()
    assert refund("r1", "o1", "100.00", at("2027-01-04 10:00"), shop).replayed
    assert everything() == before
    assert stored(code)[:2] == ("redeemed", "o2")


def test_an_expired_coupon_cannot_be_redeemed(shop):
    code = give_coupon("m1", "c1", valid=(at("2026-12-01 00:00"), at("2027-01-01 00:00")))
    error = refused(lambda: redeem_coupon(code, member="m1", order_id="o1", amount_fen=10_000, clock=shop))
    assert (error.code, error.field) == ("coupon_expired", "code")


def test_a_coupon_is_not_redeemable_before_its_validity_starts_nor_once_revoked(shop):
    early = give_coupon("m1", "c1", valid=(at("2027-02-01 00:00"), at("2027-03-01 00:00")))
    revoked = give_coupon("m1", "c2", state="revoked")
    assert refused(lambda: redeem_coupon(early, member="m1", order_id="o1", clock=shop)).code == "coupon_not_yet_valid"
    assert refused(lambda: redeem_coupon(revoked, member="m1", order_id="o1", clock=shop)).code == "coupon_revoked"


def test_a_replay_answers_the_first_redemption_and_changes_nothing(shop):
    code = give_coupon("m1", "c1")
    first = redeem_coupon(code, member="m1", order_id="o1", clock=shop)
    shop.at = at("2027-03-01 00:00")  # long after its validity: a replay still answers the first
    before = everything()
    again = redeem_coupon(code, member="m1", order_id="o1", amount_fen=1, clock=shop)
    assert everything() == before
    assert again.replayed and again.coupon == first.coupon


def test_the_same_coupon_on_another_order_is_a_conflict(shop):
    code = give_coupon("m1", "c1")
    redeem_coupon(code, member="m1", order_id="o1", clock=shop)
    error = refused(lambda: redeem_coupon(code, member="m1", order_id="o2", clock=shop))
    assert (error.code, error.field) == ("coupon_already_redeemed", "code")


def test_another_members_code_answers_as_an_unknown_one(shop):
    code = give_coupon("m1", "c1")
    theirs = refused(lambda: redeem_coupon(code, member="m2", order_id="o1", clock=shop))
    made_up = refused(lambda: redeem_coupon("LYAAAAAAAAAAAAAAAA", member="m2", order_id="o1", clock=shop))
    nobody = refused(lambda: redeem_coupon(code, member="nobody", order_id="o1", clock=shop))
    assert {(e.code, e.field, e.message.replace(code, "X").replace("LYAAAAAAAAAAAAAAAA", "X"))
            for e in (theirs, made_up, nobody)} == {("unknown_coupon", "code", "unknown coupon 'X'")}


def test_the_minimum_spend_is_the_recorded_orders_paid_amount_plus_the_face_value(shop):
    code = give_coupon("m1", "c1", value_fen=1_000, min_spend_fen=10_000)  # 满100减10
    pay("short", "m1", at("2027-01-04 08:00"), "89.99", shop)
    pay("enough", "m1", at("2027-01-04 08:10"), "90.00", shop)
    error = refused(lambda: redeem_coupon(code, member="m1", order_id="short", amount_fen=50_000, clock=shop))
    assert (error.code, error.field) == ("below_min_spend", "amount")
    assert redeem_coupon(code, member="m1", order_id="enough", clock=shop).coupon.order_id == "enough"


def test_an_order_not_recorded_yet_is_judged_on_the_amount_sent(shop):
    code = give_coupon("m1", "c1", value_fen=1_000, min_spend_fen=10_000)
    missing = refused(lambda: redeem_coupon(code, member="m1", order_id="o1", clock=shop))
    assert (missing.code, missing.field) == ("invalid_input", "amount")
    below = refused(lambda: redeem_coupon(code, member="m1", order_id="o1", amount_fen=9_999, clock=shop))
    assert below.code == "below_min_spend"
    assert redeem_coupon(code, member="m1", order_id="o1", amount_fen=10_000, clock=shop).coupon.state == "redeemed"
    # Without a minimum, no amount is needed.
    assert redeem_coupon(give_coupon("m1", "c2"), member="m1", order_id="o2", clock=shop).coupon.state == "redeemed"


def test_an_order_of_another_member_or_fully_refunded_takes_no_coupon(shop):
    code = give_coupon("m1", "c1")
    pay("theirs", "m2", at("2027-01-04 08:00"), "100.00", shop)
    pay("gone", "m1", at("2027-01-04 08:00"), "100.00", shop)
    refund("r1", "gone", "100.00", at("2027-01-04 08:30"), shop)
    other = refused(lambda: redeem_coupon(code, member="m1", order_id="theirs", clock=shop))
    gone = refused(lambda: redeem_coupon(code, member="m1", order_id="gone", clock=shop))
    assert {(other.code, other.field), (gone.code, gone.field)} == {
        ("order_of_another_member", "order_id"), ("order_refunded", "order_id")}


@pytest.mark.parametrize(("field", "kwargs"), [
    ("code", {"code": " "}), ("member", {"member": ""}), ("order_id", {"order_id": "o\x00"}),
])
def test_malformed_input_names_its_field(shop, field, kwargs):
    args = {"code": give_coupon("m1", "c1"), "member": "m1", "order_id": "o1", **kwargs}
    error = refused(lambda: redeem_coupon(args.pop("code"), clock=shop, **args))
    assert (error.code, error.field) == ("invalid_input", field)


def test_the_wallet_shows_newest_first_a_page_at_a_time_and_expiry_as_it_happens(shop):
    old = give_coupon("m1", "dec", valid=(at("2026-12-01 00:00"), at("2027-01-01 00:00")))
    used = give_coupon("m1", "jan-1")
    fresh = give_coupon("m1", "jan-2", value_fen=500, min_spend_fen=3_000)
    give_coupon("m2", "theirs")
    redeem_coupon(used, member="m1", order_id="o1", clock=shop)

    first = wallet("m1", limit=2, clock=shop)
    assert [c.code for c in first.coupons] == [fresh, used] and first.next_cursor is not None
    rest = wallet("m1", limit=2, before_id=first.next_cursor, clock=shop)
    assert ([c.code for c in rest.coupons], rest.next_cursor) == ([old], None)
    assert [c.state for c in first.coupons + rest.coupons] == ["issued", "redeemed", "expired"]
    assert Coupon.objects.get(code=old).state == "issued"  # shown expired: nothing had to write it

    assert [c.code for c in wallet("m1", state="expired", clock=shop).coupons] == [old]
    assert [c.code for c in wallet("m1", state="issued", clock=shop).coupons] == [fresh]
    shop.at = at("2027-02-01 00:00")
    assert [c.code for c in wallet("m1", state="expired", clock=shop).coupons] == [fresh, old]
    assert wallet("m1", state="issued", clock=shop).coupons == []
    assert [c.code for c in wallet("m1", state="redeemed", clock=shop).coupons] == [used]


def test_the_wallet_of_an_unknown_member_or_state_is_refused(shop):
    assert refused(lambda: wallet("nobody", clock=shop)).code == "unknown_member"
    assert refused(lambda: wallet("m1", state="used", clock=shop)).field == "state"
