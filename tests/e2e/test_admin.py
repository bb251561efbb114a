"""The operators' console renders the ledger for staff and lets nobody edit it by hand."""

import pytest

from loyalty.services.members import register_member
from loyalty.services.orders import record_order
from loyalty.store.models import Member, RiskScore
from tests.conftest import at
from tests.service.support import order_event

PAGES = ["member", "ledgerentry", "order", "refund", "tierchange", "adjustment", "rulesetversion"]



@pytest.mark.parametrize("model", PAGES)
def test_staff_see_every_ledger_page(operator, default_rules, clock, model):
    register_member("m1", clock=clock)
    record_order(order_event("o1", "m1", at("2026-10-05 10:00"), "400"), clock=clock)
    page = operator.get(f"/admin/loyalty/{model}/")
    assert page.status_code == 200
    if model in ("member", "ledgerentry", "order"):
        assert b"m1" in page.content or b"o1" in page.content


def test_the_ledger_cannot_be_edited_by_hand(operator, default_rules, clock):
    register_member("m1", clock=clock)
    assert operator.get("/admin/loyalty/ledgerentry/add/").status_code == 403
    assert operator.post("/admin/loyalty/member/1/delete/", {"post": "yes"}).status_code == 403


def test_risk_scores_show_each_scored_member_with_an_exact_score(operator, default_rules, clock):
    register_member("m1", clock=clock)
    RiskScore.objects.create(member=Member.objects.get(external_id="m1"), as_of=at("2027-01-05 03:00"),
                             score_milli=8_125, flagged=True, reasons=["refund_rate"], computed_at=clock.now())
    page = operator.get("/admin/loyalty/riskscore/?flagged__exact=1")
    assert page.status_code == 200
    assert b"m1" in page.content and b"8.125" in page.content and b"refund_rate" in page.content
