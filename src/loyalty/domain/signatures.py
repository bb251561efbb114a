"""Webhook signatures: what the sender computes and what a receiver checks. Pure (hmac and
hashlib only), so a platform's receiver can use it without Django or a database.

    Loyalty-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>

The signature covers the timestamp, so a captured request cannot be dated forward; `verify`
refuses a timestamp further than `tolerance` from the receiver's clock, which is how a replayed
request shows. The body is the raw bytes as sent, before any JSON parsing.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime

SIGNATURE_HEADER = "Loyalty-Signature"
TOLERANCE_SECONDS = 300


class InvalidSignature(ValueError):
    """A request whose `Loyalty-Signature` does not prove that we sent this body, recently."""


def sign(secret: str, timestamp: int, body: str | bytes) -> str:
    """HMAC-SHA256, hex, of "<timestamp>.<body>" under the endpoint's secret."""
    raw = body.encode() if isinstance(body, str) else body
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + raw, hashlib.sha256).hexdigest()


def signature_header(secret: str, timestamp: int, body: str | bytes) -> str:
    return f"t={timestamp},v1={sign(secret, timestamp, body)}"


def verify(secret: str, header: str, body: str | bytes, now: datetime | float,
           tolerance: int = TOLERANCE_SECONDS) -> None:
    """For receivers: raise InvalidSignature unless `header` signs exactly `body` (the raw request
    bytes) under `secret`, with a timestamp within `tolerance` seconds of `now` (an aware
    datetime or unix seconds). A stale timestamp is refused even when its signature is genuine.
    Several `v1=` values pass if one matches, so that a secret can be rotated."""
    timestamp, signatures = _parse_header(header)
    current = now.timestamp() if isinstance(now, datetime) else now
    if abs(current - timestamp) > tolerance:
        raise InvalidSignature(f"timestamp {timestamp} is more than {tolerance} s from now: stale or replayed")
    expected = sign(secret, timestamp, body)
    if not any(hmac.compare_digest(expected, candidate) for candidate in signatures):
        raise InvalidSignature("no signature matches this body under this secret")


def _parse_header(header: str) -> tuple[int, list[str]]:
    timestamp: int | None = None
    signatures: list[str] = []
    for part in header.split(","):
        name, equals, value = part.strip().partition("=")
        if not equals or not value:
            raise InvalidSignature(f"malformed {SIGNATURE_HEADER} header")
        if name == "t":
            if timestamp is not None or not (value.isascii() and value.isdigit()):
                raise InvalidSignature(f"malformed {SIGNATURE_HEADER} timestamp")
            timestamp = int(value)
        elif name == "v1":
            signatures.append(value)
    if timestamp is None or not signatures:
        raise InvalidSignature(f"{SIGNATURE_HEADER} needs t= and at least one v1=")
    return timestamp, signatures
