"""Operators backtest a candidate ruleset from the admin before publishing it: problems are listed
under the field and nothing runs; a valid candidate shows the comparison; nothing is written.

The history (default rules in force): m1 pays ¥100 on Mondays 01-04, 01-11 and 01-18 (3 orders:
gold on 02-01); the candidate asks 4 orders for gold, so m1 would end silver."""

from pathlib import Path

import pytest
import yaml
from django.contrib.auth.models import Permission, User

from loyalty.services.members import register_member
from loyalty.store.models import LedgerEntry, Member, RulesetVersion, TierChange
from tests.conftest import at
from tests.service.support import pay

URL = "/admin/loyalty/rulesetversion/backtest/"
ROOT = Path(__file__).resolve().parents[2]



@pytest.fixture
def history(default_rules, clock):
    register_member("m1", clock=clock)
    for order_id, day in (("o1", "01-04"), ("o2", "01-11"), ("o3", "01-18")):
        pay(order_id, "m1", at(f"2027-{day} 10:00"), "100", clock)


def candidate() -> str:
    document = yaml.safe_load((ROOT / "rulesets" / "default.yaml").read_text())
    document["name"] = "harder gold"
    document["tiers"][2]["when"] = {"any": [{"orders": ">= 4"}, {"amount": ">= 800"}]}
    return yaml.safe_dump(document, allow_unicode=True)


def test_a_candidate_is_backtested_beside_the_version_in_force_and_nothing_is_written(operator, history):
    listed = operator.get("/admin/loyalty/rulesetversion/")
    assert URL.encode() in listed.content  # the way in, from the versions' list
    before = (RulesetVersion.objects.count(), LedgerEntry.objects.count(), TierChange.objects.count())

    response = operator.post(URL, {"candidate": candidate(), "baseline": "", "delivery_fee": "6", "months": ""})

    assert response.status_code == 200
    result = response.context["result"]
    assert result["rulesets"]["candidate"] == "harder gold"
    assert result["moved"]["by_move"] == [{"from": "gold", "to": "silver", "members": 1}]
    page = response.content.decode()
    assert "1 member would end in another tier" in page and "gold → silver 1" in page
    assert "16.00 → 5.00" in page  # coupons issued on 02-01: gold 2 × ¥8, or silver 1 × ¥5
    assert (RulesetVersion.objects.count(), LedgerEntry.objects.count(), TierChange.objects.count()) == before
    assert Member.objects.get(external_id="m1").tier == "bronze"  # the backtest moved nobody


def test_a_broken_candidate_is_refused_with_its_problems_under_the_field(operator, history):
    response = operator.post(URL, {"candidate": "name: broken\ntiers: []\n", "baseline": "", "delivery_fee": "0"})

    assert response.status_code == 200 and "result" not in response.context
    errors = response.context["form"].errors["candidate"]
    assert any("tiers" in error for error in errors)
    assert "errorlist" in response.content.decode()


def test_staff_without_the_view_permission_cannot_run_it(client, history):
    staff = User.objects.create_user("viewer", password="secret", is_staff=True)
    client.force_login(staff)
    assert client.get(URL).status_code == 403
    staff.user_permissions.add(Permission.objects.get(codename="view_rulesetversion"))
    assert client.get(URL).status_code == 200
