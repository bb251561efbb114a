"""Operators create rewards in the admin (mistakes named by field), withdraw them from the list,
and reverse a redemption with an action; redemptions are never edited by hand."""


from loyalty.services import rewards
from loyalty.services.members import register_member
from loyalty.store.models import Member, Redemption, Reward
from tests.conftest import at
from tests.service.support import pay

FORM = {"code": "mug-2027", "name": "Mug", "kind": "goods", "points_cost": "120", "value_fen": "0",
        "min_spend_fen": "0", "valid_days": "", "stock": "5", "per_member_limit": "", "active": "on",
        "available_from_0": "", "available_from_1": "", "available_until_0": "", "available_until_1": ""}



def test_an_operator_creates_a_reward_and_it_is_offered(operator, default_rules):
    response = operator.post("/admin/loyalty/reward/add/", FORM)
    assert response.status_code == 302, response.content[:3000]
    reward = Reward.objects.get()
    assert (reward.code, reward.points_cost, reward.stock, reward.active) == ("mug-2027", 120, 5, True)
    assert reward.created_at is not None and reward.updated_at == reward.created_at
    assert [r.code for r in rewards.catalogue()] == ["mug-2027"]
    listed = operator.get("/admin/loyalty/reward/", {"q": "mug"})
    assert b"mug-2027" in listed.content


def test_a_coupon_reward_without_value_or_days_is_refused_naming_the_fields(operator, default_rules):
    response = operator.post("/admin/loyalty/reward/add/", {**FORM, "kind": "coupon", "points_cost": "0"})
    assert response.status_code == 200 and not Reward.objects.exists()
    errors = response.context["adminform"].form.errors
    assert {"points_cost", "value_fen", "valid_days"} <= set(errors)


def test_a_change_writes_only_the_changed_fields_so_stock_taken_meanwhile_stays_taken(operator, default_rules):
    operator.post("/admin/loyalty/reward/add/", FORM)
    reward = Reward.objects.get()
    Reward.objects.filter(id=reward.id).update(stock=4)  # a redemption while the form was open
    # The form was opened showing a stock of 5 (its hidden initial value says so).
    response = operator.post(f"/admin/loyalty/reward/{reward.id}/change/",
                             {**FORM, "name": "Big mug", "initial-stock": "5"})
    assert response.status_code == 302
    reward.refresh_from_db()
    assert (reward.name, reward.stock) == ("Big mug", 4)
    operator.post(f"/admin/loyalty/reward/{reward.id}/change/", {**FORM, "stock": "10", "initial-stock": "4"})
    reward.refresh_from_db()
    assert reward.stock == 10  # an operator's own change of the stock is written
    assert operator.post(f"/admin/loyalty/reward/{reward.id}/delete/", {"post": "yes"}).status_code == 403


def test_an_operator_reverses_a_redemption_from_the_list(operator, default_rules, clock):
    register_member("m1", clock=clock)
    pay("o1", "m1", at("2027-01-04 10:00"), "300", clock)
    clock.advance(days=8)
    Reward.objects.create(code="mug", name="Mug", points_cost=100, stock=1, created_at=clock.now(),
                          updated_at=clock.now())
    rewards.redeem("m1", "rd-1", reward="mug", clock=clock)
    row = Redemption.objects.get()
    assert operator.get("/admin/loyalty/redemption/add/").status_code == 403
    response = operator.post("/admin/loyalty/redemption/", {"action": "reverse", "_selected_action": [row.id]})
    assert response.status_code == 302
    row.refresh_from_db()
    assert (row.state, row.reversed_by) == ("reversed", "ops")
    assert Reward.objects.get().stock == 1 and Member.objects.get().points_balance == 300
