"""Webhooks: endpoints, signatures, and the dispatcher that delivers the outbox, at least once.

`dispatch` runs in four steps, none of which holds a transaction across an HTTP call:
1. fan out: each new outbox event becomes one delivery per active endpoint that wants its type
   (UNIQUE (event, endpoint) makes that idempotent) and is marked `fanned_out_at`;
2. claim: due deliveries are taken in a short transaction that moves their `next_attempt_at`
   ahead as a lease; on PostgreSQL and MariaDB under `FOR UPDATE SKIP LOCKED`, so two
   dispatchers never claim one row (SQLite serialises writers, which gives the same);
3. send: a POST of the event's exact body, signed, with no transaction open;
4. record: a 2xx is delivered; anything else, or no answer, retries after
   30 s × 2^(attempts − 1) (at most 6 h, plus up to 10 % jitter), and the
   `LOYALTY_WEBHOOK_MAX_ATTEMPTS`-th failure (default 8) parks it for an operator's `replay`.

A dispatcher that dies between sending and recording sends again once its lease runs out, so
receivers dedupe on `Loyalty-Event-Id`. docs/webhooks.md is the receivers' guide.

Signatures (`sign`, `verify`) live in `domain/signatures.py`, which receivers can use without
Django; they are re-exported here.
"""

from __future__ import annotations

import http.client
import random
import secrets
import urllib.error
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import Message
from typing import IO, Any
from urllib.parse import urlsplit

from django.conf import settings
from django.db import connection, transaction
from django.db.models import QuerySet

from loyalty.clock import Clock, system_clock
from loyalty.domain.errors import InvalidInput
from loyalty.domain.signatures import SIGNATURE_HEADER, signature_header
from loyalty.domain.signatures import InvalidSignature as InvalidSignature  # re-exported for receivers
from loyalty.domain.signatures import sign as sign
from loyalty.domain.signatures import verify as verify
from loyalty.store.bulk import insert_rows
from loyalty.store.models import WEBHOOK_EVENTS, OutboxEvent, WebhookDelivery, WebhookEndpoint

SECRET_PREFIX = "whsec_"
TIMEOUT_SECONDS = 5.0
DEFAULT_MAX_ATTEMPTS = 8
FIRST_DELAY = timedelta(seconds=30)
LONGEST_DELAY = timedelta(hours=6)
JITTER = 0.1  # up to +10 %, so endpoints that come back after an outage are not hit all at once
CLAIM_BATCH = 20  # deliveries leased at a time: a short lease, shared fairly between dispatchers
LEASE_MARGIN = timedelta(seconds=60)
DELIVERY_FIELDS = ("member", "event", "endpoint", "state", "next_attempt_at", "last_error")


@dataclass
class DispatchCounts:
    fanned_out: int = 0  # outbox events turned into deliveries
    delivered: int = 0
    failed: int = 0  # failed attempts, retried later or parked
    parked: int = 0  # of the failed, those parked for good (until replayed)

    @property
    def attempted(self) -> int:
        return self.delivered + self.failed


# Endpoints ---------------------------------------------------------------------------------


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def check_url(url: str) -> str:
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or len(url) > 500:
        raise InvalidInput("url must be an http:// or https:// address of at most 500 characters", field="url")
    return url


def check_events(events: Iterable[str]) -> list[str]:
    """The event types an endpoint wants, sorted; none means every type."""
    chosen = sorted(set(events))
    unknown = [e for e in chosen if e not in WEBHOOK_EVENTS]
    if unknown:
        raise InvalidInput(f"unknown event types {', '.join(unknown)}; known: {', '.join(WEBHOOK_EVENTS)}",
                           field="events")
    return chosen


def create_endpoint(url: str, events: Iterable[str] = (), description: str = "", *,
                    clock: Clock = system_clock) -> WebhookEndpoint:
    """A new active endpoint with a fresh secret (`endpoint.secret`: show it to the platform once)."""
    if len(description.strip()) > 200:
        raise InvalidInput("description must be at most 200 characters", field="description")
    return WebhookEndpoint.objects.create(url=check_url(url), secret=new_secret(), events=check_events(events),
                                          description=description.strip(), created_at=clock.now())


# The dispatcher ----------------------------------------------------------------------------


def dispatch(*, clock: Clock = system_clock, limit: int = 1000, timeout: float = TIMEOUT_SECONDS,
             max_attempts: int | None = None) -> DispatchCounts:
    """Fan out up to `limit` new events, then attempt up to `limit` due deliveries."""
    # IMPORTANT: an HTTP call can take seconds; a transaction open across it would hold its locks.
    if any(not getattr(block, "_from_testcase", False) for block in connection.atomic_blocks):
        raise RuntimeError("dispatch sends HTTP requests: call it outside any transaction")
    attempts_allowed = max_attempts or int(getattr(settings, "LOYALTY_WEBHOOK_MAX_ATTEMPTS", DEFAULT_MAX_ATTEMPTS))
    counts = DispatchCounts(fanned_out=fan_out(clock.now(), limit))
    while counts.attempted < limit:
        claimed = _claim(clock.now(), min(CLAIM_BATCH, limit - counts.attempted), timeout)
        if not claimed:
            break
        for delivery in claimed:
            attempt = _post(delivery, clock.now(), timeout)
            _record(delivery, attempt, clock.now(), attempts_allowed, counts)
    return counts


def fan_out(now: datetime, limit: int) -> int:
    """One pending delivery per (new event, active endpoint that wants it); answers the events."""
    with transaction.atomic():
        events = list(_locked(OutboxEvent.objects.filter(fanned_out_at__isnull=True).order_by("id"))
                      .values_list("id", "member_id", "type")[:limit])
        if not events:
            return 0
        endpoints = list(WebhookEndpoint.objects.filter(active=True).order_by("id"))
        insert_rows(WebhookDelivery, DELIVERY_FIELDS, [
            (member_id, event_id, endpoint.id, "pending", now, "")
            for event_id, member_id, event_type in events for endpoint in endpoints if endpoint.wants(event_type)])
        OutboxEvent.objects.filter(id__in=[event_id for event_id, _, _ in events]).update(fanned_out_at=now)
    return len(events)


def _locked(queryset: QuerySet[Any]) -> QuerySet[Any]:
    """Rows another dispatcher holds are skipped, not waited for. SQLite has no row locks: its
    IMMEDIATE transactions let one writer at a time read and lease."""
    if connection.features.has_select_for_update_skip_locked:
        return queryset.select_for_update(skip_locked=True)
    if connection.features.has_select_for_update:
        return queryset.select_for_update()
    return queryset


def _claim(now: datetime, count: int, timeout: float) -> list[WebhookDelivery]:
    """Lease up to `count` due deliveries to active endpoints: nobody else sends them meanwhile."""
    active = list(WebhookEndpoint.objects.filter(active=True).values_list("id", flat=True))
    lease_until = now + LEASE_MARGIN + timedelta(seconds=timeout * count)
    with transaction.atomic():
        due = WebhookDelivery.objects.filter(state="pending", next_attempt_at__lte=now, endpoint_id__in=active)
        ids = list(_locked(due.order_by("next_attempt_at", "id")).values_list("id", flat=True)[:count])
        WebhookDelivery.objects.filter(id__in=ids).update(next_attempt_at=lease_until)
    return list(WebhookDelivery.objects.filter(id__in=ids).select_related("event", "endpoint").order_by("id"))


@dataclass(frozen=True)
class Attempt:
    ok: bool
    status: int | None
    error: str


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is an answer other than 2xx: a failure, not a reason to POST elsewhere."""

    def redirect_request(self, req: urllib.request.Request, fp: IO[bytes], code: int, msg: str,
                         headers: Message, newurl: str) -> urllib.request.Request | None:
        return None


_opener = urllib.request.build_opener(_NoRedirects)


def _post(delivery: WebhookDelivery, now: datetime, timeout: float) -> Attempt:
    event, endpoint = delivery.event, delivery.endpoint
    body = event.body.encode()
    request = urllib.request.Request(endpoint.url, data=body, method="POST", headers={
        "Content-Type": "application/json",
        "User-Agent": "loyalty-webhooks/1",
        "Loyalty-Event-Id": event.event_id,
        "Loyalty-Event-Type": event.type,
        SIGNATURE_HEADER: signature_header(endpoint.secret, int(now.timestamp()), body),
    })
    try:
        with _opener.open(request, timeout=timeout) as response:
            return Attempt(True, response.status, "")
    except urllib.error.HTTPError as error:
        try:
            detail = error.read(300).decode("utf-8", "replace")
        except (OSError, http.client.HTTPException):
            detail = ""
        finally:
            error.close()
        return Attempt(False, error.code, f"HTTP {error.code} {detail}".strip())
    except (OSError, http.client.HTTPException, ValueError) as error:
        reason = error.reason if isinstance(error, urllib.error.URLError) else error
        return Attempt(False, None, f"{type(reason).__name__}: {reason}"[:500])


def backoff(attempts: int, jitter: float | None = None) -> timedelta:
    """The wait after the `attempts`-th failure: 30 s, 60 s, 120 s, … at most 6 h, plus jitter
    (a fraction of up to JITTER; random unless given)."""
    base = min(FIRST_DELAY * 2 ** min(attempts - 1, 20), LONGEST_DELAY)
    return base * (1 + JITTER * (random.random() if jitter is None else jitter))


def _record(delivery: WebhookDelivery, attempt: Attempt, now: datetime, attempts_allowed: int,
            counts: DispatchCounts) -> None:
    tries = delivery.attempts + 1
    fields: dict[str, Any] = {"attempts": tries, "last_status": attempt.status, "last_error": attempt.error}
    if attempt.ok:
        fields.update(state="delivered", delivered_at=now)
        counts.delivered += 1
    elif tries >= attempts_allowed:
        fields.update(state="parked")
        counts.failed += 1
        counts.parked += 1
    else:
        fields.update(next_attempt_at=now + backoff(tries))
        counts.failed += 1
    WebhookDelivery.objects.filter(id=delivery.id, state="pending").update(**fields)


def replay(delivery_ids: Iterable[int], *, clock: Clock = system_clock) -> int:
    """For operators: parked (or delivered) deliveries go back to pending, due now, with a fresh
    retry budget. Pending ones are left alone: one may be in flight. Answers how many moved."""
    return WebhookDelivery.objects.filter(id__in=list(delivery_ids), state__in=("parked", "delivered")).update(
        state="pending", attempts=0, next_attempt_at=clock.now(), delivered_at=None)
