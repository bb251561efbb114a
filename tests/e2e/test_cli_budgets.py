"""`loyalty report budgets` and `loyalty budgets release` end to end: real subprocesses on a
fresh SQLite file, a gold budget of ¥16 and two members who reach gold on 1 November 2026."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.cli import cli_on

ROOT = Path(__file__).resolve().parents[2]
ORDERS_CSV = """order_id,member,paid_at,amount
o-1,alice,2026-10-03T10:00:00+08:00,900.00
o-2,bob,2026-10-05T09:30:00+08:00,850.00
o-3,carol,2026-10-06T20:00:00+08:00,100.00
"""
HEADER = "tier,month,budget,spent,remaining,issued,redeemed,deferred,deferred_value,released,lapsed,alerted_at"


@pytest.fixture
def shop(tmp_path: Path):
    """November's jobs have run: alice's 2 × ¥8 fill gold's ¥16, bob's are deferred, carol (silver)
    has her ¥5 with no budget. Answers a runner of `loyalty ARGS` that checks the exit code."""
    run = cli_on(tmp_path, "budgets.sqlite3")

    rules = (ROOT / "rulesets" / "default.yaml").read_text(encoding="utf-8")
    assert "  budgets: {}" in rules
    (tmp_path / "rules.yaml").write_text(rules.replace("  budgets: {}", '  budgets: {gold: "16"}'), encoding="utf-8")
    run("migrate")
    run("ruleset", "publish", str(tmp_path / "rules.yaml"), "--effective-from", "2026-01-01")
    (tmp_path / "orders.csv").write_text(ORDERS_CSV)
    run("import", "orders", str(tmp_path / "orders.csv"))
    ran = run("jobs", "run-due", "--now", "2026-11-01T09:00:00+08:00").stdout
    assert "2026-11-01T00:00:00+08:00  monthly_benefits  done  members=2 coupons=4 events=2 deferred=1" in ran
    return run


def test_the_budget_report_as_csv_shows_each_tiers_budget_spend_and_deferrals(shop, tmp_path):
    assert shop("report", "budgets", "--month", "2026-11").stdout.splitlines() == [
        HEADER,
        "silver,2026-11,,0.00,,5.00,0.00,0,0.00,0,0,",
        "gold,2026-11,16.00,16.00,0.00,16.00,0.00,1,16.00,0,0,2026-10-31T16:00:00Z",
    ]
    shop("report", "budgets", "--month", "2026-11", "--output", str(tmp_path / "b.csv"))
    assert (tmp_path / "b.csv").read_text().splitlines()[0] == HEADER


def test_the_budget_report_as_json(shop):
    answer = json.loads(shop("report", "budgets", "--month", "2026-11", "--format", "json").stdout)
    assert (answer["report"], answer["month"], answer["timezone"], answer["unit"]) == (
        "budgets", "2026-11", "Asia/Shanghai", "yuan")
    assert answer["columns"] == HEADER.split(",")
    assert answer["rows"][1] == {"tier": "gold", "month": "2026-11", "budget": "16.00", "spent": "16.00",
                                 "remaining": "0.00", "issued": "16.00", "redeemed": "0.00", "deferred": 1,
                                 "deferred_value": "16.00", "released": 0, "lapsed": 0,
                                 "alerted_at": "2026-10-31T16:00:00Z"}


def test_release_waits_within_the_budget_and_lapses_after_the_validity(shop):
    assert shop("budgets", "release", "--now", "2026-11-20T00:00:00+08:00").stdout == (
        "released=0 lapsed=0 coupons=0 waiting=1\n")
    assert shop("budgets", "release", "--now", "2026-12-01T00:00:00+08:00", "--dry-run").stdout == (
        "would release released=0 lapsed=1 coupons=0 waiting=0\n")
    shop("budgets", "release", "--now", "2026-12-01T00:00:00+08:00")
    assert shop("report", "budgets", "--month", "2026-11").stdout.splitlines()[-1] == (
        "gold,2026-11,16.00,16.00,0.00,16.00,0.00,0,0.00,0,1,2026-10-31T16:00:00Z")


def test_a_month_that_is_not_yyyy_mm_is_refused(shop):
    assert "month must be YYYY-MM" in shop("report", "budgets", "--month", "2026-13", code=1).stderr
