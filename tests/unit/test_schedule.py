"""When jobs are due: month ends, leap years, timezones with and without DST."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loyalty.domain.errors import InvalidInput
from loyalty.domain.schedule import (
    Schedule,
    daily,
    due_between,
    latest_due,
    local_moment,
    monthly,
    monthly_days,
    next_due,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
NEW_YORK = ZoneInfo("America/New_York")
SANTIAGO = ZoneInfo("America/Santiago")  # clocks jump 00:00 -> 01:00: midnight itself is skipped
HAVANA = ZoneInfo("America/Havana")  # clocks go back 01:00 -> 00:00: midnight happens twice
ZONES = [SHANGHAI, NEW_YORK, SANTIAGO, HAVANA, ZoneInfo("Europe/London"), ZoneInfo("Australia/Lord_Howe"),
         ZoneInfo("Pacific/Chatham"), ZoneInfo("UTC")]


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def local(text: str, zone: ZoneInfo = SHANGHAI) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=zone)


def test_the_1st_at_midnight_in_shanghai_is_the_previous_day_16_00_utc():
    due = due_between(monthly(1), SHANGHAI, utc("2027-01-31 15:00"), utc("2027-02-28 00:00"))
    assert due == [local("2027-02-01 00:00")]
    assert due[0].astimezone(UTC) == utc("2027-01-31 16:00")


def test_an_interval_is_open_before_and_closed_after():
    first = local("2027-02-01 00:00")
    assert due_between(monthly(1), SHANGHAI, first, local("2027-02-20 00:00")) == []
    assert due_between(monthly(1), SHANGHAI, first - timedelta(microseconds=1), first) == [first]
    assert due_between(monthly(1), SHANGHAI, first, first) == []


def test_monthly_on_the_1st_across_a_year_end():
    due = due_between(monthly(1), SHANGHAI, local("2026-11-15 00:00"), local("2027-03-01 00:00"))
    assert [d.date() for d in due] == [date(2026, 12, 1), date(2027, 1, 1), date(2027, 2, 1), date(2027, 3, 1)]


def test_the_31st_means_the_last_day_of_a_shorter_month_and_29_february_in_a_leap_year():
    due = due_between(monthly(31), SHANGHAI, local("2027-12-31 12:00"), local("2028-05-01 00:00"))
    assert [d.date() for d in due] == [date(2028, 1, 31), date(2028, 2, 29), date(2028, 3, 31), date(2028, 4, 30)]
    assert [d.date() for d in due_between(monthly(30), SHANGHAI, local("2027-02-01 00:00"),
                                          local("2027-03-01 00:00"))] == [date(2027, 2, 28)]


def test_a_range_of_days_runs_each_day_once_and_stops_at_the_month_end():
    def days(after: str, until: str) -> list[int]:
        return [d.day for d in due_between(monthly_days(25, 30), SHANGHAI, local(after), local(until))]

    assert days("2027-01-01 00:00", "2027-02-01 00:00") == [25, 26, 27, 28, 29, 30]
    assert days("2027-02-01 00:00", "2027-03-01 00:00") == [25, 26, 27, 28]
    assert days("2028-02-01 00:00", "2028-03-01 00:00") == [25, 26, 27, 28, 29]


def test_daily_covers_29_february_in_a_leap_year_only():
    leap = due_between(daily(), SHANGHAI, local("2028-02-28 00:00"), local("2028-03-01 00:00"))
    common = due_between(daily(), SHANGHAI, local("2027-02-28 00:00"), local("2027-03-01 00:00"))
    assert [d.date() for d in leap] == [date(2028, 2, 29), date(2028, 3, 1)]
    assert [d.date() for d in common] == [date(2027, 3, 1)]


def test_a_skipped_midnight_is_due_when_the_clocks_jump():
    moment = local_moment(date(2022, 9, 11), time(0), SANTIAGO)
    assert moment.astimezone(UTC) == utc("2022-09-11 04:00")
    assert moment.astimezone(SANTIAGO).replace(tzinfo=None) == datetime(2022, 9, 11, 1, 0)
    due = due_between(daily(), SANTIAGO, local("2022-09-10 12:00", SANTIAGO), local("2022-09-12 12:00", SANTIAGO))
    assert [d.astimezone(UTC) for d in due] == [utc("2022-09-11 04:00"), utc("2022-09-12 03:00")]


def test_a_time_skipped_by_spring_forward_in_new_york_is_due_at_3_00():
    assert local_moment(date(2027, 3, 14), time(2, 30), NEW_YORK).astimezone(UTC) == utc("2027-03-14 07:00")
    assert local_moment(date(2027, 3, 14), time(0), NEW_YORK).astimezone(UTC) == utc("2027-03-14 05:00")


def test_a_midnight_that_happens_twice_is_due_the_first_time():
    moment = local_moment(date(2023, 11, 5), time(0), HAVANA)
    assert moment.astimezone(UTC) == utc("2023-11-05 04:00")  # still -04:00; the repeat is at -05:00
    due = due_between(daily(), HAVANA, utc("2023-11-04 12:00"), utc("2023-11-06 12:00"))
    assert [d.astimezone(UTC) for d in due] == [utc("2023-11-05 04:00"), utc("2023-11-06 05:00")]


def test_latest_and_next_due():
    now = local("2027-03-17 09:00")
    assert latest_due(monthly(1), SHANGHAI, now) == local("2027-03-01 00:00")
    assert latest_due(monthly(1), SHANGHAI, now, not_before=local("2027-03-02 00:00")) is None
    assert latest_due(monthly(1), SHANGHAI, local("2027-03-01 00:00")) == local("2027-03-01 00:00")
    assert next_due(monthly(1), SHANGHAI, local("2027-03-01 00:00")) == local("2027-04-01 00:00")
    assert next_due(monthly_days(25, 30), SHANGHAI, now) == local("2027-03-25 00:00")


def test_schedules_describe_themselves_and_refuse_impossible_days():
    assert daily().describe() == "daily at 00:00"
    assert monthly(1).describe() == "monthly on day 1 at 00:00"
    assert monthly_days(25, 30, time(9, 30)).describe() == "monthly on days 25–30 at 09:30"
    for first, last in ((0, 1), (5, 4), (1, 32)):
        with pytest.raises(InvalidInput):
            Schedule(first, last)
    with pytest.raises(InvalidInput):
        Schedule(1, 1, time(0, tzinfo=UTC))


schedules = st.builds(lambda first, span, hour, minute: Schedule(first, min(31, first + span), time(hour, minute)),
                      st.integers(1, 31), st.sampled_from([0, 0, 5, 31]), st.sampled_from([0, 0, 1, 2, 23]),
                      st.sampled_from([0, 30]))
instants = st.datetimes(min_value=datetime(2019, 1, 1), max_value=datetime(2031, 1, 1)).map(
    lambda moment: moment.replace(tzinfo=UTC))
spans = st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=120))


@settings(max_examples=150, deadline=None)
@given(schedules, st.sampled_from(ZONES), instants, spans, spans)
def test_splitting_an_interval_neither_loses_nor_repeats_a_due_moment(schedule, zone, start, first, second):
    middle, end = start + first, start + first + second
    whole = due_between(schedule, zone, start, end)
    assert due_between(schedule, zone, start, middle) + due_between(schedule, zone, middle, end) == whole
    assert whole == sorted(set(whole))
    assert all(start < moment <= end for moment in whole)


@settings(max_examples=150, deadline=None)
@given(schedules, st.sampled_from(ZONES), instants)
def test_every_month_has_its_days_once_each_at_the_local_time_or_just_after_a_jump(schedule, zone, start):
    end = start + timedelta(days=95)
    due = due_between(schedule, zone, start, end)
    by_month: dict[tuple[int, int], list[int]] = {}
    for moment in due:
        wall = moment.astimezone(zone)
        day = wall.date() if wall.time() >= schedule.at else wall.date() - timedelta(days=1)
        by_month.setdefault((day.year, day.month), []).append(day.day)
        # On the day, at the wall time, or within a DST jump (at most 3 hours) after it.
        scheduled = datetime.combine(day, schedule.at)
        assert timedelta(0) <= wall.replace(tzinfo=None) - scheduled <= timedelta(hours=3)
    inner = [(y, m) for (y, m) in by_month if (y, m) not in {_month(start, zone), _month(end, zone)}]
    for year, month in inner:
        assert by_month[(year, month)] == schedule.days_in(year, month)


@settings(max_examples=100, deadline=None)
@given(st.sampled_from([monthly(1), daily(), monthly_days(25, 30)]), instants)
def test_in_a_zone_without_dst_the_due_moment_is_the_wall_time_less_eight_hours(schedule, start):
    for moment in due_between(schedule, SHANGHAI, start, start + timedelta(days=40)):
        wall = moment.astimezone(SHANGHAI)
        assert wall.time() == schedule.at
        assert moment.astimezone(UTC).replace(tzinfo=None) == wall.replace(tzinfo=None) - timedelta(hours=8)


def _month(moment: datetime, zone: ZoneInfo) -> tuple[int, int]:
    wall = moment.astimezone(zone)
    return wall.year, wall.month
