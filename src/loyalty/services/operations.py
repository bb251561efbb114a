"""What the operations console shows besides the analytics: the review queue, the latest risk
scans, failed job runs and the webhooks' health. Reads only, a few aggregate queries each.

Ages are measured from `now` to the event's `created_at` (when the change happened), so an
endpoint that is down shows how long its receiver has been waiting, not when we last retried.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Count, Min, Q

from loyalty.store.models import JobRun, OutboxEvent, ReviewCase, RiskScore, WebhookEndpoint


@dataclass(frozen=True)
class OpenCase:
    id: int
    member: str
    reasons: list[str]
    opened_at: datetime


@dataclass(frozen=True)
class ReviewQueue:
    open: int
    decided: int
    oldest: list[OpenCase]  # the open cases, oldest first, at most `limit`


def review_queue(limit: int = 20) -> ReviewQueue:
    counts = ReviewCase.objects.aggregate(open=Count("id", filter=Q(state="open")),
                                          decided=Count("id", filter=~Q(state="open")))
    rows = (ReviewCase.objects.filter(state="open").order_by("opened_at", "id")
            .values_list("id", "member__external_id", "reasons", "opened_at")[:limit])
    return ReviewQueue(counts["open"], counts["decided"], [OpenCase(*row) for row in rows])


@dataclass(frozen=True)
class ScanCount:
    as_of: datetime
    scored: int
    flagged: int


def risk_scans(limit: int = 7) -> list[ScanCount]:
    """Members scored and flagged by each of the latest scans, latest first."""
    rows = (RiskScore.objects.values("as_of").annotate(scored=Count("id"), flagged=Count("id", filter=Q(flagged=True)))
            .order_by("-as_of")[:limit])
    return [ScanCount(row["as_of"], row["scored"], row["flagged"]) for row in rows]


@dataclass(frozen=True)
class FailedRun:
    job: str
    due_at: datetime
    attempts: int
    error: str


def failed_runs(limit: int = 20) -> list[FailedRun]:
    """Runs left failed (retried by the next `jobs run-due`), latest first; the error's last line."""
    rows = JobRun.objects.filter(state="failed").order_by("-due_at", "job").values_list(
        "job", "due_at", "attempts", "error")[:limit]
    return [FailedRun(job, due_at, attempts, (error.strip().splitlines() or [""])[-1]) for job, due_at, attempts, error
            in rows]


@dataclass(frozen=True)
class EndpointHealth:
    id: int
    url: str
    active: bool
    pending: int
    retrying: int  # of the pending, those with a failed attempt
    delivered: int
    parked: int
    oldest_pending: timedelta | None

    @property
    def is_failing(self) -> bool:
        return self.parked > 0 or self.retrying > 0


@dataclass(frozen=True)
class WebhookHealth:
    endpoints: list[EndpointHealth]
    unsent_events: int  # outbox events not yet fanned out to deliveries
    oldest_unsent: timedelta | None


def webhook_health(now: datetime) -> WebhookHealth:
    pending = Q(webhookdelivery__state="pending")
    rows = WebhookEndpoint.objects.order_by("id").annotate(
        pending=Count("webhookdelivery", filter=pending),
        retrying=Count("webhookdelivery", filter=pending & Q(webhookdelivery__attempts__gt=0)),
        delivered=Count("webhookdelivery", filter=Q(webhookdelivery__state="delivered")),
        parked=Count("webhookdelivery", filter=Q(webhookdelivery__state="parked")),
        oldest=Min("webhookdelivery__event__created_at", filter=pending))
    endpoints = [EndpointHealth(e.id, e.url, e.active, e.pending, e.retrying, e.delivered, e.parked,
                                now - e.oldest if e.oldest else None) for e in rows]
    unsent = OutboxEvent.objects.filter(fanned_out_at__isnull=True).aggregate(n=Count("id"), oldest=Min("created_at"))
    return WebhookHealth(endpoints, unsent["n"], now - unsent["oldest"] if unsent["oldest"] else None)

