"""The dispatcher as a Celery task: a real worker process, the local RabbitMQ, a database file the
worker opens, and a real receiver. Skipped when RabbitMQ does not answer, failed instead under
LOYALTY_REQUIRE_SERVICES=1 (CI)."""

import os
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from contextlib import closing
from pathlib import Path

import pytest

from loyalty.clock import system_clock
from loyalty.services.webhooks import verify
from tests.integration.webhook_support import Receiver, seeded_database

BROKER = ("127.0.0.1", 5672)
CELERY = Path(sys.executable).with_name("celery")
PATIENCE_SECONDS = 120  # an upper bound for a slow machine, not a timing that is asserted


@pytest.fixture
def rabbitmq():
    try:
        socket.create_connection(BROKER, timeout=2).close()
    except OSError:
        reason = f"RabbitMQ at {BROKER[0]}:{BROKER[1]} does not answer"
        if os.environ.get("LOYALTY_REQUIRE_SERVICES") == "1":
            pytest.fail(f"{reason}, and LOYALTY_REQUIRE_SERVICES=1 requires it")
        pytest.skip(reason)


@pytest.fixture
def receiver():
    receiver = Receiver()
    yield receiver
    receiver.close()


@pytest.fixture
def worker(rabbitmq, tmp_path, receiver):
    """A worker on a queue of this test's own (so that no other worker on the broker takes its
    task), over a seeded database file. Stopped with SIGTERM (a warm shutdown) afterwards."""
    shop = seeded_database(tmp_path, receiver)
    queue = f"loyalty-test-{uuid.uuid4().hex}"
    log = tmp_path / "worker.log"
    with log.open("w") as output:
        process = subprocess.Popen(
            [str(CELERY), "-A", "loyalty.tasks", "worker", "--pool", "solo", "--loglevel", "INFO",
             "--without-gossip", "--without-mingle", "--without-heartbeat", "--hostname", f"{queue}@%h"],
            cwd=tmp_path, env={**shop.env, "LOYALTY_CELERY_QUEUE": queue}, stdout=output, stderr=subprocess.STDOUT)
    yield shop, queue, log
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    _delete_queue(queue)


def _delete_queue(queue: str) -> None:
    from loyalty.tasks import app

    with app.connection_for_write() as connection:
        connection.default_channel.queue_delete(queue)
        connection.default_channel.exchange_delete(queue)  # the worker declared one named alike


def test_a_worker_delivers_the_outbox_when_the_task_is_sent(worker, receiver):
    from loyalty.tasks import app, dispatch_webhooks

    shop, queue, log = worker
    # `delay()` to the queue this test's worker consumes (the default queue comes from
    # LOYALTY_CELERY_QUEUE, read when the worker starts).
    with app.connection_for_write() as connection:
        dispatch_webhooks.apply_async(queue=queue, connection=connection)
    assert receiver.wait_for(1, PATIENCE_SECONDS), log.read_text()
    (request,) = receiver.requests
    assert request.headers["Loyalty-Event-Type"] == "points.adjusted"
    verify(shop.secret, request.headers["Loyalty-Signature"], request.body, system_clock.now())
    assert _delivery_state(shop.path) == "delivered", log.read_text()


def _delivery_state(path: Path) -> str:
    """The delivery's state once the worker has recorded the answer (it does so just after it)."""
    deadline = system_clock.now().timestamp() + PATIENCE_SECONDS
    with closing(sqlite3.connect(path)) as database:
        while True:
            (state,) = database.execute("SELECT state FROM webhook_deliveries").fetchone()
            if state != "pending" or system_clock.now().timestamp() > deadline:
                return str(state)
            time.sleep(0.05)
