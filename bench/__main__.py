"""`python -m bench [NAME ...]`: run the benchmarks, each in its own process, then a summary table.

Each benchmark needs its own process because Django reads its settings (the database URL) once.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from bench.harness import RESULT_PREFIX

BENCHMARKS = ("record_order", "ingest", "cdnow", "tiers")
ROOT = Path(__file__).resolve().parent.parent


def run(name: str) -> dict[str, object] | None:
    print(f"== {name}", flush=True)
    start = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", f"bench.{name}"], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    result = None
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith(RESULT_PREFIX):
            result = json.loads(line[len(RESULT_PREFIX):])
        else:
            print(line, end="", flush=True)
    if process.wait() != 0:
        print(f"   {name} failed (exit {process.returncode})", flush=True)
    print(f"   ({time.perf_counter() - start:.0f} s)\n", flush=True)
    return result


def main(argv: list[str]) -> int:
    names = argv or list(BENCHMARKS)
    unknown = [name for name in names if name not in BENCHMARKS]
    if unknown:
        print(f"unknown benchmark {unknown[0]!r}; choose from {', '.join(BENCHMARKS)}", file=sys.stderr)
        return 2
    start = time.perf_counter()
    results = [result for name in names if (result := run(name)) is not None]
    print(f"{'benchmark':<14}{'figure':>20}{'baseline':>20}{'ratio':>8}  target")
    for r in results:
        figure, base = (f"{r[key]:,.2f} {r['unit']}" for key in ("value", "baseline"))
        print(f"{r['bench']:<14}{figure:>20}{base:>20}{r['ratio']:>8.3f}  {r['target']}")
    print(f"total {time.perf_counter() - start:.0f} s")
    return 0 if len(results) == len(names) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
