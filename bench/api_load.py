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

The load generator is one forked process with a thread per connection, each thread with its own
stdlib `http.client` connection opened before the clock starts. One process is enough: at its
busiest (/healthz, 32 connections) it used about half a core, well under the one core its
interpreter lock allows, and 2 or 4 processes (LOYALTY_BENCH_CLIENT_PROCESSES) measured the same
throughput; what limits every figure is the two cores client and server share. The CPU the load
generator, the server's workers and anything else on the machine used is printed with each
figure, so that a run disturbed by other work shows it. LOYALTY_BENCH_SERVE_ARGS measures another
server configuration (e.g. "--workers 2 --threads 4").
"""

from __future__ import annotations

import contextlib
import http.client
import json
import multiprocessing
import os
import shlex
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import harness, workload

CONNECTIONS = (1, 8, 32)
CLIENT_PROCESSES = int(os.environ.get("LOYALTY_BENCH_CLIENT_PROCESSES", 1))
MEMBERS = 1_000
HISTORY = 5_000  # orders recorded beforehand, so that a status has entries, windows and gaps to show
READ_SECONDS = 2.0
BATCH = 1_000
BATCHES = 16  # per run below 32 connections; one per connection at 32
RUNS = 3
BUDGET = 60.0  # for each of the two scenarios
API = "/api/v1"
PAID_AT = "2027-01-04T10:00:00+08:00"
STARTUP_SECONDS = 60
# Another server configuration to measure, e.g. "--workers 2 --threads 4" (default: serve's own).
SERVE_ARGS = shlex.split(os.environ.get("LOYALTY_BENCH_SERVE_ARGS", ""))


@dataclass
class Plan:
    """What one client connection sends: `bodies` one request each, else `paths` round and round
    until the run's time is up."""

    method: str
    paths: list[str]
    bodies: list[bytes] | None = None


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[int | str] = field(default_factory=Counter)
    replies: list[bytes] = field(default_factory=list)
    ended: float = 0.0


@dataclass
class Load:
    """One run's outcome over every connection."""

    requests: int
    seconds: float
    latencies: list[float]
    statuses: Counter[int | str]
    replies: list[list[bytes]]  # per connection, in order (only when asked to keep them)
    client_cpu: float  # CPU seconds the load generator used
    server_cpu: float  # CPU seconds the server's workers used
    machine_cpu: float  # CPU seconds every process on the machine used (the rest: other work)

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    def percentile(self, p: int) -> float:
        return statistics.quantiles(self.latencies, n=100, method="inclusive")[p - 1] * 1000


# --- the server -----------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Server:
    """`loyalty serve` on a copy of the template file; stopped with SIGTERM, as in production."""

    def __init__(self, site: harness.Site):
        self.site, self.database, self.log = site, site.dir / "server.sqlite3", site.dir / "server.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.port = 0

    def start(self) -> None:
        harness.copy_database(self.site.template, self.database)
        self.port = free_port()
        env = {**os.environ, "LOYALTY_DATABASE_URL": f"sqlite:///{self.database}"}
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "loyalty.cli", "serve", "--port", str(self.port), *SERVE_ARGS],
                env=env, stdout=log, stderr=log)
        deadline = time.monotonic() + STARTUP_SECONDS
        while not self.answers():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"loyalty serve did not start:\n{self.log.read_text()[-3000:]}")
            time.sleep(0.1)

    def answers(self) -> bool:
        try:
            return self.get("/healthz")[0] == 200
        except OSError:
            return False

    def get(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request("GET", path, headers=headers or {})
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.send_signal(signal.SIGTERM)
        if self.process.wait(timeout=60) != 0:
            raise RuntimeError(f"loyalty serve exited with {self.process.returncode}")
        self.process = None

    def cpu_seconds(self) -> float:
        """User + system CPU of the server's worker processes so far (from /proc)."""
        assert self.process is not None
        ticks = 0
        for entry in Path("/proc").iterdir():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if fields[1] == str(self.process.pid):  # fields[1]: the parent's pid
                ticks += int(fields[11]) + int(fields[12])  # utime, stime
        return ticks / os.sysconf("SC_CLK_TCK")


# --- the load generator ---------------------------------------------------------------------

def _send(conn: http.client.HTTPConnection, plan: Plan, headers: dict[str, str], deadline: float, keep: bool,
          tally: Tally) -> None:
    count = len(plan.bodies) if plan.bodies is not None else None
    index = 0
    while (index < count) if count is not None else (time.perf_counter() < deadline):
        body = plan.bodies[index] if plan.bodies is not None else None
        started = time.perf_counter()
        conn.request(plan.method, plan.paths[index % len(plan.paths)], body=body, headers=headers)
        response = conn.getresponse()
        reply = response.read()
        tally.latencies.append(time.perf_counter() - started)
        tally.statuses[response.status] += 1
        if keep:
            tally.replies.append(reply)
        index += 1
    tally.ended = time.perf_counter()


def _client(port: int, headers: dict[str, str], plans: list[Plan], seconds: float, keep: bool,
            barrier: Any, sender: Any) -> None:
    """One client process: a thread and a connection per plan; all start when the parent says so."""
    tallies = [Tally() for _ in plans]
    ready, go, deadline = threading.Barrier(len(plans) + 1), threading.Event(), [0.0]

    def connection(plan: Plan, tally: Tally) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
        try:
            conn.connect()
            ready.wait()
            go.wait()
            _send(conn, plan, headers, deadline[0], keep, tally)
        except Exception as error:
            tally.statuses[f"{type(error).__name__}: {error}"] += 1
            ready.abort()
        finally:
            conn.close()

    threads = [threading.Thread(target=connection, args=pair) for pair in zip(plans, tallies, strict=True)]
    for thread in threads:
        thread.start()
    with contextlib.suppress(threading.BrokenBarrierError):  # a connection failed: it says so in its tally
        ready.wait()
    barrier.wait()
    cpu = time.process_time()
    deadline[0] = time.perf_counter() + seconds
    go.set()
    for thread in threads:
        thread.join()
    sender.send((tallies, time.process_time() - cpu))
    sender.close()


def load(server: Server, headers: dict[str, str], plans: list[Plan], *, seconds: float = 0.0,
         keep: bool = False) -> Load:
    """Drive `plans` (one connection each) from forked client processes; a run ends when every
    connection has sent its bodies, or at `seconds` (the requests in flight then still count)."""
    context = multiprocessing.get_context("fork")
    count = min(CLIENT_PROCESSES, len(plans))
    shares = [list(range(index, len(plans), count)) for index in range(count)]
    barrier = context.Barrier(count + 1)
    pipes = [context.Pipe(duplex=False) for _ in shares]
    processes = [context.Process(target=_client, args=(server.port, headers, [plans[i] for i in share], seconds,
                                                       keep, barrier, sender))
                 for share, (_, sender) in zip(shares, pipes, strict=True)]
    for process in processes:
        process.start()
    server_cpu, machine_cpu = server.cpu_seconds(), machine_cpu_seconds()
    barrier.wait(timeout=60)
    start = time.perf_counter()
    received = [receiver.recv() for receiver, _ in pipes]  # before join: a full pipe would block the child
    server_cpu, machine_cpu = server.cpu_seconds() - server_cpu, machine_cpu_seconds() - machine_cpu
    for process in processes:
        process.join()
    tallies: list[Tally | None] = [None] * len(plans)
    for share, (share_tallies, _) in zip(shares, received, strict=True):
        for index, tally in zip(share, share_tallies, strict=True):
            tallies[index] = tally
    done = [tally for tally in tallies if tally is not None]
    statuses: Counter[int | str] = sum((tally.statuses for tally in done), Counter())
    return Load(sum(len(t.latencies) for t in done), max(t.ended for t in done) - start,
                [latency for t in done for latency in t.latencies], statuses, [t.replies for t in done],
                sum(cpu for _, cpu in received), server_cpu, machine_cpu)


def machine_cpu_seconds() -> float:
    """CPU seconds spent on every core so far, idle and I/O wait excepted (from /proc/stat)."""
    user, nice, system, _idle, _iowait, irq, softirq, steal = (
        int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def check_statuses(run: Load, what: str, expected: int = 200) -> None:
    wrong = {status: n for status, n in run.statuses.items() if status != expected}
    if wrong:
        raise AssertionError(f"{what}: answers other than {expected}: {wrong}")


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

def _latency(runs: list[Load]) -> tuple[float, float]:
    """Milliseconds: the median over the runs of each run's p50 and p99."""
    p50, p99 = (harness.median([run.percentile(p) for run in runs]) for p in (50, 99))
    return p50, p99


def _latency_text(runs: list[Load]) -> str:
    return "p50 {:.1f} ms, p99 {:.1f} ms".format(*_latency(runs))


def _yes(met: bool) -> str:
    return "yes" if met else "NO"


def _cpu(runs: list[Load]) -> str:
    client, server, other = (harness.median([share(run) / run.seconds for run in runs]) for share in (
        lambda run: run.client_cpu, lambda run: run.server_cpu,
        lambda run: max(0.0, run.machine_cpu - run.client_cpu - run.server_cpu)))
    return (f"CPU of {os.cpu_count()} cores: load generator {client:.2f}, server workers {server:.2f}, "
            f"anything else {other:.2f}")


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
          f"with {HISTORY:,} orders; {CLIENT_PROCESSES} client process(es); loyalty serve {shlex.join(SERVE_ARGS)}")
    for n in CONNECTIONS:
        status, healthz = measured[n, "status"], measured[n, "healthz"]
        rates, base_rates = [run.rate for run in status], [run.rate for run in healthz]
        result = harness.Result(
            f"api_status c={n}", f"GET member status, {n} connections", "req/s", harness.median(rates),
            harness.median(base_rates), "status >= 0.5 x /healthz" + ("; p99 < 50 ms" if n == 32 else ""),
            runs=rates, baseline_runs=base_rates,
            notes=[f"status: {_latency_text(status)}; /healthz: {_latency_text(healthz)}",
                   f"status {_cpu(status)}", f"/healthz {_cpu(healthz)}"])
        met = f"ratio >= 0.5: {_yes(result.ratio >= 0.5)}"
        if n == 32:
            met += f"; p99 < 50 ms: {_yes(_latency(status)[1] < 50)}"
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
            notes=[f"per batch of {BATCH:,}: {_latency_text(runs)}", _cpu(runs),
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
