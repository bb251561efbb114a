"""Budgets under concurrency (PostgreSQL and MariaDB, real row locks, committed transactions):
releases raced against each other and against a grant job never spend past the budget nor
issue a grant twice."""

from __future__ import annotations

from datetime import date

import pytest

from loyalty.services import grants
from loyalty.services.deferrals import release_deferred
from loyalty.store.models import BudgetSpend, Coupon, DeferredGrant, Member
from tests.conftest import at
from tests.integration.test_concurrency import WRITERS, in_parallel
from tests.service.test_grants import FEB_2027, hold, register

pytestmark = [pytest.mark.server_db, pytest.mark.django_db(transaction=True)]
RELEASE = at("2027-02-11 00:00")


@pytest.fixture
def waiting(publish, clock):
    """Ten gold members, a ¥16 budget: one issued, nine deferred; then the budget is raised to ¥96."""
    publish("default", operations={"budgets": {"gold": "16"}, "birthday_coupon": {"value": "16"}})
    names = [f"g{n}" for n in range(10)]
    register(clock, *names)
    for name in names:
        hold(name, "gold")
    grants.monthly_benefits(FEB_2027, clock=clock)
    publish("default", effective_from=at("2027-02-10 00:00"),
            operations={"budgets": {"gold": "96"}, "birthday_coupon": {"value": "16"}})
    return clock


def test_releases_raced_at_one_moment_fill_the_raised_budget_exactly_once(waiting):
    results = in_parallel(lambda _: release_deferred(RELEASE, clock=waiting))
    assert all(isinstance(r, dict) for r in results), results
    # 1600 spent on the 1st + 5 × 1600 released = 9600: the sixth waiting grant does not fit.
    assert BudgetSpend.objects.get(month="2027-02").spent_fen == 9600
    assert DeferredGrant.objects.filter(state="released").count() == 5
    assert Coupon.objects.filter(value_fen=800).count() == 2 * 6
    assert {r["released"] for r in results} == {5} and len(results) == WRITERS


def test_a_release_racing_a_grant_job_of_the_same_tier_month_never_overspends(waiting):
    Member.objects.filter(external_id__in=["g1", "g2", "g3"]).update(birthday=date(1990, 2, 11))

    def work(index: int) -> object:
        if index == 0:  # one grant job (`run_due` runs each job and moment once at a time)
            return grants.birthday(RELEASE, clock=waiting)
        return release_deferred(RELEASE, clock=waiting)

    results = in_parallel(work)
    assert all(isinstance(r, dict) for r in results), results
    spent = BudgetSpend.objects.get(month="2027-02").spent_fen
    issued = sum(Coupon.objects.filter(key__regex=r"^(monthly|birthday):").values_list("value_fen", flat=True))
    assert spent == issued <= 9600
    assert spent == 9600  # six grants of ¥16 fit, whichever came first
