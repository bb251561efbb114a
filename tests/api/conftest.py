"""Fixtures for the API tests: a fresh rate-limit cache per test, an operator key with every
scope, and a shop with the default ruleset and a registered member."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.core.cache import cache

from tests.api.support import Api, answer, key_for


@pytest.fixture(autouse=True)
def fresh_rate_limits() -> Iterator[None]:
    """Rate-limit counters live in Django's cache: one test's requests never count for another's."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def api(db: Any) -> Api:
    """A client holding an operator's key with every scope (its name: `ops`)."""
    return Api(key_for("ops"))


@pytest.fixture
def shop(default_rules: Any, api: Api) -> Api:
    """The default ruleset in force and member `m-1` registered."""
    answer(api.post("/members", {"external_id": "m-1", "birthday": "1990-05-17"}), 201)
    return api
