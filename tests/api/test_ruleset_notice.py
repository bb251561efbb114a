"""POST /rulesets and the notice period: a version that makes tiers harder is refused inside it
(422 `notice_period` on effective_from) unless `force` comes with a reason."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from loyalty.clock import system_clock
from loyalty.services.rulesets import preset_document
from tests.api.support import answer, error_of, snapshot

pytestmark = pytest.mark.django_db


def _stricter(days_ahead: float, **extra: Any) -> dict[str, Any]:
    """Gold at ¥1,000 instead of ¥800, from `days_ahead` days from now."""
    document = preset_document("default")
    document["tiers"][2]["when"] = {"any": [{"orders": ">= 3"}, {"amount": ">= 1000"}]}
    start = system_clock.now() + timedelta(days=days_ahead)
    body = {"document": document, "effective_from": start.isoformat(), **extra}
    return dict(json.loads(json.dumps(body, default=str)))


def test_a_stricter_version_inside_the_notice_period_is_a_422_that_writes_nothing(shop):
    before = snapshot()
    error = error_of(shop.post("/rulesets", _stricter(30)), 422)
    assert (error["code"], error["field"]) == ("notice_period", "effective_from")
    assert "tier gold" in error["message"]
    assert snapshot() == before


def test_a_stricter_version_announced_in_time_is_published(shop):
    assert answer(shop.post("/rulesets", _stricter(91)), 201)["version"] == 2


def test_forcing_with_a_reason_publishes_it_and_a_replay_answers_the_same(shop):
    body = _stricter(30, force=True, reason="agreed with the board")
    first = answer(shop.post("/rulesets", body), 201)
    assert (first["version"], first["reason"]) == (2, "agreed with the board")
    assert answer(shop.post("/rulesets", body), 201) == first


@pytest.mark.parametrize(("extra", "field"), [
    ({"force": True}, "reason"),
    ({"force": True, "reason": "  "}, "reason"),
    ({"force": "yes", "reason": "why"}, "force"),
])
def test_force_needs_a_reason_and_a_boolean(shop, extra, field):
    before = snapshot()
    error = error_of(shop.post("/rulesets", _stricter(30, **extra)), 422)
    assert (error["code"], error["field"]) == ("invalid_input", field)
    assert snapshot() == before
