"""Holds and the review queue: a held member's new credit is withheld until an operator decides.

Amounts under the default ruleset, on a Monday: an order of ¥400 earns 400 growth + 50 (the
large-order bonus, ≥ ¥300) = 450 growth and 400 points; a refund of ¥100 of it takes back
floor(400 × 100/400) = 100 growth (the rest, ¥300, still earns the bonus) and 100 points.
"""

from __future__ import annotations

import json

import pytest
from django.db.models import F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loyalty.clock import FixedClock
from loyalty.domain.errors import Conflict, InvalidInput, NotFound
from loyalty.services import holds
from loyalty.services.members import member_status, register_member
from loyalty.services.tiers import evaluate_tiers, evaluate_tiers_python
from loyalty.store.models import Action, LedgerEntry, Order, OutboxEvent, PointsLot, Refund, ReviewCase
from tests.conftest import at
from tests.service.support import act, ledger_problems, ledger_problems_by_member, member, pay, refund, snapshot
from tests.service.test_ledger_properties import clear_tables

MONDAY = at("2027-01-04 10:00")
TUESDAY = at("2027-01-05 10:00")
HELD_AT = at("2027-01-04 09:00")
FEB_1 = at("2027-02-01 00:00")


@pytest.fixture
def m1(default_rules, clock):
    return register_member("m1", clock=clock).member


def hold(*members, reason="refund_rate", details=None):
    return holds.place_holds([m.id for m in members], reason=reason, details=details or {}, at=HELD_AT)


def events(kind):
    return [json.loads(body)["data"] for body in OutboxEvent.objects.filter(type=kind).order_by("id")
            .values_list("body", flat=True)]


def test_placing_a_hold_opens_one_case_and_is_idempotent(m1, clock):
    m2 = register_member("m2", clock=clock).member
    assert hold(m1, m2, details={m1.id: {"refund_rate": "0.95"}}) == 2
    assert hold(m1, reason="refund_rate") == 0  # already under review: no second case
    assert hold(m1, reason="velocity", details={m1.id: {"orders_per_day": 40}}) == 0
    case = ReviewCase.objects.get(member=m1)
    assert (case.state, case.reasons, case.opened_at) == ("open", ["refund_rate", "velocity"], HELD_AT)
    assert case.details == {"refund_rate": {}, "velocity": {"orders_per_day": 40}}  # the latest per reason
    assert ReviewCase.objects.count() == 2 and member("m1").held_since == HELD_AT
    assert [(e["member"], e["reason"], e["held_since"]) for e in events("member.held")] == [
        ("m1", "refund_rate", "2027-01-04T01:00:00Z"), ("m2", "refund_rate", "2027-01-04T01:00:00Z")]
    assert holds.place_holds([999_999], reason="x", details={}, at=HELD_AT) == 0  # unknown ids are skipped


def test_a_hold_needs_a_reason_and_an_aware_time(m1):
    before = snapshot()
    with pytest.raises(InvalidInput) as caught:
        holds.place_holds([m1.id], reason=" ", details={}, at=HELD_AT)
    assert caught.value.field == "reason"
    with pytest.raises(InvalidInput) as caught:
        holds.place_holds([m1.id], reason="x", details={}, at=HELD_AT.replace(tzinfo=None))
    assert caught.value.field == "at"
    assert snapshot() == before and not ReviewCase.objects.exists()


def test_a_held_members_order_and_action_credit_nothing_and_the_status_shows_them_held(m1, clock):
    pay("o0", "m1", at("2027-01-03 10:00"), "10", clock)  # before the hold: Sunday, 20 growth, 10 points
    hold(m1)
    outcome = pay("o1", "m1", MONDAY, "400", clock)
    assert (outcome.growth, outcome.points) == (450, 400)  # what it earned, as recorded
    act("c1", "m1", "check_in", MONDAY, clock)  # 5 growth
    order = Order.objects.get(order_id="o1")
    assert (order.hold, order.growth_base + order.growth_bonus, order.points) == ("held", 450, 400)
    assert Action.objects.get(event_id="c1").hold == "held"
    assert not LedgerEntry.objects.filter(reference__in=["o1", "c1"]).exists()
    assert not PointsLot.objects.filter(reference="o1").exists()
    m = member("m1")
    assert (m.growth_balance, m.points_balance, m.orders_count, m.paid_fen) == (20, 10, 2, 41000)
    seen = member_status("m1", clock=FixedClock(at("2027-01-20 10:00")))  # o0's points are available by now
    assert (seen.growth_balance, seen.points_balance, seen.points_spendable) == (20, 10, 10)
    assert (seen.growth_held, seen.points_held) == (455, 400)
    assert ledger_problems("m1") == []


def test_held_orders_do_not_count_for_tiers_until_approved(m1, clock):
    hold(m1)
    for i in range(3):
        pay(f"o{i}", "m1", MONDAY, "400", clock)  # 3 orders, ¥1200: gold, were they counted
    assert evaluate_tiers(FEB_1, clock=FixedClock(FEB_1)).changes["upgrade"] == 0
    assert evaluate_tiers_python(FEB_1, clock=FixedClock(FEB_1), dry_run=True).tiers == {"bronze": 1}
    assert member("m1").tier == "bronze"
    holds.approve(ReviewCase.objects.get().id, by="ops", note="a real customer", clock=FixedClock(TUESDAY))
    assert evaluate_tiers_python(FEB_1, clock=FixedClock(FEB_1), dry_run=True).tiers == {"gold": 1}
    assert evaluate_tiers(FEB_1, clock=FixedClock(FEB_1)).changes["upgrade"] == 1
    assert member("m1").tier == "gold"


def test_a_refund_of_a_held_order_posts_nothing_and_approval_credits_only_what_is_kept(m1, clock):
    hold(m1)
    pay("o1", "m1", MONDAY, "400", clock)
    outcome = refund("r1", "o1", "100", TUESDAY, clock)
    assert (outcome.growth_reversed, outcome.points_reversed, outcome.points_debt_created) == (100, 100, 0)
    assert not LedgerEntry.objects.exists() and Refund.objects.get().growth_reversed == 100
    assert member_status("m1", clock=clock).growth_held == 350
    decided_at = at("2027-01-06 10:00")
    decision = holds.approve(ReviewCase.objects.get().id, by="ops", note="checked", clock=FixedClock(decided_at))
    assert (decision.decision, decision.growth, decision.points, decision.orders) == ("approved", 350, 300, 1)
    entries = {(e.idempotency_key, e.delta, e.occurred_at, e.recorded_at) for e in LedgerEntry.objects.all()}
    assert entries == {("order:o1:growth", 350, MONDAY, decided_at), ("order:o1:points", 300, MONDAY, decided_at)}
    lot = PointsLot.objects.get(key="order:o1:points")
    # Earned on Monday: pending 7 days, expiring at the year's end (end_of_year), as if never held.
    assert (lot.remaining, lot.earned_at, lot.available_at, lot.expires_at) == (
        300, MONDAY, at("2027-01-11 10:00"), at("2028-01-01 00:00"))
    m = member("m1")
    assert (m.growth_balance, m.points_balance, m.held_since) == (350, 300, None)
    assert Order.objects.get().hold == ""
    # Refunded later, the rest is taken back from the credit now posted: nothing is left.
    refund("r2", "o1", "300", at("2027-01-07 10:00"), clock)
    assert (member("m1").growth_balance, member("m1").points_balance) == (0, 0)
    assert ledger_problems("m1") == []


def test_approval_posts_exactly_once(m1, clock):
    hold(m1)
    pay("o1", "m1", MONDAY, "400", clock)
    act("s1", "m1", "share", MONDAY, clock)  # 20 growth
    case_id = ReviewCase.objects.get().id
    first = holds.approve(case_id, by="ops", note="fine", clock=clock)
    assert (first.growth, first.points, first.orders, first.actions) == (470, 400, 1, 1)
    after = snapshot()
    with pytest.raises(Conflict) as caught:
        holds.approve(case_id, by="ops2", note="again", clock=clock)
    assert (caught.value.code, caught.value.field) == ("case_decided", "case")
    with pytest.raises(Conflict):
        holds.reject(case_id, by="ops2", note="changed my mind", clock=clock)
    assert snapshot() == after and ReviewCase.objects.get().decided_by == "ops"
    assert LedgerEntry.objects.filter(idempotency_key="order:o1:growth").count() == 1
    assert len(events("member.review_decided")) == 1


def test_an_approval_that_crashes_writes_nothing_and_its_rerun_posts_once(m1, clock, monkeypatch):
    hold(m1)
    pay("o1", "m1", MONDAY, "400", clock)
    before = snapshot()

    def crash(*args, **kwargs):
        raise RuntimeError("the process died after the writes")

    monkeypatch.setattr(holds, "emit", crash)
    with pytest.raises(RuntimeError):
        holds.approve(ReviewCase.objects.get().id, by="ops", note="ok", clock=clock)
    assert snapshot() == before and ReviewCase.objects.get().state == "open"
    monkeypatch.undo()
    holds.approve(ReviewCase.objects.get().id, by="ops", note="ok", clock=clock)
    assert (member("m1").growth_balance, member("m1").points_balance) == (450, 400)
    assert LedgerEntry.objects.count() == 2 and ledger_problems("m1") == []


def test_rejection_forfeits_the_held_credit_and_logs_who_and_why(m1, clock):
    pay("o0", "m1", at("2027-01-03 10:00"), "10", clock)  # credited before the hold: kept
    hold(m1)
    pay("o1", "m1", MONDAY, "400", clock)
    decision = holds.reject(ReviewCase.objects.get().id, by="ops:li", note="100 refunds in a day", clock=clock)
    assert (decision.decision, decision.growth, decision.points, decision.orders) == ("rejected", 450, 400, 1)
    case = ReviewCase.objects.get()
    assert (case.state, case.decided_by, case.note, case.growth, case.points, case.decided_at) == (
        "rejected", "ops:li", "100 refunds in a day", 450, 400, clock.now())
    assert Order.objects.get(order_id="o1").hold == "rejected"
    m = member("m1")
    assert (m.growth_balance, m.points_balance, m.held_since) == (20, 10, None)
    assert evaluate_tiers(FEB_1, clock=FixedClock(FEB_1)).changes["upgrade"] == 1  # o0 alone: silver
    assert member("m1").tier == "silver"
    # A refund of a forfeited order posts nothing either.
    refund("r1", "o1", "400", TUESDAY, clock)
    assert (member("m1").growth_balance, member("m1").points_balance) == (20, 10)
    # Released: the next order is credited as usual.
    pay("o2", "m1", TUESDAY, "10", clock)
    assert member("m1").growth_balance == 30 and ledger_problems("m1") == []
    (decided,) = events("member.review_decided")
    assert decided == {"member": "m1", "case": case.id, "decision": "rejected", "reason": "100 refunds in a day",
                       "by": "ops:li", "reasons": ["refund_rate"], "growth": 450, "points": 400}


def test_a_decision_needs_a_note_and_a_known_case(m1, clock):
    hold(m1)
    case_id = ReviewCase.objects.get().id
    for by, note, field in (("ops", " ", "note"), ("", "why", "by"), ("ops", "x" * 501, "note")):
        with pytest.raises(InvalidInput) as caught:
            holds.approve(case_id, by=by, note=note, clock=clock)
        assert caught.value.field == field
    with pytest.raises(NotFound) as missing:
        holds.reject(case_id + 1, by="ops", note="why", clock=clock)
    assert missing.value.code == "unknown_case"
    assert ReviewCase.objects.get().state == "open"


def test_a_new_hold_after_a_decision_opens_a_new_case(m1, clock):
    hold(m1)
    holds.approve(ReviewCase.objects.get().id, by="ops", note="fine", clock=clock)
    assert hold(m1, reason="velocity") == 1
    assert list(ReviewCase.objects.order_by("id").values_list("state", flat=True)) == ["approved", "open"]
    pay("o1", "m1", MONDAY, "10", clock)
    assert Order.objects.get().hold == "held" and member("m1").growth_balance == 0


# --- a random walk: holds, decisions, orders, refunds and actions keep the ledger's invariants ---

OPERATIONS = st.lists(st.one_of(
    st.tuples(st.just("order"), st.integers(0, 1), st.integers(1, 60_000)),
    st.tuples(st.just("refund"), st.integers(0, 1000), st.integers(1, 100)),
    st.tuples(st.just("action"), st.integers(0, 1), st.sampled_from(["check_in", "share"])),
    st.tuples(st.just("hold"), st.integers(0, 1)),
    st.tuples(st.just("approve"), st.integers(0, 1)),
    st.tuples(st.just("reject"), st.integers(0, 1)),
), min_size=1, max_size=25)


def _credited(order: Order, ledger: str) -> int:
    """The order's entry plus its refunds' entries on one ledger."""
    refunds = list(Refund.objects.filter(order_id=order.order_id).values_list("refund_id", flat=True))
    own = LedgerEntry.objects.filter(ledger=ledger, idempotency_key=f"order:{order.order_id}:{ledger}")
    back = LedgerEntry.objects.filter(ledger=ledger, source="refund", reference__in=refunds)
    return sum(own.values_list("delta", flat=True)) + sum(back.values_list("delta", flat=True))


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=OPERATIONS)
def test_random_walks_keep_balances_lots_and_entries_in_step(default_rules, steps):
    ReviewCase.objects.all().delete()
    clear_tables()
    clock = FixedClock(MONDAY)
    people = [register_member(f"w{i}", clock=clock).member for i in range(2)]
    for serial, step in enumerate(steps):
        kind, arg = step[0], step[1]
        if kind == "order":
            pay(f"o{serial}", f"w{arg}", clock.now(), f"{step[2] / 100:.2f}", clock)
        elif kind == "refund":
            orders = list(Order.objects.filter(amount_fen__gt=F("refunded_fen")).order_by("id"))
            if orders:
                order = orders[arg % len(orders)]
                left = order.amount_fen - order.refunded_fen
                amount = max(1, left * step[2] // 100)
                refund(f"r{serial}", order.order_id, f"{amount / 100:.2f}", clock.now(), clock)
        elif kind == "action":
            act(f"a{serial}", f"w{arg}", step[2], clock.now(), clock)
        elif kind == "hold":
            holds.place_holds([people[arg].id], reason="walk", details={}, at=clock.now())
        else:
            case = ReviewCase.objects.filter(member=people[arg], state="open").first()
            if case is not None:
                getattr(holds, kind)(case.id, by="ops", note="walk", clock=clock)
        clock.advance(hours=5)
        assert all(not problems for problems in ledger_problems_by_member().values())
    for order in Order.objects.all():
        kept = (order.growth_base + order.growth_bonus - order.growth_reversed, order.points - order.points_reversed)
        expected = kept if order.hold == "" else (0, 0)
        assert (_credited(order, "growth"), _credited(order, "points")) == expected, order.hold
    for person in people:
        open_case = ReviewCase.objects.filter(member=person, state="open").exists()
        assert (member(person.external_id).held_since is not None) == open_case
