"""`loyalty jobs run-due`, SIGKILLed at random points and run again, ends in exactly the state of
a run that was never interrupted; two at once end there too.

Real subprocesses on a real database: a SQLite file (under the SQLite run) or a scratch
PostgreSQL database (under LOYALTY_DATABASE_URL=postgresql://...). A shop with a year of
history (`jobs_shop.py`) is built once and copied for every run; the run under test catches up
on three months (evaluations, expiries, grants, birthdays, warnings: about 4,000 statements).
Kill points are statement numbers drawn from a seeded random, so a failure reproduces; one more
kill comes after a random delay, into the plain `loyalty` command.

The comparison is of every row of every table, except what may differ by design: job_runs'
timing and attempts, outbox event ids (random by design; compared through their unique key),
and on PostgreSQL the surrogate `id` columns (sequences are not transactional: a rolled-back
insert still uses up its id), where rows are compared by all their other columns.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

from tests.integration.jobs_shop import TESTED_NOW

ROOT = Path(__file__).resolve().parents[2]
KILL_AFTER = Path(__file__).with_name("kill_after.py")
SEED = 20270503
VENDOR = settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1]
TIMING = {"started_at", "finished_at", "attempts"}

pytestmark = pytest.mark.skipif(VENDOR not in ("sqlite3", "postgresql"),
                                reason="copies a database per run: a file on SQLite, a template on PostgreSQL")


class SqliteFiles:
    def __init__(self, directory: Path):
        self.directory = directory

    def url(self, name: str) -> str:
        return f"sqlite:///{self.directory / name}.sqlite3"

    def copy(self, source: str, target: str) -> None:
        with sqlite3.connect(self.directory / f"{source}.sqlite3") as src, \
                sqlite3.connect(self.directory / f"{target}.sqlite3") as dst:
            src.backup(dst)

    def state(self, name: str) -> dict[str, list[tuple[Any, ...]]]:
        with sqlite3.connect(self.directory / f"{name}.sqlite3") as db:
            tables = [t for (t,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
            return {table: _rows(db.execute(f'SELECT * FROM "{table}"'), table, keep_ids=True) for table in tables}

    def drop_all(self) -> None:
        pass


class PostgresDatabases:
    """Scratch databases on the configured server; a copy is `CREATE DATABASE ... TEMPLATE`."""

    def __init__(self) -> None:
        import psycopg

        self.server = settings.DATABASES["default"]
        self.prefix = f"jobs_crash_{uuid.uuid4().hex[:8]}"
        self.admin = psycopg.connect(**self._params("postgres"), autocommit=True)
        self.made: list[str] = []

    def _params(self, database: str) -> dict[str, Any]:
        return {"host": self.server["HOST"] or "127.0.0.1", "port": self.server["PORT"] or 5432,
                "user": self.server["USER"], "password": self.server["PASSWORD"] or None, "dbname": database}

    def url(self, name: str) -> str:
        if f"{self.prefix}_{name}" not in self.made:
            self._create(name, None)
        params = self._params(f"{self.prefix}_{name}")
        auth = params["user"] + (f":{params['password']}" if params["password"] else "")
        return f"postgresql://{auth}@{params['host']}:{params['port']}/{params['dbname']}"

    def _create(self, name: str, template: str | None) -> None:
        clause = f" TEMPLATE {self.prefix}_{template}" if template else ""
        self.admin.execute(f"CREATE DATABASE {self.prefix}_{name}{clause}")
        self.made.append(f"{self.prefix}_{name}")

    def copy(self, source: str, target: str) -> None:
        self._create(target, source)

    def state(self, name: str) -> dict[str, list[tuple[Any, ...]]]:
        import psycopg

        with psycopg.connect(**self._params(f"{self.prefix}_{name}")) as db:
            tables = [t for (t,) in db.execute("SELECT table_name FROM information_schema.tables "
                                                "WHERE table_schema = 'public' ORDER BY table_name")]
            return {table: _rows(db.execute(f'SELECT * FROM "{table}"'), table, keep_ids=False) for table in tables}

    def drop_all(self) -> None:
        for database in reversed(self.made):
            self.admin.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
        self.admin.close()


def _rows(cursor: Any, table: str, *, keep_ids: bool) -> list[tuple[Any, ...]]:
    columns = [c[0] for c in cursor.description]
    skip = {"id"} if not keep_ids else set()
    if table == "job_runs":
        skip |= TIMING
    kept = [i for i, column in enumerate(columns) if column not in skip]
    rows = [tuple((columns[i], row[i]) for i in kept) for row in cursor.fetchall()]
    return sorted(rows, key=repr)


def comparable(state: dict[str, list[tuple[Any, ...]]]) -> dict[str, list[tuple[Any, ...]]]:
    """Outbox event ids are random (`evt_…`): each becomes its event's unique key, wherever it appears."""
    names = {}
    for row in state.get("outbox_events", []):
        fields = dict(row)
        names[fields["event_id"]] = f"<event {fields['key']}>"
    pattern = re.compile("|".join(map(re.escape, names))) if names else None

    def plain(value: Any) -> Any:
        return pattern.sub(lambda m: names[m.group(0)], value) if pattern and isinstance(value, str) else value

    return {table: sorted((tuple((c, plain(v)) for c, v in row) for row in rows), key=repr)
            for table, rows in state.items()}


@pytest.fixture(scope="module")
def databases(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SqliteFiles | PostgresDatabases]:
    found: SqliteFiles | PostgresDatabases = (
        SqliteFiles(tmp_path_factory.mktemp("jobs_crash")) if VENDOR == "sqlite3" else PostgresDatabases())
    try:
        env = {**os.environ, "LOYALTY_DATABASE_URL": found.url("seed")}
        env.pop("DJANGO_SETTINGS_MODULE", None)
        subprocess.run([sys.executable, "-m", "tests.integration.jobs_shop"], cwd=ROOT, env=env, check=True,
                       capture_output=True, timeout=300)
        yield found
    finally:
        found.drop_all()


def loyalty(databases: SqliteFiles | PostgresDatabases, name: str, *args: str,
            kill_at: int | None = None) -> subprocess.CompletedProcess[str]:
    """`loyalty jobs run-due --now TESTED_NOW` on database `name`; through the kill harness when
    `kill_at` is given (0: count the statements, never kill)."""
    env = {**os.environ, "LOYALTY_DATABASE_URL": databases.url(name)}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    command = ["jobs", "run-due", "--now", TESTED_NOW, *args]
    program = [sys.executable, str(KILL_AFTER), str(kill_at)] if kill_at is not None else [_loyalty_script()]
    return subprocess.run([*program, *command], env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)


def _loyalty_script() -> str:
    return shutil.which("loyalty", path=str(Path(sys.executable).parent)) or "loyalty"


@pytest.fixture(scope="module")
def reference(databases: SqliteFiles | PostgresDatabases) -> tuple[int, float, dict[str, list[tuple[Any, ...]]]]:
    """The run never interrupted: its statement count, how long it took, and its end state."""
    databases.copy("seed", "reference")
    started = time.monotonic()
    done = loyalty(databases, "reference", kill_at=0)
    duration = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    statements = int(re.search(r"statements: (\d+)", done.stderr)[1])  # type: ignore[index]
    assert done.stdout.count(" done ") > 300  # three months of catching up
    return statements, duration, comparable(databases.state("reference"))


def test_runs_killed_at_random_statements_then_run_again_end_as_the_uninterrupted_run(databases, reference):
    statements, _, expected = reference
    rng = random.Random(SEED)
    # Fewer on PostgreSQL, where every run and every database copy costs several times more.
    scenarios = [[rng.randint(1, statements)] for _ in range(3 if VENDOR == "sqlite3" else 1)]
    scenarios.append(sorted((rng.randint(1, statements) for _ in range(3)), reverse=True))  # killed thrice
    for number, kills in enumerate(scenarios):
        name = f"killed{number}"
        databases.copy("seed", name)
        outcomes = []
        for kill_at in kills:
            run = loyalty(databases, name, kill_at=kill_at)
            assert run.returncode in (0, -signal.SIGKILL), run.stderr
            outcomes.append(run.returncode)
        assert outcomes[0] == -signal.SIGKILL  # the first kill point always lies within the run
        final = loyalty(databases, name, kill_at=0)
        assert final.returncode == 0, final.stderr
        assert comparable(databases.state(name)) == expected, f"killed at statements {kills} (seed {SEED})"


def test_a_run_killed_after_a_random_delay_then_run_again_ends_as_the_uninterrupted_run(databases, reference):
    _, duration, expected = reference
    delay = random.Random(SEED + 1).uniform(0.4 * duration, 0.9 * duration)
    databases.copy("seed", "timed")
    process = _start(databases, "timed")
    time.sleep(delay)
    process.send_signal(signal.SIGKILL)
    out, _ = process.communicate(timeout=60)
    again = loyalty(databases, "timed")
    assert again.returncode == 0, again.stderr
    assert comparable(databases.state("timed")) == expected, f"killed after {delay:.2f} s; it printed:\n{out}"


def test_two_runs_at_once_run_each_due_moment_once_and_end_as_one_run(databases, reference):
    _, _, expected = reference
    databases.copy("seed", "twice")
    processes = [_start(databases, "twice") for _ in range(2)]
    outputs = [process.communicate(timeout=120) for process in processes]
    assert [process.returncode for process in processes] == [0, 0], outputs
    done = Counter(tuple(line.split()[:2]) for out, _ in outputs for line in out.splitlines() if " done" in line)
    assert done and set(done.values()) == {1}
    idle = [out for out, _ in outputs if "is running: nothing done" in out or out.strip() == "nothing is due"]
    assert len(idle) == 1, outputs  # the lock let one run; the other found it busy, or everything done
    assert comparable(databases.state("twice")) == expected


def _start(databases: SqliteFiles | PostgresDatabases, name: str) -> subprocess.Popen[str]:
    """The plain `loyalty jobs run-due --now TESTED_NOW`, started and left running."""
    env = {**os.environ, "LOYALTY_DATABASE_URL": databases.url(name)}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    return subprocess.Popen([_loyalty_script(), "jobs", "run-due", "--now", TESTED_NOW], env=env, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
