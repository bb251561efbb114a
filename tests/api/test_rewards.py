"""Points redemption over HTTP: a reward redeemed (201), replayed (same body, replay header), a
different body under the same id (409), refusals that name their field and change nothing,
unknown member or reward (404), the `points:write` scope, and the catalogue."""

from __future__ import annotations

from typing import Any

import pytest

from loyalty.store.models import ApiKey, Coupon, PointsLot, Reward
from tests.api.support import Api, answer, error_of, is_replay, key_for, order, snapshot
from tests.conftest import at

pytestmark = pytest.mark.django_db

LONG_AGO = "2020-01-06T10:00:00+08:00"  # the order's points are long spendable at the real clock's now


def reward(code: str = "mug", cost: int = 100, **fields: Any) -> Reward:
    return Reward.objects.create(code=code, name=code.title(), points_cost=cost, created_at=at("2020-01-01 00:00"),
                                 updated_at=at("2020-01-01 00:00"), **fields)


@pytest.fixture
def world(shop: Api) -> Api:
    """m-1 with 300 spendable points (never expiring: the preset's end-of-year lots of 2020 would
    have expired by now) and m-2 with none."""
    answer(shop.post("/members", {"external_id": "m-2"}), 201)
    answer(shop.post("/events/orders", order("o-1", amount="300.00", paid_at=LONG_AGO)), 201)
    PointsLot.objects.update(expires_at=None)
    Coupon.objects.all().delete()  # welcome packs, out of the way
    return shop


def redeem(api: Api, body: dict[str, Any], member: str = "m-1", **kw: Any) -> Any:
    return api.post(f"/members/{member}/points/redeem", body, **kw)


def test_a_reward_is_redeemed_once_and_a_replay_answers_the_same(world):
    reward("mug", 120, stock=3)
    first = redeem(world, {"redemption_id": "rd-1", "reward": "mug", "quantity": 2})
    body = answer(first, 201)
    lot_id = PointsLot.objects.get().id
    assert {k: v for k, v in body.items() if k != "redeemed_at"} == {
        "redemption_id": "rd-1", "member": "m-1", "reward": "mug", "quantity": 2, "points": 240,
        "lots": [{"lot": lot_id, "expires_at": None, "points": 240}], "balance_after": 60, "coupons": []}
    assert not is_replay(first)
    before = snapshot()
    again = redeem(world, {"redemption_id": "rd-1", "reward": "mug", "quantity": 2})
    assert answer(again, 201) == body and is_replay(again)
    assert snapshot() == before
    assert Reward.objects.get().stock == 1


def test_a_different_body_under_the_same_id_is_409_and_changes_nothing(world):
    reward("mug", 10)
    answer(redeem(world, {"redemption_id": "rd-1", "reward": "mug"}), 201)
    before = snapshot()
    for body in ({"redemption_id": "rd-1", "reward": "mug", "quantity": 2}, {"redemption_id": "rd-1", "points": 10}):
        error = error_of(redeem(world, body), 409)
        assert (error["code"], error["field"]) == ("exists_with_different_payload", "redemption_id")
    assert snapshot() == before


def test_a_coupon_reward_answers_its_coupons(world):
    reward("c8", 100, kind="coupon", value_fen=800, min_spend_fen=5_000, valid_days=30)
    body = answer(redeem(world, {"redemption_id": "rd-1", "reward": "c8"}), 201)
    coupon = Coupon.objects.get(kind="reward")
    assert [(c["code"], c["value"], c["min_spend"]) for c in body["coupons"]] == [(coupon.code, "8.00", "50.00")]
    wallet = answer(world.get("/members/m-1/coupons"), 200)["coupons"]
    assert [c["code"] for c in wallet] == [coupon.code]


@pytest.mark.parametrize(("body", "status", "code", "field"), [
    ({"redemption_id": "rd-1", "reward": "tv"}, 422, "insufficient_points", "reward"),
    ({"redemption_id": "rd-1", "reward": "sold-out"}, 422, "out_of_stock", "quantity"),
    ({"redemption_id": "rd-1", "reward": "retired"}, 422, "reward_inactive", "reward"),
    ({"redemption_id": "rd-1", "reward": "nope"}, 404, "unknown_reward", "reward"),
    ({"redemption_id": "rd-1", "reward": "mug", "quantity": 0}, 422, "invalid_input", "quantity"),
    ({"redemption_id": "rd-1", "reward": "mug", "quantity": "2"}, 422, "invalid_input", "quantity"),
    ({"redemption_id": "rd-1", "reward": "a mug"}, 422, "invalid_input", "reward"),
    ({"redemption_id": "rd-1", "reward": "mug", "points": 5}, 422, "invalid_input", "reward"),
    ({"redemption_id": "rd-1"}, 422, "invalid_input", "reward"),
    ({"reward": "mug"}, 422, "invalid_input", "redemption_id"),
])
def test_a_refused_redemption_names_its_field_and_changes_nothing(world, body, status, code, field):
    reward("mug", 10)
    reward("tv", 301)
    reward("sold-out", 1, stock=0)
    reward("retired", 1, active=False)
    before = snapshot()
    error = error_of(redeem(world, body), status)
    assert (error["code"], error["field"]) == (code, field)
    assert snapshot() == before


def test_an_unknown_member_is_404(world):
    reward("mug", 10)
    error = error_of(redeem(world, {"redemption_id": "rd-1", "reward": "mug"}, member="nobody"), 404)
    assert (error["code"], error["field"]) == ("unknown_member", "member")


def test_redeeming_needs_the_points_write_scope_and_a_member_token_may_not(world):
    reward("mug", 10)
    narrow, exact = key_for("platform", "members:write", "members:read"), key_for("shop", "points:write")
    token = answer(world.post("/members/m-1/token", {}), 201)["token"]
    before = snapshot()
    error = error_of(redeem(world, {"redemption_id": "rd-1", "reward": "mug"}, token=narrow), 403)
    assert error["code"] == "missing_scope" and "points:write" in error["message"]
    assert error_of(redeem(world, {"redemption_id": "rd-1", "reward": "mug"}, token=token), 403)["code"] == "forbidden"
    assert snapshot() == before
    answer(redeem(world, {"redemption_id": "rd-1", "reward": "mug"}, token=exact), 201)


def test_the_catalogue_shows_what_may_be_redeemed_to_a_key_and_to_a_member(world):
    reward("mug", 120, stock=3, per_member_limit=1)
    reward("c8", 100, kind="coupon", value_fen=800, valid_days=30)
    reward("retired", 1, active=False)
    body = answer(world.get("/rewards"), 200)
    assert [r["code"] for r in body["rewards"]] == ["c8", "mug"]
    assert body["rewards"][0] == {"code": "c8", "name": "C8", "kind": "coupon", "points_cost": 100, "value": "8.00",
                                  "min_spend": "0.00", "valid_days": 30, "stock": None, "per_member_limit": None,
                                  "available_until": None}
    assert body["rewards"][1]["value"] is None and body["rewards"][1]["stock"] == 3
    token = answer(world.post("/members/m-1/token", {}), 201)["token"]
    assert answer(world.get("/rewards", token=token), 200) == body


def test_the_migration_gives_points_write_to_keys_that_could_redeem_before(world):
    from importlib import import_module

    from django.apps import apps

    migration = import_module("loyalty.store.migrations.0008_rewards")
    key_for("old-platform", "members:write")
    key_for("reader", "members:read")
    migration.grant_points_write(apps, None)
    scopes = dict(ApiKey.objects.values_list("name", "scopes"))
    assert scopes["old-platform"] == ["members:write", "points:write"]
    assert scopes["reader"] == ["members:read"]
