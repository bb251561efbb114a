"""Money at the edges (exact yuan strings to fen) and the events the platform sends."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest

from loyalty.domain.errors import InvalidInput
from loyalty.domain.events import parse_action, parse_birthday, parse_order, parse_refund
from loyalty.domain.growth import Line
from loyalty.domain.money import format_fen, parse_yuan, proportion_floor

# --- money -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "amount_fen"),
    [
        pytest.param("123.45", 12345, id="decimal-string"),
        pytest.param(" 5 ", 500, id="whole-yuan-string-with-spaces"),
        pytest.param(12, 1200, id="integer"),
        pytest.param(Decimal("0.01"), 1, id="one-fen-decimal"),
        pytest.param("300.00", 30000, id="trailing-zeros"),
        pytest.param("100000000", 100_000_000_00, id="the-largest-plausible-amount"),
    ],
)
def test_parse_yuan_reads_exact_amounts_into_fen(value: object, amount_fen: int) -> None:
    assert parse_yuan(value) == amount_fen


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        pytest.param(1.5, "not a float", id="float"),
        pytest.param(0.1 + 0.2, "not a float", id="binary-float-sum"),
        pytest.param(True, "not a float", id="boolean"),
        pytest.param("1.234", "more than two decimal places", id="three-decimals"),
        pytest.param("0.001", "more than two decimal places", id="sub-fen"),
        pytest.param("-1", "must be positive", id="negative"),
        pytest.param("-0.01", "must be positive", id="negative-fen"),
        pytest.param("0", "must be positive", id="zero"),
        pytest.param("abc", "not a decimal amount", id="words"),
        pytest.param(None, "not a decimal amount", id="missing"),
        pytest.param("NaN", "not a decimal amount", id="nan"),
        pytest.param("Infinity", "not a decimal amount", id="infinity"),
        pytest.param("100000000.01", "implausibly large", id="over-a-hundred-million-yuan"),
        pytest.param("1e20", "implausibly large", id="exponent"),
        pytest.param("1e999999999", "implausibly large", id="exponent-beyond-the-decimal-context"),
        pytest.param("-1e999999999", "must be positive", id="negative-beyond-the-decimal-context"),
        pytest.param([12], "not a decimal amount", id="a-list"),
    ],
)
def test_parse_yuan_refuses_what_is_not_an_exact_positive_amount(
    value: object, problem: str
) -> None:
    with pytest.raises(InvalidInput, match=problem) as raised:
        parse_yuan(value, field="items[0].amount")
    assert raised.value.field == "items[0].amount"
    assert raised.value.code == "invalid_input"


def test_parse_yuan_accepts_zero_only_when_asked() -> None:
    assert parse_yuan("0.00", allow_zero=True) == 0


@pytest.mark.parametrize(
    ("amount_fen", "text"), [(12345, "123.45"), (5, "0.05"), (-5, "-0.05"), (0, "0.00")]
)
def test_format_fen_writes_a_decimal_yuan_string(amount_fen: int, text: str) -> None:
    assert format_fen(amount_fen) == text


def test_proportion_of_nothing_paid_is_zero() -> None:
    assert proportion_floor(100, 50, 0) == 0
    assert proportion_floor(100, 1, 3) == 33


# --- orders ------------------------------------------------------------------------------------


def order(**changes: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "order_id": "O-1",
        "member": "m-1",
        "paid_at": "2027-01-02T10:00:00+08:00",
        "amount": "400.00",
        "items": [
            {"sku": "rice", "category": "", "amount": "300"},
            {"sku": "fish", "category": "fresh", "amount": "100"},
        ],
    }
    raw.update(changes)
    return raw


def invalid_field(parse: Any, raw: dict[str, Any]) -> str | None:
    with pytest.raises(InvalidInput) as raised:
        parse(raw)
    return raised.value.field


def test_an_order_parses_into_lines_in_fen() -> None:
    event = parse_order(order())
    assert event.amount_fen == 40000
    assert event.lines == (Line(None, 30000), Line("fresh", 10000))
    assert event.skus == ("rice", "fish")
    assert event.paid_at == datetime(2027, 1, 2, 2, 0, tzinfo=UTC)


def test_an_order_without_items_is_one_uncategorised_line() -> None:
    assert parse_order(order(items=[])).lines == (Line(None, 40000),)


def test_the_same_order_sent_with_another_offset_has_the_same_fingerprint() -> None:
    shanghai = parse_order(order())
    utc = parse_order(order(paid_at="2027-01-02T02:00:00Z"))
    assert shanghai.fingerprint() == utc.fingerprint()
    assert parse_order(order(amount="400.01", items=[])).fingerprint() != shanghai.fingerprint()


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        pytest.param(
            {"items": [{"category": "fresh", "amount": "100"}]},
            "items",
            id="items-not-summing-to-the-amount",
        ),
        pytest.param({"paid_at": "2027-01-02T10:00:00"}, "paid_at", id="naive-paid-at"),
        pytest.param(
            {"paid_at": datetime(2027, 1, 2, 10, 0)}, "paid_at", id="naive-datetime-object"
        ),
        pytest.param({"paid_at": "yesterday"}, "paid_at", id="paid-at-not-iso"),
        pytest.param({"paid_at": None}, "paid_at", id="paid-at-missing"),
        pytest.param({"amount": 400.0}, "amount", id="float-amount"),
        pytest.param({"order_id": ""}, "order_id", id="empty-order-id"),
        pytest.param({"order_id": "has space"}, "order_id", id="order-id-with-a-space"),
        pytest.param({"order_id": "x" * 65}, "order_id", id="order-id-too-long"),
        pytest.param({"member": True}, "member", id="member-not-a-string"),
        pytest.param({"items": "rice"}, "items", id="items-not-a-list"),
        pytest.param({"items": ["rice"]}, "items[0]", id="item-not-an-object"),
        pytest.param(
            {"items": [{"amount": "400"}, {"amount": "1.001"}]},
            "items[1].amount",
            id="item-amount-with-three-decimals",
        ),
        pytest.param(
            {"items": [{"amount": "400", "category": 7}]},
            "items[0].category",
            id="category-not-a-string",
        ),
    ],
)
def test_a_bad_order_is_refused_naming_the_field(changes: dict[str, Any], field: str) -> None:
    assert invalid_field(parse_order, order(**changes)) == field


# --- refunds and actions -----------------------------------------------------------------------


def test_a_refund_parses() -> None:
    event = parse_refund(
        {
            "refund_id": "R-1",
            "order_id": "O-1",
            "amount": "100.01",
            "refunded_at": "2027-01-05T09:00:00+08:00",
        }
    )
    assert (event.refund_id, event.order_id, event.amount_fen) == ("R-1", "O-1", 10001)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        pytest.param({"refunded_at": "2027-01-05T09:00:00"}, "refunded_at", id="naive-refunded-at"),
        pytest.param({"amount": "0"}, "amount", id="zero-amount"),
        pytest.param({"amount": 1.5}, "amount", id="float-amount"),
        pytest.param({"order_id": None}, "order_id", id="missing-order"),
        pytest.param({"refund_id": ""}, "refund_id", id="missing-refund-id"),
    ],
)
def test_a_bad_refund_is_refused_naming_the_field(changes: dict[str, Any], field: str) -> None:
    raw = {
        "refund_id": "R-1",
        "order_id": "O-1",
        "amount": "1",
        "refunded_at": "2027-01-05T09:00:00+08:00",
    }
    assert invalid_field(parse_refund, {**raw, **changes}) == field


def test_a_check_in_needs_no_ref_but_a_review_does() -> None:
    raw = {
        "event_id": "E-1",
        "member": "m-1",
        "type": "check_in",
        "at": "2027-01-05T09:00:00+08:00",
    }
    assert parse_action(raw).ref == ""
    assert invalid_field(parse_action, {**raw, "type": "review"}) == "ref"
    assert parse_action({**raw, "type": "review", "ref": "O-1"}).ref == "O-1"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        pytest.param({"type": "dance"}, "type", id="unknown-type"),
        pytest.param({"at": "2027-01-05 09:00"}, "at", id="naive-at"),
        pytest.param({"event_id": None}, "event_id", id="missing-event-id"),
    ],
)
def test_a_bad_action_is_refused_naming_the_field(changes: dict[str, Any], field: str) -> None:
    raw = {"event_id": "E-1", "member": "m-1", "type": "share", "at": "2027-01-05T09:00:00+08:00"}
    assert invalid_field(parse_action, {**raw, **changes}) == field


def test_a_birthday_is_an_iso_date_or_nothing() -> None:
    assert parse_birthday("2000-02-29") == date(2000, 2, 29)
    assert parse_birthday("") is None
    with pytest.raises(InvalidInput) as raised:
        parse_birthday("2001-02-29")
    assert raised.value.field == "birthday"
