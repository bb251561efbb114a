"""`loyalty report liability` end to end: real subprocesses on a fresh SQLite file."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from tests.e2e.cli import shop_on

# 400 + 59 + 120 points in October; bob's last order is 1 November in Shanghai, 31 October in UTC.
ORDERS_CSV = """order_id,member,paid_at,amount
o-1,alice,2026-10-03T10:00:00+08:00,400.00
o-2,bob,2026-10-05T09:30:00+08:00,59.90
o-3,alice,2026-10-06T20:00:00+08:00,120.00
o-4,bob,2026-11-01T07:00:00+08:00,30.00
"""
HEADER = "period,opening,earned,redeemed,reversed,expired,adjusted,written_off,outstanding"


@pytest.fixture
def shop(tmp_path: Path):
    """A database with the orders above; answers a runner of `loyalty ARGS` that checks the exit code."""
    return shop_on(tmp_path, "report.sqlite3", ORDERS_CSV)


def test_liability_as_csv_per_day_per_month_and_in_a_range(shop, tmp_path):
    assert shop("report", "liability").stdout.splitlines() == [
        HEADER,
        "2026-10-03,0,400,0,0,0,0,0,400",
        "2026-10-05,400,59,0,0,0,0,0,459",
        "2026-10-06,459,120,0,0,0,0,0,579",
        "2026-11-01,579,30,0,0,0,0,0,609",
    ]
    shop("report", "liability", "--by", "month", "--output", str(tmp_path / "months.csv"))
    assert (tmp_path / "months.csv").read_text().splitlines() == [
        HEADER, "2026-10,0,579,0,0,0,0,0,579", "2026-11,579,30,0,0,0,0,0,609"]
    ranged = shop("report", "liability", "--from", "2026-10-05", "--to", "2026-10-31").stdout
    assert ranged.splitlines() == [HEADER, "2026-10-05,400,59,0,0,0,0,0,459", "2026-10-06,459,120,0,0,0,0,0,579"]


def test_liability_as_json_has_rows_totals_and_the_lots_check(shop):
    answer = json.loads(shop("report", "liability", "--by", "month", "--format", "json", "--from", "2026-11-01").stdout)
    assert answer == {
        "report": "points_liability", "by": "month", "unit": "points", "from": "2026-11-01", "to": None,
        "columns": HEADER.split(","),
        "rows": [{"period": "2026-11", "opening": 579, "earned": 30, "redeemed": 0, "reversed": 0, "expired": 0,
                  "adjusted": 0, "written_off": 0, "outstanding": 609}],
        "totals": {"opening": 579, "earned": 30, "redeemed": 0, "reversed": 0, "expired": 0, "adjusted": 0,
                   "written_off": 0, "outstanding": 609},
        "check": {"ledger_total": 609, "lots_remaining": 609, "debts_remaining": 0, "agrees": True},
    }


def test_a_ledger_that_disagrees_with_its_lots_still_reports_but_exits_1(shop, tmp_path):
    with sqlite3.connect(tmp_path / "report.sqlite3") as db:  # damage done behind the engine's back
        db.execute("UPDATE points_lots SET remaining = remaining - 9 WHERE key = 'order:o-1:points'")
    done = shop("report", "liability", "--by", "month", code=1)
    assert done.stdout.splitlines()[-1] == "2026-11,579,30,0,0,0,0,0,609"
    assert "warning: the points ledger sums to 609, but lots − debts = 600 − 0" in done.stderr


def test_a_bad_date_or_a_reversed_range_is_refused(shop):
    assert "not a date: '2026-13-01'" in shop("report", "liability", "--from", "2026-13-01", code=2).stderr
    done = shop("report", "liability", "--from", "2026-11-01", "--to", "2026-10-01", code=1)
    assert "from (2026-11-01) is after to (2026-10-01)" in done.stderr
