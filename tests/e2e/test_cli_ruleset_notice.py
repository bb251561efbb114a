"""`loyalty ruleset publish` and the notice period, end to end on a fresh SQLite file: a stricter
version too soon is refused, `--force` needs `--reason`, and with both it is published."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from loyalty.clock import system_clock

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def loyalty(tmp_path: Path):
    env = {**os.environ, "LOYALTY_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.sqlite3'}"}
    env.pop("DJANGO_SETTINGS_MODULE", None)

    def run(*args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([sys.executable, "-m", "loyalty.cli", *args], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=300)
        assert (done.returncode == 0) is ok, done.stdout + done.stderr
        return done

    run("migrate")
    run("ruleset", "publish", str(ROOT / "rulesets" / "default.yaml"), "--effective-from", "2026-01-01")
    return run


@pytest.fixture
def stricter(tmp_path: Path) -> str:
    """The default ruleset with gold at ¥1,000 instead of ¥800."""
    text = (ROOT / "rulesets" / "default.yaml").read_text()
    assert text.count('{amount: ">= 800"}') == 1
    path = tmp_path / "stricter.yaml"
    path.write_text(text.replace('{amount: ">= 800"}', '{amount: ">= 1000"}'))
    return str(path)


def days_ahead(days: int) -> str:
    return (system_clock.now() + timedelta(days=days)).date().isoformat()


def test_a_stricter_version_too_soon_is_refused_and_forced_with_a_reason(loyalty, stricter):
    refused = loyalty("ruleset", "publish", stricter, "--effective-from", days_ahead(30), ok=False)
    assert "error [notice_period]" in refused.stderr and "tier gold" in refused.stderr
    unexplained = loyalty("ruleset", "publish", stricter, "--effective-from", days_ahead(30), "--force", ok=False)
    assert "error [invalid_input]" in unexplained.stderr and "reason" in unexplained.stderr
    assert loyalty("ruleset", "show").stdout.startswith("# version 1 ")
    forced = loyalty("ruleset", "publish", stricter, "--effective-from", days_ahead(30), "--force",
                     "--reason", "agreed with the board")
    assert "as version 2" in forced.stdout


def test_a_stricter_version_with_the_full_notice_needs_no_force(loyalty, stricter):
    assert "as version 2" in loyalty("ruleset", "publish", stricter, "--effective-from", days_ahead(92)).stdout
