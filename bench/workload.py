"""The synthetic shop the write benchmarks run on: members, orders with categorised items.

Deterministic (a seeded `random.Random`), so every run and every machine writes the same rows.
Orders are documents as the platform sends them; `parse_order` turns them into events.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")
RULES_FROM = datetime(2020, 1, 1, tzinfo=SHANGHAI)
REGISTERED_AT = datetime(2025, 12, 1, 9, tzinfo=SHANGHAI)
NOW = datetime(2026, 11, 22, 9, tzinfo=SHANGHAI)
ORDERS_FROM = datetime(2026, 1, 1, tzinfo=SHANGHAI)
CATEGORIES = ("fresh", "grocery", "home", "beauty", "baby")


def yuan(fen: int) -> str:
    return f"{fen // 100}.{fen % 100:02d}"


def member_names(count: int) -> list[str]:
    return [f"m{index:06d}" for index in range(count)]


def order_documents(count: int, members: list[str], *, seed: int, prefix: str = "o") -> list[dict[str, Any]]:
    """`count` orders of 1–3 items each, spread over 300 days of 2026 among `members`."""
    rng = random.Random(seed)
    documents = []
    for index in range(count):
        items = [{"sku": f"sku-{rng.randint(1, 500)}", "category": rng.choice(CATEGORIES),
                  "amount": yuan(rng.randint(100, 30_000))} for _ in range(rng.randint(1, 3))]
        paid_at = ORDERS_FROM + timedelta(minutes=rng.randint(0, 300 * 24 * 60))
        total = sum(int(item["amount"].replace(".", "")) for item in items)
        documents.append({"order_id": f"{prefix}{index:07d}", "member": rng.choice(members),
                          "paid_at": paid_at.isoformat(), "amount": yuan(total), "items": items})
    return documents


def seed_shop(members: list[str]) -> None:
    """Migrate, publish the default ruleset and register the members (the service's own way)."""
    from bench.harness import migrate_and_publish
    from loyalty.clock import FixedClock
    from loyalty.services.members import register_many

    migrate_and_publish(RULES_FROM)
    register_many(dict.fromkeys(members, REGISTERED_AT), clock=FixedClock(REGISTERED_AT))


def member_ids() -> dict[str, int]:
    from loyalty.store.models import Member

    return dict(Member.objects.values_list("external_id", "id"))
