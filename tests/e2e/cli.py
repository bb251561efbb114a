"""`loyalty ARGS` as an operator runs it: a real subprocess on the test's own SQLite file."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

Runner = Callable[..., subprocess.CompletedProcess[str]]


def cli_on(tmp_path: Path, database: str) -> Runner:
    """A runner of `loyalty ARGS` on `tmp_path/database` that checks the exit code (`code=`)."""
    env = {**os.environ, "LOYALTY_DATABASE_URL": f"sqlite:///{tmp_path / database}"}
    env.pop("DJANGO_SETTINGS_MODULE", None)

    def run(*args: str, code: int = 0) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([sys.executable, "-m", "loyalty.cli", *args], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == code, done.stdout + done.stderr
        return done

    return run


def shop_on(directory: Path, database: str, orders_csv: str | None = None, *,
            effective_from: str = "2026-01-01") -> Runner:
    """A fresh database under the default ruleset (in force from `effective_from`), with the
    orders of `orders_csv` imported when given; answers its runner."""
    run = cli_on(directory, database)
    run("migrate")
    root = Path(__file__).resolve().parents[2]
    run("ruleset", "publish", str(root / "rulesets" / "default.yaml"), "--effective-from", effective_from)
    if orders_csv is not None:
        (directory / "orders.csv").write_text(orders_csv)
        run("import", "orders", str(directory / "orders.csv"))
    return run
