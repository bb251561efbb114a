"""The `loyalty` command end to end: real subprocesses on a fresh SQLite file each."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ORDERS_CSV = """order_id,member,paid_at,amount,sku,category
o-1,alice,2026-10-03T10:00:00+08:00,100.00,apple,fresh
o-1,alice,2026-10-03T10:00:00+08:00,300.00,kettle,household
o-2,bob,2026-10-05T09:30:00+08:00,59.90,book,
o-3,alice,2026-10-06T20:00:00+08:00,120.00,rice,grocery
"""


@pytest.fixture
def loyalty(tmp_path: Path):
    """Run `loyalty ARGS` against a database file of this test's own; returns the finished process."""
    env = {**os.environ, "LOYALTY_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.sqlite3'}"}
    env.pop("DJANGO_SETTINGS_MODULE", None)

    def run(*args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([sys.executable, "-m", "loyalty.cli", *args], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=300)
        assert (done.returncode == 0) is ok, done.stdout + done.stderr
        return done

    return run


@pytest.fixture
def published(loyalty):
    loyalty("migrate")
    loyalty("ruleset", "publish", str(ROOT / "rulesets" / "default.yaml"), "--effective-from", "2026-01-01")
    return loyalty


def test_validate_accepts_every_preset(loyalty):
    for preset in ("default", "seed000-weighted", "seed000-points", "seed001-all"):
        assert "ok:" in loyalty("ruleset", "validate", str(ROOT / "rulesets" / f"{preset}.yaml")).stdout


def test_validate_names_the_path_of_a_mistake(loyalty, tmp_path):
    bad = (ROOT / "rulesets" / "default.yaml").read_text().replace('{amount: ">= 800"}', '{amout: ">= 800"}')
    (tmp_path / "bad.yaml").write_text(bad)
    done = loyalty("ruleset", "validate", str(tmp_path / "bad.yaml"), ok=False)
    assert "tiers[2].when.any[1]: unknown metric 'amout'" in done.stderr


def test_validate_and_publish_refuse_a_tier_code_longer_than_the_store_keeps(loyalty, tmp_path):
    text = (ROOT / "rulesets" / "default.yaml").read_text()
    assert text.count("code: gold") == 1
    (tmp_path / "long.yaml").write_text(text.replace("code: gold", "code: " + "g" * 33))
    done = loyalty("ruleset", "validate", str(tmp_path / "long.yaml"), ok=False)
    assert "tiers[2].code: at most 32 characters, got 33" in done.stderr
    loyalty("migrate")
    done = loyalty("ruleset", "publish", str(tmp_path / "long.yaml"), "--effective-from", "2026-01-01", ok=False)
    assert "tiers[2].code: at most 32 characters, got 33" in done.stderr
    assert loyalty("ruleset", "show").stdout.strip() == "no ruleset has been published"


def test_publish_then_show_prints_the_version_in_force(published):
    shown = published("ruleset", "show").stdout
    assert shown.startswith("# version 1 (default)")
    assert '"fresh": "1.5"' in shown


def test_import_credits_growth_and_a_reimport_changes_nothing(published, tmp_path):
    (tmp_path / "orders.csv").write_text(ORDERS_CSV)
    first = published("import", "orders", str(tmp_path / "orders.csv")).stdout
    assert "imported 3 orders (0 already there), registered 2 members" in first
    # Saturday ¥400 with ¥100 fresh: 950; Monday ¥59.90: 59; Tuesday ¥120: 120.
    assert "growth 1,129" in first
    again = published("import", "orders", str(tmp_path / "orders.csv")).stdout
    assert "imported 0 orders (3 already there), registered 0 members, growth 0" in again
    alice = published("member", "show", "alice").stdout
    assert "growth 1,070" in alice


def test_a_bad_row_refuses_the_whole_file_with_its_line_number(published, tmp_path):
    bad = ORDERS_CSV + "o-4,carol,2026-10-07T10:00:00+08:00,12.345,pen,\n"
    (tmp_path / "bad.csv").write_text(bad)
    done = published("import", "orders", str(tmp_path / "bad.csv"), ok=False)
    assert "line 6: amount: more than two decimal places" in done.stderr
    refused = published("member", "show", "alice", ok=False)
    assert "unknown member" in refused.stderr


def test_member_show_names_what_the_next_tier_needs(published, tmp_path):
    (tmp_path / "orders.csv").write_text(ORDERS_CSV)
    published("import", "orders", str(tmp_path / "orders.csv"))
    shown = published("member", "show", "bob").stdout
    assert "tier 青铜 (bronze)" in shown
    assert "next tier 白银 (silver): met: upgrades at the next evaluation" in shown


def test_synthetic_demo_prints_tiers_issuance_refunds_and_repeat_rate(loyalty, tmp_path):
    done = loyalty("demo", "--synthetic", "40")
    for heading in ("Tier distribution at each month start", "Growth and points by source",
                    "Refunds reversed", "Repeat-purchase rate"):
        assert heading in done.stdout
    # It ends with the pages to open and the demo operator's login (the rest: test_demo_links.py).
    password = (tmp_path / "var" / "demo-operator.txt").read_text().strip()
    assert f"log in as demo-operator, password {password} (admin role" in done.stdout
    assert "http://127.0.0.1:8000/m/?token=mt_" in done.stdout and "http://127.0.0.1:8000/ops/" in done.stdout
    # The analytics run on the demo's database: the report, and a backtest of the ruleset in force
    # against itself, which moves nobody and costs the same.
    report = json.loads(loyalty("report", "--format", "json").stdout)
    assert report["metrics"]["repeat_purchase"]["buyers"] == 40
    same = json.loads(loyalty("simulate", "--ruleset", str(ROOT / "rulesets" / "default.yaml"), "--format",
                              "json").stdout)
    assert same["moved"]["members"] == 0 and same["months"]
    assert same["totals"]["baseline"] == same["totals"]["candidate"]
