"""Benchmark 11: `loyalty simulate`'s replay of 1,000,000 orders of 100,000 members over 12 months.

A seeded shop (built before the clock starts): each member buys on days drawn uniformly over
2027, ten orders each on average (rates 2–18 a year), one to three lines from the demo's
categories, ¥5–¥300 a line; 3% of orders refunded (half in full), a check-in on one order in ten.
Figure: the replay of that history under the default ruleset, through the evaluation after its
last month (coupons and expiry included), as `loyalty simulate` runs it for each of its two
rulesets: `analytics.backtest.replay_parallel`, the members split over one process per core.
Baseline in the same run: the growth of every order alone (`order_growth`, the first thing any
replay must compute per order), so the ratio is what the rest of the replay costs on top of it.
Target (the issue): under 20 seconds.
"""

from __future__ import annotations

import os
import random
import time
from datetime import date, datetime, timedelta
from datetime import time as day_time

from bench import harness, workload

RUNS = 3
BUDGET = 200.0
MEMBERS = 100_000
ORDERS = 1_000_000
START = date(2027, 1, 1)
CATEGORIES = ("fresh", "grocery", "household", "electronics", "beauty")


def history(rng: random.Random) -> object:
    from loyalty.domain.backtest import History, Newcomer
    from loyalty.domain.events import ActionEvent, OrderEvent, RefundEvent
    from loyalty.domain.growth import Line

    zone = workload.SHANGHAI
    rates = [rng.randint(2, 18) for _ in range(MEMBERS)]
    scale = ORDERS / sum(rates)
    orders, refunds, actions, members = [], [], [], []
    number = 0
    for index, rate in enumerate(rates):
        member = f"m{index}"
        count = max(1, round(rate * scale))
        days = sorted(rng.randrange(365) for _ in range(count))
        members.append(Newcomer(member, datetime.combine(START + timedelta(days=days[0]), day_time(0, 0), tzinfo=zone),
                                date(rng.randint(1960, 2004), rng.randint(1, 12), rng.randint(1, 28))))
        for day in days:
            number += 1
            paid_at = datetime.combine(START + timedelta(days=day), day_time(rng.randint(8, 22), rng.randint(0, 59)),
                                       tzinfo=zone)
            lines = tuple(Line(rng.choice(CATEGORIES), rng.randint(500, 30_000)) for _ in range(rng.randint(1, 3)))
            amount = sum(line.amount_fen for line in lines)
            order_id = f"o{number}"
            orders.append(OrderEvent(order_id, member, paid_at, amount, lines, tuple("sku" for _ in lines)))
            roll = rng.random()
            if roll < 0.03:
                refund = amount if roll < 0.015 else rng.randint(1, amount)
                refunds.append(RefundEvent(f"r{number}", order_id, refund, paid_at + timedelta(days=rng.randint(1, 9))))
            elif roll < 0.13:
                actions.append(ActionEvent(f"c{number}", member, "check_in", paid_at + timedelta(hours=1), ""))
    return History(members, orders, refunds, actions)


def main() -> None:
    args = harness.arguments(__doc__ or "", RUNS, BUDGET)
    site = harness.Site("backtest")
    harness.start_django(site)  # the rulesets load through the services; the replay reads no database

    from loyalty.analytics.backtest import replay_parallel
    from loyalty.domain.backtest import History
    from loyalty.domain.growth import order_growth
    from loyalty.services import rulesets

    ruleset = rulesets.validate(rulesets.preset_document("default"))
    started = time.perf_counter()
    shop = history(random.Random(11))
    assert isinstance(shop, History)
    built = time.perf_counter() - started
    outcome: dict[str, object] = {}

    def service() -> float:
        def run() -> None:
            outcome["replay"] = replay_parallel(ruleset, shop)
        return harness.timed(run)

    def baseline() -> float:
        growth, zone = ruleset.growth, ruleset.timezone
        orders = shop.orders
        return harness.timed(lambda: [order_growth(o.lines, o.amount_fen, o.paid_at, growth, zone) for o in orders])

    figure, base = harness.alternate(args.runs, args.budget, service, baseline)
    done = outcome["replay"]
    tiers = done.final_tiers  # type: ignore[attr-defined]
    print(f"backtest: {len(shop.orders):,} orders, {len(shop.members):,} members, {len(shop.refunds):,} refunds, "
          f"{len(shop.actions):,} check-ins, {len(done.months)} months")  # type: ignore[attr-defined]
    notes = [f"history built (not timed): {built:.1f} s; {os.cpu_count()} processes",
             "final tiers: " + ", ".join(f"{code} {n:,}" for code, n in sorted(tiers.items()))]
    harness.Result(
        "backtest", "Backtest replay, 1M orders / 100k members / 12 months", "s", harness.median(figure),
        harness.median(base), "< 20 s", higher_is_better=False, runs=figure, baseline_runs=base, notes=notes,
    ).show()


if __name__ == "__main__":
    main()
