"""Benchmark 8: the API over HTTP, against `loyalty serve` (gunicorn, its default configuration)
started as a real subprocess on a free loopback port, on a SQLite file of its own.

1. Member status, `GET /api/v1/members/{id}` with an API key (1,000 members cycled, each with a
   history), against `GET /healthz` (no database) on the same server in the same run, at 1, 8
   and 32 keep-alive connections, each run READ_SECONDS long. Figures: requests per second, p50
   and p99 latency. Target: status >= 0.5 x /healthz, and p99 < 50 ms at 32 connections.
2. Order batches, `POST /api/v1/events/orders:batch`, 1,000 orders each, at 1, 8 and 32
   connections (16, 16 and 32 batches), every run on a server started on a fresh copy of the
   seeded file. Every answer is checked (1,000 results, in order, all "applied") and the orders
   are counted in the file afterwards, so a broken endpoint cannot look fast. Baseline: the same
   batches through the same services (`parse_order`, then `record_orders`) in this process, one
   after another: no HTTP, no JSON. Target: >= 5,000 orders/s.

The server and the load generator (one forked process, a keep-alive connection per thread) are
`bench.http_load`'s; the CPU they and anything else on the machine used is printed with each
figure, so that a run disturbed by other work shows it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import harness, workload
from bench.http_load import Load, Plan, Server, check_statuses, configuration, cpu_text, latency, latency_text, load

CONNECTIONS = (1, 8, 32)
MEMBERS = 1_000
HISTORY = 5_000  # orders recorded beforehand, so that a status has entries, windows and gaps to show
READ_SECONDS = 2.0
BATCH = 1_000
BATCHES = 16  # per run below 32 connections; one per connection at 32
RUNS = 3
BUDGET = 60.0  # for each of the two scenarios
API = "/api/v1"
PAID_AT = "2027-01-04T10:00:00+08:00"


# --- the shop -------------------------------------------------------------------------------

def seed(site: harness.Site) -> tuple[list[str], str]:
    """Migrate with `loyalty migrate`, publish the default ruleset, register the members with a
    history, create an API key; save the file as the template. Answers (members, key)."""
    harness.start_django(site)  # sets LOYALTY_DATABASE_URL for the subprocess too
    subprocess.run([sys.executable, "-m", "loyalty.cli", "migrate"], check=True, capture_output=True)

    from loyalty.clock import FixedClock
    from loyalty.domain.events import parse_order
    from loyalty.services import apikeys, rulesets
    from loyalty.services.imports import import_orders
    from loyalty.services.members import register_many

    members = workload.member_names(MEMBERS)
    rulesets.publish(rulesets.preset_document("default"), effective_from=workload.RULES_FROM, actor="bench")
    register_many(dict.fromkeys(members, workload.REGISTERED_AT), clock=FixedClock(workload.REGISTERED_AT))
    history = [parse_order(doc) for doc in workload.order_documents(HISTORY, members, seed=8)]
    import_orders(list(enumerate(history, start=2)), clock=FixedClock(workload.NOW))
    # IMPORTANT: a limit no run reaches, so that the server is measured and not the limiter. The
    # default (6,000 a minute, counted per worker process without Redis) is within a fast run's reach.
    key = apikeys.create_key("bench", ["events:write", "members:read"], rate_per_minute=10**9).plaintext
    harness.freeze(site)
    return members, key


def batch_documents(members: list[str], count: int) -> list[tuple[list[str], list[dict[str, Any]]]]:
    """`count` batches of BATCH orders as the platform sends them: (order ids, events)."""
    batches = []
    for number in range(count):
        ids = [f"b{number:03d}-{index:04d}" for index in range(BATCH)]
        events = [{"order_id": order_id, "member": members[(number * BATCH + index) % len(members)],
                   "paid_at": PAID_AT, "amount": "123.45",
                   "items": [{"sku": "s1", "category": "food", "amount": "123.45"}]}
                  for index, order_id in enumerate(ids)]
        batches.append((ids, events))
    return batches


def check_batches(run: Load, plans: list[Plan], ids: dict[bytes, list[str]]) -> None:
    """Every answer holds one result per order, in order, each "applied"."""
    for plan, replies in zip(plans, run.replies, strict=True):
        assert plan.bodies is not None and len(replies) == len(plan.bodies)
        for body, reply in zip(plan.bodies, replies, strict=True):
            results = json.loads(reply)["results"]
            if [r["id"] for r in results] != ids[body] or any(r["status"] != "applied" for r in results):
                wrong = Counter(r["status"] for r in results)
                raise AssertionError(f"a batch of {len(ids[body])} answered {len(results)} results: {dict(wrong)}")


def count_orders(path: Path) -> int:
    import sqlite3

    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("SELECT COUNT(*) FROM orders").fetchone()[0])
    finally:
        conn.close()


def warm_up(server: Server, key: str, members: list[str]) -> None:
    """Status reads on 32 connections for a moment, so that every worker has loaded its URLs, the
    API and the ruleset before a clock starts (reads only: the file stays as seeded)."""
    load(server, {"Authorization": f"Bearer {key}"}, [Plan("GET", [f"{API}/members/{m}" for m in members])] * 32,
         seconds=0.5)


# --- the scenarios --------------------------------------------------------------------------

def _yes(met: bool) -> str:
    return "yes" if met else "NO"


def status_reads(args: Any, server: Server, members: list[str], key: str) -> None:
    auth = {"Authorization": f"Bearer {key}"}
    status_paths = [f"{API}/members/{member}" for member in members]
    found, reply = server.get(status_paths[0], auth)
    if found != 200:
        raise RuntimeError(f"GET {status_paths[0]} answered {found}: {reply[:300]!r}")

    def side(connections: int, paths: list[str], headers: dict[str, str], runs: list[Load]) -> Callable[[], float]:
        # Each connection starts at its own place in the members, so that they read different ones.
        plans = [Plan("GET", paths[i * len(paths) // connections:] + paths[:i * len(paths) // connections])
                 for i in range(connections)]

        def run() -> float:
            outcome = load(server, headers, plans, seconds=READ_SECONDS)
            check_statuses(outcome, paths[0])
            runs.append(outcome)
            return outcome.rate

        return run

    warm_up(server, key, members)
    measured: dict[tuple[int, str], list[Load]] = {(n, what): [] for n in CONNECTIONS for what in ("status", "healthz")}
    sides = [side(n, status_paths if what == "status" else ["/healthz"], auth if what == "status" else {},
                  measured[n, what]) for n in CONNECTIONS for what in ("status", "healthz")]
    harness.alternate(args.runs, args.budget, *sides)
    print(f"api_load: member status vs /healthz, {READ_SECONDS:.0f} s per run, {MEMBERS:,} members "
          f"with {HISTORY:,} orders; {configuration()}")
    for n in CONNECTIONS:
        status, healthz = measured[n, "status"], measured[n, "healthz"]
        rates, base_rates = [run.rate for run in status], [run.rate for run in healthz]
        result = harness.Result(
            f"api_status c={n}", f"GET member status, {n} connections", "req/s", harness.median(rates),
            harness.median(base_rates), "status >= 0.5 x /healthz" + ("; p99 < 50 ms" if n == 32 else ""),
            runs=rates, baseline_runs=base_rates,
            notes=[f"status: {latency_text(status)}; /healthz: {latency_text(healthz)}",
                   f"status {cpu_text(status)}", f"/healthz {cpu_text(healthz)}"])
        met = f"ratio >= 0.5: {_yes(result.ratio >= 0.5)}"
        if n == 32:
            met += f"; p99 < 50 ms: {_yes(latency(status)[1] < 50)}"
        result.notes.append(f"target met: {met}")
        print(f" {n} connection{'s' if n > 1 else ''}:")
        result.show()


def order_batches(args: Any, site: harness.Site, server: Server, members: list[str], key: str) -> None:
    from django.db import connection

    from loyalty.domain.events import parse_order
    from loyalty.services import rulesets
    from loyalty.services.orders import record_orders

    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    batches = batch_documents(members, max(BATCHES, *CONNECTIONS))
    bodies = [json.dumps({"events": events}).encode() for _, events in batches]
    ids = {body: order_ids for body, (order_ids, _) in zip(bodies, batches, strict=True)}
    before = count_orders(site.template)
    measured: dict[int, list[Load]] = {n: [] for n in CONNECTIONS}
    in_process: list[float] = []

    def side(connections: int) -> Callable[[], float]:
        share = bodies[:max(BATCHES, connections)]
        plans = [Plan("POST", [f"{API}/events/orders:batch"], share[i::connections]) for i in range(connections)]

        def run() -> float:
            server.start()
            try:
                warm_up(server, key, members)
                outcome = load(server, headers, plans, keep=True)
            finally:
                server.stop()
            check_statuses(outcome, "orders:batch")
            check_batches(outcome, plans, ids)
            if count_orders(server.database) != before + len(share) * BATCH:
                raise AssertionError("the file does not hold every order the answers said were applied")
            measured[connections].append(outcome)
            return outcome.rate

        return run

    def baseline() -> float:
        harness.thaw(site)
        rulesets.in_force(workload.NOW)  # connect, and parse the ruleset once, outside the clock
        work = [events for _, events in batches[:BATCHES]]
        seconds = harness.timed(lambda: [record_orders([parse_order(raw) for raw in events]) for events in work])
        in_process.append(len(work) * BATCH / seconds)
        connection.close()  # IMPORTANT: the client processes are forked from this one
        return in_process[-1]

    harness.alternate(args.runs, args.budget, baseline, *(side(n) for n in CONNECTIONS))
    print(f"api_load: POST orders:batch, {BATCH:,} orders per batch, {max(BATCHES, *CONNECTIONS)} batches at "
          f"{CONNECTIONS[-1]} connections and {BATCHES} below; every answer checked")
    for n in CONNECTIONS:
        runs = measured[n]
        rates = [run.rate * BATCH for run in runs]
        print(f" {n} connection{'s' if n > 1 else ''}:")
        harness.Result(
            f"api_batch c={n}", f"orders:batch, {n} connections", "orders/s", harness.median(rates),
            harness.median(in_process), ">= 5,000 orders/s", runs=rates, baseline_runs=in_process,
            notes=[f"per batch of {BATCH:,}: {latency_text(runs)}", cpu_text(runs),
                   "baseline: the same batches through parse_order + record_orders in this process, one by one",
                   f"target met: {_yes(harness.median(rates) >= 5000)}"]).show()


def main() -> None:
    args = harness.arguments(__doc__ or "", RUNS, BUDGET)
    site = harness.Site("api")
    members, key = seed(site)
    from django.db import connection

    connection.close()  # IMPORTANT: the client processes are forked from this one
    server = Server(site)
    server.start()
    try:
        found, reply = server.get(f"{API}/members/{members[0]}", {"Authorization": f"Bearer {key}"})
        if found == 404 and not reply.startswith(b"{"):
            print(f"{harness.SKIP_PREFIX}api_load: the API is not mounted at {API}", flush=True)
            return
        status_reads(args, server, members, key)
    finally:
        server.stop()
    order_batches(args, site, server, members, key)


if __name__ == "__main__":
    main()
