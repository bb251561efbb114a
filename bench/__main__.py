"""`python -m bench [NAME ...]`: run the benchmarks, each in its own process, then a summary table.

Each benchmark needs its own process because Django reads its settings (the database URL) once.
A benchmark may report several results (one per client count); one whose server does not answer
says why and is skipped, which does not fail the run.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from bench.harness import RESULT_PREFIX, SKIP_PREFIX

BENCHMARKS = ("record_order", "ingest", "cdnow", "tiers", "pg_record_order", "pg_ingest", "mariadb", "api_load",
              "lifecycle", "analytics_metrics", "backtest")
ROOT = Path(__file__).resolve().parent.parent


def run(name: str) -> tuple[list[dict[str, object]], str | None]:
    """The benchmark's results, and why it was skipped (None when it was not)."""
    print(f"== {name}", flush=True)
    start = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", f"bench.{name}"], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    results: list[dict[str, object]] = []
    skipped = None
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith(RESULT_PREFIX):
            results.append(json.loads(line[len(RESULT_PREFIX):]))
        else:
            if line.startswith(SKIP_PREFIX):
                skipped = line[len(SKIP_PREFIX):].strip().removeprefix(f"{name}: ")
                line = f"  skipped: {skipped}\n"
            print(line, end="", flush=True)
    if process.wait() != 0:
        print(f"   {name} failed (exit {process.returncode})", flush=True)
        results, skipped = [], None
    print(f"   ({time.perf_counter() - start:.0f} s)\n", flush=True)
    return results, skipped


def main(argv: list[str]) -> int:
    names = argv or list(BENCHMARKS)
    unknown = [name for name in names if name not in BENCHMARKS]
    if unknown:
        print(f"unknown benchmark {unknown[0]!r}; choose from {', '.join(BENCHMARKS)}", file=sys.stderr)
        return 2
    start = time.perf_counter()
    results: list[dict[str, object]] = []
    skipped: dict[str, str] = {}
    failed = []
    for name in names:
        found, reason = run(name)
        results += found
        if reason is not None:
            skipped[name] = reason
        elif not found:
            failed.append(name)
    print(f"{'benchmark':<22}{'figure':>20}{'baseline':>20}{'ratio':>8}  target")
    for r in results:
        figure, base = (f"{r[key]:,.2f} {r['unit']}" for key in ("value", "baseline"))
        print(f"{r['bench']:<22}{figure:>20}{base:>20}{r['ratio']:>8.3f}  {r['target']}")
    for name, reason in skipped.items():
        print(f"{name:<22}skipped: {reason}")
    for name in failed:
        print(f"{name:<22}FAILED")
    print(f"total {time.perf_counter() - start:.0f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
