"""A real webhook receiver for the tests: an HTTP server on 127.0.0.1 (a port the OS picks) in a
thread. It records every request and answers from a script: `answer(500, 500)` makes the next
two requests fail with 500, `hang()` makes requests wait without answering until `close()`.

`seeded_database` builds a SQLite file that other processes (the CLI, a Celery worker) open.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: Message  # case-insensitive: headers["Loyalty-Signature"]
    body: bytes


class Receiver:
    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.script: list[int] = []
        self.hanging = False
        self.on_request: Callable[[], None] | None = None
        self.released = threading.Event()
        self.arrived = threading.Condition()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), name="webhook-receiver",
                                       daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}/hooks/loyalty"

    def answer(self, *statuses: int) -> None:
        """Answer the next requests with these statuses (then 200 again)."""
        self.script.extend(statuses)

    def hang(self) -> None:
        self.hanging = True

    def wait_for(self, count: int, timeout: float) -> bool:
        """Whether `count` requests have arrived, waiting up to `timeout` seconds for them."""
        with self.arrived:
            return self.arrived.wait_for(lambda: len(self.requests) >= count, timeout)

    def close(self) -> None:
        self.released.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if receiver.on_request is not None:
                receiver.on_request()
            with receiver.arrived:
                receiver.requests.append(Received("POST", self.path, self.headers, body))
                receiver.arrived.notify_all()
                status = receiver.script.pop(0) if receiver.script else 200
            if receiver.hanging:
                receiver.released.wait(60)
                self.close_connection = True
                return  # never answers: the sender has long given up
            self.send_response(status)
            if 300 <= status < 400:
                self.send_header("Location", "http://127.0.0.1:9/elsewhere")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: object) -> None:
            pass  # quiet: the test reads `receiver.requests`

    return Handler


def closed_port_url() -> str:
    """An address where nothing listens: a port the OS gave out and that is closed again."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/hooks"


SEED = """
import django
django.setup()
from loyalty.services.adjustments import adjust
from loyalty.services.members import register_member
register_member("m1")
adjust("m1", "points", 25, reason="welcome back", actor="ops:test", adjustment_id="a1")
"""


@dataclass(frozen=True)
class FileShop:
    path: Path  # the SQLite file
    env: dict[str, str]  # the environment that points a process at it
    secret: str  # the endpoint's signing secret

    def python(self, *args: str) -> str:
        """`python ARGS` against this database (e.g. "-m", "loyalty.cli", ...); answers stdout."""
        done = subprocess.run([sys.executable, *args], cwd=self.path.parent, env=self.env, capture_output=True,
                              text=True, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout


def seeded_database(directory: Path, receiver: Receiver) -> FileShop:
    """A migrated SQLite file with the default ruleset, an endpoint for `receiver` (added with
    `loyalty webhooks add`) and one `points.adjusted` event waiting in the outbox."""
    path = directory / "hooks.sqlite3"
    env = {**os.environ, "LOYALTY_DATABASE_URL": f"sqlite:///{path}", "DJANGO_SETTINGS_MODULE": "loyalty.settings"}
    shop = FileShop(path, env, "")
    shop.python("-m", "loyalty.cli", "migrate")
    shop.python("-m", "loyalty.cli", "ruleset", "publish", str(ROOT / "rulesets" / "default.yaml"),
                "--effective-from", "2020-01-01")
    secret = shop.python("-m", "loyalty.cli", "webhooks", "add", receiver.url, "--event", "points.adjusted").strip()
    shop.python("-c", SEED)
    return FileShop(path, env, secret)
