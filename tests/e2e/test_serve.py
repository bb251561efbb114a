"""`loyalty serve` end to end: gunicorn in a real subprocess on a fresh SQLite file, over HTTP."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

STARTUP_SECONDS = 60


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _get(url: str) -> tuple[int, str, bytes]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.status, response.headers["Content-Type"], response.read()


class Served:
    def __init__(self, process: subprocess.Popen[bytes], base: str, log: Path):
        self.process, self.base, self.log = process, base, log

    def get(self, path: str) -> tuple[int, str, bytes]:
        return _get(self.base + path)


def _wait_until_healthy(process: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"loyalty serve exited with {process.returncode}:\n{log.read_text()}")
        try:
            _get(url)
            return
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.2)
    pytest.fail(f"/healthz did not answer within {STARTUP_SECONDS} s:\n{log.read_text()}")


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    env = {**os.environ, "LOYALTY_DATABASE_URL": f"sqlite:///{tmp_path / 'serve.sqlite3'}"}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    subprocess.run([sys.executable, "-m", "loyalty.cli", "migrate"], cwd=tmp_path, env=env, check=True,
                   capture_output=True, timeout=120)
    port, log = _free_port(), tmp_path / "serve.log"
    with log.open("wb") as output:
        process = subprocess.Popen([sys.executable, "-m", "loyalty.cli", "serve", "--port", str(port),
                                    "--workers", "2"], cwd=tmp_path, env=env, stdout=output, stderr=output)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_until_healthy(process, base + "/healthz", log)
        yield Served(process, base, log)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_healthz_answers_ok_as_json(served):
    status, content_type, body = served.get("/healthz")
    assert (status, content_type) == (200, "application/json")
    assert json.loads(body) == {"status": "ok"}


def test_the_admin_login_renders_with_its_stylesheets(served):
    status, _, page = served.get("/admin/login/")
    assert status == 200
    stylesheets = re.findall(rb'<link rel="stylesheet" href="([^"]+)"', page)
    assert stylesheets, page[:500]
    status, content_type, css = served.get(stylesheets[0].decode())
    assert (status, content_type) == (200, "text/css")
    assert css


def test_sigterm_stops_the_server_cleanly(served):
    served.process.send_signal(signal.SIGTERM)
    assert served.process.wait(timeout=60) == 0, served.log.read_text()
    assert "Shutting down" in served.log.read_text()


def test_serving_the_demo_before_it_was_built_says_what_to_run(tmp_path):
    env = {key: value for key, value in os.environ.items()
           if key not in ("LOYALTY_DATABASE_URL", "DJANGO_SETTINGS_MODULE")}
    done = subprocess.run([sys.executable, "-m", "loyalty.cli", "serve", "--demo"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "run `loyalty demo` first" in done.stderr
    assert not (tmp_path / "var").exists()
