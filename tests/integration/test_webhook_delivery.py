"""Webhook delivery over real HTTP to a real receiver (a local server in a thread): signed
bodies, retries with growing backoff, parking and replay, dead and hanging endpoints, two
dispatchers at once (PostgreSQL, MariaDB), the operators' console and the CLI."""

import json
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.contrib.auth.models import User
from django.db import connection, transaction

from loyalty.clock import FixedClock, system_clock
from loyalty.services.adjustments import adjust
from loyalty.services.members import register_member
from loyalty.services.outbox import Emission, emit_many
from loyalty.services.webhooks import create_endpoint, dispatch, fan_out, replay, verify
from loyalty.store.models import Member, OutboxEvent, WebhookDelivery, WebhookEndpoint
from tests.integration.webhook_support import Receiver, closed_port_url, seeded_database


@pytest.fixture
def receiver():
    receiver = Receiver()
    yield receiver
    receiver.close()


@pytest.fixture
def shop(default_rules, clock):
    register_member("m1", clock=clock)
    return clock


def credit(clock, adjustment_id="a1", delta=50):
    return adjust("m1", "points", delta, reason="goodwill", actor="ops:li", adjustment_id=adjustment_id, clock=clock)


def sent(counts):
    return (counts.fanned_out, counts.delivered, counts.failed, counts.parked)


def delivery():
    return WebhookDelivery.objects.select_related("event").get()


def test_an_event_arrives_signed_and_the_receiver_verifies_it(shop, receiver):
    endpoint = create_endpoint(receiver.url, clock=shop)
    credit(shop)
    assert sent(dispatch(clock=shop)) == (1, 1, 0, 0)
    event = OutboxEvent.objects.get()
    (request,) = receiver.requests
    assert (request.method, request.path) == ("POST", "/hooks/loyalty")
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Loyalty-Event-Id"] == event.event_id
    assert request.headers["Loyalty-Event-Type"] == "points.adjusted"
    assert request.body == event.body.encode()
    verify(endpoint.secret, request.headers["Loyalty-Signature"], request.body, shop.now())
    assert json.loads(request.body)["data"]["delta"] == 50
    row = delivery()
    assert (row.state, row.attempts, row.last_status, row.last_error, row.delivered_at) == (
        "delivered", 1, 200, "", shop.now())
    assert event.fanned_out_at == shop.now()
    assert sent(dispatch(clock=shop)) == (0, 0, 0, 0)
    assert len(receiver.requests) == 1


def test_each_endpoint_gets_the_types_it_wants_and_an_inactive_one_nothing(shop, receiver):
    wants_points = create_endpoint(receiver.url + "/points", ["points.adjusted"], clock=shop)
    create_endpoint(receiver.url + "/tiers", ["member.tier_changed"], clock=shop)
    wants_all = create_endpoint(receiver.url + "/all", clock=shop)
    WebhookEndpoint.objects.filter(id=create_endpoint(receiver.url + "/off", clock=shop).id).update(active=False)
    credit(shop)
    assert sent(dispatch(clock=shop)) == (1, 2, 0, 0)
    assert sorted(r.path for r in receiver.requests) == ["/hooks/loyalty/all", "/hooks/loyalty/points"]
    assert set(WebhookDelivery.objects.values_list("endpoint_id", flat=True)) == {wants_points.id, wants_all.id}


def test_an_event_emitted_while_no_endpoint_wants_it_is_fanned_out_to_nobody(shop, receiver):
    credit(shop)
    assert sent(dispatch(clock=shop)) == (1, 0, 0, 0)
    create_endpoint(receiver.url, clock=shop)
    assert sent(dispatch(clock=shop)) == (0, 0, 0, 0)
    assert receiver.requests == []


def test_failures_are_retried_with_growing_backoff_until_delivered(shop, receiver):
    endpoint = create_endpoint(receiver.url, clock=shop)
    receiver.answer(500, 503, 404)
    credit(shop)
    waits = []
    for attempts in (1, 2, 3):
        assert sent(dispatch(clock=shop))[1:] == (0, 1, 0)
        row = delivery()
        assert (row.state, row.attempts, row.last_status) == ("pending", attempts, (500, 503, 404)[attempts - 1])
        waits.append((row.next_attempt_at - shop.now()).total_seconds())
        assert sent(dispatch(clock=shop)) == (0, 0, 0, 0)  # not due yet: nothing is sent
        shop.advance(seconds=waits[-1])
    assert sent(dispatch(clock=shop))[1:] == (1, 0, 0)
    assert 30 <= waits[0] <= 33 and 60 <= waits[1] <= 66 and 120 <= waits[2] <= 132  # 30 s × 2^n, +≤10 %
    assert delivery().state == "delivered" and delivery().attempts == 4
    # Every attempt sent the same event, signed afresh when it was sent.
    assert len({r.headers["Loyalty-Event-Id"] for r in receiver.requests}) == 1
    assert len({r.body for r in receiver.requests}) == 1
    assert len({r.headers["Loyalty-Signature"] for r in receiver.requests}) == 4
    verify(endpoint.secret, receiver.requests[-1].headers["Loyalty-Signature"], receiver.requests[-1].body, shop.now())


def test_a_redirect_is_a_failure_not_a_reason_to_post_elsewhere(shop, receiver):
    create_endpoint(receiver.url, clock=shop)
    receiver.answer(302)
    credit(shop)
    assert sent(dispatch(clock=shop)) == (1, 0, 1, 0)
    assert (delivery().last_status, len(receiver.requests)) == (302, 1)


def test_a_delivery_is_parked_after_the_last_allowed_failure_and_an_operator_replays_it(shop, receiver, settings):
    settings.LOYALTY_WEBHOOK_MAX_ATTEMPTS = 3
    create_endpoint(receiver.url, clock=shop)
    receiver.answer(500, 500, 500)
    credit(shop)
    assert sent(dispatch(clock=shop)) == (1, 0, 1, 0)
    shop.advance(minutes=1)
    assert sent(dispatch(clock=shop)) == (0, 0, 1, 0)
    shop.advance(minutes=2)
    assert sent(dispatch(clock=shop)) == (0, 0, 1, 1)
    row = delivery()
    assert (row.state, row.attempts, row.last_status, row.last_error) == ("parked", 3, 500, "HTTP 500 ok")
    shop.advance(days=30)
    assert sent(dispatch(clock=shop)) == (0, 0, 0, 0)  # parked stays parked
    assert replay([row.id], clock=shop) == 1
    assert (delivery().state, delivery().attempts) == ("pending", 0)
    assert sent(dispatch(clock=shop)) == (0, 1, 0, 0)
    assert len(receiver.requests) == 4
    assert replay([row.id, row.id + 1000], clock=shop) == 1  # a delivered one may be sent again, too
    assert sent(dispatch(clock=shop)) == (0, 1, 0, 0)


def test_replay_leaves_a_pending_delivery_alone(shop, receiver):
    create_endpoint(receiver.url, clock=shop)
    receiver.answer(500)
    credit(shop)
    dispatch(clock=shop)
    before = delivery()
    assert replay([before.id], clock=shop) == 0
    assert delivery().next_attempt_at == before.next_attempt_at


def test_the_max_attempts_argument_overrides_the_setting(shop, receiver):
    create_endpoint(receiver.url, clock=shop)
    receiver.answer(500)
    credit(shop)
    assert sent(dispatch(clock=shop, max_attempts=1)) == (1, 0, 1, 1)


def test_an_unreachable_endpoint_counts_as_a_failure(shop):
    create_endpoint(closed_port_url(), clock=shop)
    credit(shop)
    assert sent(dispatch(clock=shop)) == (1, 0, 1, 0)
    row = delivery()
    assert (row.state, row.attempts, row.last_status) == ("pending", 1, None)
    assert "refused" in row.last_error.lower()


def test_an_endpoint_that_does_not_answer_fails_after_the_timeout(shop, receiver):
    create_endpoint(receiver.url, clock=shop)
    receiver.hang()
    credit(shop)
    assert sent(dispatch(clock=shop, timeout=0.3)) == (1, 0, 1, 0)
    assert "timed out" in delivery().last_error.lower()
    assert len(receiver.requests) == 1


def test_a_deactivated_endpoint_gets_nothing_more(shop, receiver):
    endpoint = create_endpoint(receiver.url, clock=shop)
    credit(shop)
    assert fan_out(shop.now(), limit=10) == 1
    WebhookEndpoint.objects.filter(id=endpoint.id).update(active=False)
    assert sent(dispatch(clock=shop)) == (0, 0, 0, 0)
    assert receiver.requests == []
    assert delivery().state == "pending"


def test_the_limit_bounds_one_run(shop, receiver):
    create_endpoint(receiver.url, clock=shop)
    for n in range(5):
        credit(shop, f"a{n}")
    assert sent(dispatch(clock=shop, limit=2)) == (2, 2, 0, 0)
    assert sent(dispatch(clock=shop, limit=10)) == (3, 3, 0, 0)
    assert len(receiver.requests) == 5


def test_dispatch_refuses_to_run_inside_a_transaction(shop):
    with pytest.raises(RuntimeError), transaction.atomic():
        dispatch(clock=shop)


@pytest.mark.django_db(transaction=True)
def test_no_transaction_is_open_while_the_request_is_sent(default_rules, receiver):
    clock = FixedClock(system_clock.now())
    register_member("m1", clock=clock)
    create_endpoint(receiver.url, clock=clock)
    credit(clock)
    dispatcher = connection  # this thread's connection, looked at from the receiver's thread
    seen = []
    receiver.on_request = lambda: seen.append(dispatcher.in_atomic_block)
    assert sent(dispatch(clock=clock)) == (1, 1, 0, 0)
    assert seen == [False]


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_adjustment_leaves_nothing_to_deliver(default_rules, receiver):
    clock = FixedClock(system_clock.now())
    register_member("m1", clock=clock)
    create_endpoint(receiver.url, clock=clock)

    class Abandoned(Exception):
        pass

    with pytest.raises(Abandoned), transaction.atomic():
        credit(clock)
        raise Abandoned
    assert sent(dispatch(clock=clock)) == (0, 0, 0, 0)
    assert not OutboxEvent.objects.exists()
    assert receiver.requests == []


# Two dispatchers at once: row locks (PostgreSQL, MariaDB) ----------------------------------


@pytest.mark.server_db
@pytest.mark.django_db(transaction=True)
def test_concurrent_dispatchers_deliver_each_event_exactly_once(default_rules, receiver):
    clock = FixedClock(system_clock.now())
    register_member("m1", clock=clock)
    create_endpoint(receiver.url + "/a", clock=clock)
    create_endpoint(receiver.url + "/b", clock=clock)
    member_id = Member.objects.get().id
    with transaction.atomic():
        emit_many(Emission(member_id, "coupon.issued", f"coupon:{n}", {"code": f"C{n}"}, clock.now())
                  for n in range(120))
    dispatchers = 4
    barrier = threading.Barrier(dispatchers)

    def run(index: int) -> list[tuple[int, int, int, int]]:
        try:
            barrier.wait()
            runs = []
            while (counts := dispatch(clock=clock, limit=7)).fanned_out or counts.attempted:
                runs.append(sent(counts))
            return runs
        finally:
            connection.close()

    with ThreadPoolExecutor(dispatchers) as pool:
        runs = [counts for result in pool.map(run, range(dispatchers)) for counts in result]
    assert sum(r[0] for r in runs) == 120
    assert sum(r[1] for r in runs) == 240
    received = [(r.path, r.headers["Loyalty-Event-Id"]) for r in receiver.requests]
    assert len(received) == len(set(received)) == 240
    assert WebhookDelivery.objects.filter(state="delivered", attempts=1).count() == 240
    assert sum(1 for r in runs if r[1]) > 1  # the work was shared, not done by one dispatcher


# The operators' console --------------------------------------------------------------------


@pytest.fixture
def operator(client, db):
    client.force_login(User.objects.create_superuser("ops", "ops@example.com", "secret"))
    return client


def test_an_operator_adds_an_endpoint_and_its_secret_is_generated_and_then_read_only(operator, shop, receiver):
    form = operator.get("/admin/loyalty/webhookendpoint/add/")
    assert form.status_code == 200 and b"member.tier_changed" in form.content
    page = operator.post("/admin/loyalty/webhookendpoint/add/", {
        "url": receiver.url, "events": ["points.adjusted"], "active": "on", "description": "the app", "secret": ""})
    assert page.status_code == 302, page.content
    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.secret.startswith("whsec_") and endpoint.events == ["points.adjusted"]
    change = operator.get(f"/admin/loyalty/webhookendpoint/{endpoint.id}/change/")
    assert endpoint.secret.encode() in change.content
    assert b'name="secret"' not in change.content
    refused = operator.post("/admin/loyalty/webhookendpoint/add/", {"url": "ftp://shop.example/x", "secret": ""})
    assert refused.status_code == 200 and WebhookEndpoint.objects.count() == 1


def test_an_operator_finds_a_parked_delivery_and_replays_it(operator, shop, receiver):
    create_endpoint(receiver.url, clock=shop)
    receiver.answer(500)
    credit(shop)
    dispatch(clock=shop, max_attempts=1)
    parked = delivery()
    for query in ("", "?state__exact=parked", "?error=yes", "?last_status__exact=500", "?attempts__exact=1"):
        listing = operator.get(f"/admin/loyalty/webhookdelivery/{query}")
        assert listing.status_code == 200 and parked.event.event_id.encode() in listing.content
    assert operator.get("/admin/loyalty/outboxevent/").status_code == 200
    shown = operator.get(f"/admin/loyalty/outboxevent/{parked.event.id}/change/")
    assert parked.event.event_id.encode() in shown.content
    done = operator.post("/admin/loyalty/webhookdelivery/", {
        "action": "replay_deliveries", "_selected_action": [parked.id]})
    assert done.status_code == 302
    assert delivery().state == "pending"
    assert sent(dispatch(clock=system_clock)) == (0, 1, 0, 0)
    assert operator.get("/admin/loyalty/webhookdelivery/add/").status_code == 403


# The command line --------------------------------------------------------------------------

def test_the_cli_adds_an_endpoint_and_dispatches(tmp_path, receiver):
    shop = seeded_database(tmp_path, receiver)
    assert shop.secret.startswith("whsec_")
    assert shop.python("-m", "loyalty.cli", "webhooks", "dispatch").strip() == (
        "fanned out 1, delivered 1, failed 0, parked 0")
    (request,) = receiver.requests
    verify(shop.secret, request.headers["Loyalty-Signature"], request.body, system_clock.now())
    assert json.loads(request.body)["data"]["adjustment_id"] == "a1"
    assert "delivered 0" in shop.python("-m", "loyalty.cli", "webhooks", "dispatch")
