import pytest

from loyalty.services.invitations import invite
from loyalty.services.members import register_member
from loyalty.services.tiers import evaluate_tiers
from loyalty.store.models import TierChange
from tests.conftest import at
from tests.service.support import member, pay, refund, snapshot

FEB_2027 = at("2027-02-01 00:00")
FEB_2028 = at("2028-02-01 00:00")


def pay_many(member_id, count, amount, clock, day="2027-01-04"):
    for i in range(count):
        pay(f"{member_id}-{day}-o{i}", member_id, at(f"{day} 10:00"), amount, clock)


def standing(external_id):
    m = member(external_id)
    return m.tier, m.tier_expires_at


def changes(external_id):
    return list(TierChange.objects.filter(member__external_id=external_id).order_by("changed_at")
                .values_list("from_tier", "to_tier", "reason", "changed_at", "expires_at"))


@pytest.fixture
def members(default_rules, clock):
    for external_id in ("m1", "m2", "m3"):
        register_member(external_id, clock=clock)


def test_members_are_upgraded_at_the_month_start_and_the_tier_is_valid_12_months(members, clock):
    pay_many("m1", 1, "100", clock)  # silver: 1 order
    pay_many("m2", 1, "800", clock)  # gold: ¥800
    summary = evaluate_tiers(FEB_2027, clock=clock)
    assert standing("m1") == ("silver", FEB_2028)
    assert standing("m2") == ("gold", FEB_2028)
    assert standing("m3") == ("bronze", None)
    assert member("m1").tier_reached_at == FEB_2027
    assert changes("m1") == [("bronze", "silver", "upgrade", FEB_2027, FEB_2028)]
    assert (summary.members, summary.changes["upgrade"], summary.ruleset_version) == (3, 2, 1)
    assert dict(summary.tiers) == {"silver": 1, "gold": 1, "bronze": 1}


def test_an_order_counts_only_once_the_evaluation_time_has_passed_it(members, clock):
    pay("o1", "m1", FEB_2027, "100", clock)  # at exactly as_of: outside [start, as_of)
    evaluate_tiers(FEB_2027, clock=clock)
    assert standing("m1") == ("bronze", None)
    evaluate_tiers(at("2027-03-01 00:00"), clock=clock)
    assert standing("m1")[0] == "silver"


def test_a_fully_refunded_order_does_not_count_towards_a_tier(members, clock):
    pay("o1", "m1", at("2027-01-04 10:00"), "100", clock)
    refund("r1", "o1", "100", at("2027-01-05 10:00"), clock)
    pay("o2", "m2", at("2027-01-04 10:00"), "800", clock)
    refund("r2", "o2", "1", at("2027-01-05 10:00"), clock)  # ¥799 kept, one order: silver
    evaluate_tiers(FEB_2027, clock=clock)
    assert standing("m1") == ("bronze", None)
    assert standing("m2")[0] == "silver"


def test_a_tier_holds_until_it_expires_even_when_the_window_no_longer_earns_it(members, clock):
    pay_many("m1", 3, "10", clock)
    evaluate_tiers(FEB_2027, clock=clock)
    before = snapshot()
    summary = evaluate_tiers(at("2028-01-15 00:00"), clock=clock)  # window no longer holds the orders
    assert sum(summary.changes.values()) == 0
    assert snapshot() == before
    assert standing("m1") == ("gold", FEB_2028)


def test_at_expiry_the_member_moves_to_the_tier_the_window_earns(members, clock):
    pay_many("m1", 3, "10", clock)  # gold in 2027
    pay_many("m2", 3, "10", clock)
    evaluate_tiers(FEB_2027, clock=clock)
    pay("m2-late", "m2", at("2027-09-01 10:00"), "250", clock)  # silver's worth within the window
    evaluate_tiers(FEB_2028, clock=clock)
    assert standing("m1") == ("bronze", None)
    assert standing("m2") == ("silver", at("2029-02-01 00:00"))
    assert changes("m1")[-1] == ("gold", "bronze", "downgrade", FEB_2028, None)
    assert changes("m2")[-1][:3] == ("gold", "silver", "downgrade")


def test_at_expiry_a_member_who_still_earns_the_tier_is_renewed_for_12_months(members, clock):
    pay_many("m1", 1, "100", clock)
    evaluate_tiers(FEB_2027, clock=clock)
    pay("o-late", "m1", at("2027-11-11 10:00"), "50", clock)
    evaluate_tiers(FEB_2028, clock=clock)
    assert standing("m1") == ("silver", at("2029-02-01 00:00"))
    assert changes("m1")[-1] == ("silver", "silver", "renew", FEB_2028, at("2029-02-01 00:00"))


def test_under_one_down_a_member_drops_one_tier_per_expiry_and_never_below_bronze(publish, clock):
    publish("default", evaluation={"on_expiry": "one_down"})
    register_member("m1", clock=clock)
    pay_many("m1", 3, "10", clock)
    evaluate_tiers(FEB_2027, clock=clock)
    assert standing("m1")[0] == "gold"
    evaluate_tiers(FEB_2028, clock=clock)
    assert standing("m1") == ("silver", at("2029-02-01 00:00"))
    evaluate_tiers(at("2029-02-01 00:00"), clock=clock)
    assert standing("m1") == ("bronze", None)
    before = snapshot()
    summary = evaluate_tiers(at("2030-02-01 00:00"), clock=clock)
    assert sum(summary.changes.values()) == 0
    assert snapshot() == before
    assert [(c[0], c[1], c[2]) for c in changes("m1")] == [
        ("bronze", "gold", "upgrade"), ("gold", "silver", "downgrade"), ("silver", "bronze", "downgrade")]


@pytest.mark.parametrize(("policy", "tier_after"), [("one_down", "gold"), ("recompute", "silver")])
def test_a_platinum_member_who_earns_only_silver_drops_as_the_policy_says(publish, clock, policy, tier_after):
    publish("default", evaluation={"on_expiry": policy})
    register_member("m1", clock=clock)
    pay_many("m1", 6, "10", clock)  # platinum
    evaluate_tiers(FEB_2027, clock=clock)
    pay_many("m1", 1, "10", clock, day="2027-12-01")  # silver's worth in the next window
    evaluate_tiers(FEB_2028, clock=clock)
    assert standing("m1") == (tier_after, at("2029-02-01 00:00"))


def test_the_base_tier_never_expires(members, clock):
    before = snapshot()
    summary = evaluate_tiers(at("2035-01-01 00:00"), clock=clock)
    assert (summary.members, sum(summary.changes.values())) == (3, 0)
    assert snapshot() == before


def test_black_gold_needs_an_invitation(members, clock):
    pay_many("m1", 1, "12000", clock)
    pay_many("m2", 1, "12000", clock)
    invite("m2", operator="ops")
    evaluate_tiers(FEB_2027, clock=clock)
    assert standing("m1")[0] == "diamond"
    assert standing("m2")[0] == "black_gold"
    invite("m1", operator="ops")
    evaluate_tiers(at("2027-03-01 00:00"), clock=clock)
    assert standing("m1") == ("black_gold", at("2028-03-01 00:00"))


def test_an_invitation_alone_earns_nothing(members, clock):
    invite("m1", operator="ops")
    evaluate_tiers(FEB_2027, clock=clock)
    assert standing("m1") == ("bronze", None)


def test_running_the_same_evaluation_again_changes_nothing(members, clock):
    pay_many("m1", 1, "100", clock)
    pay_many("m2", 3, "10", clock)
    evaluate_tiers(FEB_2027, clock=clock)
    evaluate_tiers(FEB_2028, clock=clock)
    before = snapshot()
    summary = evaluate_tiers(FEB_2028, clock=clock)
    assert sum(summary.changes.values()) == 0
    assert snapshot() == before


def test_a_dry_run_reports_the_changes_and_writes_nothing(members, clock):
    pay_many("m1", 1, "100", clock)
    before = snapshot()
    summary = evaluate_tiers(FEB_2027, clock=clock, dry_run=True)
    assert summary.changes["upgrade"] == 1
    assert summary.tiers["silver"] == 1
    assert snapshot() == before
    assert evaluate_tiers(FEB_2027, clock=clock).changes == summary.changes


def test_an_evaluation_can_be_limited_to_some_members(members, clock):
    pay_many("m1", 1, "100", clock)
    pay_many("m2", 1, "100", clock)
    summary = evaluate_tiers(FEB_2027, clock=clock, member_ids=[member("m1").id])
    assert summary.members == 1
    assert (standing("m1")[0], standing("m2")[0]) == ("silver", "bronze")


def test_an_upgrades_only_evaluation_never_downgrades(members, clock):
    pay_many("m1", 3, "10", clock)
    evaluate_tiers(FEB_2027, clock=clock)
    before = snapshot()
    evaluate_tiers(FEB_2028, clock=clock, upgrades_only=True)
    assert snapshot() == before
    assert standing("m1")[0] == "gold"


def test_every_tier_change_has_a_row_with_a_key_per_member_and_time(members, clock):
    pay_many("m1", 1, "100", clock)
    pay_many("m2", 1, "100", clock)
    evaluate_tiers(FEB_2027, clock=clock)
    keys = set(TierChange.objects.values_list("key", flat=True))
    assert keys == {f"tier:{FEB_2027.isoformat()}:{member(m).id}" for m in ("m1", "m2")}
    assert set(TierChange.objects.values_list("ruleset_version", flat=True)) == {1}
