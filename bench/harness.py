"""The measuring harness: a Django process on a throwaway SQLite file, a fresh copy per run, medians.

A benchmark builds its starting database once (migrated, ruleset published, members seeded) and
`freeze`s it as a template; every timed run starts from a fresh copy (`thaw`), for the service
and for the stdlib-`sqlite3` baseline alike, so no run sees another's rows.
"""

from __future__ import annotations

import argparse
import atexit
import gc
import json
import os
import shutil
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

RESULT_PREFIX = "RESULT "
SKIP_PREFIX = "SKIP "  # a benchmark that cannot run here (its server does not answer) says why


class Site:
    """One benchmark's files: the live database Django uses, its template, the baseline's copy."""

    def __init__(self, name: str):
        self.dir = Path(tempfile.mkdtemp(prefix=f"loyalty-bench-{name}-"))
        self.live = self.dir / "live.sqlite3"
        self.template = self.dir / "template.sqlite3"
        self.baseline = self.dir / "baseline.sqlite3"
        atexit.register(shutil.rmtree, self.dir, True)

    @property
    def url(self) -> str:
        return f"sqlite:///{self.live}"


def start_django(site: Site) -> None:
    """Point Django at the site's live file and set it up (once per process: settings are read once)."""
    os.environ["LOYALTY_DATABASE_URL"] = site.url
    os.environ["DJANGO_SETTINGS_MODULE"] = "loyalty.settings"
    import django

    django.setup()


def migrate_and_publish(effective_from: datetime, preset: str = "default") -> None:
    from loyalty.services import rulesets
    from loyalty.store.setup import migrate

    migrate()
    rulesets.publish(rulesets.preset_document(preset), effective_from=effective_from, actor="bench")


def _remove(path: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def copy_database(source: Path, target: Path) -> None:
    """Copy a closed, checkpointed SQLite file (no -wal left behind) over `target`."""
    _remove(target)
    shutil.copyfile(source, target)


def checkpoint(path: Path) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


def freeze(site: Site) -> None:
    """Save the live database as the template every run starts from."""
    from django.db import connection

    connection.close()
    checkpoint(site.live)
    copy_database(site.live, site.template)


def thaw(site: Site) -> None:
    """Replace the live database with a fresh copy of the template (Django reconnects on use)."""
    from django.db import connection

    connection.close()
    copy_database(site.template, site.live)


def raw_connect(path: Path) -> sqlite3.Connection:
    """A stdlib connection set up as the Django one is: WAL, synchronous=NORMAL, foreign keys on.
    Autocommit (isolation_level=None) so the baseline says BEGIN IMMEDIATE / COMMIT itself."""
    conn = sqlite3.connect(path, isolation_level=None, timeout=30)
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA cache_size=-65536")
    return conn


def fresh_baseline(site: Site) -> sqlite3.Connection:
    """A fresh copy of the template for the baseline: the same tables, indexes and seed rows."""
    copy_database(site.template, site.baseline)
    return raw_connect(site.baseline)


def timed(work: Callable[[], object]) -> float:
    gc.collect()
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


@dataclass
class Result:
    """One benchmark's figure and its baseline, both medians; `ratio` is service ÷ baseline speed."""

    bench: str
    figure: str
    unit: str
    value: float
    baseline: float
    target: str
    higher_is_better: bool = True
    runs: list[float] = field(default_factory=list)
    baseline_runs: list[float] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ratio(self) -> float:
        if self.higher_is_better:
            return self.value / self.baseline if self.baseline else float("nan")
        return self.baseline / self.value if self.value else float("nan")

    def show(self) -> None:
        print(f"  {self.figure}: {self.value:,.2f} {self.unit} (median of {len(self.runs)}: "
              f"{', '.join(f'{v:,.2f}' for v in self.runs)})")
        print(f"  baseline: {self.baseline:,.2f} {self.unit} (median of {len(self.baseline_runs)}: "
              f"{', '.join(f'{v:,.2f}' for v in self.baseline_runs)})")
        print(f"  ratio (service speed / baseline speed): {self.ratio:.3f}   target: {self.target}")
        for note in self.notes:
            print(f"  note: {note}")
        print(RESULT_PREFIX + json.dumps({**asdict(self), "ratio": self.ratio}, ensure_ascii=False), flush=True)


def median(values: list[float]) -> float:
    return statistics.median(values)


def alternate(runs: int, budget: float, *sides: Callable[[], float]) -> list[list[float]]:
    """Run the sides in turn, `runs` rounds, so drift in the machine hits every side alike; stop
    early (after at least one round) when another round would overrun `budget` seconds."""
    results: list[list[float]] = [[] for _ in sides]
    start = time.perf_counter()
    for done in range(runs):
        spent = time.perf_counter() - start
        if done and spent + spent / done > budget:
            break
        for side, values in zip(sides, results, strict=True):
            values.append(side())
    return results


def arguments(description: str, runs: int, budget: float, switches: dict[str, str] | None = None
              ) -> argparse.Namespace:
    """--runs and --budget, plus on/off `switches` ({"--cli": "help"})."""
    parser = argparse.ArgumentParser(description=description,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    for flag, text in (switches or {}).items():
        parser.add_argument(flag, action="store_true", help=text)
    parser.add_argument("--runs", type=int, default=runs, help=f"timed rounds at most (default {runs})")
    parser.add_argument("--budget", type=float, default=budget,
                        help=f"seconds of timed rounds before stopping early (default {budget:.0f})")
    return parser.parse_args()
