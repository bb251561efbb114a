"""Periodic grants: monthly benefits, birthday gifts, recall warnings, the sprint, expiring
points, and the extra growth of the first orders after an upgrade. Each once per member and
period: re-runs and crashed-then-re-run jobs issue nothing twice."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.db import IntegrityError

from loyalty.clock import FixedClock
from loyalty.domain.grants import coupon_code
from loyalty.services import grants
from loyalty.services.jobs import run_due
from loyalty.services.members import register_member
from loyalty.services.orders import record_orders
from loyalty.services.points import redeem_points
from loyalty.services.tiers import evaluate_tiers
from loyalty.store.models import Coupon, JobRun, LedgerEntry, Member, Order, OutboxEvent, TierChange
from tests.conftest import at
from tests.service.support import ledger_problems, member, order_event, pay, refund

FEB_2027 = at("2027-02-01 00:00")


def hold(external_id: str, tier: str, expires_at: datetime | None = None) -> None:
    Member.objects.filter(external_id=external_id).update(tier=tier, tier_expires_at=expires_at)


def register(clock: Any, *external_ids: str, **kw: Any) -> None:
    for external_id in external_ids:
        register_member(external_id, clock=clock, **kw)


def coupons(external_id: str) -> list[tuple[Any, ...]]:
    return list(Coupon.objects.filter(member__external_id=external_id).order_by("key")
                .values_list("key", "kind", "value_fen", "valid_from", "valid_until"))


def events(kind: str) -> dict[str, dict[str, Any]]:
    """Event data by member, for one event type."""
    found = {}
    for body in OutboxEvent.objects.filter(type=kind).values_list("body", flat=True):
        data = json.loads(body)["data"]
        found[data["member"]] = data
    return found


def grant_state() -> list[tuple[Any, ...]]:
    """Every coupon, and every event's member, key, type, data and time (its random id aside):
    what two runs that should agree must agree on."""
    rows = [("coupon", *row) for row in Coupon.objects.order_by("key").values_list(
        "member_id", "code", "key", "kind", "value_fen", "min_spend_fen", "issued_at", "valid_from", "valid_until",
        "state", "order_id", "ruleset_version")]
    for member_id, key, kind, body, created_at in OutboxEvent.objects.order_by("key").values_list(
            "member_id", "key", "type", "body", "created_at"):
        rows.append(("event", member_id, key, kind, json.dumps(json.loads(body)["data"], sort_keys=True), created_at))
    return rows


def code_of(key: str) -> str:
    return coupon_code(key, settings.SECRET_KEY.encode())


# --- monthly benefits ------------------------------------------------------------------------

@pytest.fixture
def tiers(default_rules, clock):
    register(clock, "bronze", "silver", "gold", "platinum", "diamond", "black_gold")
    for tier in ("silver", "gold", "platinum", "diamond", "black_gold"):
        hold(tier, tier, at("2028-02-01 00:00"))


def test_each_member_gets_the_monthly_coupons_of_the_tier_held_valid_to_the_local_month_end(tiers, clock):
    counts = grants.monthly_benefits(FEB_2027, clock=clock)
    assert counts == {"members": 4, "coupons": 1 + 3 + 6 + 5, "events": 4}
    month, gold = (FEB_2027, at("2027-03-01 00:00")), member("gold").id
    assert coupons("gold") == [
        (f"monthly:2027-02:coupon:1:{gold}", "monthly", 800, *month),
        (f"monthly:2027-02:coupon:2:{gold}", "monthly", 800, *month),
        (f"monthly:2027-02:free_delivery:1:{gold}", "free_delivery", 0, *month),
    ]
    assert [kind for _, kind, *_ in coupons("platinum")] == ["monthly"] * 3 + ["free_delivery"] * 3
    # Unlimited free delivery is a flag checkout reads, not coupon rows; black-gold has no coupons.
    assert [(kind, value) for _, kind, value, *_ in coupons("diamond")] == [("monthly", 2000)] * 5
    assert coupons("bronze") == coupons("black_gold") == []
    coupon = Coupon.objects.get(key=f"monthly:2027-02:coupon:1:{member('silver').id}")
    assert (coupon.code, coupon.issued_at, coupon.state, coupon.ruleset_version) == (
        code_of(coupon.key), FEB_2027, "issued", 1)


def test_the_coupon_issued_event_lists_the_members_coupons_in_yuan(tiers, clock):
    grants.monthly_benefits(FEB_2027, clock=clock)
    gold = events("coupon.issued")["gold"]
    assert (gold["reason"], gold["valid_from"], gold["valid_until"]) == (
        "monthly", "2027-01-31T16:00:00Z", "2027-02-28T16:00:00Z")
    assert [(c["kind"], c["value"], c["min_spend"]) for c in gold["coupons"]] == [
        ("monthly", "8.00", "0.00"), ("monthly", "8.00", "0.00"), ("free_delivery", "0.00", "0.00")]
    assert [c["code"] for c in gold["coupons"]] == [code for code, in Coupon.objects.filter(
        member__external_id="gold").order_by("key").values_list("code")]
    assert OutboxEvent.objects.get(type="coupon.issued", member__external_id="gold").key == \
        f"coupon.issued:monthly:2027-02:{member('gold').id}"


def test_running_the_monthly_grant_again_for_the_month_issues_nothing_and_counts_the_same(tiers, clock):
    first = grants.monthly_benefits(FEB_2027, clock=clock)
    before = grant_state()
    # Counts describe the due moment's grants as stored, so a re-run reports what the first run did.
    assert grants.monthly_benefits(FEB_2027, clock=clock) == first
    assert grants.monthly_benefits(FEB_2027, clock=clock, dry_run=True) == first
    assert grant_state() == before
    march = grants.monthly_benefits(at("2027-03-01 00:00"), clock=clock)
    assert (march["coupons"], march["events"]) == (15, 4)
    assert len(coupons("silver")) == 2


def test_a_dry_run_counts_what_a_run_would_issue_and_writes_nothing(tiers, clock):
    assert grants.monthly_benefits(FEB_2027, clock=clock, dry_run=True) == {"members": 4, "coupons": 15, "events": 4}
    assert grant_state() == []


def test_the_month_is_judged_in_the_rulesets_timezone_and_february_2028_has_29_days(tiers, clock):
    due = datetime(2028, 1, 31, 16, 0, tzinfo=UTC)  # 00:00 on 1 February 2028 in Shanghai
    grants.monthly_benefits(due, clock=clock)
    (key, _, _, valid_from, valid_until), = coupons("silver")
    assert key.startswith("monthly:2028-02:")
    assert (valid_from, valid_until) == (at("2028-02-01 00:00"), at("2028-03-01 00:00"))


def test_members_registered_after_the_due_moment_wait_for_the_next_one(default_rules, clock):
    register(clock, "early")
    register_member("late", clock=clock, registered_at=at("2027-02-01 08:00"))
    hold("early", "silver")
    hold("late", "silver")
    grants.monthly_benefits(FEB_2027, clock=clock)
    assert len(coupons("early")) == 1 and coupons("late") == []


def test_a_job_that_crashes_in_a_later_chunk_completes_on_rerun_as_if_it_had_never_crashed(default_rules, clock):
    names = [f"m{n}" for n in range(7)]
    register(clock, *names)
    for name in names:
        hold(name, "gold")
    counts, uninterrupted = _run_and_reset(clock)
    # A coupon that already holds the code m5's first coupon derives: its chunk's insert fails.
    victim = member("m5")
    blocker = Coupon.objects.create(member=member("m0"), code=code_of(f"monthly:2027-02:coupon:1:{victim.id}"),
                                    key="blocker", kind="monthly", value_fen=1, issued_at=FEB_2027,
                                    valid_from=FEB_2027, valid_until=FEB_2027)
    with pytest.raises(IntegrityError):
        grants.monthly_benefits(FEB_2027, clock=clock, chunk=2)
    # Chunks of two: m0–m3 committed, m4–m5 rolled back whole, m6 never reached.
    assert {name: len(coupons(name)) for name in names} == {"m0": 4, "m1": 3, "m2": 3, "m3": 3, "m4": 0, "m5": 0,
                                                             "m6": 0}
    assert set(events("coupon.issued")) == {"m0", "m1", "m2", "m3"}
    blocker.delete()
    # The resumed run reports what the uninterrupted run did, and leaves the same rows.
    assert grants.monthly_benefits(FEB_2027, clock=clock, chunk=2) == counts == {"members": 7, "coupons": 21,
                                                                                 "events": 7}
    assert grant_state() == uninterrupted


def _run_and_reset(clock: Any) -> tuple[dict[str, int], list[tuple[Any, ...]]]:
    counts = grants.monthly_benefits(FEB_2027, clock=clock, chunk=2)
    state = grant_state()
    OutboxEvent.objects.all().delete()
    Coupon.objects.all().delete()
    return counts, state


def test_month_ends_follow_the_rulesets_timezone_across_a_daylight_saving_change(publish, clock):
    publish("default", timezone="America/New_York")
    register(clock, "m1")
    hold("m1", "silver")
    new_york = ZoneInfo("America/New_York")
    grants.monthly_benefits(datetime(2027, 3, 1, tzinfo=new_york), clock=clock)
    (_, _, _, valid_from, valid_until), = coupons("m1")
    # EST (UTC−5) on 1 March, EDT (UTC−4) on 1 April: the month is 31 days less one hour long.
    assert (valid_from, valid_until) == (datetime(2027, 3, 1, 5, tzinfo=UTC), datetime(2027, 4, 1, 4, tzinfo=UTC))


def test_on_the_1st_the_jobs_grant_the_benefits_of_the_tier_the_evaluation_just_gave(default_rules, clock):
    register(clock, "m1")
    run_due(at("2027-01-20 12:00"), clock=FixedClock(at("2027-01-20 12:00")))
    pay("o1", "m1", at("2027-01-21 10:00"), "800", clock)  # gold from the evaluation of 1 February
    report = run_due(at("2027-02-01 09:00"), clock=FixedClock(at("2027-02-01 09:00")))
    on_the_1st = [o.job for o in report.outcomes if o.due_at == FEB_2027 and o.state == "done"]
    assert on_the_1st.index("tier_evaluation") < on_the_1st.index("monthly_benefits")
    assert [kind for _, kind, *_ in coupons("m1")] == ["monthly", "monthly", "free_delivery"]
    assert JobRun.objects.get(job="monthly_benefits", due_at=FEB_2027).counts == {"members": 1, "coupons": 3,
                                                                                  "events": 1}


# --- birthdays ---------------------------------------------------------------------------------

def test_the_birthday_coupon_comes_on_the_local_birthday_once_a_year(default_rules, clock):
    register(clock, "may", birthday=date(1990, 5, 20))
    register(clock, "june", birthday=date(1990, 6, 1))
    register(clock, "unknown")
    assert grants.birthday(at("2027-05-19 00:00"), clock=clock)["coupons"] == 0
    due = datetime(2027, 5, 19, 16, 0, tzinfo=UTC)  # 00:00 on 20 May in Shanghai
    assert grants.birthday(due, clock=clock) == {"members": 1, "coupons": 1, "events": 1}
    assert coupons("may") == [(f"birthday:2027:coupon:{member('may').id}", "birthday", 1000,
                               at("2027-05-20 00:00"), at("2027-06-19 00:00"))]
    before = grant_state()
    assert grants.birthday(due, clock=clock) == {"members": 1, "coupons": 1, "events": 1}
    assert grant_state() == before
    assert events("coupon.issued")["may"]["reason"] == "birthday"
    grants.birthday(at("2028-05-20 00:00"), clock=clock)
    assert [key.split(":")[1] for key, *_ in coupons("may")] == ["2027", "2028"]
    assert coupons("june") == coupons("unknown") == []


def test_tiers_with_the_birthday_pack_flag_also_get_the_pack(default_rules, clock):
    register(clock, "d", "g", birthday=date(1990, 5, 20))
    hold("d", "diamond")
    hold("g", "gold")
    grants.birthday(at("2027-05-20 00:00"), clock=clock)
    assert [kind for _, kind, *_ in coupons("d")] == ["birthday", "birthday_pack"]
    assert [kind for _, kind, *_ in coupons("g")] == ["birthday"]


def test_without_a_birthday_coupon_only_the_pack_is_given(publish, clock):
    publish("default", operations={"birthday_coupon": None})
    register(clock, "d", "g", birthday=date(1990, 5, 20))
    hold("d", "diamond")
    assert grants.birthday(at("2027-05-20 00:00"), clock=clock) == {"members": 1, "coupons": 1, "events": 1}
    assert [kind for _, kind, *_ in coupons("d")] == ["birthday_pack"]


def test_29_february_birthdays_fall_on_28_february_in_common_years(default_rules, clock):
    register(clock, "leapling", birthday=date(2000, 2, 29))
    assert grants.birthday(at("2027-02-28 00:00"), clock=clock)["coupons"] == 1
    assert grants.birthday(at("2027-03-01 00:00"), clock=clock)["coupons"] == 0
    assert grants.birthday(at("2028-02-28 00:00"), clock=clock)["coupons"] == 0
    assert grants.birthday(at("2028-02-29 00:00"), clock=clock)["coupons"] == 1
    assert [key.split(":")[1] for key, *_ in coupons("leapling")] == ["2027", "2028"]


# --- recall before a drop ------------------------------------------------------------------------

@pytest.fixture
def expiring_gold(default_rules, clock):
    """Three gold members, their tier reached on 1 Feb 2027 and valid until 1 Feb 2028."""
    register(clock, "idle", "keeps", "fades")
    for name in ("idle", "keeps", "fades"):
        for n in range(3):
            pay(f"{name}-{n}", name, at("2027-01-04 10:00"), "10", clock)
    evaluate_tiers(FEB_2027, clock=clock)
    for n in range(3):
        pay(f"keeps-late-{n}", "keeps", at("2027-09-01 10:00"), "10", clock)  # gold again at expiry
    pay("fades-late", "fades", at("2027-06-01 10:00"), "10", clock)  # silver at expiry


def test_members_whose_tier_would_drop_within_30_days_are_warned_once_with_a_recall_coupon(expiring_gold, clock):
    assert grants.downgrade_warnings(at("2028-01-01 00:00"), clock=clock)["members"] == 0  # 31 days ahead
    counts = grants.downgrade_warnings(at("2028-01-02 00:00"), clock=clock)
    assert counts == {"members": 2, "coupons": 2, "events": 4}  # a warning and a coupon.issued each
    warnings = events("member.downgrade_warning")
    assert {name: data["drops_to"] for name, data in warnings.items()} == {"idle": "bronze", "fades": "silver"}
    assert warnings["idle"]["tier"] == "gold"
    assert warnings["idle"]["expires_at"] == "2028-01-31T16:00:00Z"
    assert [c["value"] for c in warnings["idle"]["coupons"]] == ["10.00"]
    assert coupons("idle") == [(f"recall:2028-02-01:{member('idle').id}", "recall", 1000, at("2028-01-02 00:00"),
                                at("2028-02-01 00:00"))]
    before = grant_state()
    assert grants.downgrade_warnings(at("2028-01-03 00:00"), clock=clock) == {"members": 0, "coupons": 0,
                                                                              "events": 0}
    assert grant_state() == before
    assert coupons("keeps") == []


def test_a_dry_run_of_the_warnings_counts_them_and_writes_nothing(expiring_gold, clock):
    before = grant_state()  # the tier changes' events
    planned = grants.downgrade_warnings(at("2028-01-02 00:00"), clock=clock, dry_run=True)
    assert planned == {"members": 2, "coupons": 2, "events": 4}
    assert grant_state() == before
    assert grants.downgrade_warnings(at("2028-01-02 00:00"), clock=clock) == planned


def test_an_order_before_the_warning_keeps_the_member_from_being_warned(expiring_gold, clock):
    for n in range(3):
        pay(f"idle-late-{n}", "idle", at("2027-12-20 10:00"), "10", clock)
    grants.downgrade_warnings(at("2028-01-02 00:00"), clock=clock)
    assert set(events("member.downgrade_warning")) == {"fades"}


# --- the sprint ----------------------------------------------------------------------------------

@pytest.fixture
def sprinters(default_rules, clock):
    register(clock, "five", "four", "spender", "top")
    for n in range(5):
        pay(f"five-{n}", "five", at("2027-01-04 10:00"), "10", clock)  # platinum needs 6: 1 missing
    for n in range(4):
        pay(f"four-{n}", "four", at("2027-01-04 10:00"), "10", clock)  # 2 of 6 missing: 33%
    pay("spender-0", "spender", at("2027-01-04 10:00"), "1700", clock)  # ¥300 of ¥2000 missing: 15%
    hold("five", "gold")
    hold("four", "gold")
    hold("spender", "silver")
    hold("top", "black_gold")


def test_the_sprint_runs_on_the_25th_to_the_30th_for_members_close_to_the_next_tier(sprinters, clock):
    assert grants.sprint(at("2027-01-24 00:00"), clock=clock)["members"] == 0
    assert grants.sprint(at("2027-01-25 00:00"), clock=clock) == {"members": 2, "coupons": 2, "events": 4}
    notices = events("member.sprint_notice")
    assert set(notices) == {"five", "spender"}
    assert (notices["five"]["tier"], notices["five"]["next_tier"]) == ("gold", "platinum")
    assert {(g["metric"], g["needed"], g["current"]) for g in notices["spender"]["gaps"]} == {
        ("orders", 6, 1), ("amount", "2000.00", "1700.00")}
    assert coupons("five") == [(f"sprint:2027-01:{member('five').id}", "sprint", 500, at("2027-01-25 00:00"),
                                at("2027-02-01 00:00"))]
    assert grants.sprint(at("2027-01-26 00:00"), clock=clock)["events"] == 0  # once a month
    assert grants.sprint(at("2027-01-31 00:00"), clock=clock)["members"] == 0
    assert grants.sprint(at("2027-02-25 00:00"), clock=clock)["events"] == 4


# --- expiring points -----------------------------------------------------------------------------

def test_members_hear_once_per_expiry_date_about_points_expiring_within_30_days(default_rules, clock):
    register(clock, "m1", "m2", "spent")
    pay("a", "m1", at("2027-01-04 10:00"), "100", clock)  # lots expire 2028-01-01 00:00 (end of year)
    pay("b", "m1", at("2027-06-04 10:00"), "50", clock)
    pay("c", "m2", at("2027-03-04 10:00"), "20", clock)
    pay("d", "spent", at("2027-03-04 10:00"), "30", clock)
    clock.advance(days=100)
    redeem_points("spent", 30, redemption_id="r1", clock=clock)
    assert grants.points_expiring(at("2027-12-01 00:00"), clock=clock)["events"] == 0  # 31 days ahead
    assert grants.points_expiring(at("2027-12-02 00:00"), clock=clock, dry_run=True)["events"] == 2
    assert OutboxEvent.objects.exclude(type="points.redeemed").count() == 0
    # Chunks of one member id: each range read on its own.
    assert grants.points_expiring(at("2027-12-02 00:00"), clock=clock, chunk=1) == {"members": 2, "coupons": 0,
                                                                                   "events": 2}
    notices = events("points.expiring")
    assert notices["m1"] == {"member": "m1", "points": 150, "expires_at": "2027-12-31T16:00:00Z",
                             "expires_on": "2028-01-01"}
    assert notices["m2"]["points"] == 20
    assert grants.points_expiring(at("2027-12-03 00:00"), clock=clock)["events"] == 0


def test_points_notices_are_off_when_the_ruleset_says_0_days(publish, clock):
    publish("default", operations={"points_expiring": {"days_before": 0}})
    register(clock, "m1")
    pay("a", "m1", at("2027-01-04 10:00"), "100", clock)
    assert grants.points_expiring(at("2027-12-02 00:00"), clock=clock)["events"] == 0


# --- the first orders after an upgrade ------------------------------------------------------------

@pytest.fixture
def upgraded(default_rules, clock):
    """m1 reaches silver on 1 Feb 2027 (one order in January)."""
    register(clock, "m1")
    pay("jan", "m1", at("2027-01-04 10:00"), "100", clock)
    evaluate_tiers(FEB_2027, clock=clock)
    assert member("m1").tier == "silver"


def growth_of(order_id: str) -> int:
    return LedgerEntry.objects.get(idempotency_key=f"order:{order_id}:growth").delta


def test_the_first_three_orders_after_an_upgrade_earn_half_as_much_growth_again(upgraded, clock):
    for n in range(4):
        pay(f"feb-{n}", "m1", at(f"2027-02-0{n + 2} 10:00"), "100", clock)  # weekdays: 100 growth each
    assert [growth_of(f"feb-{n}") for n in range(4)] == [150, 150, 150, 100]
    assert growth_of("jan") == 100
    assert ledger_problems("m1") == []


def test_the_boost_counts_orders_in_one_batch_and_leaves_the_large_order_bonus_alone(upgraded, clock):
    events_ = [order_event(f"b{n}", "m1", at("2027-02-03 10:00"), "301") for n in range(4)]
    outcomes = record_orders(events_, clock=clock)
    assert [o.growth for o in outcomes] == [451 + 50] * 3 + [301 + 50]


def test_an_order_paid_before_the_upgrade_is_neither_boosted_nor_counted(upgraded, clock):
    pay("late-jan", "m1", at("2027-01-20 10:00"), "100", clock)  # reported after the upgrade
    for n in range(3):
        pay(f"feb-{n}", "m1", at("2027-02-03 10:00"), "100", clock)
    assert growth_of("late-jan") == 100
    assert [growth_of(f"feb-{n}") for n in range(3)] == [150] * 3


def test_refunds_of_a_boosted_order_take_back_exactly_what_it_earned(upgraded, clock):
    pay("big", "m1", at("2027-02-03 10:00"), "400", clock)  # floor(400 × 1.5) + 50
    assert growth_of("big") == 650
    assert Order.objects.get(order_id="big").growth_base == 600
    refund("r1", "big", "100", at("2027-02-04 10:00"), clock)  # kept ¥300: the bonus stays
    assert LedgerEntry.objects.get(idempotency_key="refund:r1:growth").delta == -150
    refund("r2", "big", "300", at("2027-02-05 10:00"), clock)
    assert LedgerEntry.objects.get(idempotency_key="refund:r2:growth").delta == -500
    assert member("m1").growth_balance == growth_of("jan")
    assert ledger_problems("m1") == []


def test_orders_paid_more_than_30_days_after_the_upgrade_earn_no_boost(upgraded, clock):
    pay("march-2", "m1", at("2027-03-02 10:00"), "100", clock)  # 29 days after the upgrade
    pay("march-4", "m1", at("2027-03-04 10:00"), "100", clock)  # 31 days after
    assert [growth_of("march-2"), growth_of("march-4")] == [150, 100]


def test_a_renewal_is_no_upgrade_and_earns_no_boost(upgraded, clock):
    pay("june", "m1", at("2027-06-01 10:00"), "100", clock)
    evaluate_tiers(at("2028-02-01 00:00"), clock=clock)  # silver renewed
    assert (member("m1").tier, member("m1").tier_reached_at) == ("silver", at("2028-02-01 00:00"))
    assert TierChange.objects.filter(member__external_id="m1").latest("changed_at").reason == "renew"
    pay("after-renewal", "m1", at("2028-02-02 10:00"), "100", clock)
    assert growth_of("after-renewal") == 100


def test_without_after_upgrade_in_the_ruleset_orders_earn_the_plain_growth(publish, clock):
    publish("default", operations={"after_upgrade": None})
    register(clock, "m1")
    pay("jan", "m1", at("2027-01-04 10:00"), "100", clock)
    evaluate_tiers(FEB_2027, clock=clock)
    pay("feb", "m1", at("2027-02-02 10:00"), "100", clock)
    assert growth_of("feb") == 100
