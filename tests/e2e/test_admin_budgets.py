"""Budgets in the operators' console: spend against budget, deferred grants with a release
action, alerts to acknowledge; nothing edited by hand."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from loyalty.services import grants
from loyalty.store.models import BudgetSpend, DeferredGrant, OpsAlert
from tests.service.test_grants import FEB_2027, hold, register


@pytest.fixture
def deferred(publish, clock):
    publish("default", operations={"budgets": {"gold": "16"}})
    register(clock, "g1", "g2")
    hold("g1", "gold")
    hold("g2", "gold")
    grants.monthly_benefits(FEB_2027, clock=clock)


def test_the_budget_page_shows_budget_spent_remaining_and_deferrals(operator, deferred):
    page = operator.get("/admin/loyalty/budgetspend/")
    assert page.status_code == 200
    text = page.content.decode()
    # budget 16.00, spent 16.00, remaining 0.00, 1 deferred worth 16.00, issued 16.00, redeemed 0.00
    assert "2027-02" in text and "16.00" in text and "0.00" in text
    assert operator.get("/admin/loyalty/budgetspend/add/").status_code == 403
    spend = BudgetSpend.objects.get()
    operator.post(f"/admin/loyalty/budgetspend/{spend.id}/change/", {"spent_fen": 0})
    spend.refresh_from_db()
    assert spend.spent_fen == 1600


def test_the_release_action_runs_the_release_and_says_what_it_did(operator, deferred):
    waiting = DeferredGrant.objects.get()
    answer = operator.post("/admin/loyalty/deferredgrant/", {"action": "release_now",
                                                            "_selected_action": [waiting.id]}, follow=True)
    assert "0 released (0 coupons), 0 lapsed, 1 still waiting." in answer.content.decode()


def test_an_operator_acknowledges_an_alert_once(operator, deferred):
    alert = OpsAlert.objects.get()
    assert "Budget exceeded: gold 2027-02" in operator.get("/admin/loyalty/opsalert/").content.decode()
    operator.post("/admin/loyalty/opsalert/", {"action": "acknowledge", "_selected_action": [alert.id]})
    alert.refresh_from_db()
    assert alert.acknowledged_by == "ops" and alert.acknowledged_at is not None
    first = alert.acknowledged_at
    User.objects.create_superuser("li", "li@example.com", "secret")
    operator.login(username="li", password="secret")
    operator.post("/admin/loyalty/opsalert/", {"action": "acknowledge", "_selected_action": [alert.id]})
    alert.refresh_from_db()
    assert (alert.acknowledged_by, alert.acknowledged_at) == ("ops", first)
