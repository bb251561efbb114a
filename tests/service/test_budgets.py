"""Budgets per tier per month: grants that do not fit are deferred (never dropped), the first
deferral of a tier-month raises one alert and one webhook, the release job issues deferred
grants under their own keys once the budget allows or lapses them, and the report adds up."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pytest
from django.db import IntegrityError, connection
from django.test.utils import CaptureQueriesContext

from loyalty.clock import FixedClock
from loyalty.services import grants
from loyalty.services.budget_report import budget_report
from loyalty.services.coupons import redeem_coupon
from loyalty.services.deferrals import release_deferred
from loyalty.services.jobs import run_due
from loyalty.store.models import BudgetSpend, Coupon, DeferredGrant, Member, OpsAlert, OutboxEvent, TierChange
from tests.conftest import at
from tests.service.support import member
from tests.service.test_grants import FEB_2027, code_of, coupons, events, grant_state, hold, register

MARCH_2027 = at("2027-03-01 00:00")


@pytest.fixture
def budgeted(publish, clock):
    """Gold may spend ¥16 a month: one gold member's two ¥8 coupons."""
    publish("default", operations={"budgets": {"gold": "16"}})
    return clock


def golds(clock: Any, *names: str) -> None:
    register(clock, *names)
    for name in names:
        hold(name, "gold")


def state() -> list[Any]:
    """The grants' rows and everything budgets write: what two runs that should agree agree on."""
    deferrals = list(DeferredGrant.objects.order_by("key").values_list(
        "member_id", "key", "tier", "month", "reason", "drafts", "cost_fen", "valid_until", "ruleset_version", "state",
        "created_at", "closed_at"))
    spends = list(BudgetSpend.objects.order_by("tier", "month").values_list("tier", "month", "spent_fen", "alerted_at"))
    alerts = list(OpsAlert.objects.order_by("key").values_list("key", "kind", "subject", "message", "created_at"))
    return [grant_state(), deferrals, spends, alerts]


def spent(tier: str = "gold", month: str = "2027-02") -> int:
    return BudgetSpend.objects.get(tier=tier, month=month).spent_fen


# --- deferral ------------------------------------------------------------------------------------

def test_a_16_yuan_gold_budget_issues_the_first_members_2_x_8_yuan_and_defers_the_second_whole(budgeted):
    golds(budgeted, "g1", "g2")
    counts = grants.monthly_benefits(FEB_2027, clock=budgeted)
    # g1: 0 + 1600 <= 1600, issued (with its free delivery); g2: 1600 + 1600 > 1600, deferred whole.
    assert counts == {"members": 1, "coupons": 3, "events": 1, "deferred": 1}
    assert [kind for _, kind, *_ in coupons("g1")] == ["monthly", "monthly", "free_delivery"]
    assert coupons("g2") == []
    assert set(events("coupon.issued")) == {"g1"}
    assert spent() == 1600
    g2 = member("g2").id
    deferral = DeferredGrant.objects.get()
    assert (deferral.key, deferral.member_id, deferral.tier, deferral.month, deferral.reason, deferral.cost_fen,
            deferral.state, deferral.created_at, deferral.valid_until, deferral.ruleset_version) == (
        f"monthly:2027-02:{g2}", g2, "gold", "2027-02", "monthly", 1600, "deferred", FEB_2027, MARCH_2027, 1)
    assert [(d["key"], d["kind"], d["value_fen"]) for d in deferral.drafts] == [
        (f"monthly:2027-02:coupon:1:{g2}", "monthly", 800), (f"monthly:2027-02:coupon:2:{g2}", "monthly", 800),
        (f"monthly:2027-02:free_delivery:1:{g2}", "free_delivery", 0)]


def test_grants_are_decided_in_member_id_order_and_a_tier_without_a_budget_is_not_capped(budgeted):
    golds(budgeted, "g1", "g2", "g3")
    register(budgeted, "s1")
    hold("s1", "silver")
    assert grants.monthly_benefits(FEB_2027, clock=budgeted, chunk=2)["deferred"] == 2
    assert [name for name in ("g1", "g2", "g3") if coupons(name)] == ["g1"]
    assert len(coupons("s1")) == 1 and not BudgetSpend.objects.filter(tier="silver").exists()


def test_a_grant_that_costs_nothing_is_never_deferred(publish, clock):
    publish("default", operations={"budgets": {"gold": "0"}})
    golds(clock, "g1")
    register(clock, "d1", birthday=date(1990, 5, 20))
    hold("d1", "diamond")
    publish("default", effective_from=at("2027-05-01 00:00"),
            operations={"budgets": {"diamond": "0"}, "birthday_coupon": None})
    grants.birthday(at("2027-05-20 00:00"), clock=clock)  # only the pack, worth 0 at issue
    assert [kind for _, kind, *_ in coupons("d1")] == ["birthday_pack"]
    assert not DeferredGrant.objects.exists()


def test_a_deferred_warning_still_tells_the_member_without_the_coupon(publish, clock):
    publish("default", operations={"budgets": {"gold": "0"}})
    golds(clock, "g1")
    hold("g1", "gold", at("2027-02-01 00:00"))
    counts = grants.downgrade_warnings(at("2027-01-10 00:00"), clock=clock)
    assert counts == {"members": 1, "coupons": 0, "events": 1, "deferred": 1}
    warning = events("member.downgrade_warning")["g1"]
    assert "coupons" not in warning and warning["drops_to"] == "bronze"
    assert DeferredGrant.objects.get().reason == "recall"
    before = state()
    assert grants.downgrade_warnings(at("2027-01-10 00:00"), clock=clock) == counts
    assert state() == before


def test_a_dry_run_decides_as_a_run_would_and_writes_nothing(budgeted):
    golds(budgeted, "g1", "g2", "g3")
    planned = grants.monthly_benefits(FEB_2027, clock=budgeted, dry_run=True, chunk=1)
    assert planned == {"members": 1, "coupons": 3, "events": 1, "deferred": 2}
    assert state() == [[], [], [], []]
    assert grants.monthly_benefits(FEB_2027, clock=budgeted, chunk=1) == planned


# --- alert and webhook ---------------------------------------------------------------------------

def test_the_first_deferral_of_a_tier_month_raises_one_alert_and_one_webhook(budgeted, caplog):
    golds(budgeted, "g1", "g2", "g3")
    with caplog.at_level("WARNING", logger="loyalty.budgets"):
        grants.monthly_benefits(FEB_2027, clock=budgeted, chunk=1)
    alert = OpsAlert.objects.get()
    assert (alert.key, alert.kind, alert.subject, alert.created_at, alert.acknowledged_at) == (
        "budget:gold:2027-02", "budget_exceeded", "Budget exceeded: gold 2027-02", FEB_2027, None)
    g2 = member("g2").id
    assert alert.message == (f"The gold budget of 16.00 for 2027-02 is spent (16.00 issued): the grant "
                             f"monthly:2027-02:{g2} (16.00) and every later grant that does not fit are "
                             "deferred until the budget allows them.")
    assert [r.getMessage() for r in caplog.records] == [alert.message]
    event = OutboxEvent.objects.get(type="budget.exceeded")
    assert (event.key, event.member_id, event.created_at) == ("budget.exceeded:budget:gold:2027-02", g2, FEB_2027)
    assert json.loads(event.body)["data"] == {"tier": "gold", "month": "2027-02", "budget": "16.00", "spent": "16.00",
                                              "member": "g2", "grant": f"monthly:2027-02:{g2}", "cost": "16.00"}
    assert BudgetSpend.objects.get().alerted_at == FEB_2027
    # Another job's deferral in the same tier-month, and a re-run: no second alert or event.
    Member.objects.filter(external_id="g3").update(birthday=date(1990, 2, 20))
    assert grants.birthday(at("2027-02-20 00:00"), clock=budgeted)["deferred"] == 1
    grants.monthly_benefits(FEB_2027, clock=budgeted)
    assert OpsAlert.objects.count() == OutboxEvent.objects.filter(type="budget.exceeded").count() == 1
    # A new month is a new budget: its first deferral alerts again.
    grants.monthly_benefits(MARCH_2027, clock=budgeted)
    assert sorted(OpsAlert.objects.values_list("key", flat=True)) == ["budget:gold:2027-02", "budget:gold:2027-03"]


# --- re-runs and crashes -------------------------------------------------------------------------

def test_a_rerun_issues_nothing_twice_and_defers_nothing_twice(budgeted):
    golds(budgeted, "g1", "g2", "g3")
    first = grants.monthly_benefits(FEB_2027, clock=budgeted, chunk=2)
    before = state()
    assert grants.monthly_benefits(FEB_2027, clock=budgeted, chunk=2) == first
    assert grants.monthly_benefits(FEB_2027, clock=budgeted, chunk=1) == first
    assert grants.monthly_benefits(FEB_2027, clock=budgeted, dry_run=True) == first
    assert state() == before
    assert (spent(), DeferredGrant.objects.count()) == (1600, 2)


def test_a_crash_after_charging_rolls_the_chunk_back_whole_and_the_rerun_ends_as_if_it_never_crashed(publish,
                                                                                                      clock):
    publish("default", operations={"budgets": {"gold": "48"}})
    golds(clock, "m0", "m1", "m2", "m3")
    counts = grants.monthly_benefits(FEB_2027, clock=clock, chunk=2)
    uninterrupted = state()
    for model in (OutboxEvent, Coupon, DeferredGrant, BudgetSpend, OpsAlert):
        model.objects.all().delete()
    # Chunk 2 charges m2 (3200 + 1600 = 4800), defers m3 and alerts, then m2's insert fails.
    blocker = Coupon.objects.create(member=member("m0"), code=code_of(f"monthly:2027-02:coupon:1:{member('m2').id}"),
                                    key="blocker", kind="monthly", value_fen=1, issued_at=FEB_2027,
                                    valid_from=FEB_2027, valid_until=FEB_2027)
    with pytest.raises(IntegrityError):
        grants.monthly_benefits(FEB_2027, clock=clock, chunk=2)
    assert (spent(), DeferredGrant.objects.count(), OpsAlert.objects.count()) == (3200, 0, 0)
    assert BudgetSpend.objects.get().alerted_at is None
    blocker.delete()
    assert grants.monthly_benefits(FEB_2027, clock=clock, chunk=2) == counts == {
        "members": 3, "coupons": 9, "events": 3, "deferred": 1}
    assert state() == uninterrupted


# --- release and lapse ---------------------------------------------------------------------------

def test_raising_the_budget_releases_the_deferred_grant_with_its_own_keys_and_codes(budgeted, publish):
    golds(budgeted, "g1", "g2")
    grants.monthly_benefits(FEB_2027, clock=budgeted)
    assert release_deferred(at("2027-02-05 00:00"), clock=budgeted) == {
        "released": 0, "lapsed": 0, "coupons": 0, "waiting": 1}
    publish("default", effective_from=at("2027-02-10 00:00"), operations={"budgets": {"gold": "32"}})
    release = at("2027-02-11 00:00")
    counts = release_deferred(release, clock=budgeted)
    assert counts == {"released": 1, "lapsed": 0, "coupons": 3, "waiting": 0}
    g2 = member("g2").id
    assert coupons("g2") == [
        (f"monthly:2027-02:coupon:1:{g2}", "monthly", 800, FEB_2027, MARCH_2027),
        (f"monthly:2027-02:coupon:2:{g2}", "monthly", 800, FEB_2027, MARCH_2027),
        (f"monthly:2027-02:free_delivery:1:{g2}", "free_delivery", 0, FEB_2027, MARCH_2027)]
    issued = Coupon.objects.filter(member_id=g2)
    assert {(c.code == code_of(c.key), c.issued_at, c.ruleset_version, c.state) for c in issued} == {
        (True, release, 1, "issued")}
    event = events("coupon.issued")["g2"]
    assert (event["reason"], event["valid_from"], event["valid_until"]) == (
        "monthly", "2027-01-31T16:00:00Z", "2027-02-28T16:00:00Z")
    assert [c["code"] for c in event["coupons"]] == [code_of(c.key) for c in issued.order_by("key")]
    assert OutboxEvent.objects.get(type="coupon.issued", member_id=g2).key == f"coupon.issued:monthly:2027-02:{g2}"
    deferral = DeferredGrant.objects.get()
    assert (deferral.state, deferral.closed_at, spent()) == ("released", release, 3200)
    # Idempotent: again for the moment counts the same and writes nothing; the job finds it issued.
    before = state()
    assert release_deferred(release, clock=budgeted) == counts
    assert grants.monthly_benefits(FEB_2027, clock=budgeted)["deferred"] == 1
    assert state() == before


def test_a_grant_still_deferred_when_its_validity_ends_lapses(budgeted):
    golds(budgeted, "g1", "g2")
    grants.monthly_benefits(FEB_2027, clock=budgeted)
    assert release_deferred(at("2027-02-28 00:00"), clock=budgeted, dry_run=True)["waiting"] == 1
    # 1 March 00:00 is the monthly coupons' valid_until (exclusive): too late to issue them.
    assert release_deferred(MARCH_2027, clock=budgeted, dry_run=True) == {
        "released": 0, "lapsed": 1, "coupons": 0, "waiting": 0}
    assert DeferredGrant.objects.get().state == "deferred"
    assert release_deferred(MARCH_2027, clock=budgeted) == {"released": 0, "lapsed": 1, "coupons": 0, "waiting": 0}
    assert (DeferredGrant.objects.get().state, DeferredGrant.objects.get().closed_at) == ("lapsed", MARCH_2027)
    assert coupons("g2") == []


def test_a_release_in_a_new_month_charges_that_month_first_fit_oldest_first(publish, clock):
    publish("default", operations={"budgets": {"gold": "16"}, "birthday_coupon": {"value": "10", "valid_days": 30}})
    golds(clock, "g1", "g2", "g3")
    Member.objects.filter(external_id__in=["g2", "g3"]).update(birthday=date(1990, 2, 20))
    grants.monthly_benefits(FEB_2027, clock=clock)  # g1 issued (16 of 16); g2, g3 deferred
    grants.birthday(at("2027-02-20 00:00"), clock=clock)  # g2's and g3's ¥10 deferred, valid to 22 March
    counts = release_deferred(MARCH_2027, clock=clock)
    # Oldest first: the February monthly grants lapse; g2's ¥10 fits March (0 + 1000 <= 1600), g3's does not.
    assert counts == {"released": 1, "lapsed": 2, "coupons": 1, "waiting": 1}
    assert spent(month="2027-03") == 1000 and spent() == 1600
    assert [key.split(":")[0] for key, *_ in coupons("g2")] == ["birthday"]


def test_run_due_releases_before_the_days_grants_under_a_ruleset_with_budgets(budgeted):
    golds(budgeted, "g1", "g2")
    run_due(at("2027-01-31 12:00"), clock=FixedClock(at("2027-01-31 12:00")))
    report = run_due(at("2027-02-01 09:00"), clock=FixedClock(at("2027-02-01 09:00")))
    done = [o.job for o in report.outcomes if o.due_at == FEB_2027]
    assert done.index("release_deferred") < done.index("monthly_benefits")
    assert DeferredGrant.objects.filter(state="deferred").count() == 1


# --- no budgets: the path as it was --------------------------------------------------------------

def test_without_budgets_the_grant_jobs_send_no_budget_query_and_count_as_before(default_rules, clock):
    golds(clock, "g1", "g2")
    with CaptureQueriesContext(connection) as queries:
        counts = grants.monthly_benefits(FEB_2027, clock=clock)
    assert counts == {"members": 2, "coupons": 6, "events": 2}
    assert not [q["sql"] for q in queries.captured_queries
                if "budget_spends" in q["sql"] or "deferred_grants" in q["sql"] or "ops_alerts" in q["sql"]]


# --- the report ----------------------------------------------------------------------------------

def test_the_report_shows_budget_spend_redemptions_and_deferrals_per_tier(budgeted, publish):
    golds(budgeted, "g1", "g2", "g3")
    register(budgeted, "s1")
    hold("s1", "silver")
    grants.monthly_benefits(FEB_2027, clock=budgeted)
    # g1 moves to platinum on 10 February: its coupons were issued to gold and stay gold's.
    TierChange.objects.create(member=member("g1"), key="t1", from_tier="gold", to_tier="platinum", reason="upgrade",
                              changed_at=at("2027-02-10 00:00"), ruleset_version=1)
    Member.objects.filter(external_id="g1").update(tier="platinum")
    g1 = member("g1").id
    redeem_coupon(code_of(f"monthly:2027-02:coupon:1:{g1}"), member="g1", order_id="o1", amount_fen=5000,
                  clock=FixedClock(at("2027-02-12 10:00")))
    publish("default", effective_from=at("2027-02-15 00:00"), operations={"budgets": {"gold": "32"}})
    release_deferred(at("2027-02-16 00:00"), clock=budgeted)  # g2 fits the raised budget; g3 waits
    report = budget_report("2027-02", clock=FixedClock(at("2027-03-05 00:00")))
    assert (report.month, report.timezone) == ("2027-02", "Asia/Shanghai")
    rows = {row.tier: row.as_dict() for row in report.rows}
    assert list(rows) == ["silver", "gold"]
    assert rows["gold"] == {
        "tier": "gold", "month": "2027-02",
        "budget": "32.00",  # the raised budget, in force at the month's end
        "spent": "32.00",  # g1 16 on the 1st + g2 16 released on the 16th
        "remaining": "0.00",
        "issued": "32.00",  # g1 2 x 8 (gold when issued), g2 2 x 8
        "redeemed": "8.00",  # one of g1's coupons
        "deferred": 1, "deferred_value": "16.00",  # g3
        "released": 1, "lapsed": 0, "alerted_at": "2027-01-31T16:00:00Z",
    }
    assert rows["silver"] == {"tier": "silver", "month": "2027-02", "budget": None, "spent": "0.00",
                              "remaining": None, "issued": "5.00", "redeemed": "0.00", "deferred": 0,
                              "deferred_value": "0.00", "released": 0, "lapsed": 0, "alerted_at": None}


def test_a_month_is_written_yyyy_mm(budgeted):
    from loyalty.domain.errors import InvalidInput

    with pytest.raises(InvalidInput) as error:
        budget_report("2027-2", clock=budgeted)
    assert error.value.field == "month"


def test_the_report_defaults_to_the_current_local_month(budgeted):
    assert budget_report(clock=FixedClock(at("2027-02-01 00:30"))).month == "2027-02"
    assert budget_report(clock=FixedClock(at("2027-01-31 23:59"))).month == "2027-01"  # 15:59 UTC
