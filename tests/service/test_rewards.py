"""Redeeming rewards of the catalogue: lots drawn soonest-expiring first, stock and per-member
limits, coupon rewards, replays and conflicts, refusals that change nothing, refunds of the
orders that earned spent points under both return policies, and an operator's reversal."""

from __future__ import annotations

import json
from typing import Any

import pytest

from loyalty.domain.errors import Conflict, InvalidInput, NotFound, Refused
from loyalty.services import rewards
from loyalty.services.coupons import redeem_coupon
from loyalty.services.members import register_member
from loyalty.services.points import redeem_points
from loyalty.services.redemptions import reverse_redemption
from loyalty.services.reports import points_liability
from loyalty.store.models import Coupon, LedgerEntry, OutboxEvent, PointsDebt, PointsLot, Redemption, Reward
from tests.conftest import at
from tests.service.support import ledger_problems, member, pay, refund, snapshot

MONDAY = at("2027-01-04 10:00")
SPENDABLE = at("2027-01-12 10:00")  # 8 days on: the default ruleset's 7 pending days are over


def make_reward(code: str = "mug", cost: int = 100, **fields: Any) -> Reward:
    return Reward.objects.create(code=code, name=code.title(), points_cost=cost, created_at=MONDAY,
                                 updated_at=MONDAY, **fields)


def state() -> dict[str, Any]:
    """Everything a redemption could change."""
    return {**snapshot(), "stock": list(Reward.objects.order_by("id").values_list("stock", flat=True)),
            "coupons": list(Coupon.objects.order_by("id").values_list("key", "state")),
            "events": OutboxEvent.objects.count()}


@pytest.fixture
def shop(default_rules, clock):
    """m1 with 300 points from two orders (100 + 200, both expiring at the end of 2027), spendable."""
    register_member("m1", clock=clock)
    pay("o1", "m1", MONDAY, "100", clock)
    pay("o2", "m1", at("2027-01-05 10:00"), "200", clock)
    clock.at = SPENDABLE
    return clock


def redeem(clock: Any, redemption_id: str = "rd-1", reward: str = "mug", quantity: int = 1, **extra: Any
           ) -> rewards.RedemptionView:
    return rewards.redeem("m1", redemption_id, reward=reward, quantity=quantity, clock=clock, **extra)


def test_a_goods_reward_draws_the_lots_posts_one_entry_and_takes_stock(shop):
    make_reward("mug", 120, stock=5)
    view = redeem(shop, quantity=2)  # 240 points: all of o1's 100, then 140 of o2's 200
    lots = {key: lot_id for key, lot_id in PointsLot.objects.values_list("key", "id")}
    assert [(lot.lot_id, lot.points) for lot in view.lots] == [(lots["order:o1:points"], 100),
                                                               (lots["order:o2:points"], 140)]
    assert {lot.expires_at for lot in view.lots} == {at("2028-01-01 00:00")}
    assert (view.reward, view.quantity, view.points, view.balance_after, view.coupons) == ("mug", 2, 240, 60, [])
    entry = LedgerEntry.objects.get(source="redemption")
    assert (entry.idempotency_key, entry.reference, entry.delta) == ("redemption:rd-1", "rd-1", -240)
    assert Reward.objects.get().stock == 3
    assert member("m1").points_balance == 60 and ledger_problems("m1") == []
    event = json.loads(OutboxEvent.objects.get(type="points.redeemed").body)["data"]
    assert event == {"member": "m1", "redemption_id": "rd-1", "reward": "mug", "quantity": 2, "points": 240,
                     "balance_after": 60, "coupons": []}


def test_a_replay_answers_the_first_answer_and_changes_nothing(shop):
    make_reward("mug", 100, stock=5)
    first = redeem(shop)
    before = state()
    shop.advance(days=3)
    again = redeem(shop)
    assert again == rewards.RedemptionView(**{**first.__dict__, "replayed": True})
    assert state() == before


def test_another_body_under_the_same_redemption_id_is_a_conflict_and_changes_nothing(shop):
    make_reward("mug", 100)
    make_reward("pen", 10)
    redeem(shop)
    before = state()
    for call in (lambda: redeem(shop, quantity=2), lambda: redeem(shop, reward="pen"),
                 lambda: redeem(shop, note="gift wrap"), lambda: redeem_points("m1", 100, redemption_id="rd-1",
                                                                               clock=shop)):
        with pytest.raises(Conflict) as conflict:
            call()
        assert (conflict.value.code, conflict.value.field) == ("exists_with_different_payload", "redemption_id")
    assert state() == before


def test_not_enough_points_is_refused_naming_the_points_and_changes_nothing(shop):
    make_reward("tv", 301, stock=1)
    before = state()
    with pytest.raises(Refused) as refused:
        redeem(shop, reward="tv")
    assert (refused.value.code, refused.value.field) == ("insufficient_points", "reward")
    assert "300 of 301" in refused.value.message
    assert state() == before


def test_pending_points_cannot_be_spent(default_rules, clock):
    register_member("m1", clock=clock)
    pay("o1", "m1", MONDAY, "500", clock)  # pending until 11 January 10:00
    make_reward("mug", 100)
    clock.at = at("2027-01-11 09:59")
    with pytest.raises(Refused) as refused:
        redeem(clock)
    assert refused.value.code == "insufficient_points" and "0 of 100" in refused.value.message
    clock.at = at("2027-01-11 10:00")
    assert redeem(clock).balance_after == 400


def test_stock_runs_out_and_then_refuses_without_changing_anything(shop):
    make_reward("mug", 10, stock=2)
    redeem(shop, "rd-1")
    redeem(shop, "rd-2")
    assert Reward.objects.get().stock == 0
    before = state()
    with pytest.raises(Refused) as refused:
        redeem(shop, "rd-3")
    assert (refused.value.code, refused.value.field) == ("out_of_stock", "quantity")
    assert state() == before
    assert [r.code for r in rewards.catalogue(clock=shop)] == []  # sold out: not offered


def test_the_per_member_limit_counts_units_held_and_not_the_reversed_ones(shop):
    make_reward("mug", 10, per_member_limit=3)
    redeem(shop, "rd-1", quantity=2)
    with pytest.raises(Refused) as refused:
        redeem(shop, "rd-2", quantity=2)
    assert (refused.value.code, refused.value.field) == ("redemption_limit_reached", "quantity")
    reverse_redemption("rd-1", actor="ops:li", clock=shop)
    assert redeem(shop, "rd-3", quantity=3).quantity == 3


def test_unknown_inactive_and_out_of_window_rewards_are_refused_by_name(shop):
    make_reward("old", 10, active=False)
    make_reward("later", 10, available_from=at("2027-02-01 00:00"))
    make_reward("gone", 10, available_until=SPENDABLE)
    before = state()
    for code, kind, expected in (("nope", NotFound, "unknown_reward"), ("old", Refused, "reward_inactive"),
                                 ("later", Refused, "reward_not_yet_available"), ("gone", Refused, "reward_ended")):
        with pytest.raises(kind) as error:
            redeem(shop, reward=code)
        assert (error.value.code, error.value.field) == (expected, "reward")
    with pytest.raises(NotFound) as unknown:
        rewards.redeem("nobody", "rd-1", reward="old", clock=shop)
    assert unknown.value.code == "unknown_member"
    assert state() == before


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"reward": "mug", "points": 5}, "reward"),
    ({}, "reward"),
    ({"reward": "mug", "quantity": 0}, "quantity"),
    ({"reward": "mug", "quantity": 101}, "quantity"),
    ({"reward": "mug", "quantity": True}, "quantity"),
    ({"points": 5, "quantity": 2}, "quantity"),
    ({"reward": "a mug"}, "reward"),
    ({"reward": "mug", "note": "x" * 201}, "note"),
])
def test_a_malformed_request_names_its_field_and_changes_nothing(shop, kwargs, field):
    make_reward("mug", 10)
    before = state()
    with pytest.raises(InvalidInput) as invalid:
        rewards.redeem("m1", "rd-1", clock=shop, **kwargs)
    assert invalid.value.field == field
    assert state() == before


def test_a_coupon_reward_issues_redeemable_coupons_and_announces_them(shop, settings):
    make_reward("c8", 100, kind="coupon", value_fen=800, min_spend_fen=5_000, valid_days=30)
    view = redeem(shop, reward="c8", quantity=2)
    coupons = list(Coupon.objects.filter(kind="reward").order_by("key"))
    assert [c.key for c in coupons] == ["reward:rd-1:1", "reward:rd-1:2"]
    assert [c.code for c in view.coupons] == [c.code for c in coupons]
    assert {(c.value_fen, c.min_spend_fen, c.valid_from, c.valid_until, c.state) for c in coupons} == {
        (800, 5_000, SPENDABLE, at("2027-02-11 10:00"), "issued")}  # 30 local days later, exclusive
    issued = json.loads(OutboxEvent.objects.get(type="coupon.issued").body)["data"]
    assert issued["reason"] == "reward" and [c["code"] for c in issued["coupons"]] == [c.code for c in coupons]
    assert issued["coupons"][0]["value"] == "8.00"
    redeemed = redeem_coupon(coupons[0].code, member="m1", order_id="o-9", amount_fen=6_000, clock=shop)
    assert redeemed.coupon.state == "redeemed"


def test_a_spend_of_points_keeps_its_lots_and_balance_too(shop):
    view = rewards.redeem("m1", "rd-1", points=150, clock=shop)
    assert (view.reward, view.points, view.balance_after, sum(lot.points for lot in view.lots)) == (None, 150, 150,
                                                                                                  150)
    assert redeem_points("m1", 150, redemption_id="rd-1", clock=shop).replayed


@pytest.mark.parametrize(("policy", "debt", "written_off"), [("allow_debt", 170, 0), ("within_balance", 0, 170)])
def test_refunding_the_order_whose_points_bought_a_reward_follows_the_return_policy(publish, clock, policy, debt,
                                                                                   written_off):
    publish("default", points={"return_policy": policy})
    register_member("m1", clock=clock)
    pay("o1", "m1", MONDAY, "100", clock)
    pay("o2", "m1", at("2027-01-05 10:00"), "200", clock)
    make_reward("mug", 270)
    clock.at = SPENDABLE
    redeem(clock)  # 270 of 300: o1's lot emptied (100), then 170 of o2's: 30 left in it
    # The refund takes back o2's 200 points: 30 from its own lot, none elsewhere, 170 short.
    outcome = refund("r2", "o2", "200", at("2027-01-13 10:00"), clock)
    assert (outcome.points_reversed, outcome.points_debt_created, outcome.points_written_off) == (200, debt,
                                                                                                 written_off)
    assert member("m1").points_balance == -debt and member("m1").points_debt == debt
    assert sum(PointsDebt.objects.values_list("remaining", flat=True)) == debt
    assert ledger_problems("m1") == []
    report = points_liability()
    assert report.check.agrees
    assert report.totals()["redeemed"] == 270 and report.totals()["written_off"] == written_off
    assert report.totals()["reversed"] == 30 + debt  # posted: what was clawed back, and the debt


def test_the_liability_report_counts_redemptions_and_nets_their_reversals(shop):
    make_reward("mug", 100)
    redeem(shop, "rd-1")
    redeem(shop, "rd-2")
    shop.advance(days=1)
    reverse_redemption("rd-2", actor="ops:li", clock=shop)
    rows = {row.period: row for row in points_liability().rows}
    assert rows["2027-01-12"].redeemed == 200
    assert rows["2027-01-13"].redeemed == -100  # given back: the day's net redemptions are negative
    assert rows["2027-01-13"].outstanding == 200 and points_liability().check.agrees


def test_a_reversal_gives_the_points_back_with_their_expiry_and_the_stock_once(shop):
    make_reward("mug", 120, stock=5)
    redeem(shop, quantity=2)
    shop.advance(days=2)
    before_lots = PointsLot.objects.count()
    reversal = reverse_redemption("rd-1", actor="ops:li", clock=shop)
    assert (reversal.points_returned, reversal.points_forfeited, reversal.replayed) == (240, 0, False)
    back = PointsLot.objects.filter(source="redemption").get()
    assert (back.key, back.remaining, back.expires_at, back.available_at) == (
        "redemption:rd-1:reversal:1", 240, at("2028-01-01 00:00"), shop.now())
    assert PointsLot.objects.count() == before_lots + 1
    entry = LedgerEntry.objects.get(idempotency_key="redemption:rd-1:reversal:1")
    assert entry.reverses_id == LedgerEntry.objects.get(idempotency_key="redemption:rd-1").id
    assert Reward.objects.get().stock == 5 and member("m1").points_balance == 300
    row = Redemption.objects.get()
    assert (row.state, row.reversed_by) == ("reversed", "ops:li")
    before = state()
    assert reverse_redemption("rd-1", actor="ops:wang", clock=shop).replayed
    assert state() == before and ledger_problems("m1") == []


def test_a_reversal_forfeits_points_whose_lots_have_expired_since_and_pays_debts_first(publish, clock):
    publish("default", points={"expiry": {"policy": "end_of_month"}})
    register_member("m1", clock=clock)
    pay("o1", "m1", MONDAY, "100", clock)  # expires 1 February
    make_reward("mug", 100)
    clock.at = SPENDABLE
    redeem(clock)
    clock.at = at("2027-02-01 00:00")
    assert reverse_redemption("rd-1", actor="ops", clock=clock).points_forfeited == 100
    assert member("m1").points_balance == 0 and ledger_problems("m1") == []


def test_a_coupon_reward_is_reversed_only_while_its_coupons_are_unused(shop):
    make_reward("c8", 10, kind="coupon", value_fen=800, valid_days=30)
    redeem(shop, "rd-1", reward="c8", quantity=2)
    redeem(shop, "rd-2", reward="c8")
    code = Coupon.objects.get(key="reward:rd-2:1").code
    redeem_coupon(code, member="m1", order_id="o-9", amount_fen=1_000, clock=shop)
    before = state()
    with pytest.raises(Refused) as refused:
        reverse_redemption("rd-2", actor="ops", clock=shop)
    assert refused.value.code == "reward_coupon_used" and state() == before
    reversal = reverse_redemption("rd-1", actor="ops", clock=shop)
    assert len(reversal.coupons_revoked) == 2
    revoked = Coupon.objects.filter(key__startswith="reward:rd-1:")
    assert {(c.state, c.revoked_by, c.revoke_reason) for c in revoked} == {
        ("revoked", "ops", "redemption rd-1 reversed")}
    # Each revoked coupon is heard by the platform, as an operator's revocation is.
    heard = [json.loads(e.body)["data"] for e in OutboxEvent.objects.filter(type="coupon.revoked").order_by("id")]
    assert [(d["code"], d["by"], d["reason"]) for d in heard] == [
        (code, "ops", "redemption rd-1 reversed") for code in reversal.coupons_revoked]
    with pytest.raises(NotFound):
        reverse_redemption("rd-9", actor="ops", clock=shop)


def test_the_catalogue_lists_what_may_be_redeemed_now_cheapest_first(shop):
    make_reward("mug", 100, stock=1)
    make_reward("pen", 10)
    make_reward("old", 5, active=False)
    make_reward("later", 1, available_from=at("2027-02-01 00:00"))
    assert [r.code for r in rewards.catalogue(clock=shop)] == ["pen", "mug"]
