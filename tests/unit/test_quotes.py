"""Price quotes without a database: golden tables with the numbers worked by hand in comments, and
hypothesis properties of the arithmetic (lines add up, nothing negative, minimum spend holds)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from loyalty.domain.coupons import Terms
from loyalty.domain.errors import InvalidInput, RulesetInvalid
from loyalty.domain.growth import Line, order_growth
from loyalty.domain.points import order_points
from loyalty.domain.quotes import (
    CartLine,
    Quote,
    QuoteCoupon,
    allocate,
    discount_fen,
    earnings,
    parse_quote_request,
    price,
    quote_id,
)
from loyalty.domain.rules import Pricing, Ruleset, TierBenefits, parse_ruleset
from tests.unit.presets import at, fen, preset, preset_document

DEFAULT = preset("default")
WEDNESDAY = at("2027-01-06 10:00")
MONDAY = at("2027-01-04 10:00")
SATURDAY = at("2027-01-09 10:00")
VALID = (at("2020-01-01 00:00"), at("2100-01-01 00:00"))


def seed000(stacking: str = "better", rounding: str = "half_up") -> Ruleset:
    """Seed 000's level discounts (gold 5%, diamond 10%) with the default ruleset's member day."""
    document = preset_document("seed000-weighted")
    document["member_day"] = {"weekday": "wednesday", "discount": Decimal("0.12")}
    document["pricing"] = {"stacking": stacking, "rounding": rounding}
    return parse_ruleset(document)


def cart(*lines: tuple[str, int] | tuple[str, int, str | None]) -> list[CartLine]:
    """Lines from (unit price in yuan, quantity[, category])."""
    return [CartLine(f"sku-{i + 1}", line[2] if len(line) > 2 else None, fen(line[0]), line[1])  # type: ignore[misc]
            for i, line in enumerate(lines)]


def cash(value: str, min_spend: str = "0", *, kind: str = "monthly", state: str = "issued") -> QuoteCoupon:
    return QuoteCoupon(Terms("LYTEST", state, "", fen(value), fen(min_spend), *VALID), kind)


def quote(lines: list[CartLine], *, when: datetime = MONDAY, tier: str = "bronze", rules: Ruleset = DEFAULT,
          delivery: str = "8.00", coupon: QuoteCoupon | None = None) -> Quote:
    return price(lines, fen(delivery), when, tier=tier, rules=rules, coupon=coupon)


def yuan(amount_fen: int) -> str:
    return f"{amount_fen // 100}.{amount_fen % 100:02d}"


def totals(q: Quote) -> list[str]:
    return [yuan(line.total_fen) for line in q.lines]


# (a) the member day is judged in the ruleset's timezone ------------------------------------------


def test_a_wednesday_in_shanghai_that_is_tuesday_in_utc_gets_the_member_day():
    instant = datetime(2027, 1, 5, 16, 30, tzinfo=UTC)  # Wednesday 2027-01-06 00:30 in Shanghai
    q = quote(cart(("100.00", 1)), when=instant)
    # 100.00 × 0.12 = 12.00 off; 88.00 + 8.00 delivery = 96.00
    assert (q.applied, totals(q), yuan(q.total_fen)) == ("member_day", ["88.00"], "96.00")
    assert q.member_day_rate == Decimal("0.12")


def test_the_same_instant_under_a_utc_ruleset_is_tuesday_and_gets_no_member_day():
    document = preset_document("default")
    document["timezone"] = "UTC"
    q = quote(cart(("100.00", 1)), when=datetime(2027, 1, 5, 16, 30, tzinfo=UTC), rules=parse_ruleset(document))
    assert (q.applied, q.member_day_rate, totals(q), yuan(q.total_fen)) == (None, Decimal(0), ["100.00"], "108.00")


# (b) member day against the tier discount ---------------------------------------------------------


@pytest.mark.parametrize(("stacking", "unit", "member_day", "tier_off", "total", "applied"), [
    # better: 12% beats gold's 5%: 100.00 → 12.00 off → 88.00
    ("better", "100.00", "12.00", "0.00", "88.00", "member_day"),
    # both: 12.00 off, then 5% of 88.00 = 4.40 → 83.60 = 100 × 0.88 × 0.95 (1 − 0.164)
    ("both", "100.00", "12.00", "4.40", "83.60", "both"),
    # better: 12.34 × 0.12 = 1.4808 → 1.48 → 10.86
    ("better", "12.34", "1.48", "0.00", "10.86", "member_day"),
    # both: 1.48, then 10.86 × 0.05 = 0.543 → 0.54 → 10.32 (exactly: 12.34 × 0.836 = 10.31624)
    ("both", "12.34", "1.48", "0.54", "10.32", "both"),
])
def test_gold_on_the_member_day_by_stacking(stacking, unit, member_day, tier_off, total, applied):
    q = quote(cart((unit, 1)), when=WEDNESDAY, tier="gold", rules=seed000(stacking))
    line = q.lines[0]
    assert (yuan(line.member_day_fen), yuan(line.tier_fen), yuan(line.total_fen), q.applied) == (
        member_day, tier_off, total, applied)


def test_diamonds_ten_percent_applies_on_other_days_and_loses_to_the_member_day():
    # Monday: 10% of 250.00 = 25.00 → 225.00; Wednesday: 12% = 30.00 → 220.00
    monday = quote(cart(("250.00", 1)), tier="diamond", rules=seed000())
    wednesday = quote(cart(("250.00", 1)), when=WEDNESDAY, tier="diamond", rules=seed000())
    assert (monday.applied, totals(monday), wednesday.applied, totals(wednesday)) == (
        "tier", ["225.00"], "member_day", ["220.00"])


def test_equal_rates_under_better_report_the_tier_discount():
    rules = dataclasses.replace(seed000(), benefits={"gold": TierBenefits(discount=Decimal("0.12"))})
    q = quote(cart(("100.00", 1)), when=WEDNESDAY, tier="gold", rules=rules)
    assert (q.applied, yuan(q.lines[0].tier_fen), yuan(q.lines[0].member_day_fen)) == ("tier", "12.00", "0.00")


@pytest.mark.parametrize(("rounding", "unit", "quantity", "off"), [
    ("half_up", "0.30", 1, "0.02"),   # 30 fen × 5% = 1.5 fen → 2 (half a fen to the member)
    ("floor", "0.30", 1, "0.01"),     # → 1 (never more than the rate)
    ("half_up", "19.99", 3, "3.00"),  # 59.97 × 5% = 299.85 fen → 300
    ("floor", "19.99", 3, "2.99"),    # → 299
])
def test_each_lines_discount_is_rounded_as_the_ruleset_names(rounding, unit, quantity, off):
    q = quote(cart((unit, quantity)), tier="gold", rules=seed000(rounding=rounding))
    assert yuan(q.lines[0].tier_fen) == off


# (c) the coupon's minimum spend, on the goods after the percentage discounts ----------------------


@pytest.mark.parametrize(("when", "unit", "applied", "total"), [
    (MONDAY, "100.00", True, "98.00"),     # exactly the 100.00 minimum: 100 − 10 + 8 delivery
    (MONDAY, "99.99", False, "107.99"),    # one fen below: not applied, 99.99 + 8
    # Wednesday: 113.64 × 0.12 = 13.6368 → 13.64 off → 100.00 after: applies → 90.00 + 8
    (WEDNESDAY, "113.64", True, "98.00"),
    # 113.63 × 0.12 = 13.6356 → 13.64 → 99.99 after: one fen below → 99.99 + 8
    (WEDNESDAY, "113.63", False, "107.99"),
])
def test_a_coupon_applies_from_exactly_its_minimum_spend(when, unit, applied, total):
    q = quote(cart((unit, 1)), when=when, coupon=cash("10.00", "100.00"))
    assert q.coupon is not None
    assert (q.coupon.applied, q.coupon.reason, yuan(q.total_fen)) == (
        applied, None if applied else "below_min_spend", total)


@pytest.mark.parametrize(("coupon", "reason"), [
    (cash("10.00", state="revoked"), "coupon_revoked"),
    (cash("10.00", state="redeemed"), "coupon_already_redeemed"),
    (QuoteCoupon(Terms("LYX", "issued", "", 1000, 0, at("2026-01-01 00:00"), MONDAY), "monthly"), "coupon_expired"),
    (QuoteCoupon(Terms("LYX", "issued", "", 1000, 0, SATURDAY, at("2100-01-01 00:00")), "monthly"),
     "coupon_not_yet_valid"),
    (cash("0", kind="birthday_pack"), "not_a_price_coupon"),
])
def test_a_coupon_the_rules_refuse_is_reported_and_changes_no_price(coupon, reason):
    q = quote(cart(("100.00", 1)), coupon=coupon)
    assert q.coupon is not None
    assert (q.coupon.applied, q.coupon.reason, q.sum_of("coupon_fen"), yuan(q.total_fen)) == (
        False, reason, 0, "108.00")


# (d) totals never negative -------------------------------------------------------------------------


def test_a_coupon_larger_than_the_goods_takes_them_to_zero_and_no_further():
    q = quote(cart(("15.00", 1)), coupon=cash("20.00"))
    # capped at 15.00: goods 0.00, the delivery is still charged: total 8.00; nothing to earn
    assert q.coupon is not None
    assert (yuan(q.coupon.discount_fen), totals(q), yuan(q.total_fen)) == ("15.00", ["0.00"], "8.00")
    assert dataclasses.astuple(earnings(q, MONDAY, DEFAULT, birthday=None, orders_since_upgrade=None)) == (0, 0)


# (e) the coupon over the lines, by largest remainder ---------------------------------------------


def test_a_coupon_is_allocated_in_proportion_and_adds_up_exactly():
    # 10.00 over 33.33 / 33.33 / 33.34: 333.3, 333.3, 333.4 fen → floors 333 each (999), the
    # one fen left goes to the largest remainder (line 3): 3.33 / 3.33 / 3.34
    q = quote(cart(("33.33", 1), ("33.33", 1), ("33.34", 1)), coupon=cash("10.00"))
    assert [yuan(line.coupon_fen) for line in q.lines] == ["3.33", "3.33", "3.34"]
    assert totals(q) == ["30.00", "30.00", "30.00"]
    # 1.00 over three 1.00 lines: 33.3 fen each, equal remainders: the earliest line takes the fen
    assert allocate(100, [100, 100, 100]) == [34, 33, 33]


def test_the_coupon_is_allocated_on_the_lines_after_their_member_day_discount():
    # 24.60 → 2.95 off (2.952) → 21.65; 99.00 → 11.88 off → 87.12; 10.00 over 108.77:
    # 199.04 and 800.95 fen → 199 + 800 = 999, the fen to line 2 (remainder 10400 > 477)
    q = quote(cart(("12.30", 2, "fresh"), ("99.00", 1)), when=WEDNESDAY, coupon=cash("10.00", "50.00"))
    assert [yuan(line.coupon_fen) for line in q.lines] == ["1.99", "8.01"]
    assert (totals(q), yuan(q.goods_total_fen), yuan(q.total_fen)) == (["19.66", "79.11"], "98.77", "106.77")


# (f) free delivery ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("tier", "coupon", "waived_by", "coupon_reason", "total"), [
    ("diamond", None, "tier", None, "50.00"),                            # unlimited: always waived
    ("gold", None, None, None, "58.00"),                                 # 1 a month: by coupon only
    ("gold", cash("0", kind="free_delivery"), "coupon", None, "50.00"),
    ("diamond", cash("0", kind="free_delivery"), "tier", "delivery_already_free", "50.00"),  # kept
    ("gold", cash("0", "60.00", kind="free_delivery"), None, "below_min_spend", "58.00"),
])
def test_delivery_is_waived_by_unlimited_tiers_or_by_a_free_delivery_coupon(tier, coupon, waived_by,
                                                                            coupon_reason, total):
    q = quote(cart(("50.00", 1)), tier=tier, coupon=coupon)
    assert (q.delivery_waived_by, yuan(q.total_fen)) == (waived_by, total)
    assert q.sum_of("coupon_fen") == 0
    if coupon is not None:
        assert q.coupon is not None and q.coupon.reason == coupon_reason


def test_a_zero_delivery_fee_is_not_waived_and_keeps_the_free_delivery_coupon():
    q = quote(cart(("50.00", 1)), tier="gold", delivery="0", coupon=cash("0", kind="free_delivery"))
    assert q.delivery_waived_by is None and q.coupon is not None and q.coupon.reason == "delivery_already_free"


# (g) the earnings preview is the order path's own arithmetic -------------------------------------


def test_a_saturday_order_of_400_with_100_fresh_earns_950_growth_and_400_points():
    # floor((300 + 100 × 1.5) × 2) + 50 = 950; 1 point per yuan: 400
    q = quote(cart(("100.00", 1, "fresh"), ("300.00", 1)), when=SATURDAY)
    earned = earnings(q, SATURDAY, DEFAULT, birthday=None, orders_since_upgrade=None)
    assert (earned.growth, earned.points) == (950, 400)
    lines = [Line("fresh", 10_000), Line(None, 30_000)]
    assert earned.growth == order_growth(lines, 40_000, SATURDAY, DEFAULT.growth, DEFAULT.timezone).total
    assert earned.points == order_points(40_000, SATURDAY, None, DEFAULT.points, DEFAULT.timezone)


def test_earnings_are_on_the_discounted_goods_and_follow_birthday_and_upgrade_rules():
    # Wednesday: 350.00 fresh → 42.00 off → 308.00: floor(308 × 1.5) = 462, ≥ 300: + 50 = 512;
    # points floor(308) = 308, × 2 on the birthday = 616; after an upgrade: floor(462 × 1.5) + 50
    q = quote(cart(("350.00", 1, "fresh")), when=WEDNESDAY)
    plain = earnings(q, WEDNESDAY, DEFAULT, birthday=None, orders_since_upgrade=None)
    birthday = earnings(q, WEDNESDAY, DEFAULT, birthday=date(1990, 1, 6), orders_since_upgrade=None)
    boosted = earnings(q, WEDNESDAY, DEFAULT, birthday=None, orders_since_upgrade=2)
    spent = earnings(q, WEDNESDAY, DEFAULT, birthday=None, orders_since_upgrade=3)
    assert [dataclasses.astuple(e) for e in (plain, birthday, boosted, spent)] == [
        (512, 308), (512, 616), (743, 308), (512, 308)]


# The request, the id, the ruleset section ---------------------------------------------------------

REQUEST = {"member": "m-1", "lines": [{"sku": "s", "unit_price": "12.30", "quantity": 2}], "delivery_fee": "8.00"}


@pytest.mark.parametrize(("change", "field"), [
    ({"lines": []}, "lines"),
    ({"lines": [{"sku": "s", "unit_price": "1.00", "quantity": 0}]}, "lines[0].quantity"),
    ({"lines": [{"sku": "s", "unit_price": "1.00", "quantity": 10_000}]}, "lines[0].quantity"),
    ({"lines": [{"sku": "s", "unit_price": "1.00", "quantity": True}]}, "lines[0].quantity"),
    ({"lines": [{"sku": "s", "unit_price": "1.001", "quantity": 1}]}, "lines[0].unit_price"),
    ({"lines": [{"sku": "s", "unit_price": "-1", "quantity": 1}]}, "lines[0].unit_price"),
    ({"lines": [{"sku": "a b", "unit_price": "1", "quantity": 1}]}, "lines[0].sku"),
    ({"lines": [{"sku": "s", "unit_price": "99999999", "quantity": 9999}]}, "lines"),
    ({"delivery_fee": 8.0}, "delivery_fee"),
    ({"member": ""}, "member"),
    ({"at": "2027-01-06T10:00:00"}, "at"),
])
def test_a_bad_request_names_its_field(change, field):
    with pytest.raises(InvalidInput) as raised:
        parse_quote_request({**REQUEST, **change})
    assert raised.value.field == field


def test_the_quote_id_is_the_same_for_the_same_request_moment_and_version_only():
    request = parse_quote_request(REQUEST)
    first = quote_id(request.canonical(MONDAY, 1), b"secret")
    assert first == quote_id(request.canonical(MONDAY, 1), b"secret") and len(first) == 26
    assert first.startswith("QT")
    assert len({first, quote_id(request.canonical(WEDNESDAY, 1), b"secret"),
                quote_id(request.canonical(MONDAY, 2), b"secret"), quote_id(request.canonical(MONDAY, 1), b"other"),
                quote_id(parse_quote_request({**REQUEST, "coupon": "LYX"}).canonical(MONDAY, 1), b"secret")}) == 5


def test_pricing_defaults_to_better_and_half_up_and_refuses_unknown_values():
    assert parse_ruleset({"tiers": [{"code": "base"}]}).pricing == Pricing("better", "half_up")
    assert DEFAULT.pricing == Pricing("better", "half_up")
    with pytest.raises(RulesetInvalid) as raised:
        parse_ruleset({"tiers": [{"code": "base"}], "pricing": {"stacking": "all", "rounding": "up", "x": 1}})
    assert raised.value.problems == [
        "pricing.x: unknown key 'x'",
        "pricing.stacking: must be one of better, both; got 'all'",
        "pricing.rounding: must be one of half_up, floor; got 'up'",
    ]


# Properties -----------------------------------------------------------------------------------------

RATES = st.integers(min_value=0, max_value=60).map(lambda n: Decimal(n) / 100)


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[Quote, list[CartLine], QuoteCoupon | None]:
    rules = dataclasses.replace(
        DEFAULT, member_day=("wednesday", draw(RATES)),
        pricing=Pricing(draw(st.sampled_from(["better", "both"])), draw(st.sampled_from(["half_up", "floor"]))),
        benefits={"gold": TierBenefits(free_delivery_per_month=draw(st.sampled_from([None, 0, 1])),
                                       discount=draw(RATES))})
    lines = draw(st.lists(st.builds(CartLine, st.just("s"), st.none(), st.integers(0, 200_000), st.integers(1, 30)),
                          min_size=1, max_size=6))
    coupon = draw(st.none() | st.builds(
        lambda kind, value, spend: cash(yuan(value), yuan(spend), kind=kind),
        st.sampled_from(["monthly", "free_delivery"]), st.integers(0, 300_000), st.integers(0, 300_000)))
    when = draw(st.sampled_from([MONDAY, WEDNESDAY, SATURDAY]))
    q = price(lines, draw(st.integers(0, 5_000)), when, tier="gold", rules=rules, coupon=coupon)
    return q, lines, coupon


@given(scenarios())
def test_a_quote_always_adds_up_and_is_never_negative(scenario):
    q, lines, _coupon = scenario
    subtotal = sum(line.amount_fen for line in lines)
    discounts = q.sum_of("member_day_fen") + q.sum_of("tier_fen") + q.sum_of("coupon_fen")
    assert q.goods_total_fen + q.delivery_charged_fen == q.total_fen
    assert q.sum_of("amount_fen") == subtotal and subtotal - discounts == q.goods_total_fen
    for line in q.lines:
        assert min(line.member_day_fen, line.tier_fen, line.coupon_fen, line.total_fen) >= 0
        assert line.member_day_fen + line.tier_fen + line.coupon_fen <= line.amount_fen
    assert 0 <= q.delivery_charged_fen <= q.delivery_fee_fen and q.total_fen >= 0


@given(scenarios())
def test_a_coupon_never_applies_below_its_minimum_spend(scenario):
    q, _lines, coupon = scenario
    if coupon is None:
        return
    assert q.coupon is not None
    before_coupon = q.goods_total_fen + q.sum_of("coupon_fen")
    if before_coupon < coupon.terms.min_spend_fen:
        assert not q.coupon.applied and q.coupon.reason == "below_min_spend" and q.sum_of("coupon_fen") == 0
    elif coupon.kind == "monthly" and coupon.terms.value_fen > 0:
        assert q.coupon.applied and q.sum_of("coupon_fen") == min(coupon.terms.value_fen, before_coupon)


@given(st.integers(0, 10**9), st.lists(st.integers(0, 10**7), min_size=1, max_size=20))
def test_allocation_adds_up_exactly_and_never_exceeds_a_lines_weight(total, weights):
    total = min(total, sum(weights))
    shares = allocate(total, weights)
    assert sum(shares) == total and all(0 <= s <= w for s, w in zip(shares, weights, strict=True))


@given(st.integers(0, 10**10), RATES, st.sampled_from(["half_up", "floor"]))
def test_a_rounded_discount_is_within_a_fen_of_the_exact_one(amount, rate, rounding):
    exact = Decimal(amount) * rate
    off = discount_fen(amount, rate, rounding)
    assert 0 <= off <= amount and abs(off - exact) < 1
    assert off <= exact if rounding == "floor" else abs(off - exact) <= Decimal("0.5")
