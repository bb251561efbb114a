"""`run_due`: every due moment exactly once, in order, across downtime, month ends, leap years
and timezones; crashed runs resumed, failed ones retried, dry runs that write nothing."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db import connection

from loyalty.clock import FixedClock
from loyalty.domain.schedule import daily
from loyalty.services import jobs
from loyalty.services.jobs import JOBS, Job, claim, run_due
from loyalty.services.members import register_member
from loyalty.store import locks
from loyalty.store.models import JobRun, LedgerEntry, Member, OutboxEvent, TierChange
from tests.conftest import SHANGHAI, at
from tests.service.support import member, pay

NEW_YORK = ZoneInfo("America/New_York")
REGISTERED = list(JOBS)  # before any test narrows the registry


def run(now: datetime, **kw):
    return run_due(now, clock=FixedClock(now), **kw)


def ran(report) -> list[tuple[str, datetime]]:
    return [(o.job, o.due_at) for o in report.outcomes if o.state == "done"]


def evaluations(report) -> list[datetime]:
    return [due for job, due in ran(report) if job == "tier_evaluation"]


def expiries(report) -> list[datetime]:
    return [due for job, due in ran(report) if job == "points_expiry"]


def days(first: str, last: str, zone: ZoneInfo = SHANGHAI) -> list[datetime]:
    start = datetime.fromisoformat(first).date()
    count = (datetime.fromisoformat(last).date() - start).days + 1
    return [datetime.combine(start + timedelta(days=n), datetime.min.time(), tzinfo=zone) for n in range(count)]


@pytest.fixture(autouse=True)
def housekeeping_only(monkeypatch):
    """The framework is tested with its own two jobs; the grant jobs have their own tests."""
    for name in list(JOBS):
        if name not in ("tier_evaluation", "points_expiry"):
            monkeypatch.delitem(JOBS, name)


def test_the_monthly_evaluation_runs_first_among_jobs_due_at_the_same_moment():
    assert REGISTERED[0] == "tier_evaluation"  # so that the 1st's grants see the new tiers


@pytest.fixture
def shop(publish, clock):
    publish("default", points={"expiry": {"policy": "end_of_month"}})
    for name in ("m1", "m2", "m3"):
        register_member(name, clock=clock)
    return clock


def test_the_first_run_ever_does_only_the_latest_due_moment_of_each_job(shop):
    report = run(at("2027-03-17 09:00"))
    assert ran(report) == [("tier_evaluation", at("2027-03-01 00:00")), ("points_expiry", at("2027-03-17 00:00"))]
    assert run(at("2027-03-17 09:00")).outcomes == []


def test_after_downtime_each_missed_moment_runs_once_in_order_and_the_1st_evaluates_first(shop):
    run(at("2027-01-20 12:00"))
    pay("o1", "m1", at("2027-02-10 10:00"), "100", shop)  # silver from the March evaluation
    report = run(at("2027-04-02 10:00"))
    assert evaluations(report) == [at("2027-02-01 00:00"), at("2027-03-01 00:00"), at("2027-04-01 00:00")]
    assert expiries(report) == days("2027-01-21", "2027-04-02")
    assert [o.due_at for o in report.outcomes] == sorted(o.due_at for o in report.outcomes)
    first = [o.job for o in report.outcomes if o.due_at == at("2027-03-01 00:00")]
    assert first == ["tier_evaluation", "points_expiry"]
    assert list(TierChange.objects.values_list("member__external_id", "to_tier", "changed_at")) == [
        ("m1", "silver", at("2027-03-01 00:00"))]
    assert run(at("2027-04-02 10:00")).outcomes == []
    assert JobRun.objects.filter(state="done", attempts=1).count() == len(report.outcomes) + 2


def test_down_on_the_1st_the_next_run_does_the_1sts_work_once(shop):
    pay("o1", "m1", at("2027-01-10 10:00"), "900", shop)  # gold
    run(at("2027-01-31 23:50"))
    report = run(at("2027-02-02 08:00"))
    assert evaluations(report) == [at("2027-02-01 00:00")]
    again = run(at("2027-02-02 08:10"))
    assert evaluations(again) == []
    assert list(TierChange.objects.values_list("to_tier", "changed_at")) == [("gold", at("2027-02-01 00:00"))]
    assert OutboxEvent.objects.filter(type="member.tier_changed").count() == 1
    done = JobRun.objects.get(job="tier_evaluation", due_at=at("2027-02-01 00:00"))
    assert (done.state, done.attempts, done.counts) == ("done", 1, {"members": 3, "upgrade": 1})


def test_the_1st_at_midnight_shanghai_is_due_from_16_00_utc_the_day_before(shop):
    run(at("2027-01-31 12:00"))
    before = run(datetime(2027, 1, 31, 15, 59, 59, tzinfo=UTC))
    assert evaluations(before) == []
    on_time = run(datetime(2027, 1, 31, 16, 0, tzinfo=UTC))
    assert evaluations(on_time) == [at("2027-02-01 00:00")]
    assert expiries(on_time) == [at("2027-02-01 00:00")]
    assert JobRun.objects.get(job="tier_evaluation", due_at=datetime(2027, 1, 31, 16, tzinfo=UTC)).state == "done"


def test_a_leap_day_is_a_day_of_its_own_and_each_lot_counts_on_the_day_its_expiry_falls(publish, clock):
    publish("default", points={"expiry": {"policy": "days_after_earning", "days": 30}, "pending_days": 0})
    register_member("m1", clock=clock)
    pay("o1", "m1", at("2028-01-29 12:00"), "10", clock)  # expires 2028-02-28 12:00
    pay("o2", "m1", at("2028-01-30 05:00"), "20", clock)  # expires 2028-02-29 05:00
    run(at("2028-02-27 09:00"))
    report = run(at("2028-03-01 09:00"))
    assert expiries(report) == days("2028-02-28", "2028-03-01")
    assert evaluations(report) == [at("2028-03-01 00:00")]
    counts = {o.due_at.date().isoformat(): o.counts for o in report.outcomes if o.job == "points_expiry"}
    assert counts == {"2028-02-28": {"lots": 0, "points": 0}, "2028-02-29": {"lots": 1, "points": 10},
                      "2028-03-01": {"lots": 1, "points": 20}}
    assert member("m1").points_balance == 0


def test_in_a_dst_timezone_jobs_are_due_at_local_midnight_on_both_sides_of_the_change(publish, clock):
    publish("default", timezone="America/New_York")
    run(datetime(2027, 3, 12, 12, tzinfo=NEW_YORK))
    report = run(datetime(2027, 4, 1, 6, tzinfo=NEW_YORK))
    utc_times = [due.astimezone(UTC) for due in expiries(report)]
    assert utc_times[:3] == [datetime(2027, 3, 13, 5, tzinfo=UTC), datetime(2027, 3, 14, 5, tzinfo=UTC),
                             datetime(2027, 3, 15, 4, tzinfo=UTC)]  # EST, then EDT from 14 March 02:00
    assert expiries(report) == days("2027-03-13", "2027-04-01", NEW_YORK)
    assert evaluations(report) == [datetime(2027, 4, 1, tzinfo=NEW_YORK)]
    assert evaluations(report)[0].astimezone(UTC) == datetime(2027, 4, 1, 4, tzinfo=UTC)


def test_each_moment_follows_the_timezone_of_the_ruleset_in_force_then(publish, clock):
    publish("default")
    publish("default", timezone="UTC", effective_from=at("2027-03-15 00:00"))
    run(at("2027-02-20 12:00"))
    report = run(datetime(2027, 4, 1, 12, tzinfo=UTC))
    assert evaluations(report) == [at("2027-03-01 00:00"), datetime(2027, 4, 1, tzinfo=UTC)]
    assert [d.astimezone(UTC).hour for d in expiries(report)][:2] == [16, 16]  # Shanghai midnights
    assert expiries(report)[-1] == datetime(2027, 4, 1, tzinfo=UTC)


def test_a_dry_run_writes_nothing_and_shows_what_would_run_with_its_counts(shop):
    pay("o1", "m1", at("2027-01-10 10:00"), "900", shop)
    run(at("2027-01-20 12:00"))
    before = table_rows()
    preview = run(at("2027-02-03 08:00"), dry_run=True)
    assert table_rows() == before
    assert {o.state for o in preview.outcomes} == {"planned"}
    planned = [(o.job, o.due_at, o.counts) for o in preview.outcomes]
    assert planned[:3] == [("points_expiry", at("2027-01-21 00:00"), {"lots": 0, "points": 0}),
                           ("points_expiry", at("2027-01-22 00:00"), {"lots": 0, "points": 0}),
                           ("points_expiry", at("2027-01-23 00:00"), {"lots": 0, "points": 0})]
    assert ("tier_evaluation", at("2027-02-01 00:00"), {"members": 3, "upgrade": 1}) in planned
    assert ("points_expiry", at("2027-02-01 00:00"), {"lots": 1, "points": 900}) in planned
    real = run(at("2027-02-03 08:00"))
    assert [(o.job, o.due_at) for o in real.outcomes] == [(job, due) for job, due, _ in planned]
    # Each preview reads the database as it is: up to the first moment that changes something,
    # the counts are the real ones; after it, a preview cannot know what the earlier ones did.
    upto = [(o.job, o.due_at, o.counts) for o in real.outcomes if o.due_at <= at("2027-02-01 00:00")]
    assert upto == planned[:len(upto)]


def test_a_run_left_running_by_a_crash_is_resumed_and_its_work_done_once(shop):
    pay("o1", "m1", at("2027-01-10 10:00"), "900", shop)
    run(at("2027-01-20 12:00"))
    first = at("2027-02-01 00:00")
    assert claim("tier_evaluation", first, shop.now()) == 1  # the crashed process claimed it, then died
    assert claim("tier_evaluation", first, shop.now()) is None  # a racing process skips it
    report = run(at("2027-02-01 08:00"))
    evaluation = [o for o in report.outcomes if o.job == "tier_evaluation"]
    assert [(o.due_at, o.state, o.attempt, o.resumed) for o in evaluation] == [(first, "done", 2, True)]
    row = JobRun.objects.get(job="tier_evaluation", due_at=first)
    assert (row.state, row.attempts, row.counts) == ("done", 2, {"members": 3, "upgrade": 1})
    assert TierChange.objects.count() == 1


def test_a_run_that_crashed_after_its_work_committed_reports_the_counts_of_an_uninterrupted_one(shop):
    pay("o1", "m1", at("2027-01-10 10:00"), "900", shop)
    run(at("2027-01-20 12:00"))
    first = at("2027-02-01 00:00")
    for name in ("tier_evaluation", "points_expiry"):
        assert claim(name, first, shop.now()) == 1
        JOBS[name].run(first, clock=shop, dry_run=False)  # the work committed; then the process died
    report = run(at("2027-02-01 08:00"))
    assert [(o.job, o.attempt, o.counts) for o in report.outcomes if o.due_at == first] == [
        ("tier_evaluation", 2, {"members": 3, "upgrade": 1}), ("points_expiry", 2, {"lots": 1, "points": 900})]
    assert TierChange.objects.count() == 1
    assert LedgerEntry.objects.filter(source="expiry").count() == 1


def test_a_failed_run_stops_the_run_there_and_is_retried_first_next_time(shop, monkeypatch):
    calls: list[datetime] = []
    broken = {"yes": True}

    def flaky(due_at, *, clock, dry_run):
        if not dry_run:
            calls.append(due_at)
        if broken["yes"] and due_at.day == 3:
            raise RuntimeError("the warehouse is on fire")
        return {"calls": len(calls)}

    monkeypatch.setitem(JOBS, "flaky", Job("flaky", daily(), flaky, "fails on the 3rd"))
    run(at("2027-01-31 12:00"))
    report = run(at("2027-02-05 12:00"))
    states = [(o.job, o.due_at.day, o.state) for o in report.outcomes]
    assert states[-2:] == [("points_expiry", 3, "done"), ("flaky", 3, "failed")]
    assert all(o.due_at.day < 4 for o in report.outcomes if o.due_at.month == 2)
    assert report.failed and "warehouse is on fire" in report.outcomes[-1].error
    failed = JobRun.objects.get(job="flaky", state="failed")
    assert "RuntimeError: the warehouse is on fire" in failed.error
    assert not JobRun.objects.filter(due_at__gt=at("2027-02-03 00:00")).exists()
    preview = run(at("2027-02-05 12:00"), dry_run=True)
    flaky_preview = [(o.job, o.state, o.resumed) for o in preview.outcomes if o.job == "flaky"]
    assert flaky_preview[0] == ("flaky", "failed", True)
    broken["yes"] = False
    retry = run(at("2027-02-05 12:00"))
    assert [(o.job, o.due_at.day, o.attempt) for o in retry.outcomes][:1] == [("flaky", 3, 2)]
    assert expiries(retry) == [at("2027-02-04 00:00"), at("2027-02-05 00:00")]
    assert JobRun.objects.get(job="flaky", due_at=at("2027-02-03 00:00")).state == "done"
    assert Counter(calls)[at("2027-02-03 00:00")] == 2


def test_a_run_while_another_holds_the_lock_does_nothing(shop):
    held, release = threading.Event(), threading.Event()

    def other_runner():
        try:
            with locks.hold("jobs") as got:
                assert got
                held.set()
                release.wait(10)
        finally:
            connection.close()

    thread = threading.Thread(target=other_runner)
    thread.start()
    try:
        assert held.wait(10)
        report = run(at("2027-03-17 09:00"))
    finally:
        release.set()
        thread.join()
    assert report.busy and report.outcomes == []
    assert not JobRun.objects.exists()
    assert ran(run(at("2027-03-17 09:00")))  # free again


def test_a_job_registered_later_starts_from_its_latest_due_moment(shop, monkeypatch):
    run(at("2027-01-20 12:00"))
    monkeypatch.setitem(JOBS, "newcomer", Job("newcomer", daily(), lambda due_at, *, clock, dry_run: {}, "new"))
    report = run(at("2027-01-25 12:00"))
    assert [o.due_at for o in report.outcomes if o.job == "newcomer"] == [at("2027-01-25 00:00")]
    assert len(expiries(report)) == 5


def test_marking_done_before_a_moment_starts_the_schedule_there(shop):
    run(at("2027-01-20 12:00"))
    marked = jobs.mark_done_before(at("2027-03-01 00:00"), clock=shop)
    assert [(d.job.name, d.due_at) for d in marked] == [("tier_evaluation", at("2027-02-01 00:00")),
                                                         ("points_expiry", at("2027-02-28 00:00"))]
    assert jobs.mark_done_before(at("2027-03-01 00:00"), clock=shop) == []
    report = run(at("2027-03-01 00:00"))
    assert ran(report) == [("tier_evaluation", at("2027-03-01 00:00")), ("points_expiry", at("2027-03-01 00:00"))]
    assert not TierChange.objects.exists()


def test_jobs_list_shows_schedule_last_run_pending_and_next_due(shop):
    run(at("2027-01-20 12:00"))
    found = {s.name: s for s in jobs.statuses(at("2027-02-02 12:00"))}
    evaluation, expiry = found["tier_evaluation"], found["points_expiry"]
    assert evaluation.schedule == "monthly on day 1 at 00:00 Asia/Shanghai"
    assert (evaluation.last_due_at, evaluation.last_state) == (at("2027-01-01 00:00"), "done")
    assert (evaluation.pending, evaluation.next_due_at) == (1, at("2027-03-01 00:00"))
    assert (expiry.schedule, expiry.pending, expiry.next_due_at) == (
        "daily at 00:00 Asia/Shanghai", 13, at("2027-02-03 00:00"))


def test_without_a_ruleset_nothing_is_due(db):
    assert run(at("2027-03-17 09:00")).outcomes == []
    assert {s.schedule for s in jobs.statuses(at("2027-03-17 09:00"))} == {"no ruleset published"}


def table_rows() -> dict[str, list[tuple]]:
    """Every row of every table (the jobs' own included): the "nothing was written" check."""
    found = {}
    with connection.cursor() as cursor:
        for table in sorted(connection.introspection.table_names(cursor)):
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")
            found[table] = sorted(map(tuple, cursor.fetchall()), key=repr)
    return found


@pytest.mark.server_db
@pytest.mark.django_db(transaction=True)
def test_two_run_due_at_once_run_each_due_moment_once(publish, clock):
    publish("default")
    for name in ("m1", "m2"):
        register_member(name, clock=clock)
    pay("o1", "m1", at("2027-01-10 10:00"), "900", clock)
    run(at("2027-01-20 12:00"))
    barrier = threading.Barrier(2)

    def runner(_: int):
        try:
            barrier.wait()
            return run(at("2027-03-02 12:00"))
        finally:
            connection.close()

    reports = in_threads(runner, 2)
    done = Counter((o.job, o.due_at) for report in reports for o in report.outcomes if o.state == "done")
    assert done and set(done.values()) == {1}
    assert len(done) == 2 + 41  # two evaluations, 21 January to 2 March
    assert set(JobRun.objects.values_list("attempts", flat=True)) == {1}
    assert TierChange.objects.count() == 1


@pytest.mark.server_db
@pytest.mark.django_db(transaction=True)
def test_of_processes_claiming_one_due_moment_exactly_one_wins(publish):
    publish("default")
    due = at("2027-02-01 00:00")
    barrier = threading.Barrier(8)

    def claimer(seen_attempts: int):
        def one(_: int):
            try:
                barrier.wait()
                return claim("tier_evaluation", due, at("2027-02-01 00:05"), seen_attempts=seen_attempts)
            finally:
                connection.close()
        return one

    assert sorted(in_threads(claimer(0), 8), key=lambda a: a or 0) == [None] * 7 + [1]
    assert sorted(in_threads(claimer(0), 8), key=lambda a: a or 0) == [None] * 8  # running: not theirs
    JobRun.objects.filter(due_at=due).update(state="failed")  # left to retry: of resumers, one wins
    assert sorted(in_threads(claimer(1), 8), key=lambda a: a or 0) == [None] * 7 + [2]
    assert Member.objects.count() == LedgerEntry.objects.count() == 0


def in_threads(work, count):
    results: list = [None] * count

    def one(index: int) -> None:
        results[index] = work(index)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results
