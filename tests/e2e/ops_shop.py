"""A small shop for the operations console's tests, recorded through the services, with numbers
small enough to count by hand (the shop of tests/analytics/test_frames_db.py, in 2025 so that it
lies in the past of any clock the server reads).

Three members registered on 2025-01-04 under the default ruleset (silver from one kept order a
year, a ¥5 monthly coupon for silver). January: a pays ¥100 (01-05) and ¥50 (01-20); b pays ¥40
(01-10) and gets it all back (01-11); c pays ¥30 (01-15). The evaluation of 1 February makes a
and c silver (b has no kept order); the monthly grant gives each of them one ¥5 coupon. On 02-03
a pays ¥60 and redeems the coupon on that order.

Besides: endpoint #1 wants member.tier_changed (a's delivered, c's parked), endpoint #2 wants
coupon.issued (both pending, one of them retried once); two open review cases (d, e) and a
decided one (f), members registered on 2025-03-01, after the period the tests look at; two risk
scans; a failed run of points_expiry.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from loyalty.clock import FixedClock
from loyalty.services import grants, holds, rulesets, webhooks
from loyalty.services.coupons import redeem_coupon
from loyalty.services.members import register_member
from loyalty.services.tiers import evaluate_tiers
from loyalty.store.models import Coupon, JobRun, Member, OutboxEvent, ReviewCase, RiskScore, WebhookDelivery
from tests.service.support import pay, refund

SHANGHAI = ZoneInfo("Asia/Shanghai")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=SHANGHAI)


FEB = at("2025-02-01 00:00")
PERIOD = "from=2025-01-01&to=2025-02-28"


def record_shop() -> None:
    rulesets.publish(rulesets.preset_document("default"), effective_from=at("2020-01-01 00:00"), actor="tests")
    clock = FixedClock(at("2025-01-04 09:00"))
    for name in ("a", "b", "c"):
        register_member(name, clock=clock)
    pay("a1", "a", at("2025-01-05 10:00"), "100", clock)
    pay("a2", "a", at("2025-01-20 10:00"), "50", clock)
    pay("b1", "b", at("2025-01-10 10:00"), "40", clock)
    refund("rb1", "b1", "40", at("2025-01-11 10:00"), clock)
    pay("c1", "c", at("2025-01-15 10:00"), "30", clock)
    tiers_changed = webhooks.create_endpoint("https://shop.example/hooks/tiers", ["member.tier_changed"])
    coupons_issued = webhooks.create_endpoint("https://shop.example/hooks/coupons", ["coupon.issued"])
    evaluate_tiers(FEB, clock=FixedClock(FEB))
    grants.monthly_benefits(FEB, clock=FixedClock(FEB))
    webhooks.fan_out(FEB, 1000)
    later = FixedClock(at("2025-02-03 11:00"))
    pay("a3", "a", at("2025-02-03 10:00"), "60", later)
    code = Coupon.objects.get(member__external_id="a", kind="monthly").code
    redeem_coupon(code, member="a", order_id="a3", clock=later)
    _settle_deliveries(tiers_changed.id, coupons_issued.id)
    _abuse(FixedClock(at("2025-03-01 09:00")))
    JobRun.objects.create(job="points_expiry", due_at=at("2025-02-02 00:00"), state="failed",
                          started_at=at("2025-02-02 00:00"), attempts=2,
                          error="Traceback (most recent call last):\n  ...\nValueError: lot 7 is gone")


def _settle_deliveries(tiers_changed: int, coupons_issued: int) -> None:
    """As the dispatcher would leave them: a's tier change delivered, c's parked; one coupon retried."""
    tier_events = WebhookDelivery.objects.filter(endpoint_id=tiers_changed).order_by("member__external_id")
    a, c = (delivery.id for delivery in tier_events)
    WebhookDelivery.objects.filter(id=a).update(state="delivered", attempts=1, delivered_at=FEB, last_status=200)
    WebhookDelivery.objects.filter(id=c).update(state="parked", attempts=8, last_status=500, last_error="HTTP 500")
    first = WebhookDelivery.objects.filter(endpoint_id=coupons_issued).order_by("id").first()
    assert first is not None
    WebhookDelivery.objects.filter(id=first.id).update(attempts=1, last_error="timed out")


def _abuse(clock: FixedClock) -> None:
    members = [register_member(name, clock=clock).member for name in ("d", "e", "f")]
    holds.place_holds([m.id for m in members[:2]], reason="refund_rate", details={}, at=at("2025-03-02 09:00"))
    holds.place_holds([members[2].id], reason="device_shared", details={}, at=at("2025-03-01 10:00"))
    case = ReviewCase.objects.get(member=members[2])
    holds.approve(case.id, by="earlier", note="fine", clock=FixedClock(at("2025-03-03 09:00")))
    for night, flagged in ((at("2025-03-02 03:00"), ("d",)), (at("2025-03-03 03:00"), ("d", "e"))):
        for member in Member.objects.filter(external_id__in=("a", "c", "d", "e")):
            RiskScore.objects.create(member=member, as_of=night, score_milli=900 if member.external_id in flagged
                                     else 100, flagged=member.external_id in flagged, computed_at=night)


def unsent_events() -> int:
    return OutboxEvent.objects.filter(fanned_out_at__isnull=True).count()
