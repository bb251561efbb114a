"""Who is calling: an API key with scopes (the platform, an operator's tool) or a member token
(the member-center page, which may read only its own member). Both travel as
`Authorization: Bearer <token>`; keys start `lk_`, member tokens `mt_`.

Member tokens are signed with the server's secret (Django's `signing`), carry their member and
expiry, and are checked against an injectable clock (`services.member_tokens`, which the member
center page reads them with too). Rate limits count requests per key per
minute in Django's cache: Redis when `LOYALTY_REDIS_URL` is set (shared by every worker),
process memory otherwise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from django.core.cache import cache
from django.http import HttpRequest
from ninja.security import HttpBearer

from loyalty.api.errors import ApiError
from loyalty.clock import Clock, system_clock
from loyalty.services import apikeys
from loyalty.services.member_tokens import (
    MEMBER_TOKEN_MAX_TTL,
    MEMBER_TOKEN_PREFIX,
    MEMBER_TOKEN_SALT,
    MEMBER_TOKEN_TTL,
    TokenRefused,
    issue_member_token,
    read_member_grant,
)
from loyalty.store.sql import LiveKey

__all__ = ["MEMBER_TOKEN_MAX_TTL", "MEMBER_TOKEN_PREFIX", "MEMBER_TOKEN_SALT", "MEMBER_TOKEN_TTL", "Bearer", "Caller",
           "caller", "check_rate", "issue_member_token", "own_member", "read_member_token"]


@dataclass(frozen=True)
class Caller:
    key: LiveKey | None = None
    member: str | None = None  # a member token's member

    @property
    def actor(self) -> str:
        return f"api-key:{self.key.name}" if self.key else f"member:{self.member}"


def read_member_token(token: str, *, clock: Clock = system_clock) -> str:
    """The token's member (signing and expiry: `services.member_tokens`), or a 401."""
    try:
        return read_member_grant(token, clock=clock).member
    except TokenRefused as error:
        raise ApiError(error.message, code=error.code, status=401) from error


def check_rate(key: LiveKey, clock: Clock = system_clock) -> None:
    """A fixed one-minute window per key; over the limit answers 429 with Retry-After."""
    now = clock.now().timestamp()
    window = int(now // 60)
    name = f"loyalty:rate:{key.id}:{window}"
    try:
        count = cache.incr(name)  # one cache operation for every request but a window's first
    except ValueError:  # no counter yet in this window
        if cache.add(name, 1, timeout=70):
            return
        count = cache.incr(name)  # another request started the window first
    if count > key.rate_per_minute:
        retry_after = max(1, math.ceil((window + 1) * 60 - now))
        raise ApiError(f"more than {key.rate_per_minute} requests a minute for this key", code="rate_limited",
                       status=429, headers={"Retry-After": str(retry_after)})


class Bearer(HttpBearer):
    """Requires an API key with `scope`; with `members=True`, a member token is accepted too (the
    route must then check that the token's member is the one asked for: `own_member`)."""

    def __init__(self, scope: str, *, members: bool = False):
        super().__init__()
        self.scope, self.members = scope, members

    def __call__(self, request: HttpRequest) -> Caller | None:
        # As HttpBearer does, but from the WSGI environ: `request.headers` builds a dict of every
        # header on each request, and this runs on every API call.
        scheme, _, token = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            return None
        return self.authenticate(request, token)

    def authenticate(self, request: HttpRequest, token: str) -> Caller | None:
        if token.startswith(MEMBER_TOKEN_PREFIX):
            # Who first (401 for a forged or expired token), then what it may do (403).
            member = read_member_token(token)
            if not self.members:
                raise ApiError("a member token cannot call this endpoint", code="forbidden", status=403)
            return Caller(member=member)
        key = apikeys.authenticate(token)
        if key is None:
            return None
        if self.scope not in key.scopes:
            raise ApiError(f"this API key lacks the {self.scope} scope", code="missing_scope", status=403)
        check_rate(key)
        return Caller(key=key)


def caller(request: HttpRequest) -> Caller:
    auth = getattr(request, "auth", None)
    assert isinstance(auth, Caller)
    return auth


def own_member(request: HttpRequest, external_id: str) -> Caller:
    """A member token reads only its own member: any other answers as if the member did not exist."""
    who = caller(request)
    if who.member is not None and who.member != external_id:
        raise ApiError(f"unknown member {external_id!r}", code="unknown_member", status=404, field="member")
    return who
