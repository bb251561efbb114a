"""The monthly evaluation through Celery: a real worker (two processes) against Redis and against
RabbitMQ, over a shop in a SQLite file. `evaluate_month` splits the members into several id
ranges that the worker's processes take in parallel; the end state (tiers, tier changes,
webhook events) must equal an in-process `evaluate_tiers` run on an identical copy of the file.
Skipped when a broker does not answer, failed instead under LOYALTY_REQUIRE_SERVICES=1 (CI)."""

from __future__ import annotations

import json
import os
import re
import socket
import sqlite3
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from kombu import Connection

from tests.integration.test_celery_dispatch import CELERY, PATIENCE_SECONDS
from tests.integration.webhook_support import ROOT, FileShop

BROKERS = {
    "redis": "redis://127.0.0.1:6379/13",
    "rabbitmq": "amqp://guest:guest@127.0.0.1:5672//",
}
AS_OF = "2027-02-01T00:00:00+08:00"
MEMBERS = 45
CHUNK = 7  # 45 ids in 7 ranges
RANGES = 7

# Last year's orders made tiers (reached 2026-02-01) that expire on AS_OF; this year's decide
# whether each is renewed, lowered or raised. Every sixth member is invited, and some of them
# spent enough for black-gold.
SEED = f"""
import django
django.setup()
from datetime import datetime
from zoneinfo import ZoneInfo
from loyalty.clock import FixedClock
from loyalty.domain.events import parse_order
from loyalty.services.invitations import invite
from loyalty.services.members import register_member
from loyalty.services.orders import record_order
from loyalty.services.tiers import evaluate_tiers

zone = ZoneInfo("Asia/Shanghai")
def at(text):
    return datetime.fromisoformat(text).replace(tzinfo=zone)
clock = FixedClock(at("2027-01-20 09:00"))
def pay(order_id, member, paid_at, yuan):
    record_order(parse_order({{"order_id": order_id, "member": member, "paid_at": paid_at.isoformat(),
                              "amount": str(yuan)}}), clock=clock)
for number in range({MEMBERS}):
    member = f"m{{number:03d}}"
    register_member(member, clock=clock, registered_at=at("2025-06-01 00:00"))
    for order in range(number % 4):
        pay(f"{{member}}-old-{{order}}", member, at(f"2025-12-{{order + 1:02d}} 10:00"), 150 + number * 40)
    for order in range(number % 5):
        pay(f"{{member}}-new-{{order}}", member, at(f"2026-12-{{order + 1:02d}} 10:00"), 90 + number * 30)
    if number % 6 == 0:
        invite(member, operator="ops", clock=clock)
        if number % 12 == 0:
            pay(f"{{member}}-big", member, at("2026-11-11 11:00"), 12500)
evaluate_tiers(at("2026-02-01 00:00"), clock=clock)
"""
IN_PROCESS = f"""
import django
django.setup()
from datetime import datetime
from loyalty.services.tiers import evaluate_tiers
evaluate_tiers(datetime.fromisoformat("{AS_OF}"))
"""


def _answers(url: str) -> bool:
    where = urlsplit(url)
    try:
        socket.create_connection((where.hostname, where.port), timeout=2).close()
        return True
    except OSError:
        return False


@pytest.fixture(params=sorted(BROKERS))
def broker(request: pytest.FixtureRequest) -> str:
    url = BROKERS[request.param]
    if not _answers(url):
        reason = f"{request.param} at {url} does not answer"
        if os.environ.get("LOYALTY_REQUIRE_SERVICES") == "1":
            pytest.fail(f"{reason}, and LOYALTY_REQUIRE_SERVICES=1 requires it")
        pytest.skip(reason)
    return url


@pytest.fixture
def shop(tmp_path: Path) -> FileShop:
    """A migrated SQLite file with the default ruleset and MEMBERS members (see SEED)."""
    path = tmp_path / "shop.sqlite3"
    env = {**os.environ, "LOYALTY_DATABASE_URL": f"sqlite:///{path}", "DJANGO_SETTINGS_MODULE": "loyalty.settings"}
    shop = FileShop(path, env, "")
    shop.python("-m", "loyalty.cli", "migrate")
    shop.python("-m", "loyalty.cli", "ruleset", "publish", str(ROOT / "rulesets" / "default.yaml"),
                "--effective-from", "2020-01-01")
    shop.python("-c", SEED)
    return shop


@pytest.fixture
def worker(broker: str, shop: FileShop, tmp_path: Path) -> Iterator[tuple[FileShop, Path]]:
    """A worker of two processes on a queue of this test's own, over the shop's file; stopped
    with SIGTERM (a warm shutdown) afterwards, and its queue deleted."""
    queue = f"loyalty-test-{uuid.uuid4().hex}"
    env = {**shop.env, "LOYALTY_BROKER_URL": broker, "LOYALTY_CELERY_QUEUE": queue}
    log = tmp_path / "worker.log"
    with log.open("w") as output:
        process = subprocess.Popen(
            [str(CELERY), "-A", "loyalty.tasks", "worker", "--pool", "prefork", "--concurrency", "2",
             "--loglevel", "INFO", "--without-gossip", "--without-mingle", "--without-heartbeat",
             "--hostname", f"{queue}@%h"],
            cwd=tmp_path, env=env, stdout=output, stderr=subprocess.STDOUT)
    yield FileShop(shop.path, env, ""), log
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    with Connection(broker) as connection:
        connection.default_channel.queue_delete(queue)
        connection.default_channel.exchange_delete(queue)


def _copy(source: Path, target: Path) -> None:
    """A consistent copy of a SQLite database (its WAL included)."""
    with closing(sqlite3.connect(source)) as original, closing(sqlite3.connect(target)) as copy:
        original.backup(copy)


def _state(path: Path) -> dict[str, list[Any]]:
    """What an evaluation writes: members' tiers, tier changes, and their events (less the event's
    random id and the moment it was written)."""
    with closing(sqlite3.connect(path, timeout=30)) as database:
        def rows(sql: str) -> list[tuple[Any, ...]]:
            return [tuple(row) for row in database.execute(sql).fetchall()]

        events = []
        for member_id, key, kind, body in rows("SELECT member_id, key, type, body FROM outbox_events ORDER BY key"):
            data = json.loads(body)
            events.append((member_id, key, kind, data["type"], data["data"]))
        return {
            "members": rows("SELECT id, external_id, tier, tier_reached_at, tier_expires_at, invited FROM members "
                            "ORDER BY id"),
            "tier_changes": rows("SELECT member_id, key, from_tier, to_tier, reason, changed_at, expires_at, "
                                 "ruleset_version FROM tier_changes ORDER BY key"),
            "events": events,
        }


def _succeeded(log: Path, task: str) -> int:
    return len(re.findall(rf"Task loyalty\.tasks\.{task}\[[^\]]+\] succeeded", log.read_text()))


def test_a_month_evaluated_in_ranges_by_workers_equals_the_in_process_run(worker, tmp_path):
    shop, log = worker
    _copy(shop.path, tmp_path / "copy.sqlite3")
    copy = FileShop(tmp_path / "copy.sqlite3", {**shop.env, "LOYALTY_DATABASE_URL": f"sqlite:///{tmp_path}/copy.sqlite3"},
                    "")
    before = _state(shop.path)
    copy.python("-c", IN_PROCESS)
    expected = _state(copy.path)
    new_changes = [change for change in expected["tier_changes"] if change not in before["tier_changes"]]
    assert {change[4] for change in new_changes} >= {"upgrade", "renew", "downgrade"}, new_changes
    assert "black_gold" in {change[3] for change in new_changes}

    _send(shop, "evaluate_month", AS_OF, chunk=CHUNK)
    deadline = time.monotonic() + PATIENCE_SECONDS
    while (_state(shop.path) != expected or _succeeded(log, "evaluate_range") < RANGES) \
            and time.monotonic() < deadline:
        assert "ERROR" not in log.read_text(), log.read_text()
        time.sleep(0.2)
    assert _state(shop.path) == expected, log.read_text()
    assert _succeeded(log, "evaluate_month") == 1
    assert _succeeded(log, "evaluate_range") == RANGES, log.read_text()

    # Every range again (a redelivery, a second beat): nothing changes.
    _send(shop, "evaluate_month", AS_OF, chunk=CHUNK)
    deadline = time.monotonic() + PATIENCE_SECONDS
    while _succeeded(log, "evaluate_range") < 2 * RANGES and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _succeeded(log, "evaluate_range") == 2 * RANGES, log.read_text()
    assert _state(shop.path) == expected


def _send(shop: FileShop, task: str, *args: Any, **kwargs: Any) -> None:
    """`task.delay(...)` from a process configured like the worker (its broker, its queue)."""
    shop.python("-c", f"import loyalty.tasks as tasks; tasks.{task}.apply_async({args!r}, {kwargs!r})")
