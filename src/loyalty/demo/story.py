"""The events a real shop would also send, generated around the purchases with a fixed seed:
refunds (full and partial), check-ins, reviews (some twice), shares (some past the daily cap),
and point redemptions. The same seed always tells the same story.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from loyalty.demo.sources import Purchase


@dataclass(frozen=True)
class Event:
    at: datetime
    kind: str  # refund | check_in | review | share | redeem
    member: str
    ref: str = ""
    amount_fen: int = 0
    event_id: str = ""


def side_events(purchases: list[Purchase], rng: random.Random) -> list[Event]:
    events: list[Event] = []
    for purchase in purchases:
        events.extend(_around(purchase, rng))
    events.sort(key=lambda e: (e.at, e.event_id))
    return events


def _around(p: Purchase, rng: random.Random) -> list[Event]:
    out = []
    roll = rng.random()
    if roll < 0.025:  # full refund
        out.append(Event(p.paid_at + timedelta(days=rng.randint(1, 14)), "refund", p.member, p.order_id,
                         p.amount_fen, f"rf-{p.order_id}"))
    elif roll < 0.04 and p.amount_fen > 1:  # partial refund
        out.append(Event(p.paid_at + timedelta(days=rng.randint(1, 14)), "refund", p.member, p.order_id,
                         rng.randint(1, p.amount_fen - 1), f"rf-{p.order_id}"))
    if rng.random() < 0.15:
        review_at = p.paid_at + timedelta(days=rng.randint(2, 10))
        out.append(Event(review_at, "review", p.member, p.order_id, event_id=f"rv-{p.order_id}"))
        if rng.random() < 0.05:  # a second review of the same order: capped
            out.append(Event(review_at + timedelta(hours=1), "review", p.member, p.order_id,
                             event_id=f"rv2-{p.order_id}"))
    if rng.random() < 0.05:
        for n in range(rng.randint(1, 5)):  # more than 3 shares a day are capped
            out.append(Event(p.paid_at + timedelta(minutes=5 + n), "share", p.member, p.order_id,
                             event_id=f"sh-{p.order_id}-{n}"))
    if rng.random() < 0.12:
        for n in range(rng.randint(1, 6)):
            day = p.paid_at + timedelta(days=n, hours=rng.randint(0, 2))
            out.append(Event(day, "check_in", p.member, event_id=f"ci-{p.order_id}-{n}"))
    if rng.random() < 0.01:
        out.append(Event(p.paid_at + timedelta(days=rng.randint(8, 40)), "redeem", p.member,
                         amount_fen=100, event_id=f"rd-{p.order_id}"))
    return out


def birthdays(members: list[str], rng: random.Random) -> dict[str, date]:
    return {m: date(rng.randint(1960, 2004), rng.randint(1, 12), rng.randint(1, 28)) for m in members}
