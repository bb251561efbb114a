"""Shared fixtures: a fixed clock in Asia/Shanghai and a database with a ruleset in force."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from loyalty.clock import FixedClock

SHANGHAI = ZoneInfo("Asia/Shanghai")
RULES_FROM = datetime(2020, 1, 1, tzinfo=SHANGHAI)


def at(text: str) -> datetime:
    """A Shanghai wall-clock time, e.g. at("2027-01-02 10:00") (a Saturday)."""
    return datetime.fromisoformat(text).replace(tzinfo=SHANGHAI)


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(at("2027-01-04 09:00"))


@pytest.fixture
def publish(db: Any) -> Callable[..., Any]:
    """Publish a preset (optionally changed by `overrides`, merged one level deep)."""
    from loyalty.services import rulesets

    def _publish(preset: str = "default", effective_from: datetime = RULES_FROM, **overrides: Any) -> Any:
        document = rulesets.preset_document(preset)
        for key, value in overrides.items():
            if isinstance(value, dict) and isinstance(document.get(key), dict):
                document[key] = {**document[key], **value}
            else:
                document[key] = value
        return rulesets.publish(document, effective_from=effective_from, actor="tests")

    return _publish


@pytest.fixture
def default_rules(publish: Callable[..., Any]) -> Any:
    return publish("default")
