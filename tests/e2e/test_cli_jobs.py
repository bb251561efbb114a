"""`loyalty jobs run-due` and `loyalty jobs list` end to end: real subprocesses on a fresh SQLite file."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.cli import cli_on

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def cli(tmp_path: Path):
    """Run `loyalty ARGS` on this test's own database file; checks the exit code."""
    return cli_on(tmp_path, "jobs.sqlite3")


@pytest.fixture
def loyalty(cli):
    cli("migrate")
    cli("ruleset", "publish", str(ROOT / "rulesets" / "default.yaml"), "--effective-from", "2026-01-01")
    return cli


def lines_of(job: str, output: str) -> list[str]:
    return [line for line in output.splitlines() if f"  {job}  " in line]


def test_run_due_prints_a_line_per_run_and_catches_up_once(loyalty):
    first = loyalty("jobs", "run-due", "--now", "2026-03-05T10:00:00+08:00").stdout
    assert lines_of("tier_evaluation", first) == ["2026-03-01T00:00:00+08:00  tier_evaluation  done  members=0"]
    assert lines_of("points_expiry", first) == ["2026-03-05T00:00:00+08:00  points_expiry  done  lots=0 points=0"]
    later = loyalty("jobs", "run-due", "--now", "2026-04-01T00:00:00+08:00").stdout
    assert [line.split()[0] for line in lines_of("points_expiry", later)] == [
        f"2026-03-{day:02d}T00:00:00+08:00" for day in range(6, 32)] + ["2026-04-01T00:00:00+08:00"]
    assert [line.split()[0] for line in lines_of("tier_evaluation", later)] == ["2026-04-01T00:00:00+08:00"]
    assert loyalty("jobs", "run-due", "--now", "2026-04-01T00:00:00+08:00").stdout == "nothing is due\n"


def test_dry_run_shows_what_would_run_and_records_nothing(loyalty):
    preview = loyalty("jobs", "run-due", "--now", "2026-03-05T10:00:00+08:00", "--dry-run").stdout
    assert "2026-03-01T00:00:00+08:00  tier_evaluation  would run  members=0" in preview
    assert "  done" not in preview
    listed = loyalty("jobs", "list", "--now", "2026-03-05T10:00:00+08:00").stdout
    assert "tier_evaluation: monthly on day 1 at 00:00 Asia/Shanghai; last run never; pending 1; " \
           "next due 2026-04-01T00:00:00+08:00" in listed
    loyalty("jobs", "run-due", "--now", "2026-03-05T10:00:00+08:00")
    listed = loyalty("jobs", "list", "--now", "2026-03-05T10:00:00+08:00").stdout
    assert "points_expiry: daily at 00:00 Asia/Shanghai; last run 2026-03-05T00:00:00+08:00 done; pending 0; " \
           "next due 2026-03-06T00:00:00+08:00" in listed


@pytest.mark.parametrize(("now", "message"), [
    ("2026-03-05T10:00:00", "argument --now: '2026-03-05T10:00:00' has no UTC offset"),
    ("yesterday", "argument --now: not an ISO 8601 time: 'yesterday'"),
    ("2026-02-30T00:00:00+08:00", "argument --now: not an ISO 8601 time"),
])
def test_a_bad_now_is_refused_naming_the_flag(cli, now, message):
    done = cli("jobs", "run-due", "--now", now, code=2)
    assert message in done.stderr
    assert done.stdout == ""
