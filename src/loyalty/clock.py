"""Where "now" comes from. Services take a Clock; tests pass a FixedClock (a real, tiny clock)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol

from loyalty.domain.periods import require_aware


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class FixedClock:
    """A clock that stands still until told to move."""

    def __init__(self, at: datetime):
        self.at = require_aware(at)

    def now(self) -> datetime:
        return self.at

    def advance(self, **delta: float) -> None:
        self.at += timedelta(**delta)


system_clock = SystemClock()
