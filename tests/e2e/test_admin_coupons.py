"""Operators find coupons in the admin by code or member, filter them by state and kind, and
cannot edit them by hand (they move only through grants, redemption and refunds)."""

import pytest
from django.conf import settings
from django.contrib.auth.models import User

from loyalty.domain.grants import coupon_code
from loyalty.services.members import register_member
from loyalty.store.models import Coupon, Member
from tests.conftest import at


@pytest.fixture
def operator(client, db):
    client.force_login(User.objects.create_superuser("ops", "ops@example.com", "secret"))
    return client


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
