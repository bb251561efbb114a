"""The API's working paths: members, status and ledger pages, single and batched events with
their replays and conflicts, points redemption, adjustments and rulesets.

The numbers come from the default ruleset (1 growth and 1 point per yuan, fresh food ×1.5, a
50-growth bonus from ¥300, weekends ×2) where its arithmetic is obvious, and otherwise from the
service the endpoint wraps (`member_status`), so the API is checked against the engine itself.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from loyalty.domain.conditions import AMOUNT_METRICS
from loyalty.services.members import member_status
from loyalty.services.rulesets import preset_document
from loyalty.store.models import Adjustment, LedgerEntry, Member, Order, RulesetVersion
from tests.api.support import (
    Api,
    action,
    answer,
    counts,
    error_of,
    is_replay,
    order,
    refund,
    snapshot,
)

pytestmark = pytest.mark.django_db

FRESH_ORDER = order("o-1", amount="128.00", items=[{"sku": "sku-42", "category": "fresh", "amount": "128.00"}])


# Members ---------------------------------------------------------------------------------------


def test_registering_a_member_answers_201_with_the_member(default_rules, api):
    body = answer(api.post("/members", {"external_id": "m-10001", "birthday": "1990-05-17"}), 201)
    assert body["external_id"] == "m-10001"
    assert body["birthday"] == "1990-05-17"
    assert body["registered_at"]
    member = Member.objects.get(external_id="m-10001")
    assert (member.tier, member.growth_balance, member.points_balance) == ("bronze", 0, 0)


def test_registering_again_replays_the_same_body_and_changes_nothing(default_rules, api):
    first = api.post("/members", {"external_id": "m-10001", "birthday": "1990-05-17"})
    assert not is_replay(first)
    before = snapshot()
    again = api.post("/members", {"external_id": "m-10001", "birthday": "1990-05-17"})
    assert answer(again, 201) == answer(first, 201)
    assert is_replay(again)
    assert snapshot() == before


def test_registering_again_with_a_different_birthday_is_a_conflict(default_rules, api):
    api.post("/members", {"external_id": "m-10001", "birthday": "1990-05-17"})
    before = snapshot()
    error = error_of(api.post("/members", {"external_id": "m-10001", "birthday": "1991-05-17"}), 409)
    assert (error["code"], error["field"]) == ("exists_with_different_payload", "external_id")
    assert snapshot() == before


def test_a_member_id_with_a_slash_is_refused_because_no_path_could_name_it(default_rules, api):
    error = error_of(api.post("/members", {"external_id": "shop/42"}), 422)
    assert error["field"] == "external_id"
    assert not Member.objects.exists()


def test_a_new_member_shows_the_base_tier_and_empty_balances(shop):
    body = answer(shop.get("/members/m-1"), 200)
    assert body["tier"] == {"code": "bronze", "name": "青铜"}
    assert {key: body["next_tier"][key] for key in ("code", "name")} == {"code": "silver", "name": "白银"}
    assert (body["growth_balance"], body["points_balance"], body["points_debt"]) == (0, 0, 0)
    assert body["recent"] == []


def _numbers(metric: str, text: str) -> Decimal:
    """A progress figure as the engine holds it: amounts in fen, counts as they are."""
    return Decimal(text) * 100 if metric in AMOUNT_METRICS else Decimal(text)


def test_status_after_orders_shows_what_the_engine_computes(shop):
    answer(shop.post("/events/orders", order("o-1", amount="100.00")), 201)  # Monday: 100 growth, 100 points
    answer(shop.post("/events/orders", order("o-2", amount="350.00", paid_at="2027-01-06T12:00:00+08:00")), 201)
    answer(shop.post("/events/actions", action("a-1")), 201)  # a check-in: 5 growth
    body = answer(shop.get("/members/m-1"), 200)
    # 100 + (350 + the 50 bonus for an order from ¥300) + 5; points 1 per yuan.
    assert (body["growth_balance"], body["points_balance"], body["points_debt"]) == (505, 450, 0)

    seen = member_status("m-1")
    assert body["external_id"] == seen.external_id
    assert body["tier"] == {"code": seen.tier.code, "name": seen.tier.name}
    assert seen.next_tier is not None
    assert (body["next_tier"]["code"], body["next_tier"]["name"]) == (seen.next_tier.code, seen.next_tier.name)
    assert body["points_spendable"] == seen.points_spendable
    assert body["tier_expires_at"] == seen.tier_expires_at
    assert [(gap["metric"], gap["window"]) for gap in body["progress"]] == [(g.metric, g.window) for g in seen.gaps]
    for shown, gap in zip(body["progress"], seen.gaps, strict=True):
        assert _numbers(gap.metric, shown["needed"]) == gap.needed
        assert _numbers(gap.metric, shown["current"]) == gap.current
        assert _numbers(gap.metric, shown["missing"]) == max(gap.needed - gap.current, Decimal(0))
    assert [(e["id"], e["ledger"], e["delta"], e["source"], e["reference"]) for e in body["recent"]] == [
        (e.id, e.ledger, e.delta, e.source, e.reference) for e in seen.recent]


def test_status_of_an_unknown_member_is_404(shop):
    error = error_of(shop.get("/members/nobody"), 404)
    assert (error["code"], error["field"]) == ("unknown_member", "member")


# The ledger, a page at a time ------------------------------------------------------------------


@pytest.fixture
def busy_ledger(shop) -> Api:
    """m-1 with 12 orders (a growth and a points entry each) and 3 check-ins: 27 entries; m-2 with one order."""
    answer(shop.post("/members", {"external_id": "m-2"}), 201)
    orders = [order(f"o-{n}", amount=f"{10 + n}.00") for n in range(12)] + [order("o-other", member="m-2")]
    assert answer(shop.post("/events/orders:batch", {"events": orders}), 200)["applied"] == 13
    for day in (4, 5, 6):
        answer(shop.post("/events/actions", action(f"a-{day}", at=f"2027-01-0{day}T08:00:00+08:00")), 201)
    return shop


def _walk(api: Api, **query: Any) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = []
    cursor = None
    for _ in range(100):
        page = answer(api.get("/members/m-1/ledger", **query, **({"cursor": cursor} if cursor else {})), 200)
        assert len(page["entries"]) <= query.get("limit", 50)
        entries += page["entries"]
        cursor = page["next_cursor"]
        if cursor is None:
            return entries
    raise AssertionError("the cursor never ran out")


def test_walking_the_ledger_by_cursor_visits_every_entry_once_newest_first(busy_ledger):
    entries = _walk(busy_ledger, limit=4)
    ids = [entry["id"] for entry in entries]
    expected = list(LedgerEntry.objects.filter(member__external_id="m-1").order_by("-id").values_list("id", flat=True))
    assert len(expected) == 27
    assert ids == expected  # each once, newest first, none of m-2's


def test_a_page_as_large_as_the_ledger_has_no_next_cursor(busy_ledger):
    page = answer(busy_ledger.get("/members/m-1/ledger", limit=27), 200)
    assert len(page["entries"]) == 27
    assert page["next_cursor"] is None


def test_the_ledger_filtered_to_points_holds_only_points_entries(busy_ledger):
    entries = _walk(busy_ledger, limit=5, ledger="points")
    assert {entry["ledger"] for entry in entries} == {"points"}
    expected = LedgerEntry.objects.filter(member__external_id="m-1", ledger="points").order_by("-id")
    assert [entry["id"] for entry in entries] == [entry.id for entry in expected]
    assert [entry["delta"] for entry in entries] == [entry.delta for entry in expected]
    assert len(entries) == 12


# Single events ----------------------------------------------------------------------------------


def test_an_order_answers_its_growth_and_points(shop):
    response = shop.post("/events/orders", FRESH_ORDER)
    body = answer(response, 201)
    # 128 yuan of fresh food on a Monday: growth 128 × 1.5 = 192; points 1 per yuan.
    assert body == {"order_id": "o-1", "member": "m-1", "growth": 192, "points": 128, "ruleset_version": 1,
                    "capped_reason": ""}
    assert not is_replay(response)
    assert Member.objects.get(external_id="m-1").growth_balance == 192


def test_a_replayed_order_answers_the_first_body_and_changes_nothing(shop):
    first = answer(shop.post("/events/orders", FRESH_ORDER), 201)
    before = snapshot()
    again = shop.post("/events/orders", FRESH_ORDER)
    assert answer(again, 201) == first
    assert is_replay(again)
    assert snapshot() == before


def test_a_replayed_order_with_a_different_amount_is_a_409_and_changes_nothing(shop):
    shop.post("/events/orders", FRESH_ORDER)
    before = snapshot()
    changed = {**FRESH_ORDER, "amount": "129.00", "items": [{"sku": "sku-42", "category": "fresh", "amount": "129.00"}]}
    error = error_of(shop.post("/events/orders", changed), 409)
    assert (error["code"], error["field"]) == ("exists_with_different_payload", "order_id")
    assert snapshot() == before


def test_a_refund_reverses_growth_and_points_in_proportion(shop):
    shop.post("/events/orders", FRESH_ORDER)
    response = shop.post("/events/refunds", refund("r-1", "o-1", "28.00"))
    body = answer(response, 201)
    # 28 of 128 yuan: 192 × 28 / 128 = 42 growth, 28 points.
    assert body == {"refund_id": "r-1", "order_id": "o-1", "growth_reversed": 42, "points_reversed": 28,
                    "points_debt_created": 0, "points_written_off": 0}
    assert not is_replay(response)
    member = Member.objects.get(external_id="m-1")
    assert (member.growth_balance, member.points_balance) == (150, 100)


def test_a_replayed_refund_answers_the_first_body_and_a_changed_one_is_a_409(shop):
    shop.post("/events/orders", FRESH_ORDER)
    first = answer(shop.post("/events/refunds", refund("r-1", "o-1", "28.00")), 201)
    before = snapshot()
    again = shop.post("/events/refunds", refund("r-1", "o-1", "28.00"))
    assert answer(again, 201) == first
    assert is_replay(again)
    error = error_of(shop.post("/events/refunds", refund("r-1", "o-1", "29.00")), 409)
    assert (error["code"], error["field"]) == ("exists_with_different_payload", "refund_id")
    assert snapshot() == before


def test_an_action_answers_its_growth(shop):
    response = shop.post("/events/actions", action("a-1"))
    assert answer(response, 201) == {"event_id": "a-1", "member": "m-1", "type": "check_in", "growth": 5,
                                     "points": 0, "capped_reason": ""}
    assert not is_replay(response)


def test_a_replayed_action_answers_the_first_body_and_a_changed_one_is_a_409(shop):
    first = answer(shop.post("/events/actions", action("a-1")), 201)
    before = snapshot()
    again = shop.post("/events/actions", action("a-1"))
    assert answer(again, 201) == first
    assert is_replay(again)
    error = error_of(shop.post("/events/actions", action("a-1", kind="share")), 409)
    assert (error["code"], error["field"]) == ("exists_with_different_payload", "event_id")
    assert snapshot() == before


# Batches ----------------------------------------------------------------------------------------


def test_a_batch_of_1000_orders_answers_1000_results_in_order(shop):
    for n in range(2, 11):
        shop.post("/members", {"external_id": f"m-{n}"})
    events = [order(f"o-{n:04d}", member=f"m-{n % 10 + 1}", amount=f"{n % 97 + 1}.{n % 100:02d}")
              for n in range(1000)]
    body = answer(shop.post("/events/orders:batch", {"events": events}), 200)
    assert (body["applied"], body["replayed"], body["failed"]) == (1000, 0, 0)
    assert [result["id"] for result in body["results"]] == [event["order_id"] for event in events]
    assert {result["status"] for result in body["results"]} == {"applied"}
    for event, result in zip(events, body["results"], strict=True):
        assert result["error"] is None
        assert result["result"]["order_id"] == event["order_id"]
        assert result["result"]["member"] == event["member"]
        assert result["result"]["points"] == int(Decimal(event["amount"]))  # 1 point per whole yuan
    assert Order.objects.count() == 1000
    assert sum(m.points_balance for m in Member.objects.all()) == sum(r["result"]["points"] for r in body["results"])


def test_a_mixed_batch_answers_each_event_and_applies_only_the_valid_ones(shop):
    first = answer(shop.post("/events/orders", order("o-1", amount="100.00")), 201)
    answer(shop.post("/events/orders", order("o-2", amount="50.00")), 201)
    before = counts()
    events = [
        order("o-new", amount="20.00"),                 # applied
        order("o-bad", amount="12.345"),                # invalid amount
        order("o-ghost", member="nobody"),              # unknown member
        order("o-1", amount="100.00"),                  # a replay of the first order
        order("o-2", amount="55.00"),                   # o-2 again with another amount: a conflict
        {"member": "m-1", "amount": "1.00", "paid_at": "2027-01-04T10:00:00+08:00"},  # no order_id
        order("o-naive", paid_at="2027-01-04T10:00:00"),  # a time without an offset
        order("o-new", amount="20.00"),                 # o-new again in the same batch: a replay
        order("o-new-2", amount="30.00"),               # applied
    ]
    body = answer(shop.post("/events/orders:batch", {"events": events}), 200)
    results = body["results"]
    assert [r["status"] for r in results] == ["applied", "error", "error", "replayed", "error", "error", "error",
                                              "replayed", "applied"]
    assert [r["id"] for r in results] == ["o-new", "o-bad", "o-ghost", "o-1", "o-2", None, "o-naive", "o-new",
                                          "o-new-2"]
    assert [(r["error"]["code"], r["error"]["field"]) for r in results if r["error"]] == [
        ("invalid_input", "amount"), ("unknown_member", "member"), ("exists_with_different_payload", "order_id"),
        ("invalid_input", "order_id"), ("invalid_input", "paid_at")]
    assert all(r["result"] is None for r in results if r["status"] == "error")
    assert results[3]["result"] == first
    assert results[7]["result"] == results[0]["result"]
    assert results[0]["result"]["growth"] == 20 and results[8]["result"]["growth"] == 30
    assert (body["applied"], body["replayed"], body["failed"]) == (2, 2, 5)

    after = counts()
    assert after["orders"] == before["orders"] + 2
    assert after["ledger_entries"] == before["ledger_entries"] + 4  # growth and points for each
    assert set(Order.objects.values_list("order_id", flat=True)) == {"o-1", "o-2", "o-new", "o-new-2"}
    assert Member.objects.get(external_id="m-1").growth_balance == 100 + 50 + 20 + 30


def test_batches_of_refunds_and_actions_answer_one_result_per_event(shop):
    shop.post("/events/orders", order("o-1", amount="100.00"))
    refunds = answer(shop.post("/events/refunds:batch", {"events": [
        refund("r-1", "o-1", "10.00"), refund("r-2", "o-unknown", "1.00"), refund("r-3", "o-1", "1000.00")]}), 200)
    assert [(r["status"], r["id"]) for r in refunds["results"]] == [("applied", "r-1"), ("error", "r-2"),
                                                                    ("error", "r-3")]
    assert [r["error"]["code"] for r in refunds["results"][1:]] == ["unknown_order", "refund_exceeds_paid"]
    assert refunds["results"][0]["result"]["growth_reversed"] == 10
    actions = answer(shop.post("/events/actions:batch", {"events": [
        action("a-1"), action("a-2", kind="dance"), action("a-1")]}), 200)
    assert [(r["status"], r["id"]) for r in actions["results"]] == [("applied", "a-1"), ("error", "a-2"),
                                                                    ("replayed", "a-1")]
    assert actions["results"][1]["error"]["field"] == "type"


def test_a_batch_of_1001_events_is_refused_whole(shop):
    before = snapshot()
    events = [order(f"o-{n}") for n in range(1001)]
    error = error_of(shop.post("/events/orders:batch", {"events": events}), 422)
    assert (error["code"], error["field"]) == ("invalid_input", "events")
    assert "1000" in error["message"]
    assert snapshot() == before


# Points and adjustments ---------------------------------------------------------------------------


def test_redeeming_more_points_than_spendable_is_refused_and_changes_nothing(shop):
    shop.post("/events/orders", FRESH_ORDER)  # its points are still pending (7 days), so none are spendable
    before = snapshot()
    error = error_of(shop.post("/members/m-1/points/redeem", {"redemption_id": "rd-1", "points": 10}), 422)
    assert (error["code"], error["field"]) == ("insufficient_points", "points")
    assert snapshot() == before


def test_redeeming_points_spends_them_once_however_often_it_is_sent(shop):
    answer(shop.post("/members/m-1/adjustments", {"adjustment_id": "adj-1", "ledger": "points", "delta": 500,
                                                   "reason": "welcome gift"}), 201)
    first = shop.post("/members/m-1/points/redeem", {"redemption_id": "rd-1", "points": 200, "note": "a mug"})
    body = answer(first, 201)
    assert {name: body[name] for name in ("redemption_id", "member", "reward", "quantity", "points", "balance_after",
                                          "coupons")} == {
        "redemption_id": "rd-1", "member": "m-1", "reward": None, "quantity": 1, "points": 200,
        "balance_after": 300, "coupons": []}
    assert [lot["points"] for lot in body["lots"]] == [200]
    assert not is_replay(first)
    before = snapshot()
    again = shop.post("/members/m-1/points/redeem", {"redemption_id": "rd-1", "points": 200, "note": "a mug"})
    assert answer(again, 201) == answer(first, 201)
    assert is_replay(again)
    error = error_of(shop.post("/members/m-1/points/redeem", {"redemption_id": "rd-1", "points": 300,
                                                              "note": "a mug"}), 409)
    assert (error["code"], error["field"]) == ("exists_with_different_payload", "redemption_id")
    assert snapshot() == before
    status = answer(shop.get("/members/m-1"), 200)
    assert (status["points_balance"], status["points_spendable"]) == (300, 300)


def test_an_adjustment_records_the_keys_name_as_its_actor(shop):
    response = shop.post("/members/m-1/adjustments", {"adjustment_id": "adj-1", "ledger": "growth", "delta": 120,
                                                       "reason": "goodwill for a late delivery"})
    assert answer(response, 201) == {"adjustment_id": "adj-1", "member": "m-1", "ledger": "growth", "delta": 120}
    stored = Adjustment.objects.get(adjustment_id="adj-1")
    assert (stored.actor, stored.reason, stored.delta) == ("api-key:ops", "goodwill for a late delivery", 120)
    assert answer(shop.get("/members/m-1"), 200)["growth_balance"] == 120


def test_a_replayed_adjustment_answers_the_same_and_a_changed_one_is_a_409(shop):
    body = {"adjustment_id": "adj-1", "ledger": "points", "delta": 50, "reason": "goodwill"}
    first = answer(shop.post("/members/m-1/adjustments", body), 201)
    before = snapshot()
    again = shop.post("/members/m-1/adjustments", body)
    assert answer(again, 201) == first
    assert is_replay(again)
    error_of(shop.post("/members/m-1/adjustments", {**body, "delta": 60}), 409)
    assert snapshot() == before


def test_a_debit_below_zero_growth_is_refused(shop):
    before = snapshot()
    error = error_of(shop.post("/members/m-1/adjustments", {"adjustment_id": "adj-1", "ledger": "growth",
                                                             "delta": -1, "reason": "typo"}), 422)
    assert (error["code"], error["field"]) == ("insufficient_growth", "delta")
    assert snapshot() == before


# Rulesets ---------------------------------------------------------------------------------------


def test_the_rulesets_list_shows_every_published_version(shop):
    body = answer(shop.get("/rulesets"), 200)
    assert [(v["version"], v["name"], v["published_by"]) for v in body] == [(1, "default", "tests")]
    assert body[0]["checksum"] == RulesetVersion.objects.get(version=1).checksum


def test_one_ruleset_version_comes_with_its_document(shop):
    body = answer(shop.get("/rulesets/1"), 200)
    assert body["version"] == 1
    stored = json.loads(RulesetVersion.objects.get(version=1).document)
    assert body["document"] == stored
    assert body["document"]["tiers"][2] == {"code": "gold", "name": "黄金",
                                            "when": {"any": [{"orders": ">= 3"}, {"amount": ">= 800"}]}}


def test_an_unknown_ruleset_version_is_404(shop):
    for version in ("2", "0", "-1", "99999999999999999999"):
        error = error_of(shop.get(f"/rulesets/{version}"), 404)
        assert (error["code"], error["field"]) == ("unknown_ruleset", "version")


def test_publishing_a_ruleset_stores_the_next_version_by_the_key(shop):
    document = answer(shop.get("/rulesets/1"), 200)["document"]
    document["growth"]["per_yuan"] = "2"
    published = answer(shop.post("/rulesets", {"document": document, "effective_from": "2027-02-01T00:00:00+08:00",
                                               "reason": "double growth in February"}), 201)
    assert (published["version"], published["name"], published["published_by"], published["reason"]) == (
        2, "default", "api-key:ops", "double growth in February")
    assert [v["version"] for v in answer(shop.get("/rulesets"), 200)] == [1, 2]
    assert answer(shop.get("/rulesets/2"), 200)["document"]["growth"]["per_yuan"] == "2"
    # An order paid under version 2 earns by it; one paid before still by version 1.
    assert answer(shop.post("/events/orders", order("o-feb", amount="10.00", paid_at="2027-02-02T10:00:00+08:00")),
                  201)["growth"] == 20
    assert answer(shop.post("/events/orders", order("o-jan", amount="10.00")), 201)["growth"] == 10


def test_publishing_the_same_document_again_returns_the_same_version(shop):
    body = {"document": preset_document("default"), "effective_from": "2027-02-01T00:00:00+08:00"}
    text = json.dumps(body, default=str)
    first = answer(shop.post("/rulesets", raw=text), 201)
    before = snapshot()
    assert answer(shop.post("/rulesets", raw=text), 201) == first
    assert snapshot() == before


def test_a_ruleset_with_a_mistake_is_refused_naming_its_path(shop):
    document = answer(shop.get("/rulesets/1"), 200)["document"]
    document["tiers"][2]["when"]["any"][1] = {"amout": ">= 800"}
    before = snapshot()
    error = error_of(shop.post("/rulesets", {"document": document, "effective_from": "2027-02-01T00:00:00+08:00"}),
                     422)
    assert error["code"] == "ruleset_invalid"
    assert error["field"] == "tiers[2].when.any[1]"
    assert "tiers[2].when.any[1]: unknown metric 'amout'" in error["message"]
    assert snapshot() == before


def test_a_ruleset_may_not_start_before_the_latest_one(shop):
    document = answer(shop.get("/rulesets/1"), 200)["document"]
    before = snapshot()
    error = error_of(shop.post("/rulesets", {"document": document, "effective_from": "2019-01-01T00:00:00+08:00"}),
                     422)
    assert error["field"] == "effective_from"
    assert snapshot() == before
