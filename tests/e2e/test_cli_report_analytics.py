"""`loyalty report` (the analytics report) end to end: real subprocesses on a fresh SQLite file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.cli import shop_on

# alice buys on 3 and 6 October; bob on 5 October and 1 November (07:00 in Shanghai: November's).
ORDERS_CSV = """order_id,member,paid_at,amount
o-1,alice,2026-10-03T10:00:00+08:00,400.00
o-2,bob,2026-10-05T09:30:00+08:00,59.90
o-3,alice,2026-10-06T20:00:00+08:00,120.00
o-4,bob,2026-11-01T07:00:00+08:00,30.00
"""


@pytest.fixture
def shop(tmp_path: Path):
    return shop_on(tmp_path, "analytics.sqlite3", ORDERS_CSV)


def test_the_report_as_json_on_standard_output(shop):
    document = json.loads(shop("report", "--format", "json", "--as-of", "2026-11-30").stdout)
    assert document["report"] == "analytics"
    assert document["generated_for"] == {"as_of": "2026-11-30T23:59:59.999999+08:00", "from": None, "to": None,
                                         "tiers": None, "horizon_days": 90}
    assert document["tier_names"]["gold"] == "黄金"
    metrics = document["metrics"]
    # both bought twice; both again within 30 days (alice after 3 days, bob after 27)
    assert metrics["repeat_purchase"] == {"buyers": 2, "repeat_buyers": 2, "rate": "1.0000"}
    assert metrics["repurchase_within"] == {"days": 30, "eligible": 2, "repurchased": 2, "rate": "1.0000"}
    # one October cohort of 2; in November only bob bought: 1 / 2
    assert metrics["cohorts"]["rows"] == [{"cohort": "2026-10", "size": 2, "retention": ["1.0000", "0.5000"]}]
    # on 1 November both are members (of the base tier): bob's 30.00 yuan over 2 members = 1500 fen, 1 / 2 orders
    assert metrics["by_tier"]["months"] == ["2026-10", "2026-11"]
    assert metrics["by_tier"]["arpu_fen"]["bronze"] == [0, 1500]
    assert metrics["by_tier"]["frequency"]["bronze"] == ["0.0000", "0.5000"]
    # points: 400 + 59 + 120 = 579 in October, + 30 = 609 in November
    assert [(r["period"], r["outstanding"]) for r in metrics["points_liability"]["rows"]] == [
        ("2026-10", 579), ("2026-11", 609)]
    # 2 repeat buyers are far below the 20 the customer-base models need
    assert document["models"]["code"] == "too_few_repeat_buyers"


def test_the_report_as_html_in_var_by_default_or_where_asked(shop, tmp_path):
    done = shop("report", "--as-of", "2026-11-30")
    page = (tmp_path / "var" / "report.html").read_text(encoding="utf-8")
    assert done.stdout == "" and "wrote var/report.html" in done.stderr
    assert page.startswith("<!DOCTYPE html>") and '<html lang="en">' in page
    assert '<section id="cohort-retention"' in page and "The models were not fitted" in page
    assert "<script" not in page and "100.00%" in page  # the repeat-purchase rate
    shop("report", "--format", "html", "--output", str(tmp_path / "q4.html"), "--from", "2026-10-01",
         "--to", "2026-10-31", "--tier", "bronze", "--tier", "silver")
    assert "members of bronze, silver; as of 2026-10-31T23:59:59.999999+08:00" in (tmp_path / "q4.html").read_text()
    assert shop("report", "--output", "-", "--as-of", "2026-11-30").stdout.startswith("<!DOCTYPE html>")


def test_the_accounting_reports_still_answer_under_report(shop):
    assert shop("report", "liability", "--by", "month").stdout.splitlines()[1:] == [
        "2026-10,0,579,0,0,0,0,0,579", "2026-11,579,30,0,0,0,0,0,609"]
    assert shop("report", "budgets", "--month", "2026-10", "--format", "json").stdout.startswith("{")


def test_a_reversed_range_is_refused(shop):
    done = shop("report", "--from", "2026-11-01", "--to", "2026-10-01", code=1)
    assert "--from (2026-11-01) is after --to (2026-10-01)" in done.stderr
