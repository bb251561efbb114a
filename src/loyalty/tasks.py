"""Celery: background work as thin tasks around the services, for shops that outgrow one machine.

    celery -A loyalty.tasks worker          # any number of them, on any machines
    celery -A loyalty.tasks beat            # exactly one: sends the schedule below

`LOYALTY_BROKER_URL` names the broker (default: RabbitMQ on 127.0.0.1 as guest), and
`LOYALTY_CELERY_QUEUE` the queue (default `loyalty`), so several shops can share one broker.
No result backend: the tasks' effects are in the database. Several dispatch tasks may run at
once (a slow run overlapping the next beat): deliveries are claimed, never sent twice.
"""

from __future__ import annotations

import os

import django
from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "loyalty.settings")
django.setup()

DEFAULT_BROKER = "amqp://guest:guest@127.0.0.1:5672//"
DISPATCH_EVERY_SECONDS = 30.0

app = Celery("loyalty", broker=os.environ.get("LOYALTY_BROKER_URL", DEFAULT_BROKER))
app.conf.update(
    task_default_queue=os.environ.get("LOYALTY_CELERY_QUEUE", "loyalty"),
    task_ignore_result=True,
    broker_connection_retry_on_startup=True,
    timezone="UTC",
    beat_schedule={
        "dispatch-webhooks": {
            "task": "loyalty.tasks.dispatch_webhooks",
            "schedule": DISPATCH_EVERY_SECONDS,
            # A tick nobody took in time is dropped, not piled up behind a stopped worker.
            "options": {"expires": DISPATCH_EVERY_SECONDS},
        },
    },
)


@app.task(name="loyalty.tasks.dispatch_webhooks")
def dispatch_webhooks(limit: int = 1000) -> dict[str, int]:
    """Deliver the webhook outbox once (see `services.webhooks.dispatch`); answers the counts."""
    from loyalty.services.webhooks import dispatch

    counts = dispatch(limit=limit)
    return {"fanned_out": counts.fanned_out, "delivered": counts.delivered, "failed": counts.failed,
            "parked": counts.parked}
