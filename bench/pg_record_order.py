"""Benchmark 5: `record_order` on PostgreSQL, one transaction per order, with 1, 4 and 8 concurrent
clients, against pgbench's built-in TPC-B-like script at the same client counts in the same run.

Each client is a forked process (as a deployment runs one worker process per client) with its
own Django connection, and records its own share of distinct
orders for its own members (8 member groups dealt out to the clients, so every client count
records the same orders and no two clients touch one member). Every service run starts from
the seeded state. Baseline: `pgbench -i -s 10` into a scratch database, then `pgbench -c N -j N
-T SECONDS -n` (five statements per transaction: 3 UPDATEs, a SELECT, an INSERT).

Figure: orders (transactions) per second. Target: service >= 0.3 x pgbench tps at each count.
"""

from __future__ import annotations

import os
import re
import subprocess
from typing import Any

from bench import harness, servers, workload

CLIENTS = (1, 4, 8)
GROUPS = 8
MEMBERS_PER_GROUP = 40
ORDERS_PER_GROUP = 60  # 480 orders per run
RUNS = 3
BUDGET = 55.0
PGBENCH_SECONDS = 3  # per pgbench run; LOYALTY_BENCH_PGBENCH_SECONDS=10 for pgbench's usual length
DATABASE = "loyalty_bench_pg_record"
PGBENCH_DATABASE = "loyalty_bench_pgbench"
PGBENCH = "/usr/bin/pgbench"


class PgBench:
    def __init__(self, server: servers.Server, seconds: int):
        self.server, self.seconds = server, seconds
        self.env = {"PATH": "/usr/bin:/bin"} | ({"PGPASSWORD": server.password} if server.password else {})
        self.common = ["-h", server.host, "-p", str(server.port), "-U", server.user]

    def init(self) -> None:
        self.server.create(PGBENCH_DATABASE)
        subprocess.run([PGBENCH, *self.common, "-i", "-s", "10", "-q", PGBENCH_DATABASE],
                       check=True, capture_output=True, text=True, env=self.env)

    def tps(self, clients: int) -> float:
        done = subprocess.run([PGBENCH, *self.common, "-c", str(clients), "-j", str(clients), "-T", str(self.seconds),
                               "-n", PGBENCH_DATABASE], capture_output=True, text=True, env=self.env)
        found = re.search(r"^tps = ([\d.]+)", done.stdout, re.MULTILINE)
        if done.returncode != 0 or not found:
            raise RuntimeError(f"pgbench -c {clients} failed (exit {done.returncode}): {done.stderr or done.stdout}")
        return float(found.group(1))


def main() -> None:
    args = harness.arguments(__doc__ or "", RUNS, BUDGET)
    server = servers.open_or_skip("pg_record_order", servers.POSTGRES_URL, DATABASE)
    if server is None:
        return
    if not os.path.exists(PGBENCH):
        print(f"{harness.SKIP_PREFIX}pg_record_order: {PGBENCH} is not installed", flush=True)
        return

    from django.db import connection

    from loyalty.clock import FixedClock
    from loyalty.domain.events import parse_order
    from loyalty.services import rulesets
    from loyalty.services.orders import record_order

    members = workload.member_names(GROUPS * MEMBERS_PER_GROUP)
    workload.seed_shop(members)
    tables = servers.run_tables()
    groups = [[parse_order(doc) for doc in workload.order_documents(
        ORDERS_PER_GROUP, members[g * MEMBERS_PER_GROUP:(g + 1) * MEMBERS_PER_GROUP], seed=10 + g, prefix=f"g{g}-")]
        for g in range(GROUPS)]
    total = GROUPS * ORDERS_PER_GROUP
    clock = FixedClock(workload.NOW)
    pgbench = PgBench(server, int(os.environ.get("LOYALTY_BENCH_PGBENCH_SECONDS", PGBENCH_SECONDS)))
    pgbench.init()

    def service_side(clients: int) -> Any:
        work = servers.shares(groups, clients)

        def setup(_: int) -> None:
            rulesets.in_force(workload.NOW)  # this thread's connection opened, outside the clock

        def record(index: int, _: None) -> None:
            for event in work[index]:
                record_order(event, clock=clock)

        def run() -> float:
            servers.reset(tables)
            rulesets.in_force(workload.NOW)  # the process-wide ruleset cache filled before the threads start
            connection.close()
            seconds = servers.in_processes(clients, setup, record)
            servers.check_recorded(total)
            return total / seconds

        return run

    def pgbench_side(clients: int) -> Any:
        return lambda: pgbench.tps(clients)

    sides = [side for clients in CLIENTS for side in (service_side(clients), pgbench_side(clients))]
    measured = harness.alternate(args.runs, args.budget, *sides)
    print(f"pg_record_order: {total:,} orders per run, {GROUPS * MEMBERS_PER_GROUP} members in {GROUPS} groups, "
          f"one transaction per order; pgbench -s 10 -T {pgbench.seconds}")
    for index, clients in enumerate(CLIENTS):
        service, base = measured[2 * index], measured[2 * index + 1]
        print(f" {clients} client{'s' if clients > 1 else ''}:")
        harness.Result(
            f"pg_record_order c={clients}", f"record_order, {clients} clients", "tps",
            harness.median(service), harness.median(base), "service >= 0.3 x pgbench",
            runs=service, baseline_runs=base,
            notes=[f"baseline: pgbench TPC-B-like, -c {clients} -j {clients} -T {pgbench.seconds} -n, scale 10"],
        ).show()


if __name__ == "__main__":
    main()
