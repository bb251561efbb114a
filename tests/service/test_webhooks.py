"""The outbox and the webhook contract: events written with their change, once; canonical bodies;
endpoints; signatures that a receiver can check and that a replay or a tampered body fails.
(Delivery over real HTTP is in tests/integration/test_webhook_delivery.py.)"""

import hashlib
import hmac
import json
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.db import transaction

from loyalty.clock import system_clock
from loyalty.domain.errors import InvalidInput, Refused
from loyalty.services.adjustments import adjust
from loyalty.services.members import register_member
from loyalty.services.outbox import Emission, emit, emit_many
from loyalty.services.tiers import evaluate_tiers
from loyalty.services.webhooks import (
    InvalidSignature,
    backoff,
    create_endpoint,
    sign,
    signature_header,
    verify,
)
from loyalty.store.models import Adjustment, OutboxEvent, TierChange
from tests.conftest import at
from tests.service.support import pay

FEB_2027 = at("2027-02-01 00:00")
SECRET = "whsec_test-secret"


@pytest.fixture
def m1(default_rules, clock):
    return register_member("m1", clock=clock).member


def credit(clock, delta=50, adjustment_id="a1", ledger="points"):
    return adjust("m1", ledger, delta, reason="goodwill after a late delivery", actor="ops:li",
                  adjustment_id=adjustment_id, clock=clock)


def bodies(type=None):
    events = OutboxEvent.objects.order_by("id")
    if type is not None:
        events = events.filter(type=type)
    return [json.loads(event.body) for event in events]


# The outbox --------------------------------------------------------------------------------


def test_an_event_body_is_canonical_json_with_money_as_a_decimal_string(m1, clock):
    assert emit(m1.id, "coupon.issued", "coupon:c1", {"code": "C1", "value": Decimal("8.00")}, clock.now()) == 1
    event = OutboxEvent.objects.get()
    assert event.event_id.startswith("evt_") and len(event.event_id) == 36
    assert event.body == ('{"created_at":"2027-01-04T01:00:00Z","data":{"code":"C1","value":"8.00"},'
                          f'"id":"{event.event_id}","type":"coupon.issued"}}')
    assert (event.type, event.key, event.member_id, event.created_at) == (
        "coupon.issued", "coupon.issued:coupon:c1", m1.id, clock.now())
    assert event.fanned_out_at is None


def test_a_second_emit_of_the_same_key_writes_nothing(m1, clock):
    assert emit(m1.id, "coupon.issued", "coupon:c1", {"code": "C1"}, clock.now()) == 1
    first = OutboxEvent.objects.get().body
    assert emit(m1.id, "coupon.issued", "coupon:c1", {"code": "C1"}, clock.now()) == 0
    again = [Emission(m1.id, "coupon.issued", key, {"code": key}, clock.now()) for key in ("coupon:c1", "c2", "c2")]
    assert emit_many(again) == 1
    assert OutboxEvent.objects.count() == 2
    assert OutboxEvent.objects.get(key="coupon.issued:coupon:c1").body == first


def test_one_key_may_carry_one_event_of_each_type(m1, clock):
    emit(m1.id, "points.expiring", "lot:7", {"points": 10}, clock.now())
    emit(m1.id, "member.downgrade_warning", "lot:7", {"tier": "gold"}, clock.now())
    assert OutboxEvent.objects.count() == 2


def test_an_unknown_event_type_is_refused(m1, clock):
    with pytest.raises(InvalidInput) as raised:
        emit(m1.id, "member.deleted", "x", {}, clock.now())
    assert raised.value.field == "type"
    assert not OutboxEvent.objects.exists()


def test_a_float_never_reaches_an_event_body(m1, clock):
    with pytest.raises(TypeError):
        emit(m1.id, "coupon.issued", "c1", {"lines": [{"value": 8.0}]}, clock.now())
    assert not OutboxEvent.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_an_event_outside_a_transaction_is_refused(default_rules, clock):
    member = register_member("m1", clock=clock).member
    with pytest.raises(RuntimeError):
        emit(member.id, "coupon.issued", "c1", {}, clock.now())
    assert not OutboxEvent.objects.exists()


# Emitted by the services -------------------------------------------------------------------


def test_a_points_adjustment_emits_one_points_adjusted_event(m1, clock):
    credit(clock, 50)
    credit(clock, -20, adjustment_id="a2")
    first, second = bodies()
    assert first == {"id": OutboxEvent.objects.first().event_id, "type": "points.adjusted",
                     "created_at": "2027-01-04T01:00:00Z",
                     "data": {"member": "m1", "adjustment_id": "a1", "delta": 50,
                              "reason": "goodwill after a late delivery", "actor": "ops:li"}}
    assert (second["data"]["adjustment_id"], second["data"]["delta"]) == ("a2", -20)
    assert first["id"] != second["id"]


def test_a_rerun_adjustment_emits_nothing_more(m1, clock):
    credit(clock)
    assert credit(clock).replayed
    assert OutboxEvent.objects.filter(type="points.adjusted").count() == 1


def test_a_growth_adjustment_is_not_a_points_event(m1, clock):
    credit(clock, ledger="growth")
    assert not OutboxEvent.objects.exists()


def test_a_refused_adjustment_emits_nothing(m1, clock):
    with pytest.raises(Refused):
        credit(clock, -10)
    assert not OutboxEvent.objects.exists()


def test_the_event_is_written_in_the_adjustments_own_transaction(m1, clock):
    class Abandoned(Exception):
        pass

    with pytest.raises(Abandoned), transaction.atomic():
        credit(clock)
        assert OutboxEvent.objects.count() == 1  # written, not yet committed
        raise Abandoned  # the caller's transaction rolls back: the change and its event go together
    assert not Adjustment.objects.exists()
    assert not OutboxEvent.objects.exists()


def test_a_tier_change_emits_one_tier_changed_event(m1, clock):
    register_member("m2", clock=clock)
    pay("o1", "m1", at("2027-01-04 10:00"), "800", clock)
    evaluate_tiers(FEB_2027, clock=clock)
    change = TierChange.objects.get()
    (body,) = bodies("member.tier_changed")
    assert body["data"] == {"member": "m1", "from_tier": "bronze", "to_tier": "gold", "reason": "upgrade",
                            "changed_at": "2027-01-31T16:00:00Z", "expires_at": "2028-01-31T16:00:00Z",
                            "ruleset_version": 1}
    assert body["created_at"] == "2027-01-04T01:00:00Z"  # when it was recorded, by the service's clock
    assert OutboxEvent.objects.get().key == f"member.tier_changed:{change.key}"


def test_a_rerun_evaluation_emits_nothing_more(m1, clock):
    pay("o1", "m1", at("2027-01-04 10:00"), "100", clock)
    evaluate_tiers(FEB_2027, clock=clock)
    evaluate_tiers(FEB_2027, clock=clock)
    assert TierChange.objects.count() == OutboxEvent.objects.count() == 1


def test_an_immediate_upgrade_emits_its_event_with_the_order(publish, clock):
    publish("default", evaluation={"immediate_upgrade": True})
    register_member("m1", clock=clock)
    pay("o1", "m1", at("2027-01-04 10:00"), "800", clock)
    pay("o1", "m1", at("2027-01-04 10:00"), "800", clock)  # a replayed order moves nothing
    assert [b["data"]["to_tier"] for b in bodies("member.tier_changed")] == ["gold"]


# Endpoints ---------------------------------------------------------------------------------


def test_a_new_endpoint_gets_a_fresh_secret(db, clock):
    one = create_endpoint("https://shop.example/hooks", ["points.adjusted"], "points to the app", clock=clock)
    two = create_endpoint("http://127.0.0.1:8080/hooks", clock=clock)
    assert one.secret.startswith("whsec_") and len(one.secret) > 40
    assert one.secret != two.secret
    assert (one.events, two.events, one.active, one.created_at) == (["points.adjusted"], [], True, clock.now())
    assert one.wants("points.adjusted") and not one.wants("coupon.issued")
    assert two.wants("coupon.issued")


@pytest.mark.parametrize("url", ["ftp://shop.example/hooks", "shop.example/hooks", "javascript:alert(1)",
                                 "https://", "https://shop.example/" + "x" * 500])
def test_an_endpoint_must_be_an_http_address(db, url):
    with pytest.raises(InvalidInput) as raised:
        create_endpoint(url)
    assert raised.value.field == "url"


def test_an_endpoint_must_name_known_events(db):
    with pytest.raises(InvalidInput) as raised:
        create_endpoint("https://shop.example/hooks", ["points.adjusted", "points.stolen"])
    assert (raised.value.field, "points.stolen" in raised.value.message) == ("events", True)


# Signatures --------------------------------------------------------------------------------

BODY = '{"data":{"delta":50},"id":"evt_1","type":"points.adjusted"}'
SENT = 1_800_000_000  # unix seconds


def test_the_signature_is_hmac_sha256_of_the_timestamp_dot_body():
    expected = hmac.new(SECRET.encode(), f"{SENT}.{BODY}".encode(), hashlib.sha256).hexdigest()
    assert sign(SECRET, SENT, BODY) == sign(SECRET, SENT, BODY.encode()) == expected
    assert signature_header(SECRET, SENT, BODY) == f"t={SENT},v1={expected}"


@pytest.mark.parametrize("late", [0, 299, -299, 300])
def test_a_genuine_signature_within_the_tolerance_verifies(late):
    verify(SECRET, signature_header(SECRET, SENT, BODY), BODY.encode(), SENT + late)


def test_the_receivers_clock_may_be_a_datetime(clock):
    sent = int(clock.now().timestamp())
    verify(SECRET, signature_header(SECRET, sent, BODY), BODY, clock.now() + timedelta(seconds=10))


def test_a_tampered_body_is_rejected():
    header = signature_header(SECRET, SENT, BODY)
    with pytest.raises(InvalidSignature):
        verify(SECRET, header, BODY.replace("50", "5000"), SENT)


def test_a_signature_under_another_secret_is_rejected():
    with pytest.raises(InvalidSignature):
        verify(SECRET, signature_header("whsec_other", SENT, BODY), BODY, SENT)


@pytest.mark.parametrize("late", [301, -301, 86_400])
def test_a_stale_or_future_timestamp_is_rejected(late):
    with pytest.raises(InvalidSignature, match="stale"):
        verify(SECRET, signature_header(SECRET, SENT, BODY), BODY, SENT + late)


def test_a_replayed_old_signature_is_rejected_however_it_is_dressed_up():
    captured = signature_header(SECRET, SENT, BODY)
    a_day_later = SENT + 86_400
    with pytest.raises(InvalidSignature):  # sent again as it was: too old
        verify(SECRET, captured, BODY, a_day_later)
    old_signature = captured.split("v1=")[1]
    with pytest.raises(InvalidSignature):  # with a fresh timestamp: the signature no longer matches
        verify(SECRET, f"t={a_day_later},v1={old_signature}", BODY, a_day_later)


@pytest.mark.parametrize("header", ["", "garbage", f"t={SENT}", "v1=abc", "t=,v1=abc", "t=12x,v1=abc",
                                    f"t={SENT},t={SENT},v1=abc", "t=１２３,v1=abc", f"t={SENT};v1=abc"])
def test_a_malformed_header_is_rejected(header):
    with pytest.raises(InvalidSignature):
        verify(SECRET, header, BODY, SENT)


def test_any_matching_v1_passes_during_a_secret_rotation():
    header = f"{signature_header('whsec_old', SENT, BODY)},v1={sign(SECRET, SENT, BODY)}"
    verify(SECRET, header, BODY, SENT)
    verify("whsec_old", header, BODY, SENT)


# Backoff -----------------------------------------------------------------------------------


def test_backoff_doubles_from_30_seconds_with_at_most_a_tenth_of_jitter_and_is_capped():
    assert [backoff(n, jitter=0).total_seconds() for n in range(1, 9)] == [30, 60, 120, 240, 480, 960, 1920, 3840]
    assert backoff(1, jitter=1).total_seconds() == 33
    assert all(30 <= backoff(1).total_seconds() <= 33 for _ in range(100))
    assert backoff(50, jitter=0) == backoff(100, jitter=0) == timedelta(hours=6)


def test_the_receiver_example_in_the_docs_accepts_a_genuine_signature_and_nothing_else():
    document = (Path(__file__).resolve().parents[2] / "docs" / "webhooks.md").read_text()
    example: dict = {}
    exec(document.split("```python\n", 1)[1].split("```", 1)[0], example)
    is_genuine, now = example["is_genuine"], int(system_clock.now().timestamp())
    assert is_genuine(SECRET, signature_header(SECRET, now, BODY), BODY.encode())
    assert is_genuine(SECRET, f"{signature_header('whsec_old', now, BODY)},v1={sign(SECRET, now, BODY)}", BODY.encode())
    assert not is_genuine(SECRET, signature_header(SECRET, now, BODY), BODY.replace("50", "5000").encode())
    assert not is_genuine(SECRET, signature_header(SECRET, now - 301, BODY), BODY.encode())
    assert not is_genuine(SECRET, "t=12x,v1=abc", BODY.encode())
