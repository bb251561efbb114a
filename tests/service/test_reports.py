from loyalty.services import reports
from loyalty.services.members import member_status, register_member
from tests.conftest import at
from tests.service.support import pay, refund


def test_repeat_purchase_counts_buyers_who_kept_two_or_more_orders(default_rules, clock):
    for name in ("a", "b", "c"):
        register_member(name, clock=clock)
    pay("a1", "a", at("2026-10-05 10:00"), "10", clock)
    pay("a2", "a", at("2026-10-06 10:00"), "10", clock)
    pay("b1", "b", at("2026-10-05 10:00"), "10", clock)
    pay("b2", "b", at("2026-10-06 10:00"), "10", clock)
    refund("rb2", "b2", "10", at("2026-10-07 10:00"), clock)  # refunded in full: no longer kept
    pay("c1", "c", at("2026-10-05 10:00"), "10", clock)
    repeat = reports.repeat_purchase()
    assert (repeat.buyers, repeat.repeat_buyers, repeat.rate_percent) == (3, 1, "33.3")


def test_issued_by_source_and_refund_totals_add_up_the_ledger(default_rules, clock):
    register_member("a", clock=clock)
    pay("a1", "a", at("2026-10-05 10:00"), "400", clock)  # Monday: 400 + 50 growth, 400 points
    refund("r1", "a1", "100", at("2026-10-06 10:00"), clock)  # keeps 300: bonus stays
    issued = {(ledger, source): total for ledger, source, _, total in reports.issued_by_source()}
    assert issued == {("growth", "order"): 450, ("growth", "refund"): -100,
                      ("points", "order"): 400, ("points", "refund"): -100}
    totals = reports.refund_totals()
    assert (totals.refunds, totals.amount_fen, totals.growth_reversed, totals.points_reversed) == (1, 10000, 100, 100)


def test_member_status_shows_what_the_next_tier_still_needs(default_rules, clock):
    register_member("a", clock=clock)
    pay("a1", "a", at("2026-10-05 10:00"), "150", clock)
    status = member_status("a", clock=clock)
    assert (status.tier.code, status.next_tier and status.next_tier.code) == ("bronze", "silver")
    assert status.gaps == []  # one order already meets silver's `orders >= 1`
    # The lot expired at the end of 2026 and the expiry job has not run: in the balance, not spendable.
    assert (status.growth_balance, status.points_balance, status.points_spendable) == (150, 150, 0)
    assert [(e.ledger, e.delta) for e in status.recent] == [("points", 150), ("growth", 150)]
