"""Calendar questions answered in the ruleset's timezone, and windows of time.

The database stores UTC; "Saturday", "the 1st of the month", "today" and "birthday" are local
questions, so every one of them goes through `local_date` with the ruleset's zone.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from loyalty.domain.errors import InvalidInput

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def require_aware(moment: datetime, field: str = "at") -> datetime:
    """Refuse naive datetimes: a time without a zone is ambiguous for money."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise InvalidInput("datetime must carry a timezone offset", field=field)
    return moment


def local_date(moment: datetime, zone: ZoneInfo) -> date:
    return require_aware(moment).astimezone(zone).date()


def weekday_name(moment: datetime, zone: ZoneInfo) -> str:
    return WEEKDAYS[local_date(moment, zone).weekday()]


def start_of_day(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time.min, tzinfo=zone)


def add_months(day: date, months: int) -> date:
    """Same day-of-month `months` later, clamped to the month's last day (Jan 31 + 1 → Feb 28)."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return date(year, month + 1, min(day.day, last))


def add_months_at(moment: datetime, months: int, zone: ZoneInfo) -> datetime:
    """A local wall-clock time `months` later in `zone` (tier validity: 12 months from reaching)."""
    local = require_aware(moment).astimezone(zone)
    moved = add_months(local.date(), months)
    return datetime.combine(moved, local.timetz().replace(tzinfo=None), tzinfo=zone)


def month_start(moment: datetime, zone: ZoneInfo) -> datetime:
    """00:00 local on the 1st of the month that contains `moment`."""
    day = local_date(moment, zone)
    return start_of_day(day.replace(day=1), zone)


def is_birthday(moment: datetime, birthday: date | None, zone: ZoneInfo) -> bool:
    """A 29 February birthday falls on 28 February in common years."""
    if birthday is None:
        return False
    today = local_date(moment, zone)
    month, day = birthday.month, birthday.day
    if (month, day) == (2, 29) and not calendar.isleap(today.year):
        day = 28
    return (today.month, today.day) == (month, day)


@dataclass(frozen=True)
class Window:
    """Which history counts: `trailing_months` (N months before as_of), `calendar_year`, `lifetime`."""

    kind: str = "trailing_months"
    months: int = 12

    @property
    def key(self) -> str:
        return f"{self.months}m" if self.kind == "trailing_months" else self.kind

    @classmethod
    def from_key(cls, key: str) -> Window:
        """The window a metric key names: "12m", "calendar_year" or "lifetime"."""
        return cls(key, 0) if key in ("lifetime", "calendar_year") else cls("trailing_months", int(key[:-1]))

    def bounds(self, as_of: datetime, zone: ZoneInfo) -> tuple[datetime | None, datetime]:
        """[start, end) of the window that ends at `as_of`; start None means since the beginning."""
        if self.kind == "lifetime":
            return None, as_of
        if self.kind == "calendar_year":
            return start_of_day(date(local_date(as_of, zone).year, 1, 1), zone), as_of
        return add_months_at(as_of, -self.months, zone), as_of
