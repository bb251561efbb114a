"""A history split by member over processes replays to the same outcome as in one process."""

from __future__ import annotations

import random
from dataclasses import asdict

from loyalty.analytics.backtest import replay_parallel
from loyalty.domain.backtest import History, Newcomer, Spend, replay, split
from loyalty.domain.events import ActionEvent, RefundEvent
from tests.conftest import at
from tests.unit.presets import preset
from tests.unit.test_backtest import order

DAY = at("2027-01-02 00:00") - at("2027-01-01 00:00")


def shop(seed: int = 5) -> History:
    rng = random.Random(seed)
    orders, refunds, actions, spends = [], [], [], []
    for number in range(600):
        member = f"m{rng.randrange(40)}"
        paid_at = at("2027-01-01 09:00") + rng.randrange(200) * DAY + rng.randrange(600) * (DAY / 1440)
        event = order(f"o{number}", paid_at, rng.randint(1, 700), member)
        orders.append(event)
        if rng.random() < 0.1:
            refunds.append(RefundEvent(f"r{number}", event.order_id, rng.randint(1, event.amount_fen), paid_at + DAY))
        if rng.random() < 0.2:
            actions.append(ActionEvent(f"c{number}", member, "check_in", paid_at + DAY / 24, ""))
        if rng.random() < 0.05:
            spends.append(Spend(f"s{number}", member, rng.randint(1, 300), paid_at + 10 * DAY))
    members = [Newcomer(f"m{n}", at("2027-01-01 08:00")) for n in range(40)]
    return History(members, orders, refunds, actions, spends)


def test_the_parts_replayed_in_parallel_add_up_to_the_whole() -> None:
    rules, history = preset("default"), shop()
    whole = replay(rules, history)

    parallel = replay_parallel(rules, history, workers=2, min_orders=0)

    assert parallel.members == whole.members
    assert [asdict(m) for m in parallel.months] == [asdict(m) for m in whole.months]
    assert parallel.refused == whole.refused
    parts = split(history, 3)  # every event lands in exactly one part, with its member
    assert sorted(len(p.orders) for p in parts) != [0, 0, 600] and sum(len(p.orders) for p in parts) == 600
    assert sum(len(p.refunds) for p in parts) == len(history.refunds)
