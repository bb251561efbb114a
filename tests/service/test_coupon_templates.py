"""Coupon templates at work: what a coupon records when issued, once-per-member templates, one
coupon per stacking group on an order, revoking, the coupon events, the welcome pack on
registration, and a tier's entitlements in the member's status."""

from __future__ import annotations

import json
from typing import Any

import pytest

from loyalty.clock import FixedClock
from loyalty.domain.errors import LoyaltyError
from loyalty.services import grants
from loyalty.services.coupons import redeem_coupon, revoke_coupon
from loyalty.services.members import member_status, register_many, register_member
from loyalty.store.models import Coupon, Member, OutboxEvent
from tests.conftest import at
from tests.service.support import give_coupon, pay, refund


@pytest.fixture
def shop(default_rules: Any, clock: FixedClock) -> FixedClock:
    for name in ("m1", "m2"):
        register_member(name, clock=clock, registered_at=at("2026-12-01 10:00"))
    return clock




def refused(work: Any) -> LoyaltyError:
    before = (list(Coupon.objects.order_by("id").values_list()), OutboxEvent.objects.count())
    with pytest.raises(LoyaltyError) as caught:
        work()
    assert (list(Coupon.objects.order_by("id").values_list()), OutboxEvent.objects.count()) == before
    return caught.value


def events(kind: str) -> list[dict[str, Any]]:
    return [json.loads(body)["data"] for body in
            OutboxEvent.objects.filter(type=kind).order_by("id").values_list("body", flat=True)]


def test_a_monthly_grant_records_its_templates_terms_on_each_coupon(publish, clock):
    publish("default", coupons={"gold8": {"value": "8", "min_spend": "30", "stacking_group": "gold",
                                          "usage": "once_per_member"}},
            benefits={"gold": {"monthly_coupons": [{"template": "gold8", "count": 2}], "free_delivery_per_month": 1}})
    register_member("m1", clock=clock, registered_at=at("2026-12-01 10:00"))
    Member.objects.filter(external_id="m1").update(tier="gold")
    grants.monthly_benefits(at("2027-02-01 00:00"), clock=clock)
    rows = list(Coupon.objects.order_by("key").values_list("kind", "value_fen", "min_spend_fen", "template",
                                                           "stacking_group", "usage"))
    assert rows == [("monthly", 800, 3000, "gold8", "gold", "once_per_member")] * 2 + [
        ("free_delivery", 0, 0, "", "delivery", "single")]


def test_a_once_per_member_template_is_redeemed_once_until_the_coupon_comes_back(shop):
    first = give_coupon("m1", "n1", template="newcomer", usage="once_per_member")
    second = give_coupon("m1", "n2", template="newcomer", usage="once_per_member")
    theirs = give_coupon("m2", "n3", template="newcomer", usage="once_per_member")
    pay("o1", "m1", at("2027-01-04 08:00"), "92.00", shop)
    redeem_coupon(first, member="m1", order_id="o1", clock=shop)
    again = refused(lambda: redeem_coupon(second, member="m1", order_id="o2", clock=shop))
    assert (again.code, again.field) == ("template_already_used", "code")
    # Another member's use does not count; a replay of the first stands.
    assert redeem_coupon(theirs, member="m2", order_id="o9", clock=shop).coupon.state == "redeemed"
    assert redeem_coupon(first, member="m1", order_id="o1", clock=shop).replayed
    # The order fully refunded, the first coupon comes back, and the template is free again.
    refund("r1", "o1", "92.00", at("2027-01-04 08:30"), shop)
    assert redeem_coupon(second, member="m1", order_id="o2", clock=shop).coupon.state == "redeemed"


def test_one_coupon_per_stacking_group_on_an_order_and_different_groups_combine(shop):
    cash, more_cash = give_coupon("m1", "c1"), give_coupon("m1", "c2", 500)
    delivery = give_coupon("m1", "d1", 0, stacking_group="delivery")
    gift = give_coupon("m1", "p1", 0, stacking_group="")
    pay("o1", "m1", at("2027-01-04 08:00"), "92.00", shop)
    redeem_coupon(cash, member="m1", order_id="o1", clock=shop)
    conflict = refused(lambda: redeem_coupon(more_cash, member="m1", order_id="o1", clock=shop))
    assert (conflict.code, conflict.field) == ("stacking_conflict", "code")
    assert "'cash'" in conflict.message
    for code in (delivery, gift):
        assert redeem_coupon(code, member="m1", order_id="o1", clock=shop).coupon.state == "redeemed"
    # The same cash coupon group on another order is fine.
    assert redeem_coupon(more_cash, member="m1", order_id="o2", clock=shop).coupon.state == "redeemed"


def test_a_coupon_is_revoked_once_with_its_reason_and_then_cannot_be_redeemed(shop):
    code = give_coupon("m1", "c1")
    shop.at = at("2027-01-05 10:00")
    revoked = revoke_coupon(code, reason="issued by mistake", by="ops:li", clock=shop)
    assert (revoked.member, revoked.coupon.state, revoked.replayed) == ("m1", "revoked", False)
    row = Coupon.objects.get(code=code)
    assert (row.state, row.revoked_at, row.revoked_by, row.revoke_reason) == (
        "revoked", at("2027-01-05 10:00"), "ops:li", "issued by mistake")
    assert revoke_coupon(code, reason="again", by="ops:wang", clock=shop).replayed
    assert events("coupon.revoked") == [{"member": "m1", "code": code, "kind": "monthly", "value": "8.00",
                                         "template": "", "reason": "issued by mistake", "by": "ops:li",
                                         "revoked_at": "2027-01-05T02:00:00Z"}]
    assert refused(lambda: redeem_coupon(code, member="m1", order_id="o1", clock=shop)).code == "coupon_revoked"


def test_a_redeemed_coupon_cannot_be_revoked_and_bad_requests_change_nothing(shop):
    code = give_coupon("m1", "c1")
    redeem_coupon(code, member="m1", order_id="o1", clock=shop)
    error = refused(lambda: revoke_coupon(code, reason="oops", by="ops:li", clock=shop))
    assert (error.code, error.field) == ("coupon_already_redeemed", "code")
    other = give_coupon("m1", "c2")
    assert refused(lambda: revoke_coupon(other, reason="  ", by="ops:li", clock=shop)).field == "reason"
    assert refused(lambda: revoke_coupon(other, reason="x", by="", clock=shop)).field == "by"
    assert refused(lambda: revoke_coupon("LYNOPE", reason="x", by="ops", clock=shop)).code == "unknown_coupon"


def test_redeeming_and_returning_a_coupon_emit_their_events_once(shop):
    code = give_coupon("m1", "c1", template="t1")
    shop.at = at("2027-01-04 12:00")
    pay("o1", "m1", at("2027-01-04 11:50"), "92.00", shop)
    redeem_coupon(code, member="m1", order_id="o1", clock=shop)
    redeem_coupon(code, member="m1", order_id="o1", clock=shop)  # a replay: no second event
    assert events("coupon.redeemed") == [{"member": "m1", "code": code, "kind": "monthly", "value": "8.00",
                                          "template": "t1", "order_id": "o1", "redeemed_at": "2027-01-04T04:00:00Z"}]
    refund("r1", "o1", "50.00", at("2027-01-04 12:10"), shop)
    assert events("coupon.returned") == []  # a partial refund keeps the coupon redeemed
    refund("r2", "o1", "42.00", at("2027-01-04 12:20"), shop)
    refund("r2", "o1", "42.00", at("2027-01-04 12:20"), shop)  # replayed
    assert events("coupon.returned") == [{"member": "m1", "code": code, "kind": "monthly", "value": "8.00",
                                          "template": "t1", "order_id": "o1", "state": "issued"}]


def test_the_welcome_pack_is_issued_once_with_the_registration(default_rules, clock):
    first = register_member("new", clock=clock, welcome=True)
    again = register_member("new", clock=clock, welcome=True)
    assert (first.created, again.created) == (True, False)
    member_id = first.member.id
    rows = list(Coupon.objects.values_list("key", "kind", "value_fen", "min_spend_fen", "template", "issued_at",
                                           "valid_from", "valid_until"))
    # The default pack (our choice for 新人礼包): ¥5 off from ¥50, for 30 days from the registration.
    assert rows == [(f"welcome:coupon:1:{member_id}", "welcome", 500, 5000, "newcomer", at("2027-01-04 09:00"),
                     at("2027-01-04 09:00"), at("2027-02-03 09:00"))]
    [issued] = events("coupon.issued")
    assert (issued["member"], issued["reason"], [c["value"] for c in issued["coupons"]]) == ("new", "welcome", ["5.00"])
    assert OutboxEvent.objects.get(type="coupon.issued").key == f"coupon.issued:welcome:{member_id}"


def test_imports_and_plain_registrations_get_no_welcome_pack(default_rules, clock):
    register_many({"imported": at("2025-06-01 10:00")}, clock=clock)
    register_member("set-up", clock=clock)
    assert not Coupon.objects.exists() and not OutboxEvent.objects.exists()


def test_a_ruleset_without_a_welcome_pack_issues_nothing(publish, clock):
    publish("default", operations={"welcome_pack": None})
    register_member("new", clock=clock, welcome=True)
    assert not Coupon.objects.exists()


def test_the_status_shows_the_tiers_benefits_and_the_next_tiers(shop):
    Member.objects.filter(external_id="m1").update(tier="gold")
    Member.objects.filter(external_id="m2").update(tier="diamond")
    gold, diamond = member_status("m1", clock=shop), member_status("m2", clock=shop)
    assert [(c.value_fen, c.count) for c in gold.benefits.monthly_coupons] == [(800, 2)]
    assert (gold.benefits.free_delivery_per_month, gold.benefits.flags) == (1, ("refund_priority",))
    assert gold.next_tier is not None and gold.next_tier.code == "platinum"
    assert gold.next_benefits is not None
    assert (gold.next_benefits.free_delivery_per_month, gold.next_benefits.flags) == (
        3, ("dedicated_service", "refund_priority"))
    assert [(c.value_fen, c.count) for c in diamond.benefits.monthly_coupons] == [(2000, 5)]
    assert diamond.benefits.free_delivery_per_month is None  # unlimited
    assert diamond.benefits.flags == ("birthday_pack", "priority_delivery", "refund_priority")
    assert diamond.next_tier is not None and diamond.next_tier.code == "black_gold"
    assert diamond.next_benefits is not None and diamond.next_benefits.flags == (
        "custom_service", "exclusive_events", "offline_invitations", "refund_priority")
