"""When scheduled jobs are due: local days of the month at a local wall-clock time.

A `Schedule` names a range of days of the month and a time, judged in a timezone:

    daily()               every day at 00:00           (days 1–31)
    monthly(1)            the 1st at 00:00             (days 1–1)
    monthly_days(25, 30)  the 25th to the 30th at 00:00

A day past the month's end means its last day, so `monthly(31)` is due on 28 February (29 in a
leap year) and `monthly_days(25, 30)` runs 25–28 February, each day once. A wall-clock time a
DST change skips (00:00 where clocks jump from 00:00 to 01:00) is due at the jump; a time that
happens twice (clocks set back) is due the first time.

`due_between(schedule, zone, after, until)` lists the due moments in (after, until], in order.
The interval is half-open on the left so that consecutive intervals never share a moment:
due_between(a, b) + due_between(b, c) == due_between(a, c), which is what lets a job catch up
after downtime doing each due moment exactly once.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from loyalty.domain.errors import InvalidInput
from loyalty.domain.periods import require_aware

LOOKBACK = timedelta(days=40)  # longer than the widest gap between two due moments of any schedule


@dataclass(frozen=True)
class Schedule:
    first_day: int = 1
    last_day: int = 31
    at: time = time(0)

    def __post_init__(self) -> None:
        if not 1 <= self.first_day <= self.last_day <= 31:
            raise InvalidInput(f"days of the month run 1 to 31, first before last: got "
                               f"{self.first_day}–{self.last_day}", field="schedule")
        if self.at.tzinfo is not None:
            raise InvalidInput("a schedule's time is a local wall-clock time, without a zone", field="schedule")

    def describe(self) -> str:
        clock = self.at.strftime("%H:%M")
        if (self.first_day, self.last_day) == (1, 31):
            return f"daily at {clock}"
        if self.first_day == self.last_day:
            return f"monthly on day {self.first_day} at {clock}"
        return f"monthly on days {self.first_day}–{self.last_day} at {clock}"

    def days_in(self, year: int, month: int) -> list[int]:
        """The days of that month the schedule is due, a day past the month's end being its last."""
        last = calendar.monthrange(year, month)[1]
        return sorted({min(day, last) for day in range(self.first_day, self.last_day + 1)})


def daily(at: time = time(0)) -> Schedule:
    return Schedule(1, 31, at)


def monthly(day: int, at: time = time(0)) -> Schedule:
    return Schedule(day, day, at)


def monthly_days(first: int, last: int, at: time = time(0)) -> Schedule:
    return Schedule(first, last, at)


def due_between(schedule: Schedule, zone: ZoneInfo, after: datetime, until: datetime) -> list[datetime]:
    """The due moments in (after, until], in order, as aware datetimes in `zone`."""
    require_aware(after, "after")
    require_aware(until, "until")
    if until <= after:
        return []
    # A moment is at or after its own local date's wall time, and within a day of it.
    first = (after.astimezone(zone) - timedelta(days=1)).date()
    last = until.astimezone(zone).date()
    moments = []
    for year, month in _months(first, last):
        for day in schedule.days_in(year, month):
            moment = local_moment(date(year, month, day), schedule.at, zone)
            if after < moment <= until:
                moments.append(moment)
    return moments


def latest_due(schedule: Schedule, zone: ZoneInfo, until: datetime, *, not_before: datetime | None = None
               ) -> datetime | None:
    """The last due moment at or before `until` (and at or after `not_before`), if any."""
    since = until - LOOKBACK
    if not_before is not None:
        since = max(since, not_before - timedelta(microseconds=1))
    found = due_between(schedule, zone, since, until)
    return found[-1] if found else None


def next_due(schedule: Schedule, zone: ZoneInfo, after: datetime) -> datetime:
    """The first due moment strictly after `after`."""
    found = due_between(schedule, zone, after, after + LOOKBACK)
    return found[0]


def local_moment(day: date, at: time, zone: ZoneInfo) -> datetime:
    """`day` at wall-clock `at` in `zone`: the first time it happens, or the jump when DST skips it."""
    wall = datetime.combine(day, at)
    moment = wall.replace(tzinfo=zone)  # fold=0: the first of two, or before-the-jump offset in a gap
    if moment.astimezone(UTC).astimezone(zone).replace(tzinfo=None) == wall:
        return moment
    return _jump(wall, zone)


def _jump(wall: datetime, zone: ZoneInfo) -> datetime:
    """The instant the clocks jumped over `wall` (which does not exist in `zone`)."""
    # In a gap, fold=1 reads the wall time with the offset after the jump (an instant before it),
    # fold=0 with the offset before (an instant after it): the jump lies between, found to the second.
    low = int(wall.replace(tzinfo=zone, fold=1).timestamp())
    high = int(wall.replace(tzinfo=zone, fold=0).timestamp())
    before = datetime.fromtimestamp(low, zone).utcoffset()
    while high - low > 1:
        middle = (low + high) // 2
        if datetime.fromtimestamp(middle, zone).utcoffset() == before:
            low = middle
        else:
            high = middle
    return datetime.fromtimestamp(high, zone)


def _months(first: date, last: date) -> list[tuple[int, int]]:
    months = []
    year, month = first.year, first.month
    while (year, month) <= (last.year, last.month):
        months.append((year, month))
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months
