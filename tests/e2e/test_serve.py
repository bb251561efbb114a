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
from contextlib import contextmanager
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


def _environment(tmp_path: Path, **changes: str | None) -> dict[str, str]:
    """The environment of a production-like `loyalty serve`: its own SQLite file and a secret key."""
    env = {**os.environ, "LOYALTY_DATABASE_URL": f"sqlite:///{tmp_path / 'serve.sqlite3'}",
           "LOYALTY_SECRET_KEY": "e2e-" + "k" * 50}
    for name in ("DJANGO_SETTINGS_MODULE", "LOYALTY_DEBUG"):
        env.pop(name, None)
    for name, value in changes.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def _migrate(tmp_path: Path, env: dict[str, str]) -> None:
    subprocess.run([sys.executable, "-m", "loyalty.cli", "migrate"], cwd=tmp_path, env=env, check=True,
                   capture_output=True, timeout=120)


@contextmanager
def _serving(tmp_path: Path, env: dict[str, str], *args: str) -> Iterator[Served]:
    port, log = _free_port(), tmp_path / "serve.log"
    with log.open("wb") as output:
        process = subprocess.Popen([sys.executable, "-m", "loyalty.cli", "serve", "--port", str(port),
                                    "--workers", "2", *args], cwd=tmp_path, env=env, stdout=output, stderr=output)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_until_healthy(process, base + "/healthz", log)
        yield Served(process, base, log)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    env = _environment(tmp_path)
    _migrate(tmp_path, env)
    with _serving(tmp_path, env) as served:
        yield served


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


def test_serving_without_a_secret_key_is_refused_saying_how_to_set_one(tmp_path):
    env = _environment(tmp_path, LOYALTY_SECRET_KEY=None)
    for unset in (env, {**env, "LOYALTY_SECRET_KEY": ""}):
        done = subprocess.run([sys.executable, "-m", "loyalty.cli", "serve", "--port", str(_free_port())],
                              cwd=tmp_path, env=unset, capture_output=True, text=True, timeout=60)
        assert done.returncode == 1, done.stdout + done.stderr
        assert done.stderr.startswith("error [secret_key_unset]: LOYALTY_SECRET_KEY is not set"), done.stderr
        assert "--demo" in done.stderr and "LOYALTY_DEBUG=1" in done.stderr
        assert "Booting worker" not in done.stderr  # refused before gunicorn started


def test_a_debug_server_starts_without_a_secret_key(tmp_path):
    env = _environment(tmp_path, LOYALTY_SECRET_KEY=None, LOYALTY_DEBUG="1")
    _migrate(tmp_path, env)
    with _serving(tmp_path, env) as served:
        assert served.get("/healthz")[0] == 200


def test_the_demo_server_starts_without_a_secret_key(tmp_path):
    """`make serve` is `loyalty serve --demo`: it serves var/demo.sqlite3 (here an empty, migrated one)."""
    (tmp_path / "var").mkdir()
    _migrate(tmp_path, _environment(tmp_path, LOYALTY_DATABASE_URL=f"sqlite:///{tmp_path / 'var' / 'demo.sqlite3'}"))
    env = _environment(tmp_path, LOYALTY_SECRET_KEY=None, LOYALTY_DATABASE_URL=None)
    with _serving(tmp_path, env, "--demo") as served:
        assert served.get("/healthz")[0] == 200


def test_a_server_error_is_logged_with_its_traceback_to_stderr(tmp_path):
    """A 500 (here: a database without its tables) reaches gunicorn's stderr with the traceback;
    the client mistakes (4xx) are not logged."""
    env = _environment(tmp_path)  # not migrated
    def status(url: str) -> int:
        request = urllib.request.Request(url, headers={"Authorization": "Bearer lk_0123456789ab_secret"})
        with pytest.raises(urllib.error.HTTPError) as raised:
            urllib.request.urlopen(request, timeout=10)
        with raised.value:
            return raised.value.code

    with _serving(tmp_path, env) as served:
        assert status(served.base + "/api/v1/members/m-1") == 500
        assert status(served.base + "/api/v1/nothing-here") == 404
        deadline = time.monotonic() + 10
        while "no such table" not in served.log.read_text() and time.monotonic() < deadline:
            time.sleep(0.1)
    log = served.log.read_text()
    assert "ERROR django.request" in log and "Internal Server Error: /api/v1/members/m-1" in log, log
    assert "Traceback (most recent call last)" in log and "OperationalError: no such table" in log, log
    assert "nothing-here" not in log, log


@pytest.mark.parametrize(("level", "shown"), [(None, ["INFO", "WARNING"]), ("debug", ["DEBUG", "INFO", "WARNING"]),
                                              ("WARNING", ["WARNING"])])
def test_the_loyalty_loggers_write_to_stderr_at_loyalty_log_level(tmp_path, level, shown):
    env = _environment(tmp_path, LOYALTY_LOG_LEVEL=level, DJANGO_SETTINGS_MODULE="loyalty.settings")
    script = ("import django, logging; django.setup(); log = logging.getLogger('loyalty.services.test')\n"
              "for name in ('DEBUG', 'INFO', 'WARNING'): log.log(getattr(logging, name), 'at %s', name)")
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=60, check=True)
    assert done.stdout == ""
    assert re.findall(r"(\w+) loyalty\.services\.test \[\d+\] at \1", done.stderr) == shown, done.stderr
