"""Shared fixtures: a fixed clock in Asia/Shanghai and a database with a ruleset in force."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings

from loyalty.clock import FixedClock

SHANGHAI = ZoneInfo("Asia/Shanghai")
RULES_FROM = datetime(2020, 1, 1, tzinfo=SHANGHAI)


def _server_answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """On PostgreSQL or MariaDB, a server that does not answer skips the run with the reason,
    or fails it when LOYALTY_REQUIRE_SERVICES=1 (CI). `server_db` tests skip on SQLite."""
    database = settings.DATABASES["default"]
    vendor = database["ENGINE"].rsplit(".", 1)[-1]
    if vendor == "sqlite3":
        skip = pytest.mark.skip(reason="needs PostgreSQL or MariaDB: SQLite serialises every writer")
        for item in items:
            if "server_db" in item.keywords:
                item.add_marker(skip)
        return
    host, port = database.get("HOST") or "127.0.0.1", int(database.get("PORT") or 0)
    if _server_answers(host, port):
        return
    reason = f"{vendor} at {host}:{port} does not answer"
    if os.environ.get("LOYALTY_REQUIRE_SERVICES") == "1":
        raise pytest.UsageError(f"{reason}, and LOYALTY_REQUIRE_SERVICES=1 requires it")
    for item in items:
        item.add_marker(pytest.mark.skip(reason=reason))


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
