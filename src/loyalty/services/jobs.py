"""Scheduled jobs: what runs when, and `run_due`, which runs everything due exactly once.

A job is a name, a schedule (judged in the timezone of the ruleset in force at each moment;
see `domain/schedule.py`) and a function

    run(due_at, *, clock, dry_run) -> counts (dict[str, int])

that does the work of one due moment. Job functions are idempotent: run again for the same due
moment they change nothing, so a run cut short by a crash is simply run again. Their counts
describe the due moment's effect as the database holds it afterwards (tier changes dated
`due_at`, lots whose expiry fell in the day), not what one attempt did, so a resumed run
reports what an uninterrupted one would. Under `dry_run` a job writes nothing and answers what
it would do (or {} when it cannot tell).

`run_due(now)` runs, in order of due moment and then of registration here, every due moment
since each job's last recorded one, exactly once: a `job_runs` row per (job, due moment),
unique, is claimed before the work and marked done after it. The first run of a job ever does
only its latest due moment (an earlier start is one `run_due(now=earlier)` away). One process
runs at a time (`store.locks`); a row it finds `running` was left by a crash and is resumed, a
`failed` one is retried, and a failure stops the run there, so nothing runs out of order.

To add a job, add a `Job` to `JOBS` below: jobs due at the same moment run in this order
(the monthly evaluation first, so that grants on the 1st see the new tiers).
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from django.db import IntegrityError, transaction
from django.db.models import CharField, Count, Max, OuterRef, Subquery, Sum, Value
from django.db.models.functions import Concat

from loyalty.clock import Clock, system_clock
from loyalty.domain.periods import require_aware
from loyalty.domain.rules import Ruleset
from loyalty.domain.schedule import LOOKBACK, Schedule, daily, due_between, latest_due, monthly, monthly_days
from loyalty.services import deferrals, grants, points, risk, rulesets, tiers
from loyalty.services.rulesets import Rulebook
from loyalty.store import locks
from loyalty.store.models import JobRun, LedgerEntry, PointsLot, TierChange

log = logging.getLogger("loyalty.jobs")
TICK = timedelta(microseconds=1)  # the finest step of a datetime: (t - TICK, ...] includes t


class JobFunction(Protocol):
    def __call__(self, due_at: datetime, *, clock: Clock, dry_run: bool) -> dict[str, int]: ...


@dataclass(frozen=True)
class Job:
    name: str
    schedule: Schedule | Callable[[Ruleset], Schedule | None]  # None: this ruleset does not run it
    run: JobFunction
    description: str

    def schedule_under(self, ruleset: Ruleset) -> Schedule | None:
        return self.schedule if isinstance(self.schedule, Schedule) else self.schedule(ruleset)


def in_ruleset_zone(due_at: datetime) -> datetime:
    """`due_at` in the timezone of the ruleset in force then: the form a job keys its writes with,
    whether the moment came from a schedule or back from the database (in UTC)."""
    return due_at.astimezone(rulesets.in_force(due_at).ruleset.timezone)


def evaluate_tiers_monthly(due_at: datetime, *, clock: Clock, dry_run: bool) -> dict[str, int]:
    """The evaluation of the 1st: upgrades, and renewals or downgrades of tiers that expired."""
    as_of = in_ruleset_zone(due_at)
    summary = tiers.evaluate_tiers(as_of, clock=clock, dry_run=dry_run)
    changes = dict(summary.changes) if dry_run else tier_changes_at(as_of)
    return _sorted({"members": summary.members, **changes})


def tier_changes_at(as_of: datetime) -> dict[str, int]:
    rows = TierChange.objects.filter(changed_at=as_of).values("reason").annotate(n=Count("id")).order_by()
    return {row["reason"]: row["n"] for row in rows}


POINTS_EXPIRY_SCHEDULE = daily()


def expire_points_daily(due_at: datetime, *, clock: Clock, dry_run: bool) -> dict[str, int]:
    """Expire every lot whose expiry has passed; counts the lots whose expiry fell in the day."""
    as_of = in_ruleset_zone(due_at)
    if dry_run:
        return expirable(as_of)
    points.expire_points(as_of, clock=clock)
    previous = latest_due(POINTS_EXPIRY_SCHEDULE, rulesets.in_force(as_of).ruleset.timezone, as_of - TICK)
    return expired_between(previous or as_of - timedelta(days=1), as_of)


def expirable(as_of: datetime) -> dict[str, int]:
    totals = PointsLot.objects.filter(remaining__gt=0, expires_at__lte=as_of).aggregate(
        lots=Count("id"), points=Sum("remaining"))
    return {"lots": totals["lots"], "points": totals["points"] or 0}


def expired_between(start: datetime, end: datetime) -> dict[str, int]:
    """Lots whose expiry time is in (start, end] that expiry took points from, and how many."""
    # The expiry entry of a lot is keyed "expiry:<lot key>" (services.points): a unique index hit.
    entry = LedgerEntry.objects.filter(
        idempotency_key=Concat(Value("expiry:"), OuterRef("key"), output_field=CharField())).values("delta")[:1]
    totals = (PointsLot.objects.filter(expires_at__gt=start, expires_at__lte=end)
              .annotate(expired=Subquery(entry)).filter(expired__isnull=False)
              .aggregate(lots=Count("id"), points=Sum("expired")))
    return {"lots": totals["lots"], "points": -(totals["points"] or 0)}


def _sorted(counts: dict[str, int]) -> dict[str, int]:
    return dict(sorted(counts.items()))


def recall_schedule(ruleset: Ruleset) -> Schedule | None:
    return daily() if ruleset.operations.recall else None


def sprint_schedule(ruleset: Ruleset) -> Schedule | None:
    sprint = ruleset.operations.sprint
    return monthly_days(sprint.first_day, sprint.last_day) if sprint else None


def expiring_notice_schedule(ruleset: Ruleset) -> Schedule | None:
    return daily() if ruleset.operations.expiring_notice_days else None


def release_schedule(ruleset: Ruleset) -> Schedule | None:
    return daily() if ruleset.operations.budgets else None


JOBS: dict[str, Job] = {job.name: job for job in (
    Job("tier_evaluation", monthly(1), evaluate_tiers_monthly,
        "evaluate every member's tier (upgrades; expired tiers renewed or lowered)"),
    Job("points_expiry", POINTS_EXPIRY_SCHEDULE, expire_points_daily, "expire points lots past their expiry"),
    # Before the grants: grants deferred by a budget are first in line for the day's budget.
    Job("release_deferred", release_schedule, deferrals.release_deferred,
        "issue grants a budget deferred once it allows them; lapse those past their validity"),
    Job("monthly_benefits", monthly(1), grants.monthly_benefits,
        "issue each tier's monthly coupons and free deliveries for the month"),
    Job("birthday_gifts", daily(), grants.birthday, "birthday coupon, and the pack where the tier has it"),
    Job("downgrade_warnings", recall_schedule, grants.downgrade_warnings,
        "warn members whose tier would drop within N days, with a recall coupon"),
    Job("sprint", sprint_schedule, grants.sprint, "sprint notice and coupon for members close to the next tier"),
    Job("points_expiring_notices", expiring_notice_schedule, grants.points_expiring,
        "tell members about points expiring within N days"),
    Job("risk_scan", risk.RISK_SCAN_SCHEDULE, risk.risk_scan,
        "score members active in the window for abuse; hold the newly flagged for review"),
)}


@dataclass(frozen=True)
class Due:
    job: Job
    due_at: datetime
    attempts: int = 0  # of a run found running (crashed) or failed, to resume; 0 for a fresh moment

    @property
    def resumed(self) -> bool:
        return self.attempts > 0


@dataclass(frozen=True)
class Outcome:
    job: str
    due_at: datetime
    state: str  # done | failed | skipped (another process has it) | planned (dry run)
    counts: dict[str, int] = field(default_factory=dict)
    attempt: int = 0
    resumed: bool = False
    error: str = ""


@dataclass(frozen=True)
class Report:
    outcomes: list[Outcome]
    busy: bool = False  # another run_due holds the lock: nothing was done

    @property
    def failed(self) -> bool:
        return any(outcome.state == "failed" for outcome in self.outcomes)


def run_due(now: datetime, *, clock: Clock = system_clock, dry_run: bool = False,
            progress: Callable[[Outcome], None] | None = None) -> Report:
    """Run every due moment up to `now` not yet done, in order; see the module's docstring.
    `progress` hears of each outcome as it happens (a long catch-up shows its way)."""
    require_aware(now, "now")
    heard = progress or (lambda outcome: None)
    outcomes: list[Outcome] = []
    if dry_run:
        for due in due_runs(now):
            outcomes.append(_preview(due, clock))
            heard(outcomes[-1])
        return Report(outcomes)
    with locks.hold("jobs") as held:
        if not held:
            return Report([], busy=True)
        for due in due_runs(now):
            outcomes.append(_run(due, clock))
            heard(outcomes[-1])
            if outcomes[-1].state == "failed":
                break  # IMPORTANT: later moments wait, so no job ever runs ahead of a failed one
        return Report(outcomes)


def due_runs(now: datetime) -> list[Due]:
    """What `run_due(now)` would run, in the order it would: by due moment, then by job."""
    book = rulesets.rulebook()
    order = {name: index for index, name in enumerate(JOBS)}
    found = [due for job in JOBS.values() for due in _due_for(job, now, book)]
    return sorted(found, key=lambda due: (due.due_at, order[due.job.name]))


def _due_for(job: Job, now: datetime, book: Rulebook) -> list[Due]:
    runs = JobRun.objects.filter(job=job.name)
    unfinished = runs.exclude(state="done").filter(due_at__lte=now).order_by("due_at")
    resumed = [Due(job, _localise(at, book), tries) for at, tries in unfinished.values_list("due_at", "attempts")]
    last = runs.aggregate(last=Max("due_at"))["last"]
    fresh = moments(job, last, now, book) if last is not None else moments(job, now - LOOKBACK, now, book)[-1:]
    return resumed + [Due(job, at) for at in fresh]


def moments(job: Job, after: datetime, until: datetime, book: Rulebook) -> list[datetime]:
    """The job's due moments in (after, until], each under the ruleset version in force then."""
    found: list[datetime] = []
    for index, active in enumerate(book.versions):
        following = book.versions[index + 1].effective_from if index + 1 < len(book.versions) else None
        start = max(after, active.effective_from - TICK)
        end = until if following is None else min(until, following - TICK)
        schedule = job.schedule_under(active.ruleset)
        if start < end and schedule is not None:
            found += due_between(schedule, active.ruleset.timezone, start, end)
    return found


def _localise(moment: datetime, book: Rulebook) -> datetime:
    if not book.versions or moment < book.versions[0].effective_from:
        return moment
    return moment.astimezone(book.in_force(moment).ruleset.timezone)


def claim(job: str, due_at: datetime, now: datetime, *, seen_attempts: int = 0) -> int | None:
    """Take (job, due_at) for this process: answers the attempt number, or None when another
    process has it (or it is done). A fresh moment (`seen_attempts` 0) is taken by inserting its
    unique row: of two racing processes, the loser skips. A row seen left running or failed after
    `seen_attempts` attempts is taken over only if nobody did since (compare-and-set); only a
    process holding the jobs lock may resume a `running` row: only then is it surely a crash's."""
    if seen_attempts == 0:
        try:
            with transaction.atomic():
                JobRun.objects.create(job=job, due_at=due_at, state="running", started_at=now, attempts=1)
        except IntegrityError:
            return None
        return 1
    taken = JobRun.objects.filter(job=job, due_at=due_at, attempts=seen_attempts).exclude(state="done").update(
        state="running", attempts=seen_attempts + 1, started_at=now, finished_at=None, error="")
    return seen_attempts + 1 if taken else None


def _finish(job: str, due_at: datetime, attempt: int, state: str, counts: dict[str, int], error: str,
            now: datetime) -> None:
    JobRun.objects.filter(job=job, due_at=due_at, attempts=attempt).update(
        state=state, finished_at=now, counts=counts, error=error)


def _run(due: Due, clock: Clock) -> Outcome:
    name = due.job.name
    attempt = claim(name, due.due_at, clock.now(), seen_attempts=due.attempts)
    if attempt is None:
        return Outcome(name, due.due_at, "skipped", resumed=due.resumed)
    try:
        counts = due.job.run(due.due_at, clock=clock, dry_run=False)
    except Exception as error:
        log.exception("job %s for %s failed (attempt %d)", name, due.due_at.isoformat(), attempt)
        _finish(name, due.due_at, attempt, "failed", {}, traceback.format_exc()[-4000:], clock.now())
        return Outcome(name, due.due_at, "failed", attempt=attempt, resumed=due.resumed,
                       error=f"{type(error).__name__}: {error}")
    _finish(name, due.due_at, attempt, "done", counts, "", clock.now())
    return Outcome(name, due.due_at, "done", counts, attempt, due.resumed)


def _preview(due: Due, clock: Clock) -> Outcome:
    try:
        counts = due.job.run(due.due_at, clock=clock, dry_run=True)
    except Exception as error:
        return Outcome(due.job.name, due.due_at, "failed", resumed=due.resumed,
                       error=f"{type(error).__name__}: {error}")
    return Outcome(due.job.name, due.due_at, "planned", counts, resumed=due.resumed)


def mark_done_before(as_of: datetime, *, clock: Clock = system_clock) -> list[Due]:
    """Record each job's latest due moment before `as_of` as done without running it, unless the
    job has run since, so that its schedule starts at `as_of`: for an installation that must not
    catch up on what came before, or a benchmark that times one cycle. Answers what it marked."""
    require_aware(as_of, "as_of")
    book = rulesets.rulebook()
    marked = []
    for job in JOBS.values():
        last = JobRun.objects.filter(job=job.name).aggregate(last=Max("due_at"))["last"]
        for due_at in moments(job, as_of - LOOKBACK, as_of - TICK, book)[-1:]:
            if last is not None and last >= due_at:
                continue
            now = clock.now()
            try:
                with transaction.atomic():
                    JobRun.objects.create(job=job.name, due_at=due_at, state="done", started_at=now,
                                          finished_at=now, error="marked done without running")
            except IntegrityError:
                continue
            marked.append(Due(job, due_at))
    return marked


@dataclass(frozen=True)
class JobStatus:
    name: str
    description: str
    schedule: str
    last_due_at: datetime | None
    last_state: str
    pending: int  # due moments up to now not yet done
    next_due_at: datetime | None  # the first due moment after now


def statuses(now: datetime) -> list[JobStatus]:
    """Every job with its schedule (under the ruleset in force now), last run and what is due."""
    require_aware(now, "now")
    book = rulesets.rulebook()
    pending = {name: 0 for name in JOBS}
    for due in due_runs(now):
        pending[due.job.name] += 1
    found = []
    for job in JOBS.values():
        last = JobRun.objects.filter(job=job.name).order_by("-due_at").values_list("due_at", "state").first()
        upcoming = moments(job, now, now + LOOKBACK, book)
        found.append(JobStatus(job.name, job.description, _describe(job, now, book),
                               _localise(last[0], book) if last else None, last[1] if last else "",
                               pending[job.name], upcoming[0] if upcoming else None))
    return found


def _describe(job: Job, now: datetime, book: Rulebook) -> str:
    if not book.versions:
        return "no ruleset published"
    active = book.in_force(now) if book.versions[0].effective_from <= now else book.versions[0]
    schedule = job.schedule_under(active.ruleset)
    return f"{schedule.describe()} {active.ruleset.timezone.key}" if schedule else "not run under this ruleset"
