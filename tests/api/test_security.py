"""Who may call what, and what a hostile caller can do: nothing.

Every route is listed in ROUTES with the scope it needs; a test checks the list against the
served schema, so a new route cannot slip past these tests. Each refusal also checks that the
store is unchanged, row for row.
"""

from __future__ import annotations

import base64
import json
import math
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

import pytest
from django.core import signing
from django.db import connection

from loyalty.api.auth import MEMBER_TOKEN_SALT, issue_member_token
from loyalty.clock import FixedClock, system_clock
from loyalty.services.apikeys import create_key, revoke
from loyalty.store.models import SCOPES, ApiKey, Member, OrderItem
from tests.api.support import Api, action, answer, error_of, key_for, order, refund, snapshot
from tests.conftest import at

pytestmark = pytest.mark.django_db

RULESET_START = "2021-01-01T00:00:00+08:00"


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # as called, on member m-1 and order o-1
    template: str  # as the schema documents it
    scope: str
    body: Any = None
    members: bool = False  # a member token may call it (for its own member)

    @property
    def name(self) -> str:
        return f"{self.method.upper()} {self.template}"


ROUTES = [
    Route("post", "/members", "/members", "members:write", {"external_id": "m-3"}),
    Route("get", "/members/m-1", "/members/{external_id}", "members:read", members=True),
    Route("get", "/members/m-1/ledger", "/members/{external_id}/ledger", "members:read", members=True),
    Route("post", "/members/m-1/token", "/members/{external_id}/token", "members:write", {}),
    Route("post", "/members/m-1/points/redeem", "/members/{external_id}/points/redeem", "points:write",
          {"redemption_id": "rd-1", "points": 1}),
    Route("post", "/members/m-1/adjustments", "/members/{external_id}/adjustments", "members:write",
          {"adjustment_id": "adj-1", "ledger": "points", "delta": 5, "reason": "goodwill"}),
    Route("post", "/events/orders", "/events/orders", "events:write", order("o-2")),
    Route("post", "/events/refunds", "/events/refunds", "events:write", refund("r-1", "o-1", "1.00")),
    Route("post", "/events/actions", "/events/actions", "events:write", action("a-1")),
    Route("post", "/events/orders:batch", "/events/orders:batch", "events:write", {"events": [order("o-3")]}),
    Route("post", "/events/refunds:batch", "/events/refunds:batch", "events:write",
          {"events": [refund("r-2", "o-1", "1.00")]}),
    Route("post", "/events/actions:batch", "/events/actions:batch", "events:write", {"events": [action("a-2")]}),
    Route("get", "/rulesets", "/rulesets", "members:read"),
    Route("get", "/rulesets/1", "/rulesets/{version}", "members:read"),
    Route("post", "/rulesets", "/rulesets", "rulesets:write",
          {"document": {"name": "x"}, "effective_from": RULESET_START}),
    Route("post", "/members/m-1/invitations", "/members/{external_id}/invitations", "members:write",
          {"inviter": "m-9"}),
    Route("get", "/members/m-1/coupons", "/members/{external_id}/coupons", "members:read", members=True),
    Route("post", "/coupons/LYAAAAAAAAAAAAAAAA/redeem", "/coupons/{code}/redeem", "coupons:write",
          {"member": "m-1", "order_id": "o-1"}),
    Route("post", "/quotes", "/quotes", "members:read",
          {"member": "m-1", "delivery_fee": "8.00", "lines": [{"sku": "s-1", "unit_price": "10.00", "quantity": 1}]},
          members=True),
    Route("get", "/rewards", "/rewards", "members:read", members=True),
]
ROUTE_IDS = [route.name for route in ROUTES]


def call(api: Api, route: Route, token: str | None = None) -> Any:
    if route.method == "get":
        return api.get(route.path, token=token)
    return api.post(route.path, route.body, token=token)


@pytest.fixture
def world(shop: Api) -> Api:
    """m-1 with order o-1 and m-2 with nothing, under the default ruleset."""
    answer(shop.post("/members", {"external_id": "m-2"}), 201)
    answer(shop.post("/events/orders", order("o-1", amount="100.00")), 201)
    return shop


def test_every_route_the_schema_documents_is_in_the_table(api):
    documented = answer(api.client.get("/api/v1/openapi.json"), 200)["paths"]
    served = {f"{method.upper()} {path.removeprefix('/api/v1')}" for path, ops in documented.items() for method in ops}
    assert served == {route.name for route in ROUTES}


# Keys ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("route", ROUTES, ids=ROUTE_IDS)
def test_a_call_without_a_token_is_401_with_a_challenge(world, route):
    before = snapshot()
    response = call(world.anonymous(), route)
    assert error_of(response, 401)["code"] == "unauthenticated"
    assert response["WWW-Authenticate"] == "Bearer"
    assert snapshot() == before


BAD_KEYS = {
    "unknown key": "lk_0123456789ab_" + "A" * 43,
    "prefix only": "lk_0123456789ab",
    "bare prefix": "lk_",
    "no prefix": "just-some-text",
    "sql in the key": "lk_' OR 1=1 --_x",
    "a member-token prefix with junk": "mt_not-a-token",
}


@pytest.mark.parametrize("token", BAD_KEYS.values(), ids=BAD_KEYS.keys())
@pytest.mark.parametrize("route", [ROUTES[1], ROUTES[6]], ids=[ROUTES[1].name, ROUTES[6].name])
def test_an_unknown_or_malformed_token_is_401(world, route, token):
    before = snapshot()
    error = error_of(call(world, route, token=token), 401)
    assert error["code"] in ("unauthenticated", "invalid_token")
    assert snapshot() == before


def test_a_key_with_a_wrong_secret_is_401(world):
    real = key_for("platform")
    prefix, secret = real.removeprefix("lk_").split("_", 1)
    forged = f"lk_{prefix}_{secret[:-2]}{'AB' if secret[-2:] != 'AB' else 'CD'}"
    assert error_of(world.get("/members/m-1", token=forged), 401)["code"] == "unauthenticated"
    assert answer(world.get("/members/m-1", token=real), 200)["external_id"] == "m-1"


def test_another_authorization_scheme_is_401(world):
    response = world.client.get("/api/v1/members/m-1", headers={"Authorization": "Basic b3BzOnNlY3JldA=="})
    assert error_of(response, 401)["code"] == "unauthenticated"


def test_a_revoked_key_is_401(world):
    made = create_key("platform", SCOPES)
    assert answer(world.get("/members/m-1", token=made.plaintext), 200)["external_id"] == "m-1"
    revoke(made.key.prefix)
    before = snapshot()
    assert error_of(world.get("/members/m-1", token=made.plaintext), 401)["code"] == "unauthenticated"
    assert error_of(world.post("/events/orders", order("o-9"), token=made.plaintext), 401)["code"] == "unauthenticated"
    assert snapshot() == before


@pytest.mark.parametrize("route", ROUTES, ids=ROUTE_IDS)
def test_a_key_without_the_routes_scope_is_403(world, route):
    other_scopes = [scope for scope in SCOPES if scope != route.scope]
    token = key_for("narrow", *other_scopes)
    before = snapshot()
    error = error_of(call(world, route, token=token), 403)
    assert error["code"] == "missing_scope"
    assert route.scope in error["message"]
    assert snapshot() == before


@pytest.mark.parametrize("route", ROUTES, ids=ROUTE_IDS)
def test_a_key_with_only_the_routes_scope_gets_past_the_door(world, route):
    response = call(world, route, token=key_for("exact", route.scope))
    assert response.status_code not in (401, 403), response.content


def test_an_api_key_is_stored_only_as_its_hash(db):
    made = create_key("platform", ["events:write"])
    secret = made.plaintext.removeprefix(f"lk_{made.key.prefix}_")  # may itself hold "_"
    assert len(secret) >= 40
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM api_keys")
        columns = [column[0] for column in cursor.description]
        rows = cursor.fetchall()
    assert len(rows) == 1
    stored = dict(zip(columns, rows[0], strict=True))
    for column, value in stored.items():
        assert made.plaintext not in str(value), column
        assert secret not in str(value), column
    assert stored["prefix"] == made.key.prefix and made.key.prefix in made.plaintext


# Rate limits --------------------------------------------------------------------------------------


def _away_from_a_minute_boundary() -> None:
    """The limit counts per calendar minute: start early in one, so that six calls share it."""
    second = system_clock.now().second
    if second >= 55:
        time.sleep(61 - second)


def test_the_sixth_call_in_a_minute_on_a_five_a_minute_key_is_429(world):
    token = create_key("slow-platform", SCOPES, rate_per_minute=5).plaintext
    _away_from_a_minute_boundary()
    for _ in range(5):
        assert answer(world.get("/members/m-1", token=token), 200)["external_id"] == "m-1"
    before = snapshot()
    response = world.post("/events/orders", order("o-late"), token=token)
    assert error_of(response, 429)["code"] == "rate_limited"
    assert 1 <= int(response["Retry-After"]) <= 60
    assert snapshot() == before
    # Another key is counted on its own.
    assert answer(world.get("/members/m-1"), 200)["external_id"] == "m-1"


# Member tokens ------------------------------------------------------------------------------------


def _member_token(api: Api, member: str = "m-1", **body: Any) -> str:
    issued = answer(api.post(f"/members/{member}/token", body), 201)
    assert issued["token"].startswith("mt_")
    return str(issued["token"])


def test_a_member_token_reads_its_own_member_and_ledger(world):
    token = _member_token(world)
    status = answer(world.get("/members/m-1", token=token), 200)
    assert (status["external_id"], status["growth_balance"]) == ("m-1", 100)
    ledger = answer(world.get("/members/m-1/ledger", token=token), 200)
    assert {entry["reference"] for entry in ledger["entries"]} == {"o-1"}


def test_a_member_token_expires_when_it_says(world):
    asked_at = system_clock.now()
    issued = answer(world.post("/members/m-1/token", {"ttl_seconds": 600}), 201)
    answered_at = system_clock.now()
    expires_at = datetime.fromisoformat(issued["expires_at"])
    # The API's time format has milliseconds: allow for that rounding, nothing else.
    assert asked_at + timedelta(seconds=600, milliseconds=-1) <= expires_at <= answered_at + timedelta(seconds=600)


@pytest.mark.parametrize("path", ["/members/m-2", "/members/m-2/ledger", "/members/nobody", "/members/nobody/ledger"])
def test_a_member_token_sees_no_other_member_not_even_whether_it_exists(world, path):
    token = _member_token(world)
    error = error_of(world.get(path, token=token), 404)
    assert (error["code"], error["field"]) == ("unknown_member", "member")


@pytest.mark.parametrize("route", [route for route in ROUTES if not route.members],
                         ids=[route.name for route in ROUTES if not route.members])
def test_a_member_token_may_not_call_an_operators_route(world, route):
    token = _member_token(world)
    before = snapshot()
    assert error_of(call(world, route, token=token), 403)["code"] == "forbidden"
    assert snapshot() == before


def test_an_expired_member_token_is_401(world):
    token, expires_at = issue_member_token("m-1", ttl=timedelta(minutes=15), clock=FixedClock(at("2020-01-01 09:00")))
    assert expires_at == at("2020-01-01 09:15")
    error = error_of(world.get("/members/m-1", token=token), 401)
    assert error["code"] == "token_expired"


def _b64(claims: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(claims, separators=(",", ":")).encode()).decode().rstrip("=")


def _tampered(token: str, how: str) -> str:
    payload, stamp, signature = token.removeprefix("mt_").split(":")
    if how == "flipped signature":
        middle = len(signature) // 2
        signature = signature[:middle] + ("A" if signature[middle] != "A" else "B") + signature[middle + 1:]
        return f"mt_{payload}:{stamp}:{signature}"
    if how == "member swapped":
        claims = signing.loads(token.removeprefix("mt_"), salt=MEMBER_TOKEN_SALT)
        return f"mt_{_b64({**claims, 'm': 'm-2'})}:{stamp}:{signature}"
    if how == "expiry extended":
        claims = signing.loads(token.removeprefix("mt_"), salt=MEMBER_TOKEN_SALT)
        return f"mt_{_b64({**claims, 'exp': claims['exp'] + 86400})}:{stamp}:{signature}"
    if how == "signed with another salt":
        return "mt_" + signing.dumps({"m": "m-1", "exp": math.floor(system_clock.now().timestamp()) + 600},
                                     salt="loyalty.something-else")
    if how == "signed claims of the wrong shape":
        return "mt_" + signing.dumps(["m-1"], salt=MEMBER_TOKEN_SALT)
    if how == "truncated":
        return token[:-10]
    raise AssertionError(how)


TAMPERINGS = ["flipped signature", "member swapped", "expiry extended", "signed with another salt",
              "signed claims of the wrong shape", "truncated"]


@pytest.mark.parametrize("how", TAMPERINGS)
def test_a_tampered_member_token_is_401(world, how):
    token = _tampered(_member_token(world), how)
    for path in ("/members/m-1", "/members/m-2"):
        error = error_of(world.get(path, token=token), 401)
        assert error["code"] == "invalid_token", (how, error)


# Hostile strings ----------------------------------------------------------------------------------

HOSTILE = {
    "sql": "' OR 1=1 --",
    "sql-drop": '"; DROP TABLE members; --',
    "sql-no-spaces": "1';DROP/**/TABLE/**/members;--",
    "script": "<script>alert(1)</script>",
    "script-no-slash": "<img src=x onerror=alert(1)>",
    "nul": "\u0000",
    "nul-inside": "m\u0000-1",
    "long": "x" * 10_000,
    "rtl-override": "\u202eabc",
    "rtl-text": "مرحبا-שלום",
    "emoji": "🎉-\U0001f600",
}


def _set(document: Any, path: tuple[Any, ...], value: Any) -> Any:
    copy = json.loads(json.dumps(document))
    target = copy
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return copy


@dataclass(frozen=True)
class Write:
    path: str
    body: dict[str, Any]
    fields: tuple[tuple[Any, ...], ...]
    echoed: dict[tuple[Any, ...], tuple[Any, ...]]  # a body field -> where a 2xx answer holds it


ORDER_WITH_ITEMS = order("o-h", amount="10.00", items=[{"sku": "s-1", "category": "fresh", "amount": "10.00"}])
WRITES = [
    Write("/members", {"external_id": "m-h", "birthday": "1990-05-17"}, (("external_id",), ("birthday",)),
          {("external_id",): ("external_id",)}),
    Write("/members/m-1/points/redeem", {"redemption_id": "rd-h", "points": 1, "note": "n"},
          (("redemption_id",), ("note",)), {("redemption_id",): ("redemption_id",)}),
    Write("/members/m-1/points/redeem", {"redemption_id": "rd-r", "reward": "mug", "quantity": 1, "note": "n"},
          (("redemption_id",), ("reward",), ("note",)), {("redemption_id",): ("redemption_id",)}),
    Write("/members/m-1/adjustments", {"adjustment_id": "adj-h", "ledger": "points", "delta": 1, "reason": "r"},
          (("adjustment_id",), ("ledger",), ("reason",)), {("adjustment_id",): ("adjustment_id",)}),
    Write("/events/orders", ORDER_WITH_ITEMS,
          (("order_id",), ("member",), ("paid_at",), ("amount",), ("items", 0, "sku"), ("items", 0, "category"),
           ("items", 0, "amount")),
          {("order_id",): ("order_id",)}),
    Write("/events/refunds", refund("r-h", "o-1", "1.00"), (("refund_id",), ("order_id",), ("amount",),
                                                             ("refunded_at",)),
          {("refund_id",): ("refund_id",)}),
    Write("/events/actions", action("a-h", kind="review", ref="o-1"),
          (("event_id",), ("member",), ("type",), ("at",), ("ref",)), {("event_id",): ("event_id",)}),
    Write("/events/orders:batch", {"events": [ORDER_WITH_ITEMS]},
          (("events", 0, "order_id"), ("events", 0, "member"), ("events", 0, "items", 0, "category")),
          {("events", 0, "order_id"): ("results", 0, "id")}),
    Write("/events/refunds:batch", {"events": [refund("r-h", "o-1", "1.00")]},
          (("events", 0, "refund_id"), ("events", 0, "order_id"), ("events", 0, "amount")),
          {("events", 0, "refund_id"): ("results", 0, "id")}),
    Write("/events/actions:batch", {"events": [action("a-h")]},
          (("events", 0, "event_id"), ("events", 0, "type"), ("events", 0, "at")),
          {("events", 0, "event_id"): ("results", 0, "id")}),
    Write("/rulesets", {"document": {}, "effective_from": RULESET_START, "reason": "why"},
          (("reason",), ("document", "name"), ("document", "tiers", 0, "name"), ("document", "timezone"),
           ("effective_from",)),
          {("reason",): ("reason",), ("document", "name"): ("name",)}),
    Write("/members/m-1/token", {"ttl_seconds": 600}, (("ttl_seconds",),), {}),
    Write("/members/m-1/invitations", {"inviter": "m-2", "note": "n"}, (("inviter",), ("note",)), {}),
]


def _dig(document: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        document = document[step]
    return document


def _tables_hold_what_they_held(before: dict[str, list[tuple[Any, ...]]]) -> None:
    """Every table is still there, and no row that was there has gone (rows may have been added)."""
    after = snapshot()
    assert set(after) == set(before)
    for table, rows in before.items():
        kept = {row[0] for row in after[table]}
        assert {row[0] for row in rows} <= kept, table
    members = {row[0]: row for row in after["members"]}
    for row in before["members"]:
        assert members[row[0]][1] == row[1]  # the same external_id


@pytest.mark.parametrize("write", WRITES, ids=[write.path for write in WRITES])
def test_hostile_strings_in_every_field_of_every_write_never_break_anything(world, write):
    base = write.body
    if write.path == "/rulesets":  # a real document, so that the hostile text is the only mistake
        base = {**base, "document": answer(world.get("/rulesets/1"), 200)["document"]}
    before = snapshot()
    for field in write.fields:
        for name, text in HOSTILE.items():
            body = _set(base, field, text)
            if write.path == "/rulesets":  # a new document each time, so that none is a replay of another
                body["document"]["description"] = f"{field}: {name}"
            response = world.post(write.path, body)
            assert response.status_code < 500, (write.path, field, name)
            result = answer(response, response.status_code)
            if response.status_code >= 400:
                error_of(response, response.status_code)
                continue
            for sent, shown in write.echoed.items():
                assert _dig(result, shown) == _dig(body, sent), (write.path, field, name)
    _tables_hold_what_they_held(before)


MEMBER_PATHS = ["/members/{}", "/members/{}/ledger", "/members/{}/coupons"]
MEMBER_WRITES = [("/members/{}/token", {}), ("/members/{}/points/redeem", {"redemption_id": "rd-p", "points": 1}),
                 ("/members/{}/adjustments", {"adjustment_id": "adj-p", "ledger": "points", "delta": 1,
                                              "reason": "r"}),
                 ("/members/{}/invitations", {"inviter": "m-2"})]


def _check_path_answer(response: Any, text: str) -> None:
    assert response.status_code in (404, 422), response.content[:300]
    error = error_of(response, response.status_code)
    if "/" in text:
        # No route matches a path with an extra segment: the API's own 404, which does not echo
        # the request (no reflected script).
        assert error["code"] == "not_found", error
        assert b"<script" not in response.content and b"onerror" not in response.content


@pytest.mark.parametrize("name", HOSTILE.keys())
def test_hostile_strings_in_path_parameters_are_404_or_422_never_5xx(world, name):
    text = HOSTILE[name]
    before = snapshot()
    segment = quote(text, safe="")
    for path in MEMBER_PATHS:
        _check_path_answer(world.get(path.format(segment)), text)
    for path, body in MEMBER_WRITES:
        _check_path_answer(world.post(path.format(segment), body), text)
    _check_path_answer(world.get(f"/rulesets/{segment}"), text)
    _check_path_answer(world.post(f"/coupons/{segment}/redeem", {"member": "m-1", "order_id": "o-1"}), text)
    for query in ("ledger", "cursor"):
        response = world.client.get(f"/api/v1/members/m-1/ledger?{query}={segment}",
                                    headers={"Authorization": world._headers(None)["Authorization"]})
        assert error_of(response, 422)["field"] == query
    assert snapshot() == before


def test_an_accepted_script_comes_back_exactly_as_sent_and_only_as_json(world):
    script = "<script>alert(1)</script>"
    response = world.post("/events/orders", order("o-s", amount="10.00",
                                                  items=[{"sku": "s-1", "category": script, "amount": "10.00"}]))
    answer(response, 201)
    assert OrderItem.objects.get(order__order_id="o-s").category == script
    # A ruleset whose tier names a script: the member's status shows it, JSON-encoded, never as markup.
    document = answer(world.get("/rulesets/1"), 200)["document"]
    document["tiers"][0]["name"] = script
    answer(world.post("/rulesets", {"document": document, "effective_from": RULESET_START, "reason": script}), 201)
    response = world.get("/members/m-1")
    body = answer(response, 200)
    assert body["tier"] == {"code": "bronze", "name": script}
    assert response["Content-Type"] == "application/json; charset=utf-8"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert answer(world.get("/rulesets"), 200)[-1]["reason"] == script


def test_tables_survive_an_attempt_to_drop_them(world):
    drop = '"; DROP TABLE members; --'
    world.post("/members", {"external_id": drop})
    world.post("/events/orders", order("o-x", member=drop))
    world.post("/members/m-1/adjustments", {"adjustment_id": "adj-x", "ledger": "points", "delta": 1, "reason": drop})
    assert Member.objects.filter(external_id__in=["m-1", "m-2"]).count() == 2
    assert ApiKey.objects.count() == 1
    assert answer(world.get("/members/m-1"), 200)["points_balance"] == 101
