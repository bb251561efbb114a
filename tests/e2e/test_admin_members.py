"""Operators find a member by external id, read the member's latest ledger entries (newest first),
points lots and coupons on the member's page, and adjust growth or points with a reason through
the adjustment service: the same form sent twice adjusts once; a missing reason is refused under
its field and nothing is written; viewers cannot adjust.

Under the default rules (1 growth and 1 point per yuan on weekdays), m1 pays ¥100 on Monday
2026-12-28 (o1) and ¥50 on Tuesday 2026-12-29 (o2): growth 150, points 150; two monthly
coupons, January's and February's, are in the wallet."""

from datetime import timedelta

import pytest

from loyalty.services.adjustments import adjust
from loyalty.services.members import register_member
from loyalty.services.staff import create_staff
from loyalty.store.models import Adjustment, Coupon, LedgerEntry, Member
from tests.conftest import at
from tests.service.support import pay


@pytest.fixture
def members(default_rules, clock):
    for name in ("m1", "m2"):
        register_member(name, clock=clock)
    pay("o1", "m1", at("2026-12-28 10:00"), "100", clock)
    pay("o2", "m1", at("2026-12-29 10:00"), "50", clock)
    m1 = Member.objects.get(external_id="m1")
    for code, month in (("C-JAN", "01"), ("C-FEB", "02")):
        start = at(f"2027-{month}-01 00:00")
        Coupon.objects.create(member=m1, code=code, key=f"monthly:2027-{month}:m1", kind="monthly", value_fen=500,
                              issued_at=start, valid_from=start, valid_until=start + timedelta(days=28))
    return m1


def login(client, role: str):
    create_staff(f"{role}-1", "secret-3", role)
    client.login(username=f"{role}-1", password="secret-3")
    return client


@pytest.fixture
def operator(client, members):
    return login(client, "operator")


def inline_rows(response, model: str) -> list:
    """The objects an inline shows, in its order."""
    for formset in response.context["inline_admin_formsets"]:
        if formset.formset.model._meta.model_name == model:
            return [form.instance for form in formset.formset.forms]
    raise AssertionError(f"no {model} inline")


def test_members_are_searched_by_external_id(operator, members):
    found = operator.get("/admin/loyalty/member/", {"q": "m1"})
    assert list(found.context["cl"].result_list) == [members]
    assert operator.get("/admin/loyalty/member/", {"q": "nobody"}).context["cl"].result_count == 0


def test_the_member_page_shows_the_ledger_newest_first_with_lots_and_coupons(operator, members):
    page = operator.get(f"/admin/loyalty/member/{members.pk}/change/")

    assert page.status_code == 200
    ledger = [(e.reference, e.ledger, e.delta) for e in inline_rows(page, "ledgerentry")]
    # Newest first: o2 (12-29) before o1 (12-28); within an order, the later entry (points) first.
    assert ledger == [("o2", "points", 50), ("o2", "growth", 50), ("o1", "points", 100), ("o1", "growth", 100)]
    assert [(lot.reference, lot.points) for lot in inline_rows(page, "pointslot")] == [("o2", 50), ("o1", 100)]
    assert [coupon.code for coupon in inline_rows(page, "coupon")] == ["C-FEB", "C-JAN"]
    text = page.content.decode()
    assert f"/admin/loyalty/ledgerentry/?member__id__exact={members.pk}" in text  # the full ledger
    assert f"/admin/loyalty/member/{members.pk}/adjust/" in text
    assert "-DELETE" not in text and 'name="_save"' not in text  # read-only: nothing to delete or save
    full = operator.get("/admin/loyalty/ledgerentry/", {"member__id__exact": members.pk})
    assert full.context["cl"].result_count == 4


def test_the_ledger_inline_keeps_the_latest_50_entries(operator, members, clock):
    for n in range(1, 52):
        adjust("m1", "growth", n, reason="bulk", actor="tests", adjustment_id=f"a-{n}", clock=clock)

    page = operator.get(f"/admin/loyalty/member/{members.pk}/change/")

    shown = [e.reference for e in inline_rows(page, "ledgerentry")]
    assert len(shown) == 50 and shown[0] == "a-51" and shown[-1] == "a-2"  # 55 entries: a-1, o1, o2 left out
    assert LedgerEntry.objects.filter(member=members).count() == 55


def test_an_adjustment_with_a_reason_posts_once_even_when_the_form_is_sent_twice(operator, members):
    url = f"/admin/loyalty/member/{members.pk}/adjust/"
    form = operator.get(url).context["form"]
    adjustment_id = form.initial["adjustment_id"]
    assert adjustment_id.startswith("admin-") and adjustment_id != operator.get(url).context["form"].initial[
        "adjustment_id"]  # a new one each time the form is shown
    data = {"ledger": "points", "delta": "30", "reason": "late delivery", "adjustment_id": adjustment_id}

    first = operator.post(url, data, follow=True)
    second = operator.post(url, data, follow=True)

    assert first.redirect_chain == [(f"/admin/loyalty/member/{members.pk}/change/", 302)]
    assert f"Adjustment {adjustment_id} (points +30) made." in first.content.decode()
    assert f"Adjustment {adjustment_id} (points +30) was already made." in second.content.decode()
    assert Member.objects.get(pk=members.pk).points_balance == 150 + 30
    adjustment = Adjustment.objects.get()
    assert (adjustment.delta, adjustment.reason, adjustment.actor) == (30, "late delivery", "operator-1")
    assert LedgerEntry.objects.filter(source="adjustment").count() == 1


def test_a_missing_reason_is_refused_under_its_field_and_nothing_is_written(operator, members):
    url = f"/admin/loyalty/member/{members.pk}/adjust/"
    data = {"ledger": "growth", "delta": "-20", "reason": "   ", "adjustment_id": "admin-x1"}

    page = operator.post(url, data)

    assert page.status_code == 200
    assert page.context["form"].errors == {"reason": ["Give a reason: every adjustment keeps why it was made."]}
    assert 'id="id_reason_errors"' in page.content.decode()
    assert not Adjustment.objects.exists() and Member.objects.get(pk=members.pk).growth_balance == 150


def test_a_debit_beyond_the_balance_is_refused_under_the_change(operator, members):
    url = f"/admin/loyalty/member/{members.pk}/adjust/"
    page = operator.post(url, {"ledger": "growth", "delta": "-151", "reason": "typo", "adjustment_id": "admin-x2"})

    assert page.context["form"].errors == {"delta": ["growth cannot go below zero"]}
    assert not Adjustment.objects.exists()


def test_viewers_see_members_but_cannot_adjust(client, members):
    login(client, "viewer")
    page = client.get(f"/admin/loyalty/member/{members.pk}/change/")
    assert page.status_code == 200 and b"/adjust/" not in page.content
    url = f"/admin/loyalty/member/{members.pk}/adjust/"
    assert client.get(url).status_code == 403
    data = {"ledger": "points", "delta": "5", "reason": "no", "adjustment_id": "admin-x3"}
    assert client.post(url, data).status_code == 403
    assert not Adjustment.objects.exists()
