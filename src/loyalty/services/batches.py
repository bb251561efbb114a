"""The shape every event writer shares: decide a batch in memory, write it set-based, once.

A batch loads what its events need (locking the members in primary-key order), decides each
event in order, answering an outcome or the event's own error, then flushes all writes. A
single event is a batch of one, so the per-event API and the batch API cannot drift apart.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Generic, TypeVar

from django.db import IntegrityError, OperationalError, connection, transaction

from loyalty.domain.errors import LoyaltyError
from loyalty.services.ledger import Book
from loyalty.store import raw

Event = TypeVar("Event")
Outcome = TypeVar("Outcome")
T = TypeVar("T")


class EventBatch(ABC, Generic[Event, Outcome]):
    def __init__(self, now: datetime):
        self.now = now
        self.book = Book(now)

    @abstractmethod
    def load(self, events: Sequence[Event]) -> None:
        """Lock and read everything the events' decisions need, in as few queries as possible."""

    @abstractmethod
    def decide_one(self, event: Event) -> Outcome:
        """Decide one event against the batch's state (raising its LoyaltyError)."""

    @abstractmethod
    def flush(self) -> None:
        """Write every decision of the batch. Runs pipelined on PostgreSQL: nothing here may
        wait for a statement's result (conditional updates belong in `decide_one`)."""

    def finish(self) -> None:
        """Work after the writes, in the same transaction (e.g. immediate upgrades)."""

    def has_finish_work(self) -> bool:
        """Whether `finish` will write; when not, the writes end the transaction."""
        return False

    def decide(self, event: Event) -> Outcome | LoyaltyError:
        try:
            return self.decide_one(event)
        except LoyaltyError as error:
            return error

    def run(self, events: Sequence[Event]) -> list[Outcome | LoyaltyError]:
        """The whole batch in one transaction: one outcome or error per event, in order."""
        if not events:
            return []
        with transaction.atomic():
            self.load(events)
            results = [self.decide(event) for event in events]
            follow_up = self.has_finish_work()
            # Every write of the batch in one round trip on PostgreSQL, with the COMMIT when
            # nothing follows them.
            with raw.pipeline(last=not follow_up):
                self.flush()
            if follow_up:
                self.finish()
        return results


def run_batch(make: Callable[[], EventBatch[Event, Outcome]], events: Sequence[Event]
              ) -> list[Outcome | LoyaltyError]:
    """Run a fresh batch, again from the start if it loses a race (see `retry_races`)."""
    return retry_races(lambda: make().run(events))


def retry_races(work: Callable[[], T]) -> T:
    """Run `work` (one transaction); when it loses a race, run it again from the start.

    Writers lock their members first, so the same client id sent twice is normally answered as
    a replay. Two requests with one id but different members lock different rows, though: the
    loser's INSERT then hits the UNIQUE key. Its transaction is rolled back whole and re-run,
    and the re-run sees the winner's row and answers replay or conflict. Deadlocks (which the
    primary-key lock order should prevent) get the same treatment. Only the outermost
    transaction can be re-run: inside a caller's transaction the error goes to the caller."""
    for attempt in range(RETRIES):
        try:
            return work()
        except (IntegrityError, OperationalError) as error:
            if connection.in_atomic_block or attempt == RETRIES - 1 or not _retryable(error):
                raise
    raise AssertionError("unreachable")  # pragma: no cover


RETRIES = 3


def _retryable(error: Exception) -> bool:
    if isinstance(error, IntegrityError):
        return True
    text = str(error).lower()
    return "deadlock" in text or "could not serialize" in text or "lock wait timeout" in text


def only(results: list[Outcome | LoyaltyError]) -> Outcome:
    """The outcome of a batch of one, or its error raised."""
    (result,) = results
    if isinstance(result, LoyaltyError):
        raise result
    return result
