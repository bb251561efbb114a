"""A bounded HTTP load generator, and the `loyalty serve` subprocess it drives.

`loyalty serve` (gunicorn, its default configuration) is started as a real subprocess on a free
loopback port, on a copy of the benchmark's template SQLite file, and stopped with SIGTERM.
LOYALTY_BENCH_SERVE_ARGS measures another server configuration (e.g. "--workers 2 --threads 4").

A run sends a list of `Plan`s, one keep-alive connection each: every plan's bodies once, or its
paths round and round for a given time. The load generator is one forked process with a thread per
connection, each thread with its own stdlib `http.client` connection opened before the clock
starts. One process is enough: at its busiest (/healthz, 32 connections) it used about half a
core, well under the one core its interpreter lock allows, and 2 or 4 processes
(LOYALTY_BENCH_CLIENT_PROCESSES) measured the same throughput; what limits every figure is the two
cores client and server share. The CPU the load generator, the server's workers and anything else
on the machine used is measured with each run, so that a run disturbed by other work shows it.
"""

from __future__ import annotations

import contextlib
import http.client
import multiprocessing
import os
import secrets
import shlex
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import harness

CLIENT_PROCESSES = int(os.environ.get("LOYALTY_BENCH_CLIENT_PROCESSES", 1))
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
    """One connection's outcome, sent back from its client process."""

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
        # A throwaway signing key: `serve` refuses the public development default.
        env = {"LOYALTY_SECRET_KEY": secrets.token_urlsafe(32), **os.environ,
               "LOYALTY_DATABASE_URL": f"sqlite:///{self.database}"}
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


# --- summaries ------------------------------------------------------------------------------

def configuration() -> str:
    """The client and server setup, for headings: figures from different setups do not compare."""
    return f"{CLIENT_PROCESSES} client process(es); loyalty serve {shlex.join(SERVE_ARGS)}"


def latency(runs: list[Load]) -> tuple[float, float]:
    """Milliseconds: the median over the runs of each run's p50 and p99."""
    p50, p99 = (harness.median([run.percentile(p) for run in runs]) for p in (50, 99))
    return p50, p99


def latency_text(runs: list[Load]) -> str:
    return "p50 {:.1f} ms, p99 {:.1f} ms".format(*latency(runs))


def cpu_text(runs: list[Load]) -> str:
    client, server, other = (harness.median([share(run) / run.seconds for run in runs]) for share in (
        lambda run: run.client_cpu, lambda run: run.server_cpu,
        lambda run: max(0.0, run.machine_cpu - run.client_cpu - run.server_cpu)))
    return (f"CPU of {os.cpu_count()} cores: load generator {client:.2f}, server workers {server:.2f}, "
            f"anything else {other:.2f}")
