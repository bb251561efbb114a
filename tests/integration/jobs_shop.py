"""A small shop with a year of history, for the jobs' crash tests: `python -m tests.integration.jobs_shop`
builds it in the database LOYALTY_DATABASE_URL names (migrated from empty).

Seeded and deterministic: 40 members (some with birthdays in the tested months), about 300
orders from June 2026 to April 2027 with refunds and check-ins, the default ruleset with tiers
valid 6 months on a 4-month window (so some expire in the tested months, and some drop) and
points expiring at each month's end.
The jobs have run from their first run (2026-09-01) up to BASELINE, so the run under test
catches up on the months after it: evaluations, expiries, benefits, birthdays, warnings.
"""

from __future__ import annotations

import os
import random
import sys
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")
FIRST_RUN = datetime(2026, 9, 1, 10, 0, tzinfo=SHANGHAI)
BASELINE = datetime(2027, 2, 10, 12, 0, tzinfo=SHANGHAI)
TESTED_NOW = "2027-05-03T08:00:00+08:00"


def build(seed: int = 5) -> None:
    from loyalty.clock import FixedClock
    from loyalty.domain.events import parse_action, parse_order, parse_refund
    from loyalty.services import rulesets
    from loyalty.services.actions import record_actions
    from loyalty.services.jobs import run_due
    from loyalty.services.members import register_member
    from loyalty.services.orders import record_orders
    from loyalty.services.refunds import record_refunds
    from loyalty.store.setup import migrate

    rng = random.Random(seed)
    clock = FixedClock(datetime(2026, 5, 1, tzinfo=SHANGHAI))
    migrate(verbose=False)
    document = rulesets.preset_document("default")
    document["evaluation"] = {**document["evaluation"], "validity_months": 6,
                              "window": {"kind": "trailing_months", "months": 4}}
    document["points"] = {**document["points"], "expiry": {"policy": "end_of_month"}}
    rulesets.publish(document, effective_from=datetime(2026, 1, 1, tzinfo=SHANGHAI), actor="tests", clock=clock)
    for n in range(40):
        birthday = date(1990, rng.choice([2, 3, 4, 5]), rng.randint(1, 28)) if n % 3 == 0 else None
        register_member(f"m{n:02d}", birthday=birthday, clock=clock)
    orders, refunds, actions = [], [], []
    for n in range(40):
        for k in range(rng.choice([0, 1, 3, 6, 9, 14])):
            paid_at = datetime(2026, 6, 1, 9, tzinfo=SHANGHAI) + timedelta(minutes=rng.randint(0, 330 * 24 * 60))
            amount = rng.randint(2000, 90000)
            fresh = rng.randint(0, amount) if rng.random() < 0.3 else 0
            items = [{"sku": "veg", "category": "fresh", "amount": _yuan(fresh)}] if fresh else []
            items.append({"sku": "goods", "category": "", "amount": _yuan(amount - fresh)})
            order_id = f"o-{n:02d}-{k:02d}"
            orders.append(parse_order({"order_id": order_id, "member": f"m{n:02d}", "paid_at": paid_at.isoformat(),
                                       "amount": _yuan(amount), "items": [i for i in items if i["amount"] != "0.00"]}))
            if rng.random() < 0.1:
                refunds.append(parse_refund({"refund_id": f"r-{order_id}", "order_id": order_id,
                                             "amount": _yuan(rng.randint(100, amount)),
                                             "refunded_at": (paid_at + timedelta(days=3)).isoformat()}))
            if rng.random() < 0.3:
                actions.append(parse_action({"event_id": f"c-{order_id}", "member": f"m{n:02d}", "type": "check_in",
                                             "at": (paid_at + timedelta(hours=1)).isoformat()}))
    orders.sort(key=lambda o: o.paid_at)
    for batch in (record_orders(orders, clock=clock), record_refunds(refunds, clock=clock),
                  record_actions(actions, clock=clock)):
        failures = [o for o in batch if isinstance(o, Exception)]
        assert not failures, failures
    for now in (FIRST_RUN, BASELINE):
        report = run_due(now, clock=FixedClock(now))
        assert report.outcomes and not report.failed, report


def _yuan(fen: int) -> str:
    return f"{fen // 100}.{fen % 100:02d}"


if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "loyalty.settings")
    import django

    django.setup()
    build(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
