"""`loyalty report churn` end to end: orders imported into a fresh SQLite file, the models fitted on
them by a real subprocess, the list compared with the same models run on the same purchases in memory."""

from __future__ import annotations

import csv
import io
import json
from datetime import date, datetime, time
from pathlib import Path

import pytest

from loyalty.analytics import clv
from tests.analytics.clv_shop import SHANGHAI, shop
from tests.e2e.cli import cli_on

ROOT = Path(__file__).resolve().parents[2]
AS_OF = "2026-06-30"  # its end in Shanghai: 23:59:59.999999+08:00


@pytest.fixture(scope="module")
def purchases():
    return shop()


def _published(directory: Path):
    run = cli_on(directory, "churn.sqlite3")
    run("migrate")
    run("ruleset", "publish", str(ROOT / "rulesets" / "default.yaml"), "--effective-from", "2025-01-01")
    return run


@pytest.fixture(scope="module")
def shop_db(purchases, tmp_path_factory):
    """The drawn shop's purchases imported as orders (one per purchase), once for the module: the
    tests only read."""
    directory = tmp_path_factory.mktemp("churn")
    run = _published(directory)
    lines = ["order_id,member,paid_at,amount"]
    for number, row in enumerate(purchases.itertuples(index=False)):
        paid_at = row.at.tz_convert(SHANGHAI).isoformat()
        lines.append(f"o-{number},{row.member},{paid_at},{row.amount_fen // 100}.{row.amount_fen % 100:02d}")
    (directory / "orders.csv").write_text("\n".join(lines) + "\n")
    run("import", "orders", str(directory / "orders.csv"))
    return run


def test_the_churn_list_from_the_database_is_the_models_list_on_the_same_purchases(shop_db, purchases, tmp_path):
    model, expected = clv.churn_risk_list(purchases, as_of=datetime.combine(date(2026, 6, 30), time.max, SHANGHAI))
    assert expected, "the drawn shop has members at risk"
    as_csv = shop_db("report", "churn", "--as-of", AS_OF).stdout
    rows = list(csv.DictReader(io.StringIO(as_csv)))
    assert as_csv.splitlines()[0] == ",".join(clv.CHURN_COLUMNS)
    assert rows == [{k: str(v) for k, v in risk.as_dict().items()} for risk in expected]
    values = [int(row["value_at_risk_fen"]) for row in rows]
    assert values == sorted(values, reverse=True)

    shop_db("report", "churn", "--as-of", AS_OF, "--format", "json", "--output", str(tmp_path / "churn.json"))
    answer = json.loads((tmp_path / "churn.json").read_text())
    assert {k: answer[k] for k in ("report", "as_of", "timezone", "horizon_days", "threshold", "unit")} == {
        "report": "churn_risk", "as_of": "2026-06-30T23:59:59.999999+08:00", "timezone": "Asia/Shanghai",
        "horizon_days": 90, "threshold": "0.5000", "unit": "fen"}
    assert answer["model"] == clv.model_as_json(model)
    assert answer["rows"] == [risk.as_dict() for risk in expected]


def test_a_lower_threshold_lists_fewer_members(shop_db):
    everyone = shop_db("report", "churn", "--as-of", AS_OF).stdout.splitlines()
    fewer = shop_db("report", "churn", "--as-of", AS_OF, "--threshold", "0.05", "--horizon", "30").stdout.splitlines()
    assert 1 < len(fewer) < len(everyone)
    assert all(float(line.split(",")[1]) < 0.05 for line in fewer[1:])


def test_a_shop_without_enough_repeat_buyers_or_a_bad_threshold_is_refused(tmp_path):
    publish = _published(tmp_path)
    done = publish("report", "churn", "--as-of", AS_OF, code=1)
    assert "error [too_few_repeat_buyers]: the customer-base models need at least 20 members" in done.stderr
    assert "must be above 0 and at most 1" in publish("report", "churn", "--threshold", "1.5", code=2).stderr
