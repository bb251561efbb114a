"""The backtest equals the live engine: the demo's history, recorded through the services into the
database, then replayed in memory under the same ruleset, ends every member in the same tier
with the same expiry, growth, points and debt. Run under the default ruleset, the seed presets
and variants that reach the paths the default does not (immediate upgrades, a daily cap,
write-offs, points that expire after N days, one-down expiry, percentile scores, active days,
interactions and the largest single order in a calendar-year window).
"""

from __future__ import annotations

import io
from collections import Counter
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from rich.console import Console

from loyalty.analytics.backtest import history_from_db
from loyalty.demo.run import run_demo
from loyalty.domain.backtest import replay
from loyalty.services import rulesets
from loyalty.store.models import Member, TierChange

pytestmark = pytest.mark.django_db
END_OF_TIME = datetime.max.replace(tzinfo=ZoneInfo("UTC"))


def _preset(name: str, **changes: Any) -> dict[str, Any]:
    document = rulesets.preset_document(name)
    for path, value in changes.items():
        *parents, last = path.split("__")
        node = document
        for key in parents:
            node = node[key]
        node[last] = value
    return document


VARIANTS = {
    "default": _preset("default"),
    "seed000-points": _preset("seed000-points"),
    "seed001-all": _preset("seed001-all"),
    "seed000-weighted percentile": _preset("seed000-weighted", score__normalise="percentile", score__caps=None),
    "immediate, capped, written off, expiring after 40 days, one down": _preset(
        "default", evaluation__immediate_upgrade=True, evaluation__on_expiry="one_down",
        evaluation__validity_months=2, risk__daily_growth_cap=600,
        points={"per_yuan": 1, "rounding": "floor", "birthday_multiplier": 2, "pending_days": 3,
                "expiry": {"policy": "days_after_earning", "days": 40}, "return_policy": "within_balance"}),
    "active days, interactions, largest order, calendar year": _preset(
        "default", evaluation__window={"kind": "calendar_year"}, tiers=[
            {"code": "bronze", "name": "青铜"},
            {"code": "silver", "name": "白银", "when": {"any": [{"active_days": ">= 3"}, {"interactions": ">= 2"}]}},
            {"code": "gold", "name": "黄金",
             "when": {"all": [{"active_days": ">= 8"}, {"max_single_order": ">= 250"}]}},
            {"code": "platinum", "name": "铂金", "when": {"growth_lifetime": ">= 6000"}},
            {"code": "diamond", "name": "钻石", "when": {"amount_lifetime": ">= 20000"}},
        ], benefits={"silver": {"monthly_coupons": [{"value": "5", "count": 1}]}}),
}


@pytest.mark.parametrize("variant", VARIANTS)
def test_the_replay_ends_every_member_where_the_database_does(variant: str) -> None:
    document = VARIANTS[variant]
    run_demo(synthetic=70, seed=11, console=Console(file=io.StringIO()), ruleset=document)
    ruleset = rulesets.in_force(END_OF_TIME).ruleset

    replayed = replay(ruleset, history_from_db())

    live = {row[0]: row[1:] for row in Member.objects.values_list(
        "external_id", "tier", "tier_expires_at", "growth_balance", "points_balance", "points_debt")}
    simulated = {key: (s.tier, s.tier_expires_at, s.growth, s.points, s.points_debt)
                 for key, s in replayed.members.items()}
    assert simulated == live
    changes = Counter(TierChange.objects.values_list("reason", flat=True))
    assert changes["upgrade"] > 0  # the history moves members: the comparison is not of idle ones
    assert sum((month.moves for month in replayed.months), Counter()) == changes
    assert not replayed.refused
