"""`python -m bench.hotspots [record_order|import|tiers] [--top N] [--save DIR]`: cProfile the service
paths on the benchmarks' data and print where the time goes. Not part of `make bench`; times under
the profiler are inflated, so read the shares, not the seconds.

  record_order  1,000 orders, one transaction each (benchmark 1's data)
  import        the first 20,000 CDNOW orders: CSV -> parse_rows -> import_orders (benchmark 3's path)
  tiers         evaluate_tiers over 100,000 members and 300,000 orders (benchmark 4's data)
"""

from __future__ import annotations

import argparse
import cProfile
import csv
import io
import pstats
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from bench import cdnow, harness, tiers, workload

TARGETS = ("record_order", "import", "tiers")
IMPORT_ORDERS = 20_000


def prepare_record_order(site: harness.Site) -> Callable[[], object]:
    from loyalty.clock import FixedClock
    from loyalty.domain.events import parse_order
    from loyalty.services.orders import record_order

    members = workload.member_names(300)
    workload.seed_shop(members)
    events = [parse_order(doc) for doc in workload.order_documents(1000, members, seed=1)]
    clock = FixedClock(workload.NOW)

    def work() -> None:
        for event in events:
            record_order(event, clock=clock)

    return work


def prepare_import(site: harness.Site) -> Callable[[], object]:
    from loyalty.clock import FixedClock
    from loyalty.services.imports import import_orders, parse_rows

    harness.migrate_and_publish(cdnow.CDNOW_FROM)
    path = site.dir / "cdnow.csv"
    cdnow.write_csv(path)
    text = "".join(path.read_text("utf-8").splitlines(keepends=True)[:IMPORT_ORDERS + 1])
    clock = FixedClock(workload.NOW)

    def work() -> None:
        events = parse_rows((index + 2, row) for index, row in enumerate(csv.DictReader(io.StringIO(text))))
        import_orders(events, clock=clock)

    return work


def prepare_tiers(site: harness.Site) -> Callable[[], object]:
    from django.db import connection

    from loyalty.clock import FixedClock
    from loyalty.services.tiers import evaluate_tiers

    harness.migrate_and_publish(workload.RULES_FROM)
    connection.close()
    tiers.seed(site.live)
    return lambda: evaluate_tiers(tiers.AS_OF, clock=FixedClock(tiers.AS_OF))


def profile(target: str, top: int, save: Path | None) -> None:
    site = harness.Site(f"hotspots-{target}")
    harness.start_django(site)
    from loyalty.services import rulesets

    work = {"record_order": prepare_record_order, "import": prepare_import, "tiers": prepare_tiers}[target](site)
    rulesets.in_force(workload.NOW)
    profiler = cProfile.Profile()
    profiler.runcall(work)
    if save:
        save.mkdir(parents=True, exist_ok=True)
        profiler.dump_stats(save / f"{target}.prof")
    stats = pstats.Stats(profiler, stream=sys.stdout).strip_dirs()
    print(f"== {target}: own time (tottime)")
    stats.sort_stats("tottime").print_stats(top)
    print(f"== {target}: loyalty code by cumulative time")
    stats.sort_stats("cumulative").print_stats(r"loyalty|bulk|ledger|orders|imports|tiers|rulesets", top)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("targets", nargs="*", metavar="TARGET", help=f"any of {', '.join(TARGETS)} (default: all)")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--save", type=Path, help="also write TARGET.prof files here (for snakeviz, pstats)")
    args = parser.parse_args()
    if unknown := [target for target in args.targets if target not in TARGETS]:
        parser.error(f"unknown target {unknown[0]!r}")
    if len(args.targets) == 1:
        profile(args.targets[0], args.top, args.save)
        return 0
    extra = ["--top", str(args.top), *(["--save", str(args.save)] if args.save else [])]
    for target in args.targets or TARGETS:  # one process each: Django reads its settings once
        subprocess.run([sys.executable, "-m", "bench.hotspots", target, *extra], check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
