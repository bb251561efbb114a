"""The shape every event writer shares: decide a batch in memory, write it set-based, once.

A batch loads what its events need (locking the members in primary-key order), decides each
event in order, answering an outcome or the event's own error, then flushes all writes. A
single event is a batch of one, so the per-event API and the batch API cannot drift apart.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from datetime import datetime
from typing import Generic, TypeVar

from django.db import transaction

from loyalty.domain.errors import LoyaltyError
from loyalty.services.ledger import Book

Event = TypeVar("Event")
Outcome = TypeVar("Outcome")


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
        """Write every decision of the batch."""

    def finish(self) -> None:
        """Work after the writes, in the same transaction (e.g. immediate upgrades)."""

    def decide(self, event: Event) -> Outcome | LoyaltyError:
        try:
            return self.decide_one(event)
        except LoyaltyError as error:
            return error

    def run(self, events: Sequence[Event]) -> list[Outcome | LoyaltyError]:
        """The whole batch in one transaction: one outcome or error per event, in order."""
        with transaction.atomic():
            self.load(events)
            results = [self.decide(event) for event in events]
            self.flush()
            self.finish()
        return results


def only(results: list[Outcome | LoyaltyError]) -> Outcome:
    """The outcome of a batch of one, or its error raised."""
    (result,) = results
    if isinstance(result, LoyaltyError):
        raise result
    return result
