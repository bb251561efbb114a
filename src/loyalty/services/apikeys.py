"""API keys: created once (the key is shown then and never again), stored hashed, revocable.

A key reads `lk_<prefix>_<secret>`: the prefix (public, unique) finds the row, and the SHA-256
of the whole key is compared in constant time. A fast hash is right here, unlike for
passwords: the secret is 32 random bytes, so there is nothing to guess (GitHub and Stripe
treat their tokens the same way).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from dataclasses import dataclass

from loyalty.clock import Clock, system_clock
from loyalty.domain.errors import InvalidInput, NotFound
from loyalty.store import sql
from loyalty.store.models import SCOPES, ApiKey

KEY_PREFIX = "lk_"


@dataclass(frozen=True)
class NewKey:
    key: ApiKey
    plaintext: str  # shown to the operator once


def _digest(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode()).hexdigest()


def check_scopes(scopes: Iterable[str]) -> list[str]:
    chosen = sorted(set(scopes))
    unknown = [s for s in chosen if s not in SCOPES]
    if unknown or not chosen:
        raise InvalidInput(f"scopes must be one or more of {', '.join(SCOPES)}; got {', '.join(unknown) or 'none'}",
                           field="scopes")
    return chosen


def create_key(name: str, scopes: Iterable[str], *, rate_per_minute: int = 6000,
               clock: Clock = system_clock) -> NewKey:
    name = name.strip()
    if not name or len(name) > 100:
        raise InvalidInput("name must be 1–100 characters", field="name")
    if rate_per_minute <= 0:
        raise InvalidInput("rate_per_minute must be positive", field="rate_per_minute")
    prefix = secrets.token_hex(6)
    plaintext = f"{KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    key = ApiKey.objects.create(name=name, prefix=prefix, secret_hash=_digest(plaintext), scopes=check_scopes(scopes),
                                rate_per_minute=rate_per_minute, created_at=clock.now())
    return NewKey(key, plaintext)


def authenticate(plaintext: str) -> sql.LiveKey | None:
    """The live key this plaintext belongs to, or None (unknown, malformed, wrong or revoked)."""
    if not plaintext.startswith(KEY_PREFIX):
        return None
    prefix, _, secret = plaintext[len(KEY_PREFIX):].partition("_")
    if not prefix or not secret:
        return None
    key = sql.live_api_key(prefix)
    if key is None or not hmac.compare_digest(key.secret_hash, _digest(plaintext)):
        return None
    return key


def revoke(prefix: str, *, clock: Clock = system_clock) -> ApiKey:
    key = ApiKey.objects.filter(prefix=prefix).first()
    if key is None:
        raise NotFound(f"unknown API key {prefix!r}", field="prefix", code="unknown_api_key")
    if key.revoked_at is None:
        key.revoked_at = clock.now()
        key.save(update_fields=["revoked_at"])
    return key
