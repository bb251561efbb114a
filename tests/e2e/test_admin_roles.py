"""The staff roles in the admin: an admin-role user (no superuser flag) keeps coupons, rewards,
API keys, webhook endpoints and the review queue; an operator gets the operators' actions but
edits no catalogue, key or endpoint; a viewer reads every page and gets no action at all."""

import pytest

from loyalty.services import holds
from loyalty.services.members import register_member
from loyalty.services.staff import create_staff
from loyalty.store.models import ApiKey, ReviewCase, Reward, WebhookEndpoint
from tests.conftest import at

PAGES = ("coupon", "reward", "redemption", "apikey", "webhookendpoint", "webhookdelivery", "reviewcase", "member",
         "rulesetversion", "ledgerentry", "deferredgrant", "opsalert")
REWARD = {"code": "mug-2027", "name": "Mug", "kind": "goods", "points_cost": "120", "value_fen": "0",
          "min_spend_fen": "0", "valid_days": "", "stock": "5", "per_member_limit": "", "active": "on",
          "available_from_0": "", "available_from_1": "", "available_until_0": "", "available_until_1": ""}
# The actions each role finds on each list ("delete_selected" is never offered: nothing is deleted).
ACTIONS = {
    "viewer": {"coupon": [], "reward": [], "redemption": [], "apikey": [], "webhookdelivery": [], "reviewcase": [],
               "member": [], "deferredgrant": [], "opsalert": []},
    "operator": {"coupon": ["revoke_coupons"], "reward": [], "redemption": ["reverse"], "apikey": [],
                 "webhookdelivery": ["replay_deliveries"], "reviewcase": ["approve_cases", "reject_cases"],
                 "member": ["invite_members"], "deferredgrant": ["release_now"], "opsalert": ["acknowledge"]},
    "admin": {"coupon": ["revoke_coupons"], "reward": ["activate", "deactivate"], "redemption": ["reverse"],
              "apikey": ["revoke_keys"], "webhookdelivery": ["replay_deliveries"],
              "reviewcase": ["approve_cases", "reject_cases"], "member": ["invite_members"],
              "deferredgrant": ["release_now"], "opsalert": ["acknowledge"]},
}


def login(client, role: str):
    create_staff(f"{role}-1", "secret-4", role)
    client.login(username=f"{role}-1", password="secret-4")
    return client


def actions_offered(client, model: str) -> list[str]:
    form = client.get(f"/admin/loyalty/{model}/").context["action_form"]  # None when there is none
    return [name for name, _ in form.fields["action"].choices if name] if form else []


@pytest.mark.parametrize("role", ["viewer", "operator", "admin"])
def test_every_role_reads_every_page_and_gets_exactly_its_actions(client, default_rules, role):
    login(client, role)
    for model in PAGES:
        assert client.get(f"/admin/loyalty/{model}/").status_code == 200, model
    assert {model: actions_offered(client, model) for model in ACTIONS[role]} == ACTIONS[role]


@pytest.mark.parametrize("role", ["viewer", "operator"])
def test_only_admins_add_rewards_keys_and_endpoints(client, default_rules, role):
    login(client, role)
    for model in ("reward", "apikey", "webhookendpoint"):
        assert client.get(f"/admin/loyalty/{model}/add/").status_code == 403, model
    assert client.post("/admin/loyalty/reward/add/", REWARD).status_code == 403
    assert not Reward.objects.exists()


def test_an_admin_adds_a_reward_an_api_key_and_a_webhook_endpoint(client, default_rules):
    login(client, "admin")

    assert client.post("/admin/loyalty/reward/add/", REWARD).status_code == 302
    key_page = client.post("/admin/loyalty/apikey/add/", {"name": "platform", "scopes": ["members:read"],
                                                          "rate_per_minute": "600"}, follow=True)
    endpoint = client.post("/admin/loyalty/webhookendpoint/add/", {
        "url": "https://shop.example/hooks", "events": ["points.adjusted"], "active": "on", "description": "app",
        "secret": ""})

    assert Reward.objects.get().code == "mug-2027"
    key = ApiKey.objects.get()
    assert (key.name, key.scopes) == ("platform", ["members:read"])
    assert "The new key (shown only now, copy it): " in key_page.content.decode()
    assert endpoint.status_code == 302 and WebhookEndpoint.objects.get().secret.startswith("whsec_")
    revoked = client.post("/admin/loyalty/apikey/", {"action": "revoke_keys", "_selected_action": [key.id]})
    assert revoked.status_code == 302 and ApiKey.objects.get().revoked_at is not None


def test_an_operator_decides_a_review_case_and_a_viewer_cannot(client, default_rules, clock):
    member = register_member("m1", clock=clock).member
    holds.place_holds([member.id], reason="refund_rate", details={}, at=at("2027-01-04 09:00"))
    case = ReviewCase.objects.get()
    decide = {"action": "approve_cases", "note": "checked", "_selected_action": [case.id]}

    login(client, "viewer")
    client.post("/admin/loyalty/reviewcase/", decide)
    assert ReviewCase.objects.get().state == "open"

    client.logout()
    login(client, "operator")
    client.post("/admin/loyalty/reviewcase/", decide)
    assert (ReviewCase.objects.get().state, ReviewCase.objects.get().decided_by) == ("approved", "operator-1")
