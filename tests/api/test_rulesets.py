"""POST /rulesets: a replay (same document, effective_from and reason) answers the first version,
from any key; the same document and start with another reason is a 409; over-long names and
tier codes are refused naming their path."""

from __future__ import annotations

import json
from typing import Any

import pytest

from loyalty.services.rulesets import preset_document
from tests.api.support import Api, answer, error_of, key_for, snapshot

pytestmark = pytest.mark.django_db

FEBRUARY = "2027-02-01T00:00:00+08:00"


def _request(reason: str | None = "double growth in February", **document_changes: Any) -> dict[str, Any]:
    document = {**preset_document("default"), **document_changes}
    body: dict[str, Any] = {"document": document, "effective_from": FEBRUARY}
    if reason is not None:
        body["reason"] = reason
    return dict(json.loads(json.dumps(body, default=str)))  # the preset's Decimals as strings, as JSON


def test_a_replay_from_another_key_answers_the_first_version(shop):
    other = Api(key_for("deploy", "rulesets:write"))
    first = answer(shop.post("/rulesets", _request()), 201)
    assert (first["version"], first["published_by"]) == (2, "api-key:ops")
    before = snapshot()
    assert answer(other.post("/rulesets", _request()), 201) == first
    assert snapshot() == before


@pytest.mark.parametrize(("first", "second"), [("double growth in February", "typo fixed"), (None, "a reason"),
                                               ("a reason", None)])
def test_the_same_document_and_start_with_another_reason_is_a_409(shop, first, second):
    published = answer(shop.post("/rulesets", _request(first)), 201)
    before = snapshot()
    error = error_of(shop.post("/rulesets", _request(second)), 409)
    assert (error["code"], error["field"]) == ("exists_with_different_payload", "reason")
    assert f"version {published['version']}" in error["message"]
    assert snapshot() == before


@pytest.mark.parametrize(("changes", "field"), [
    ({"tiers": [{"code": "c" * 33}]}, "tiers[0].code"),
    ({"tiers": [{"code": "base", "name": "n" * 101}]}, "tiers[0].name"),
])
def test_an_over_long_tier_code_or_name_is_refused_naming_its_path(shop, changes, field):
    before = snapshot()
    error = error_of(shop.post("/rulesets", _request(benefits={}, **changes)), 422)
    assert (error["code"], error["field"]) == ("ruleset_invalid", field)
    assert "characters" in error["message"]
    assert snapshot() == before
