"""The member-status read is dispatched by Django straight to its handler (`loyalty.api.hot`), not
through Ninja's operation; both must answer alike. Ninja's own test client calls the declared
operation (no URLconf), Django's test client the view the URLconf chose: same status, headers and
bytes for a member's status and for every error the route can give."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from ninja.testing import TestClient

from loyalty.api import api as ninja_api
from loyalty.api.auth import issue_member_token
from tests.api.support import Api, answer, error_of, key_for

ORDER = {"order_id": "o-1", "member": "m-1", "paid_at": "2027-01-04T10:00:00+08:00", "amount": "128.00",
         "items": [{"sku": "s-1", "category": "food", "amount": "128.00"}]}


def through_ninja(path: str, token: str | None) -> Any:
    # Ninja's test client puts headers into META as given: the WSGI name is spelled out here.
    headers = {"AUTHORIZATION": f"Bearer {token}"} if token else {}
    return TestClient(ninja_api).get(path, headers=headers)


CASES: dict[str, Callable[[Api], tuple[str, str | None]]] = {
    "a member's status": lambda shop: ("/members/m-1", shop.token),
    "an unknown member": lambda shop: ("/members/m-404", shop.token),
    "no token": lambda shop: ("/members/m-1", None),
    "an unknown key": lambda shop: ("/members/m-1", "lk_abc_def"),
    "a key without members:read": lambda shop: ("/members/m-1", key_for("writer", "events:write")),
    "a member token for its own member": lambda shop: ("/members/m-1", issue_member_token("m-1")[0]),
    "a member token for another member": lambda shop: ("/members/m-2", issue_member_token("m-1")[0]),
    "a forged member token": lambda shop: ("/members/m-1", "mt_forged"),
    "an id longer than 64 characters": lambda shop: ("/members/" + "m" * 65, shop.token),
    "an id with a control character": lambda shop: ("/members/m%01", shop.token),
}


@pytest.mark.parametrize("case", CASES)
def test_the_status_route_answers_as_the_ninja_operation_would(shop, case):
    answer(shop.post("/events/orders", ORDER), 201)
    answer(shop.post("/members", {"external_id": "m-2"}), 201)
    path, token = CASES[case](shop)
    served = shop.get(path, token=token or "")
    declared = through_ninja(path.replace("%01", "\x01"), token)
    assert served.status_code == declared.status_code, (served.content, declared.content)
    assert served.content == declared.content
    assert served["Content-Type"] == declared["Content-Type"]
    assert served.get("WWW-Authenticate") == declared.get("WWW-Authenticate")


def test_the_status_shows_the_order_just_recorded(shop):
    answer(shop.post("/events/orders", ORDER), 201)
    body = answer(shop.get("/members/m-1"), 200)
    assert (body["growth_balance"], body["points_balance"], body["points_spendable"]) == (128, 128, 0)
    assert [entry["reference"] for entry in body["recent"]] == ["o-1", "o-1"]


def test_a_bad_member_id_is_a_422_naming_the_path_segment(shop):
    error = error_of(shop.get("/members/" + "m" * 65), 422)
    assert error["field"] == "external_id"


def test_the_status_route_stays_in_the_openapi_document(api):
    operations = answer(api.get("/openapi.json"), 200)["paths"]["/api/v1/members/{external_id}"]
    assert set(operations) == {"get"}
    assert set(operations["get"]["responses"]) >= {"200", "401", "403", "404", "422"}
