"""Operators find coupons in the admin by code or member, filter them by state and kind, and
cannot edit them by hand (they move only through grants, redemption and refunds); they may
revoke unredeemed ones, with a reason, through the coupon service."""

import pytest
from django.conf import settings
from django.contrib.auth.models import Permission, User

from loyalty.domain.grants import coupon_code
from loyalty.services.members import register_member
from loyalty.store.models import Coupon, Member, OutboxEvent
from tests.conftest import at


@pytest.fixture
def coupons(default_rules, clock):
    codes = {}
    for name, kind in (("m1", "monthly"), ("m2", "birthday")):
        register_member(name, clock=clock)
        key = f"{kind}:{name}"
        codes[name] = coupon_code(key, settings.SECRET_KEY.encode())
        Coupon.objects.create(member=Member.objects.get(external_id=name), code=codes[name], key=key, kind=kind,
                              value_fen=500, issued_at=at("2027-01-01 00:00"), valid_from=at("2027-01-01 00:00"),
                              valid_until=at("2027-02-01 00:00"))
    return codes


def test_coupons_are_searched_by_code_and_member_and_filtered_by_state_and_kind(operator, coupons):
    page = operator.get("/admin/loyalty/coupon/")
    assert page.status_code == 200 and coupons["m1"].encode() in page.content
    by_code = operator.get("/admin/loyalty/coupon/", {"q": coupons["m2"]}).content
    assert coupons["m2"].encode() in by_code and coupons["m1"].encode() not in by_code
    by_member = operator.get("/admin/loyalty/coupon/", {"q": "m1"}).content
    assert coupons["m1"].encode() in by_member and coupons["m2"].encode() not in by_member
    by_kind = operator.get("/admin/loyalty/coupon/", {"kind": "birthday", "state": "issued"}).content
    assert coupons["m2"].encode() in by_kind and coupons["m1"].encode() not in by_kind


def test_coupons_cannot_be_edited_by_hand(operator, coupons):
    coupon = Coupon.objects.get(code=coupons["m1"])
    assert operator.get("/admin/loyalty/coupon/add/").status_code == 403
    assert operator.post(f"/admin/loyalty/coupon/{coupon.id}/delete/", {"post": "yes"}).status_code == 403


def revoke_selected(client, reason, *ids):
    return client.post("/admin/loyalty/coupon/", {"action": "revoke_coupons", "reason": reason,
                                                  "_selected_action": list(ids)}, follow=True)


def test_an_operator_revokes_the_selected_coupons_with_a_reason_except_redeemed_ones(operator, coupons):
    redeemed = Coupon.objects.get(code=coupons["m2"])
    Coupon.objects.filter(id=redeemed.id).update(state="redeemed", order_id="o-9")
    issued = Coupon.objects.get(code=coupons["m1"])
    nothing = revoke_selected(operator, "", issued.id)
    assert "Give a reason for revoking: nothing was revoked." in nothing.content.decode()
    assert Coupon.objects.get(id=issued.id).state == "issued"

    page = revoke_selected(operator, "sent by mistake", issued.id, redeemed.id)
    text = page.content.decode()
    assert page.status_code == 200 and "1 revoked, 0 already revoked." in text
    assert f"Not revoked: {coupons['m2']} (coupon {coupons['m2']} was redeemed on order o-9" in text
    rows = dict(Coupon.objects.values_list("code", "state"))
    assert rows == {coupons["m1"]: "revoked", coupons["m2"]: "redeemed"}
    assert Coupon.objects.filter(code=coupons["m1"], revoked_by="ops", revoke_reason="sent by mistake").exists()
    assert OutboxEvent.objects.filter(type="coupon.revoked").count() == 1
    again = revoke_selected(operator, "twice", issued.id)
    assert "0 revoked, 1 already revoked." in again.content.decode()


def test_staff_without_the_change_coupon_permission_do_not_get_the_revoke_action(client, coupons):
    viewer = User.objects.create_user("viewer", "v@example.com", "secret", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_coupon"))
    client.force_login(viewer)
    assert b"revoke_coupons" not in client.get("/admin/loyalty/coupon/").content
    revoke_selected(client, "no", Coupon.objects.get(code=coupons["m1"]).id)
    assert not Coupon.objects.filter(state="revoked").exists()
