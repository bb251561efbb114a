from dataclasses import replace

import pytest

from loyalty.domain.errors import Conflict, InvalidInput, NotFound
from loyalty.domain.events import parse_action
from loyalty.services.actions import record_action, record_actions
from loyalty.services.members import register_member
from loyalty.store.models import Action, LedgerEntry
from tests.conftest import at
from tests.service.support import act, action_event, ledger_problems, member, pay, snapshot

MONDAY = at("2027-01-04 10:00")


@pytest.fixture
def m1(default_rules, clock):
    return register_member("m1", clock=clock).member


def test_a_check_in_earns_5_growth(m1, clock):
    outcome = act("e1", "m1", "check_in", MONDAY, clock)
    assert (outcome.growth, outcome.points, outcome.capped_reason, outcome.replayed) == (5, 0, "", False)
    entry = LedgerEntry.objects.get()
    assert (entry.idempotency_key, entry.source, entry.delta) == ("action:e1:growth", "check_in", 5)
    assert member("m1").growth_balance == 5
    assert ledger_problems("m1") == []


def test_a_second_check_in_the_same_day_is_recorded_but_capped(m1, clock):
    act("e1", "m1", "check_in", at("2027-01-04 08:00"), clock)
    outcome = act("e2", "m1", "check_in", at("2027-01-04 21:00"), clock)
    assert (outcome.growth, outcome.capped_reason) == (0, "per_day_limit")
    capped = Action.objects.get(event_id="e2")
    assert (capped.growth, capped.points, capped.capped_reason) == (0, 0, "per_day_limit")
    assert LedgerEntry.objects.count() == 1
    assert member("m1").growth_balance == 5


def test_check_ins_on_consecutive_shanghai_days_both_count(m1, clock):
    # 23:30 and 00:30 Shanghai are the same UTC day but two local days.
    assert act("e1", "m1", "check_in", at("2027-01-04 23:30"), clock).growth == 5
    assert act("e2", "m1", "check_in", at("2027-01-05 00:30"), clock).growth == 5
    assert act("e3", "m1", "check_in", at("2027-01-05 23:59"), clock).capped_reason == "per_day_limit"
    assert member("m1").growth_balance == 10


def test_check_in_limits_are_per_member(m1, clock):
    register_member("m2", clock=clock)
    act("e1", "m1", "check_in", MONDAY, clock)
    assert act("e2", "m2", "check_in", MONDAY, clock).growth == 5


def test_a_member_may_share_three_times_a_day(m1, clock):
    outcomes = [act(f"s{i}", "m1", "share", at(f"2027-01-04 1{i}:00"), clock) for i in range(4)]
    assert [o.growth for o in outcomes] == [20, 20, 20, 0]
    assert outcomes[3].capped_reason == "per_day_limit"
    assert act("s9", "m1", "share", at("2027-01-05 10:00"), clock).growth == 20
    assert member("m1").growth_balance == 80


def test_a_member_may_review_each_of_their_orders_once(m1, clock):
    pay("o1", "m1", MONDAY, "100", clock)
    pay("o2", "m1", MONDAY, "100", clock)
    assert act("v1", "m1", "review", MONDAY, clock, ref="o1").growth == 10
    again = act("v2", "m1", "review", at("2027-01-06 10:00"), clock, ref="o1")
    assert (again.growth, again.capped_reason) == (0, "per_order_limit")
    assert act("v3", "m1", "review", MONDAY, clock, ref="o2").growth == 10
    assert member("m1").growth_balance == 220


def test_reviewing_another_members_order_is_not_found_and_writes_nothing(m1, clock):
    register_member("m2", clock=clock)
    pay("o2", "m2", MONDAY, "100", clock)
    before = snapshot()
    with pytest.raises(NotFound) as caught:
        act("v1", "m1", "review", MONDAY, clock, ref="o2")
    assert caught.value.field == "ref"
    assert snapshot() == before


def test_reviewing_an_order_that_does_not_exist_is_not_found(m1, clock):
    before = snapshot()
    with pytest.raises(NotFound) as caught:
        act("v1", "m1", "review", MONDAY, clock, ref="nope")
    assert (caught.value.field, caught.value.code) == ("ref", "unknown_order")
    assert snapshot() == before


def test_an_action_for_an_unknown_member_is_not_found_and_writes_nothing(m1, clock):
    before = snapshot()
    with pytest.raises(NotFound) as caught:
        act("e1", "nobody", "check_in", MONDAY, clock)
    assert (caught.value.code, caught.value.field) == ("unknown_member", "member")
    assert snapshot() == before


@pytest.mark.parametrize(("raw", "field"), [
    ({"type": "like"}, "type"),
    ({"type": "review"}, "ref"),
    ({"at": "yesterday"}, "at"),
    ({"event_id": ""}, "event_id"),
])
def test_a_malformed_action_names_the_field(m1, raw, field):
    body = {"event_id": "e1", "member": "m1", "type": "check_in", "at": MONDAY.isoformat(), **raw}
    with pytest.raises(InvalidInput) as caught:
        parse_action(body)
    assert caught.value.field == field


def test_a_replayed_action_returns_the_first_result_and_changes_nothing(m1, clock):
    first = act("e1", "m1", "check_in", MONDAY, clock)
    before = snapshot()
    assert act("e1", "m1", "check_in", MONDAY, clock) == replace(first, replayed=True)
    assert snapshot() == before


def test_a_replayed_capped_action_answers_with_the_same_reason(m1, clock):
    act("e1", "m1", "check_in", MONDAY, clock)
    first = act("e2", "m1", "check_in", MONDAY, clock)
    again = act("e2", "m1", "check_in", MONDAY, clock)
    assert (again.growth, again.capped_reason, again.replayed) == (0, "per_day_limit", True)
    assert again == replace(first, replayed=True)


def test_a_replayed_action_with_a_different_payload_is_a_conflict_and_writes_nothing(m1, clock):
    act("e1", "m1", "check_in", MONDAY, clock)
    before = snapshot()
    with pytest.raises(Conflict) as caught:
        record_action(action_event("e1", "m1", "share", MONDAY), clock=clock)
    assert (caught.value.code, caught.value.field) == ("exists_with_different_payload", "event_id")
    assert snapshot() == before


def test_actions_stop_earning_at_the_daily_growth_cap(publish, clock):
    publish("default", risk={"daily_growth_cap": 1000})
    register_member("m1", clock=clock)
    pay("o1", "m1", MONDAY, "990", clock)  # 990 + 50 → capped at 1000
    outcome = act("e1", "m1", "check_in", MONDAY, clock)
    assert (outcome.growth, outcome.capped_reason) == (0, "daily_growth_cap")
    assert member("m1").growth_balance == 1000


def test_an_action_under_the_cap_earns_only_what_is_left(publish, clock):
    publish("default", risk={"daily_growth_cap": 1000})
    register_member("m1", clock=clock)
    pay("o1", "m1", MONDAY, "948", clock)  # 948 + 50 = 998
    outcome = act("s1", "m1", "share", MONDAY, clock)
    assert (outcome.growth, outcome.capped_reason) == (2, "")
    assert member("m1").growth_balance == 1000


def test_a_batch_of_actions_answers_each_event_and_writes_only_the_valid_ones(m1, clock):
    pay("o1", "m1", MONDAY, "100", clock)
    events = [
        action_event("e1", "m1", "check_in", MONDAY),
        action_event("e2", "m1", "check_in", at("2027-01-04 20:00")),
        action_event("e1", "m1", "check_in", MONDAY),
        action_event("e1", "m1", "share", MONDAY),
        action_event("e3", "nobody", "check_in", MONDAY),
        action_event("e4", "m1", "review", MONDAY, ref="o9"),
        action_event("e5", "m1", "review", MONDAY, ref="o1"),
        action_event("e6", "m1", "review", MONDAY, ref="o1"),
    ]
    results = record_actions(events, clock=clock)
    assert [getattr(r, "code", None) or (r.growth, r.capped_reason, r.replayed) for r in results] == [
        (5, "", False), (0, "per_day_limit", False), (5, "", True), "exists_with_different_payload",
        "unknown_member", "unknown_order", (10, "", False), (0, "per_order_limit", False)]
    assert sorted(Action.objects.values_list("event_id", flat=True)) == ["e1", "e2", "e5", "e6"]
    assert member("m1").growth_balance == 100 + 5 + 10
    assert ledger_problems("m1") == []


def test_an_action_before_any_ruleset_fails_alone_in_its_batch(m1, clock):
    results = record_actions([action_event("e1", "m1", "check_in", MONDAY),
                              action_event("e2", "m1", "share", at("2019-06-01 10:00"))], clock=clock)
    assert results[0].growth == 5
    assert isinstance(results[1], NotFound) and results[1].code == "no_ruleset_in_force"
    assert list(Action.objects.values_list("event_id", flat=True)) == ["e1"]
