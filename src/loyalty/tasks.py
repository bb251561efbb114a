"""Celery: background work as thin tasks around the services, for shops that outgrow one machine.

    celery -A loyalty.tasks worker          # any number of them, on any machines
    celery -A loyalty.tasks beat            # exactly one: sends the schedule below

`LOYALTY_BROKER_URL` names the broker (default: RabbitMQ on 127.0.0.1 as guest; Redis works too,
`redis://host:6379/0`), and `LOYALTY_CELERY_QUEUE` the queue (default `loyalty`), so several
shops can share one broker. No result backend: the tasks' effects are in the database.

Without Celery nothing here is needed: `loyalty jobs run-due` (from cron) runs the same job
functions in-process, the embedded default. With it, beat sends `run_due` every 10 minutes
(one run at a time holds the jobs lock; the others find it busy and return), and
`evaluate_month` splits a monthly evaluation into member-id ranges that workers take in
parallel. Each range is idempotent (a tier change is keyed by member and `as_of`), so a range
redelivered after a worker died, or retried after a lock timeout, changes nothing twice.
Several dispatch tasks may run at once (a slow run overlapping the next beat): deliveries are
claimed, never sent twice.
"""

from __future__ import annotations

import os
from datetime import datetime

import django
from celery import Celery
from django.db import IntegrityError, OperationalError

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "loyalty.settings")
django.setup()

DEFAULT_BROKER = "amqp://guest:guest@127.0.0.1:5672//"
DISPATCH_EVERY_SECONDS = 30.0
RUN_DUE_EVERY_SECONDS = 600.0
MEMBERS_PER_RANGE = 50_000

app = Celery("loyalty", broker=os.environ.get("LOYALTY_BROKER_URL", DEFAULT_BROKER))
app.conf.update(
    task_default_queue=os.environ.get("LOYALTY_CELERY_QUEUE", "loyalty"),
    task_ignore_result=True,
    broker_connection_retry_on_startup=True,
    timezone="UTC",
    beat_schedule={
        "dispatch-webhooks": {
            "task": "loyalty.tasks.dispatch_webhooks",
            "schedule": DISPATCH_EVERY_SECONDS,
            # A tick nobody took in time is dropped, not piled up behind a stopped worker.
            "options": {"expires": DISPATCH_EVERY_SECONDS},
        },
        "run-due-jobs": {
            "task": "loyalty.tasks.run_due",
            "schedule": RUN_DUE_EVERY_SECONDS,
            "options": {"expires": RUN_DUE_EVERY_SECONDS},
        },
    },
)


@app.task(name="loyalty.tasks.dispatch_webhooks")
def dispatch_webhooks(limit: int = 1000) -> dict[str, int]:
    """Deliver the webhook outbox once (see `services.webhooks.dispatch`); answers the counts."""
    from loyalty.services.webhooks import dispatch

    counts = dispatch(limit=limit)
    return {"fanned_out": counts.fanned_out, "delivered": counts.delivered, "failed": counts.failed,
            "parked": counts.parked}


def _moment(text: str) -> datetime:
    from loyalty.domain.periods import require_aware

    return require_aware(datetime.fromisoformat(text), "as_of")


# A range is idempotent, so it may run again: acked only once done (a worker that dies mid-range
# leaves it to another), and retried when the database is busy (SQLite's lock, a deadlock) or
# when a concurrent evaluation of the same `as_of` wrote a member's change first.
@app.task(name="loyalty.tasks.evaluate_range", acks_late=True, reject_on_worker_lost=True,
          autoretry_for=(OperationalError, IntegrityError), retry_backoff=True, max_retries=5)
def evaluate_range(as_of_iso: str, lo: int, hi: int) -> dict[str, int]:
    """Evaluate the members with lo <= id < hi at `as_of` (see `services.tiers.evaluate_tiers`)."""
    from loyalty.services.tiers import evaluate_tiers

    summary = evaluate_tiers(_moment(as_of_iso), id_range=(lo, hi))
    return {"members": summary.members, **summary.changes}


@app.task(name="loyalty.tasks.evaluate_month")
def evaluate_month(as_of_iso: str, chunk: int = MEMBERS_PER_RANGE) -> int:
    """Send one `evaluate_range` task per `chunk` member ids, between the lowest and the highest
    id; answers how many. Plain tasks, no chord: nothing waits for them, the database is the result."""
    from loyalty.services.members import id_ranges

    _moment(as_of_iso)  # a malformed time fails here, once, not in every range
    ranges = id_ranges(chunk)
    for lo, hi in ranges:
        evaluate_range.delay(as_of_iso, lo, hi)
    return len(ranges)


@app.task(name="loyalty.tasks.run_due")
def run_due() -> dict[str, int]:
    """Run every scheduled job due by now, once (see `services.jobs.run_due`); answers how many
    due moments ended in each state (nothing when another run holds the jobs lock)."""
    from loyalty.clock import system_clock
    from loyalty.services import jobs

    report = jobs.run_due(system_clock.now())
    states: dict[str, int] = {"busy": int(report.busy)}
    for outcome in report.outcomes:
        states[outcome.state] = states.get(outcome.state, 0) + 1
    return states
