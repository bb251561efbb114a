"""The API over real HTTP: `loyalty serve` (gunicorn) in its own process on loopback, over a
SQLite file built with the `loyalty` command itself (migrate, apikey create, ruleset publish).
The calls are the curl session the README shows: register a member, post an order, read the
member's tier and balances.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
LOYALTY = str(Path(sys.executable).with_name("loyalty"))  # the venv's console script
STARTUP_SECONDS = 60


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: Any


@dataclass
class Server:
    base: str
    key: str
    log: Path

    def call(self, method: str, path: str, body: Any = None, *, key: str | None = None) -> Reply:
        headers = {"Content-Type": "application/json"}
        chosen = self.key if key is None else key
        if chosen:
            headers["Authorization"] = f"Bearer {chosen}"
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base + path, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return Reply(response.status, dict(response.headers), json.loads(response.read()))
        except urllib.error.HTTPError as error:
            with error:
                return Reply(error.code, dict(error.headers), json.loads(error.read()))


def _wait_until_healthy(process: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"loyalty serve exited with {process.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.2)
    pytest.fail(f"/healthz did not answer within {STARTUP_SECONDS} s:\n{log.read_text()}")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server for the module: its start (migrate, key, ruleset, gunicorn) is the slow part."""
    tmp_path = tmp_path_factory.mktemp("live")
    # A secret key of its own: `loyalty serve` refuses the public development default.
    env = {**os.environ, "LOYALTY_DATABASE_URL": f"sqlite:///{tmp_path / 'live.sqlite3'}",
           "LOYALTY_SECRET_KEY": "live-server-" + "k" * 50}
    env.pop("DJANGO_SETTINGS_MODULE", None)

    def loyalty(*args: str) -> str:
        done = subprocess.run([LOYALTY, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    loyalty("migrate")
    key = loyalty("apikey", "create", "shop", "--scope", "events:write", "--scope", "members:read",
                  "--scope", "members:write").strip()
    assert key.startswith("lk_") and "\n" not in key
    loyalty("ruleset", "publish", str(ROOT / "rulesets" / "default.yaml"), "--effective-from", "2020-01-01")

    port, log = _free_port(), tmp_path / "serve.log"
    with log.open("wb") as output:
        process = subprocess.Popen([LOYALTY, "serve", "--port", str(port), "--workers", "1"], cwd=tmp_path, env=env,
                                   stdout=output, stderr=output)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_until_healthy(process, base + "/healthz", log)
        yield Server(base + "/api/v1", key, log)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def test_register_order_and_read_the_tier_over_http(server):
    registered = server.call("POST", "/members", {"external_id": "m-10001", "birthday": "1990-05-17"})
    assert registered.status == 201, registered.body
    assert registered.body["external_id"] == "m-10001"
    assert registered.headers["Content-Type"].startswith("application/json")

    order = {"order_id": "o-20270104-001", "member": "m-10001", "paid_at": "2027-01-04T10:30:00+08:00",
             "amount": "128.00", "items": [{"sku": "sku-42", "category": "fresh", "amount": "128.00"}]}
    paid = server.call("POST", "/events/orders", order)
    assert paid.status == 201, paid.body
    # 128 yuan of fresh food on a Monday: growth 128 × 1.5 = 192, points 1 per yuan.
    assert paid.body == {"order_id": "o-20270104-001", "member": "m-10001", "growth": 192, "points": 128,
                         "ruleset_version": 1, "capped_reason": ""}
    assert "Idempotent-Replayed" not in paid.headers

    replayed = server.call("POST", "/events/orders", order)
    assert (replayed.status, replayed.body) == (201, paid.body)
    assert replayed.headers["Idempotent-Replayed"] == "true"

    status = server.call("GET", "/members/m-10001")
    assert status.status == 200, status.body
    assert status.body["tier"] == {"code": "bronze", "name": "青铜"}  # tiers move on the monthly evaluation
    assert (status.body["growth_balance"], status.body["points_balance"]) == (192, 128)
    assert status.body["next_tier"]["code"] == "silver"


def test_errors_over_http_are_json_with_their_status(server):
    anonymous = server.call("GET", "/members/m-10001", key="")
    assert anonymous.status == 401
    assert anonymous.headers["WWW-Authenticate"] == "Bearer"
    assert anonymous.body["error"]["code"] == "unauthenticated"

    unknown = server.call("GET", "/members/nobody")
    assert (unknown.status, unknown.body["error"]["code"]) == (404, "unknown_member")

    nowhere = server.call("GET", "/nothing-here")
    assert (nowhere.status, nowhere.body["error"]["code"]) == (404, "not_found")
    wrong = server.call("DELETE", "/members")
    assert (wrong.status, wrong.body["error"]["code"], wrong.headers["Allow"]) == (405, "method_not_allowed", "POST")

    bad = server.call("POST", "/events/orders", {"order_id": "o-1", "member": "m-10001", "amount": "12.345",
                                                 "paid_at": "2027-01-04T10:30:00+08:00"})
    assert (bad.status, bad.body["error"]["field"]) == (422, "amount")


def test_a_burst_of_one_order_and_one_check_in_over_http_credits_each_once(server):
    assert server.call("POST", "/members", {"external_id": "m-burst"}).status == 201
    order = {"order_id": "o-burst", "member": "m-burst", "paid_at": "2027-01-04T10:30:00+08:00", "amount": "100.00",
             "device_id": "phone-burst", "ip": "203.0.113.7"}
    check_in = {"event_id": "c-burst", "member": "m-burst", "type": "check_in", "at": "2027-01-04T08:00:00+08:00",
                "device_id": "phone-burst"}
    with ThreadPoolExecutor(max_workers=20) as pool:
        paid = list(pool.map(lambda _: server.call("POST", "/events/orders", order), range(20)))
        checked = list(pool.map(lambda _: server.call("POST", "/events/actions", check_in), range(20)))
    for replies, credited in ((paid, 100), (checked, 5)):
        assert {(reply.status, reply.body["growth"], reply.body["capped_reason"]) for reply in replies} == {
            (201, credited, "")}
        assert sorted(reply.headers.get("Idempotent-Replayed", "") for reply in replies) == [""] + ["true"] * 19
    status = server.call("GET", "/members/m-burst")
    assert (status.body["growth_balance"], status.body["points_balance"]) == (105, 100)
