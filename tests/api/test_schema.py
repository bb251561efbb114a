"""The served OpenAPI schema is the contract. schemathesis generates requests from it (its
examples, valid data and invalid data) and checks every answer: never a 5xx, every status code,
header and content type documented, every body matching its schema, invalid requests refused,
a call without the key refused. The database holds the default ruleset, member m-10001 (the
schema's own example) with an order and points, so the examples reach real data.

Not checked: `positive_data_acceptance`. The schema states types and sizes, and the engine
refuses, with a documented 422, what the schema cannot state (an id with a space, items that do
not add up, more points than the member has, a ruleset that does not validate).

Also: the schema documents every route of SPEC with examples, and /api/v1/docs needs no CDN.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from django.test import Client
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
)

from loyalty.services import rulesets
from tests.api.support import answer, key_for
from tests.conftest import RULES_FROM

schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", get_wsgi_application())
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance, negative_data_rejection, ignored_auth, unsupported_method]


@pytest.fixture
def bearer(default_rules: Any) -> Iterator[dict[str, str]]:
    """An operator's key with every scope; m-10001 with an order and 1,000 spendable points."""
    token = key_for("schemathesis")
    client = Client(headers={"Authorization": f"Bearer {token}"})

    def post(path: str, body: dict[str, Any]) -> None:
        answer(client.post(f"/api/v1{path}", body, content_type="application/json"), 201)

    post("/members", {"external_id": "m-10001", "birthday": "1990-05-17"})
    post("/events/orders", {"order_id": "o-20270104-001", "member": "m-10001", "paid_at": "2027-01-04T10:30:00+08:00",
                            "amount": "128.00"})
    post("/members/m-10001/adjustments", {"adjustment_id": "seed", "ledger": "points", "delta": 1000,
                                          "reason": "points to redeem"})
    # Keep the test's connection open across schemathesis's requests, as Django's own test client
    # does for its own: the WSGI handler closes connections when a request ends, which would end
    # the test's transaction on PostgreSQL and MariaDB (SQLite's in-memory database ignores it).
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        yield {"Authorization": f"Bearer {token}"}
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


@schema.parametrize()
@settings(max_examples=20, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.filter_too_much, HealthCheck.data_too_large])
def test_every_answer_matches_the_schema(case, bearer):
    case.call_and_validate(headers=bearer, checks=CHECKS)


# The schema as a document -----------------------------------------------------------------------

SPEC_ROUTES = {
    ("post", "/members"), ("get", "/members/{external_id}"), ("get", "/members/{external_id}/ledger"),
    ("post", "/members/{external_id}/token"), ("post", "/members/{external_id}/points/redeem"),
    ("post", "/events/orders"), ("post", "/events/refunds"), ("post", "/events/actions"),
    ("post", "/events/orders:batch"), ("post", "/events/refunds:batch"), ("post", "/events/actions:batch"),
    ("get", "/rulesets"), ("post", "/rulesets"), ("get", "/rulesets/{version}"),
    ("get", "/members/{external_id}/coupons"), ("post", "/coupons/{code}/redeem"),
    ("get", "/rewards"), ("post", "/quotes"),
}


@pytest.fixture
def document(db: Any) -> dict[str, Any]:
    return dict(answer(Client().get("/api/v1/openapi.json"), 200))


def _resolve(document: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    """A schema with its $ref (or a one-part allOf) followed."""
    if "allOf" in node and len(node["allOf"]) == 1:
        node = {**node["allOf"][0], **{k: v for k, v in node.items() if k != "allOf"}}
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[1]
        node = {**document["components"]["schemas"][name], **{k: v for k, v in node.items() if k != "$ref"}}
    return node


def _has_example(document: dict[str, Any], node: dict[str, Any]) -> bool:
    node = _resolve(document, node)
    if {"examples", "example", "enum", "const"} & set(node):
        return True
    required = node.get("required", [])
    properties = node.get("properties", {})
    return bool(required) and all(_has_example(document, properties[name]) for name in required)


def test_the_schema_documents_every_route_of_spec(document):
    served = {(method, path.removeprefix("/api/v1")) for path, ops in document["paths"].items() for method in ops}
    assert served >= SPEC_ROUTES, SPEC_ROUTES - served
    assert document["openapi"].startswith("3.")
    assert document["components"]["securitySchemes"] == {"Bearer": {"type": "http", "scheme": "bearer"}}


def test_every_operation_has_examples_and_documents_its_errors(document):
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            where = f"{method.upper()} {path}"
            assert operation.get("summary"), where
            assert operation.get("security") == [{"Bearer": []}], where
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "path":
                    assert _has_example(document, parameter["schema"]), (where, parameter["name"])
            if "requestBody" in operation:
                body = operation["requestBody"]["content"]["application/json"]["schema"]
                assert _has_example(document, body), where
            responses = operation["responses"]
            assert {"401", "403", "404", "422", "429"} <= set(responses), where
            for status in ("400", "401", "403", "404", "409", "413", "422", "429"):
                error = responses[status]["content"]["application/json"]["schema"]
                assert error == {"$ref": "#/components/schemas/ErrorOut"}, (where, status)


def test_the_request_examples_are_valid_requests(document):
    """Each body example validates against its own schema (checked by the API itself: a 2xx)."""
    client = Client(headers={"Authorization": f"Bearer {key_for('docs')}"})
    rulesets.publish(rulesets.preset_document("default"), effective_from=RULES_FROM, actor="tests")
    order = [("/members", {"external_id": "m-10001"})]
    for path in ("/events/orders", "/events/refunds", "/events/actions", "/events/orders:batch",
                 "/events/refunds:batch", "/events/actions:batch", "/members/m-10001/token", "/rulesets", "/quotes"):
        operation = document["paths"][f"/api/v1{path.replace('m-10001', '{external_id}')}"]["post"]
        body = _resolve(document, operation["requestBody"]["content"]["application/json"]["schema"])
        order.append((path, body["examples"][0]))
    for path, example in order:
        response = client.post(f"/api/v1{path}", example, content_type="application/json")
        assert response.status_code in (200, 201), (path, response.content)
        if path.endswith(":batch"):
            assert answer(response, 200)["failed"] == 0, (path, response.content)


def test_the_docs_page_renders_from_the_server_alone(db):
    client = Client()
    response = client.get("/api/v1/docs")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    page = response.content.decode()
    assert re.findall(r"https?://", page) == []  # no CDN: nothing is fetched from elsewhere
    assert "/api/v1/openapi.json" in page
    assets = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert any(asset.endswith(".js") for asset in assets) and any(asset.endswith(".css") for asset in assets)
    for asset in assets:
        assert asset.startswith("/"), asset
        served = client.get(asset)
        assert served.status_code == 200, asset
        body = b"".join(served.streaming_content) if served.streaming else served.content
        assert body
        if asset.endswith(".js"):
            # Swagger UI's bundle names URLs in its code (licences, validators), but the page
            # itself loads nothing from outside: `url` is the server's own schema.
            assert b"cdn.jsdelivr.net" not in body and b"unpkg.com" not in body, asset
