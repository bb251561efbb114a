"""Benchmark 9: the monthly tier evaluation and the month-end cycle for 1,000,000 members, on SQLite
and on PostgreSQL (`python -m bench.lifecycle`; `--backend sqlite|postgresql` runs one).

The shop: MEMBERS members and about 1.5 orders each over the 14 months before `as_of` (2026-12-01
00:00 Asia/Shanghai), most members in the tier last month's evaluation gave them, tiers reached
over the past year (those reached 12 months ago expire at `as_of`), a points lot per buyer (some
expiring at `as_of`). Seeded with `executemany` (SQLite) or COPY (PostgreSQL); every timed run
starts from a copy of the seeded database (a file copy; `CREATE DATABASE ... TEMPLATE`).

Figures, each measured in a forked process of its own (for its peak memory):
1. `evaluate_tiers(as_of)`: the set-based job (it writes the changes, their log rows and events),
   in members per second, against
   a. a per-member loop through the ORM as the seeds' code does (per member: one aggregate query,
      the decision, a save when it changes), timed on SAMPLE members and scaled: target >= 50x;
   b. one hand-written UPDATE with a CASE over the same window totals that writes only the rows
      whose tier changes: the floor of what the database can do. Target: within 2x of it.
2. The month-end cycle, `run_due(now=as_of)` with every job's previous due moment done: the
   evaluation, points expiry, pending release and monthly grants. Target: under 60 s.
LOYALTY_BENCH_LIFECYCLE_MEMBERS sets a smaller shop for a quick look.
"""

from __future__ import annotations

import argparse
import hashlib
import multiprocessing
import os
import random
import resource
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from bench import harness, servers, workload

MEMBERS = int(os.environ.get("LOYALTY_BENCH_LIFECYCLE_MEMBERS", 1_000_000))
SAMPLE = min(50_000, MEMBERS)  # members the ORM loop is timed on
ORDERS_PER_MEMBER = 1.5
AS_OF = datetime(2026, 12, 1, tzinfo=workload.SHANGHAI)
LAST_MONTH = datetime(2026, 11, 1, tzinfo=workload.SHANGHAI)
HISTORY_FROM = datetime(2025, 10, 1, tzinfo=workload.SHANGHAI)
RUNS = 2
BUDGET = 240.0
TEMPLATE_DB = "loyalty_bench_lifecycle_seed"
RUN_DB = "loyalty_bench_lifecycle"
# The default ruleset, highest first: (tier, rank, orders, amount in fen, needs an invitation).
LADDER = (("black_gold", 5, 24, 1_200_000, True), ("diamond", 4, 12, 500_000, False),
          ("platinum", 3, 6, 200_000, False), ("gold", 2, 3, 80_000, False), ("silver", 1, 1, 20_000, False))
RANKS = {"bronze": 0, **{tier: rank for tier, rank, *_ in LADDER}}


# --- the shop ---------------------------------------------------------------------------------

def earned(orders: int, amount: int, invited: bool) -> str:
    return next((tier for tier, _, least, fen, needs in LADDER
                 if (orders >= least or amount >= fen) and (invited or not needs)), "bronze")


def window_totals(rows: list[tuple[int, datetime, int, int]], start: datetime, end: datetime
                  ) -> dict[int, tuple[int, int]]:
    totals: dict[int, list[int]] = {}
    for member, paid, fen, refunded in rows:
        if start <= paid < end:
            entry = totals.setdefault(member, [0, 0])
            entry[0] += 1 if fen > refunded else 0
            entry[1] += fen - refunded
    return {member: (orders, amount) for member, (orders, amount) in totals.items()}


def shop(rng: random.Random) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """(members, orders, lots) as column tuples with aware datetimes."""
    registered = datetime(2025, 1, 1, tzinfo=UTC)
    count = int(MEMBERS * ORDERS_PER_MEMBER)
    span = int((AS_OF - HISTORY_FROM).total_seconds())
    weights = [rng.paretovariate(1.2) for _ in range(MEMBERS)]
    buyers = rng.choices(range(1, MEMBERS + 1), weights=weights, k=count)
    orders, facts = [], []
    for index, member in enumerate(buyers):
        paid = HISTORY_FROM + timedelta(seconds=rng.randrange(span))
        fen = max(100, int(rng.lognormvariate(9.6, 1.0)))
        refunded = fen if rng.random() < 0.02 else 0
        facts.append((member, paid, fen, refunded))
        orders.append((f"t{index:08d}", member, paid.astimezone(UTC), paid.astimezone(workload.SHANGHAI).date(),
                       fen, refunded, fen // 100, 0, fen // 100, 0, 0, 1, "0" * 64, paid.astimezone(UTC)))
    last = window_totals(facts, LAST_MONTH.replace(year=LAST_MONTH.year - 1), LAST_MONTH)
    members = []
    for member in range(1, MEMBERS + 1):
        invited = rng.random() < 0.02
        orders_, amount = last.get(member, (0, 0))
        tier = earned(orders_, amount, invited)
        reached = expires = None
        if tier != "bronze":  # reached on some 1st of the past year; a twelfth expire at as_of
            months_ago = rng.randint(1, 12)
            reached = AS_OF.replace(year=2025, month=12) if months_ago == 12 else \
                datetime(2026, 12 - months_ago, 1, tzinfo=workload.SHANGHAI)
            expires = reached.replace(year=reached.year + 1)
        members.append((f"m{member:07d}", tier, reached, expires, invited, None, registered, 0, 0, 0, 0, 0, 0,
                        hashlib.sha256(str(member).encode()).hexdigest()[:64]))
    lots = []
    for member in sorted(set(buyers))[: MEMBERS // 2]:
        expires = AS_OF if rng.random() < 0.2 else AS_OF + timedelta(days=rng.randint(1, 365))
        points = rng.randint(10, 2000)
        lots.append((member, f"seed:{member}", "order", f"seed-{member}", points, points, HISTORY_FROM,
                     HISTORY_FROM, expires))
    return members, orders, lots


MEMBER_COLUMNS = ("external_id, tier, tier_reached_at, tier_expires_at, invited, birthday, registered_at, "
                  "growth_balance, points_balance, points_debt, orders_count, paid_fen, refunded_fen, payload_hash")
ORDER_COLUMNS = ("order_id, member_id, paid_at, business_date, amount_fen, refunded_fen, growth_base, growth_bonus, "
                 "points, growth_reversed, points_reversed, ruleset_version, payload_hash, recorded_at")
LOT_COLUMNS = "member_id, key, source, reference, points, remaining, earned_at, available_at, expires_at"


def sqlite_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return str(value.astimezone(UTC).replace(tzinfo=None))
    if isinstance(value, bool):
        return int(value)
    return value.isoformat() if hasattr(value, "isoformat") else value


def load_rows(backend: str, rows: dict[str, tuple[str, list[tuple[Any, ...]]]]) -> None:
    """Bulk-load the seed rows through Django's own connection (executemany / COPY)."""
    from django.db import connection, transaction

    with transaction.atomic():
        raw = connection.connection
        cursor = raw.cursor()
        for table, (columns, values) in rows.items():
            if backend == "postgresql":
                with cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                    for row in values:
                        copy.write_row(row)
            else:
                marks = ", ".join("?" * len(columns.split(",")))
                cursor.executemany(f"INSERT INTO {table} ({columns}) VALUES ({marks})",
                                   [tuple(sqlite_value(v) for v in row) for row in values])
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


# --- the timed sides --------------------------------------------------------------------------

def in_child(work: Callable[[], object]) -> tuple[float, int]:
    """Run `work` in a forked process: (seconds, that process's peak resident memory in MiB)."""
    from django.db import connections

    connections.close_all()
    context = multiprocessing.get_context("fork")
    receiver, sender = context.Pipe(duplex=False)

    def child() -> None:
        try:
            seconds = harness.timed(work)
        except BaseException:
            sender.send(traceback.format_exc())
            raise
        sender.send((seconds, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024))

    process = context.Process(target=child)
    process.start()
    outcome = receiver.recv()
    process.join()
    if isinstance(outcome, str) or process.exitcode:
        raise RuntimeError(f"the timed run failed (exit {process.exitcode}):\n{outcome}")
    return outcome  # type: ignore[no-any-return]


def orm_loop(limit: int) -> None:
    """The seeds' way: every member, one aggregate query, the decision, a save if it changed."""
    from django.db.models import Count, F, Q, Sum

    from loyalty.store.models import Member, Order

    start = AS_OF.replace(year=AS_OF.year - 1)
    for member in Member.objects.order_by("id")[:limit]:
        totals = Order.objects.filter(member=member, paid_at__gte=start, paid_at__lt=AS_OF).aggregate(
            orders=Count("id", filter=Q(amount_fen__gt=F("refunded_fen"))),
            amount=Sum(F("amount_fen") - F("refunded_fen")))
        tier = earned(totals["orders"] or 0, totals["amount"] or 0, member.invited)
        expired = member.tier_expires_at is not None and member.tier_expires_at <= AS_OF
        if RANKS[tier] > RANKS[member.tier] or (expired and tier != member.tier):
            member.tier = tier
            member.save(update_fields=["tier"])


def floor_update() -> None:
    """One UPDATE: window totals per member, the tier by CASE, written only where it changes."""
    from django.db import connection, transaction

    from loyalty.store import raw

    def rank(column: str) -> str:
        return "CASE " + " ".join(f"WHEN {column} = '{tier}' THEN {rank}" for tier, rank in RANKS.items()) + " END"

    earned_sql = "CASE " + " ".join(
        f"WHEN (COALESCE(t.orders, 0) >= {least} OR COALESCE(t.amount, 0) >= {fen})"
        f"{' AND m.invited' if needs else ''} THEN '{tier}'" for tier, _, least, fen, needs in LADDER) + \
        " ELSE 'bronze' END"
    totals = ("SELECT member_id, SUM(CASE WHEN amount_fen > refunded_fen THEN 1 ELSE 0 END) AS orders, "
              "SUM(amount_fen - refunded_fen) AS amount FROM orders WHERE paid_at >= %s AND paid_at < %s "
              "GROUP BY member_id")
    expired = "(m.tier_expires_at IS NOT NULL AND m.tier_expires_at <= %s)"
    sql = (f"UPDATE members SET tier = n.tier FROM (SELECT m.id, {earned_sql} AS tier, m.tier AS old, "
           f"{expired} AS expired FROM members m LEFT JOIN ({totals}) t ON t.member_id = m.id) n "
           f"WHERE members.id = n.id AND n.tier <> n.old AND ({rank('n.tier')} > {rank('n.old')} OR n.expired)")
    params = [raw.datetime_param(AS_OF), raw.datetime_param(AS_OF.replace(year=AS_OF.year - 1)),
              raw.datetime_param(AS_OF)]
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=("sqlite", "postgresql"))
    parser.add_argument("--runs", type=int, default=RUNS)
    args = parser.parse_args()
    if args.backend is None:
        for backend in ("sqlite", "postgresql"):
            subprocess.run([sys.executable, "-m", "bench.lifecycle", "--backend", backend, "--runs", str(args.runs)],
                           check=True)
        return
    Bench(args.backend, args.runs).run()


class Bench:
    def __init__(self, backend: str, runs: int):
        self.backend, self.runs = backend, runs
        self.name = f"lifecycle {backend}"
        self.server: servers.Server | None = None
        self.site: harness.Site | None = None

    def open(self) -> bool:
        if self.backend == "sqlite":
            self.site = harness.Site("lifecycle")
            harness.start_django(self.site)
            return True
        self.server = servers.open_or_skip(self.name, servers.POSTGRES_URL, RUN_DB)
        return self.server is not None

    def seed(self) -> None:
        """The shop, and every job's last due moment before `as_of` recorded as done: the cycle then
        runs exactly the month end's work."""
        started = time.perf_counter()
        harness.migrate_and_publish(workload.RULES_FROM)
        members, orders, lots = shop(random.Random(9))
        load_rows(self.backend, {"members": (MEMBER_COLUMNS, members), "orders": (ORDER_COLUMNS, orders),
                                 "points_lots": (LOT_COLUMNS, lots)})
        self.orders = len(orders)
        from loyalty.services.jobs import mark_done_before

        mark_done_before(AS_OF)
        if self.site is not None:
            harness.freeze(self.site)
        else:
            assert self.server is not None
            self.server.drop(TEMPLATE_DB)
            self._admin(f'CREATE DATABASE "{TEMPLATE_DB}" TEMPLATE "{RUN_DB}"')
        print(f"{self.name}: {MEMBERS:,} members, {self.orders:,} orders, {len(lots):,} points lots "
              f"(seeded in {time.perf_counter() - started:.0f} s)", flush=True)

    def _admin(self, sql: str) -> None:
        from django.db import connections

        assert self.server is not None
        connections.close_all()
        conn = self.server.connect(autocommit=True)
        try:
            conn.cursor().execute(sql)
        finally:
            conn.close()

    def fresh(self) -> None:
        """Back to the seeded state before a timed run."""
        if self.site is not None:
            harness.thaw(self.site)
            return
        assert self.server is not None
        self.server.drop(RUN_DB)
        self._admin(f'CREATE DATABASE "{RUN_DB}" TEMPLATE "{TEMPLATE_DB}"')

    def timed(self, work: Callable[[], object]) -> tuple[float, int]:
        self.fresh()
        return in_child(work)

    def run(self) -> None:
        if not self.open():
            return
        self.seed()
        from loyalty.clock import FixedClock
        from loyalty.services.tiers import evaluate_tiers

        clock = FixedClock(AS_OF)
        memory: dict[str, int] = {}

        def side(label: str, work: Callable[[], object]) -> Callable[[], float]:
            def go() -> float:
                seconds, peak = self.timed(work)
                memory[label] = max(memory.get(label, 0), peak)
                print(f"  {label}: {seconds:.2f} s, peak {peak} MiB", flush=True)
                return seconds
            return go

        def cycle() -> None:
            from loyalty.services.jobs import run_due

            report = run_due(AS_OF, clock=clock)
            assert not report.failed and not report.busy, report

        service, floor, loop, month = harness.alternate(
            self.runs, BUDGET, side("service", lambda: evaluate_tiers(AS_OF, clock=clock)),
            side("floor", floor_update), side("loop", lambda: orm_loop(SAMPLE)), side("cycle", cycle))
        per_second = [MEMBERS / s for s in service]
        loop_rate = [SAMPLE / s for s in loop]
        floor_rate = [MEMBERS / s for s in floor]
        notes = [f"peak memory (MiB): set-based {memory['service']}, floor {memory['floor']}, "
                 f"ORM loop {memory['loop']}, month-end cycle {memory['cycle']}",
                 f"seconds for {MEMBERS:,} members: set-based {harness.median(service):.2f}, floor "
                 f"{harness.median(floor):.2f}, ORM loop {MEMBERS / harness.median(loop_rate):,.0f} (scaled from "
                 f"{SAMPLE:,} members in {harness.median(loop):.1f} s)"]
        harness.Result(f"{self.name} vs ORM loop", f"monthly evaluation, {self.backend}", "members/s",
                       harness.median(per_second), harness.median(loop_rate), ">= 50 x the per-member ORM loop",
                       runs=per_second, baseline_runs=loop_rate, notes=notes).show()
        harness.Result(f"{self.name} vs UPDATE", f"monthly evaluation, {self.backend}", "members/s",
                       harness.median(per_second), harness.median(floor_rate),
                       ">= 0.5 x one hand-written UPDATE (within 2x)", runs=per_second,
                       baseline_runs=floor_rate).show()
        cycle_rate = [MEMBERS / s for s in month]
        harness.Result(f"{self.name} month end", f"month-end cycle, {self.backend}", "s",
                       harness.median(month), 60.0, "< 60 s for 1,000,000 members", higher_is_better=False,
                       runs=month, baseline_runs=[60.0],
                       notes=[f"{harness.median(cycle_rate):,.0f} members/s; peak {memory['cycle']} MiB"]).show()


if __name__ == "__main__":
    main()
