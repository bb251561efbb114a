"""`loyalty simulate` end to end: a candidate that makes gold harder, replayed beside the version in
force on orders imported into a fresh SQLite file, and on an orders file alone.

Orders (Mondays and Tuesdays, no fresh food): m1 pays ¥100 on 01-04, 01-11 and 01-18; m2 ¥50 on
01-05 and ¥60 on 02-02. On 02-01 the default rules make m1 gold (3 orders) and m2 silver; the
candidate asks 4 orders for gold, so m1 stays silver. Coupons issued at each month's end for the
next month: baseline gold 2 × ¥8 + silver ¥5 = ¥21.00, candidate 2 × ¥5 = ¥10.00. m2 is the one
member retained (February, after January). Growth: January 100 × 3 + 50 = 350; February m2's
first order after the upgrade, 60 × 1.5 = 90, under both.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.e2e.cli import shop_on

ROOT = Path(__file__).resolve().parents[2]
ORDERS = """order_id,member,paid_at,amount
o1,m1,2027-01-04T10:00:00+08:00,100.00
o2,m1,2027-01-11T10:00:00+08:00,100.00
o3,m1,2027-01-18T10:00:00+08:00,100.00
o4,m2,2027-01-05T10:00:00+08:00,50.00
o5,m2,2027-02-02T10:00:00+08:00,60.00
"""


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    directory = tmp_path_factory.mktemp("simulate")
    document = yaml.safe_load((ROOT / "rulesets" / "default.yaml").read_text())
    document["name"] = "harder gold"
    document["tiers"][2]["when"] = {"any": [{"orders": ">= 4"}, {"amount": ">= 800"}]}
    (directory / "candidate.yaml").write_text(yaml.safe_dump(document, allow_unicode=True))
    return directory, shop_on(directory, "shop.sqlite3", ORDERS)


def check(document: dict) -> None:
    assert document["rulesets"] == {"baseline": "default", "candidate": "harder gold"}
    jan, feb = document["months"]
    assert (jan["month"], jan["orders"], jan["buyers"], jan["retained"]) == ("2027-01", 4, 2, 0)
    assert (feb["month"], feb["orders"], feb["retained"]) == ("2027-02", 1, 1)
    assert jan["baseline"]["tiers"] == {"gold": 1, "silver": 1}
    assert jan["candidate"]["tiers"] == {"silver": 2}
    assert [m["baseline"]["coupon_value"] for m in (jan, feb)] == ["21.00", "21.00"]
    assert [m["candidate"]["coupon_value"] for m in (jan, feb)] == ["10.00", "10.00"]
    assert [m["candidate"]["growth_earned"] for m in (jan, feb)] == [350, 90]
    assert document["moved"] == {"members": 1, "by_move": [{"from": "gold", "to": "silver", "members": 1}],
                                 "examples": [{"member": "m1", "baseline": "gold", "candidate": "silver"}]}
    base, cand = document["totals"]["baseline"], document["totals"]["candidate"]
    assert (base["benefit_cost"], base["retained"], base["cost_per_retained"]) == ("42.00", 1, "42.00")
    assert (cand["benefit_cost"], cand["cost_per_retained"]) == ("20.00", "20.00")


def test_the_candidate_beside_the_version_in_force_on_the_database(shop):
    directory, run = shop
    run("simulate", "--ruleset", "candidate.yaml", "--format", "json", "--output", "backtest.json")
    check(json.loads((directory / "backtest.json").read_text()))
    text = run("simulate", "--ruleset", "candidate.yaml", "--delivery-fee", "6").stdout
    assert "1 members would end in another tier" in text and "gold → silver: 1" in text
    assert "21.00 → 10.00" in text  # the month's coupon value, baseline → candidate


def test_an_orders_file_alone_gives_the_same_comparison(shop):
    _, run = shop
    done = run("simulate", "--ruleset", "candidate.yaml", "--baseline", str(ROOT / "rulesets" / "default.yaml"),
               "--orders", "orders.csv", "--format", "json")
    check(json.loads(done.stdout))
    last = json.loads(run("simulate", "--ruleset", "candidate.yaml", "--months", "1", "--format", "json").stdout)
    assert [m["month"] for m in last["months"]] == ["2027-02"]


def test_a_wrong_candidate_or_option_is_refused_naming_it_and_nothing_runs(shop):
    directory, run = shop
    (directory / "broken.yaml").write_text("name: broken\ntiers: []\n")
    refused = run("simulate", "--ruleset", "broken.yaml", code=1)
    assert "tiers" in refused.stderr and refused.stdout == ""
    assert "--months" in run("simulate", "--ruleset", "candidate.yaml", "--months", "0", code=1).stderr
    assert "--delivery-fee" in run("simulate", "--ruleset", "candidate.yaml", "--delivery-fee", "-1", code=1).stderr
    assert "usage" in run("simulate", "--ruleset", "candidate.yaml", "--orders", "orders.csv", "--from-db",
                          code=2).stderr
