"""What the shop's platform sends, parsed and checked before anything is written.

Each parser takes a plain mapping (a JSON body, a CSV row) and returns a frozen event, or raises
`InvalidInput` naming the field. `fingerprint()` is the canonical payload behind idempotency:
a replay with the same id and fingerprint is the same request; a different one is a conflict.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from loyalty.domain.errors import InvalidInput
from loyalty.domain.growth import Line
from loyalty.domain.money import parse_yuan
from loyalty.domain.periods import require_aware

ID_MAX = 64
MAX_UNITS = 10**12  # growth or points in one adjustment or redemption: more is a client mistake
_SPACE = re.compile(r"\s")
# Control characters (NUL above all, which PostgreSQL refuses in text) never belong in an id or label.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def plain_text(value: object, field: str, *, max_length: int) -> str:
    """Free text (a category, a note, a reason): a string, at most `max_length`, no control characters."""
    if not isinstance(value, str) or len(value) > max_length:
        raise InvalidInput(f"{field} must be a string of at most {max_length} characters", field=field)
    if _CONTROL.search(value):
        raise InvalidInput(f"{field} must not contain control characters", field=field)
    return value
ACTION_TYPES = ("check_in", "review", "share")
ORIGIN_MAX = 128  # device_id and address_hash: the platform's own ids and hashes


@dataclass(frozen=True)
class Origin:
    """Where an event came from, when the platform says: the member's device, client IP and a hash
    of the delivery address (the platform hashes it; the address itself never reaches us). Each
    is optional; an empty string means "not sent"."""

    device_id: str = ""
    ip: str = ""
    address_hash: str = ""

    def links(self) -> tuple[tuple[str, str], ...]:
        """(kind, value) pairs that link the event's member to others seen with the same value."""
        pairs = (("device", self.device_id), ("address", self.address_hash), ("ip", self.ip))
        return tuple((kind, value) for kind, value in pairs if value)

    def add_to(self, fields: dict[str, Any]) -> dict[str, Any]:
        """The fingerprint with the fields that were sent. IMPORTANT: only those, so that every
        event recorded before devices keeps its hash (replays of it still match)."""
        for name in ("device_id", "ip", "address_hash"):
            if getattr(self, name):
                fields[name] = getattr(self, name)
        return fields


NO_ORIGIN = Origin()


def parse_origin(raw: Mapping[str, Any]) -> Origin:
    """`device_id`, `ip`, `address_hash` from an event; absent or empty is "not sent". The IP is
    stored in its canonical text (`2001:db8::1`, never `2001:0db8:0:0::1`), so one address is one value."""
    device, ip, address = (raw.get(name) or "" for name in ("device_id", "ip", "address_hash"))
    if not (device or ip or address):
        return NO_ORIGIN
    device = plain_text(device, "device_id", max_length=ORIGIN_MAX)
    address = plain_text(address, "address_hash", max_length=ORIGIN_MAX)
    return Origin(device, parse_ip(ip) if ip else "", address)


def parse_ip(value: object) -> str:
    """An IPv4 or IPv6 address in canonical text; no zone (`%eth0`), which names a local interface."""
    try:
        address = ipaddress.ip_address(value.strip() if isinstance(value, str) else "")
    except ValueError:
        address = None
    if address is None or getattr(address, "scope_id", None):
        raise InvalidInput(f"ip must be an IPv4 or IPv6 address, got {value!r}", field="ip")
    return str(address)


def text_id(raw: Mapping[str, Any], field: str, *, required: bool = True) -> str:
    value = raw.get(field)
    if value is None or value == "":
        if required:
            raise InvalidInput(f"{field} is required", field=field)
        return ""
    if not isinstance(value, (str, int)) or isinstance(value, bool):
        raise InvalidInput(f"{field} must be a string", field=field)
    text = str(value).strip()
    if not text or len(text) > ID_MAX or _SPACE.search(text) or _CONTROL.search(text):
        raise InvalidInput(f"{field} must be 1–{ID_MAX} characters without spaces", field=field)
    return text


def moment(raw: Mapping[str, Any], field: str) -> datetime:
    value = raw.get(field)
    if isinstance(value, datetime):
        return require_aware(value, field)
    if not isinstance(value, str):
        raise InvalidInput(f"{field} is required: an ISO 8601 time with an offset", field=field)
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError as error:
        raise InvalidInput(f"{field} is not an ISO 8601 time: {value!r}", field=field) from error
    return require_aware(parsed, field)


def iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat()


@dataclass(frozen=True)
class OrderEvent:
    order_id: str
    member: str
    paid_at: datetime
    amount_fen: int
    lines: tuple[Line, ...]
    skus: tuple[str, ...]
    quote_id: str = ""  # the price quote the order follows (POST /quotes), when the platform cites one
    origin: Origin = NO_ORIGIN

    def fingerprint(self) -> dict[str, Any]:
        fields: dict[str, Any] = {
            "order_id": self.order_id, "member": self.member, "paid_at": iso(self.paid_at),
            "amount_fen": self.amount_fen,
            "items": [[sku, line.category, line.amount_fen] for sku, line in zip(self.skus, self.lines, strict=True)],
        }
        # IMPORTANT: only when cited, so that every order recorded before quotes keeps its hash.
        if self.quote_id:
            fields["quote_id"] = self.quote_id
        return self.origin.add_to(fields)


def parse_line(item: Mapping[str, Any], index: int, *, prefix: str = "") -> tuple[str, Line]:
    """One order line: (sku, Line). Errors name the field under `prefix` (e.g. "items[2].")."""
    sku = text_id(item, "sku", required=False) or f"line-{index + 1}"
    category = plain_text(item.get("category") or "", f"{prefix}category", max_length=ID_MAX)
    return sku, Line(category or None, parse_yuan(item.get("amount"), field=f"{prefix}amount"))


def parse_order(raw: Mapping[str, Any]) -> OrderEvent:
    amount_fen = parse_yuan(raw.get("amount"), field="amount")
    items = raw.get("items") or []
    if not isinstance(items, list):
        raise InvalidInput("items must be a list", field="items")
    lines, skus = [], []
    for i, item in enumerate(items):
        if not isinstance(item, Mapping):
            raise InvalidInput("each item is an object with sku, category and amount", field=f"items[{i}]")
        sku, line = parse_line(item, i, prefix=f"items[{i}].")
        skus.append(sku)
        lines.append(line)
    if not lines:
        lines, skus = [Line(None, amount_fen)], [""]
    elif sum(line.amount_fen for line in lines) != amount_fen:
        raise InvalidInput("the items' amounts must add up to the order amount", field="items")
    return OrderEvent(text_id(raw, "order_id"), text_id(raw, "member"), moment(raw, "paid_at"),
                      amount_fen, tuple(lines), tuple(skus), text_id(raw, "quote_id", required=False),
                      parse_origin(raw))


@dataclass(frozen=True)
class RefundEvent:
    refund_id: str
    order_id: str
    amount_fen: int
    refunded_at: datetime

    def fingerprint(self) -> dict[str, Any]:
        return {"refund_id": self.refund_id, "order_id": self.order_id, "amount_fen": self.amount_fen,
                "refunded_at": iso(self.refunded_at)}


def parse_refund(raw: Mapping[str, Any]) -> RefundEvent:
    return RefundEvent(text_id(raw, "refund_id"), text_id(raw, "order_id"),
                       parse_yuan(raw.get("amount"), field="amount"), moment(raw, "refunded_at"))


@dataclass(frozen=True)
class ActionEvent:
    event_id: str
    member: str
    type: str
    at: datetime
    ref: str
    origin: Origin = NO_ORIGIN

    def fingerprint(self) -> dict[str, Any]:
        return self.origin.add_to({"event_id": self.event_id, "member": self.member, "type": self.type,
                                   "at": iso(self.at), "ref": self.ref})


def parse_action(raw: Mapping[str, Any]) -> ActionEvent:
    kind = raw.get("type")
    if kind not in ACTION_TYPES:
        raise InvalidInput(f"type must be one of {', '.join(ACTION_TYPES)}", field="type")
    ref = text_id(raw, "ref", required=kind == "review")
    return ActionEvent(text_id(raw, "event_id"), text_id(raw, "member"), str(kind), moment(raw, "at"), ref,
                       parse_origin(raw))


def parse_birthday(value: object) -> date | None:
    if value in (None, ""):
        return None
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError as error:
        raise InvalidInput(f"birthday must be YYYY-MM-DD, got {value!r}", field="birthday") from error
