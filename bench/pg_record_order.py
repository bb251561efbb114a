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

from bench import harness, servers

CLIENTS = (1, 4, 8)
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

    def side(self, clients: int) -> servers.Side:
        return lambda: self.tps(clients)


def main() -> None:
    args = harness.arguments(__doc__ or "", RUNS, BUDGET)
    server = servers.open_or_skip("pg_record_order", servers.POSTGRES_URL, DATABASE)
    if server is None:
        return
    if not os.path.exists(PGBENCH):
        servers.skip("pg_record_order", f"{PGBENCH} is not installed")
        return

    shop = servers.Shop.seed(server, DATABASE, servers.GROUPS * servers.MEMBERS_PER_GROUP)
    groups = servers.member_groups(shop.members)
    pgbench = PgBench(server, int(os.environ.get("LOYALTY_BENCH_PGBENCH_SECONDS", PGBENCH_SECONDS)))
    pgbench.init()

    measured = harness.alternate(args.runs, args.budget, *servers.per_client(
        CLIENTS, lambda clients: shop.recording(groups, clients, servers.in_processes), pgbench.side))
    print(f"pg_record_order: {servers.groups_text()}; pgbench -s 10 -T {pgbench.seconds}")
    servers.show_per_client(CLIENTS, measured, lambda clients, service, base: servers.result(
        f"pg_record_order c={clients}", f"record_order, {clients} clients", "tps", service, base,
        "service >= 0.3 x pgbench",
        notes=[f"baseline: pgbench TPC-B-like, -c {clients} -j {clients} -T {pgbench.seconds} -n, scale 10"]))


if __name__ == "__main__":
    main()
