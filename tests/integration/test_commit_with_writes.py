"""On PostgreSQL a batch's COMMIT travels with its writes (`raw.pipeline(last=True)`): the
transaction must end committed when the writes succeed, rolled back when one fails, and not be
ended early when work follows the writes or an outer transaction is open."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, connection, transaction

from loyalty.clock import FixedClock
from loyalty.domain.events import OrderEvent
from loyalty.domain.growth import Line
from loyalty.services.members import register_member
from loyalty.services.orders import record_order
from loyalty.store import raw
from loyalty.store.bulk import insert_rows
from loyalty.store.models import Member, Order
from tests.conftest import at

pytestmark = [pytest.mark.server_db, pytest.mark.django_db(transaction=True)]
MONDAY = at("2027-01-04 10:00")


def order(order_id: str, member: str = "m1", amount_fen: int = 10_000) -> OrderEvent:
    return OrderEvent(order_id, member, MONDAY, amount_fen, (Line(None, amount_fen),), ("sku",))


def test_an_order_is_committed_and_the_connection_left_idle(clock, default_rules):
    register_member("m1", clock=clock)
    record_order(order("o1"), clock=clock)
    assert not connection.in_atomic_block
    with raw.database().connection.cursor() as other:  # the same connection, a new statement
        other.execute("SELECT count(*) FROM orders WHERE order_id = 'o1'")
        assert other.fetchone() == (1,)
    assert Member.objects.get(external_id="m1").orders_count == 1


def test_a_failing_write_rolls_back_every_write_before_it(clock, default_rules):
    register_member("m1", clock=clock)
    member_id = Member.objects.get(external_id="m1").id
    fields = ("order_id", "member", "paid_at", "business_date", "amount_fen", "growth_base", "growth_bonus",
              "points", "ruleset_version", "payload_hash", "recorded_at")
    row = ("dup", member_id, MONDAY, MONDAY.date(), 100, 0, 0, 0, 1, "x", MONDAY)
    with pytest.raises(IntegrityError), transaction.atomic(), raw.pipeline(last=True):
        insert_rows(Order, fields, [row])
        insert_rows(Order, fields, [row])  # the UNIQUE order id stops the query before its COMMIT
    assert not Order.objects.filter(order_id="dup").exists()


def test_inside_an_outer_transaction_nothing_is_committed_early(clock, default_rules):
    register_member("m1", clock=clock)
    with pytest.raises(RuntimeError), transaction.atomic():
        record_order(order("o1"), clock=FixedClock(MONDAY))
        raise RuntimeError("the caller's transaction fails after the order")
    assert not Order.objects.filter(order_id="o1").exists()
