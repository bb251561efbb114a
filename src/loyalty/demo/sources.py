"""Where the demo's purchases come from: the real CDNOW log, or a seeded synthetic shop.

CDNOW_master (Fader & Hardie) ships inside the `lifetimes` package: 23,570 customers, 69,659
purchases from 1997-01 to 1998-06. Dollars are taken as yuan; every item is category `music`.
"""

from __future__ import annotations

import importlib.resources
import random
import warnings
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")


@dataclass(frozen=True)
class Purchase:
    order_id: str
    member: str
    paid_at: datetime
    lines: tuple[tuple[str, str, int], ...]  # (sku, category, amount_fen)

    @property
    def amount_fen(self) -> int:
        return sum(line[2] for line in self.lines)


def _fen(text: str) -> int:
    whole, _, fraction = text.partition(".")
    return int(whole) * 100 + int((fraction + "00")[:2])


def cdnow_text() -> str:
    with warnings.catch_warnings():  # lifetimes 0.11 touches options that pandas 3 deprecates
        warnings.simplefilter("ignore")
        resource = importlib.resources.files("lifetimes") / "datasets" / "CDNOW_master.txt"
        return resource.read_text(encoding="utf-8")


def cdnow_purchases(rng: random.Random) -> tuple[list[Purchase], int]:
    """Every CDNOW purchase with a positive amount, at a seeded time of day; and how many were ¥0."""
    purchases, skipped = [], 0
    for number, line in enumerate(cdnow_text().splitlines()[1:], start=1):
        fields = line.split()
        if len(fields) != 4:
            continue
        customer, day, cds, dollars = fields
        amount_fen = _fen(dollars)
        if amount_fen <= 0:
            skipped += 1
            continue
        moment = datetime.combine(date(int(day[:4]), int(day[4:6]), int(day[6:])),
                                  time(rng.randint(9, 22), rng.randint(0, 59)), tzinfo=SHANGHAI)
        purchases.append(Purchase(f"cdnow-{number}", f"cdnow-{int(customer)}", moment,
                                  ((f"cd-x{cds}", "music", amount_fen),)))
    return purchases, skipped


CATEGORIES = (("fresh", 30), ("grocery", 30), ("household", 20), ("electronics", 10), ("beauty", 10))


def synthetic_purchases(members: int, rng: random.Random, start: date = date(2026, 1, 1),
                        months: int = 12) -> list[Purchase]:
    """A shop where each member buys at their own rate; baskets mix fresh food and other goods."""
    purchases: list[Purchase] = []
    end = start + timedelta(days=months * 30)
    categories = [name for name, _ in CATEGORIES]
    weights = [weight for _, weight in CATEGORIES]
    for index in range(1, members + 1):
        rate = rng.choice((0.5, 1, 2, 4, 8)) / 30  # orders per day
        day = start + timedelta(days=rng.randint(0, 60))
        while day < end:
            lines = tuple((f"sku-{rng.randint(1, 500)}", rng.choices(categories, weights)[0],
                           rng.randint(500, 30000)) for _ in range(rng.randint(1, 4)))
            moment = datetime.combine(day, time(rng.randint(8, 23), rng.randint(0, 59)), tzinfo=SHANGHAI)
            purchases.append(Purchase(f"syn-{index}-{len(purchases)}", f"syn-{index}", moment, lines))
            day += timedelta(days=max(1, int(rng.expovariate(rate))))
    return purchases
