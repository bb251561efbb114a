"""Member tokens: short-lived, signed (Django's `signing`, the server's secret) permissions for one
member to read their own data, from the API (`Authorization: Bearer mt_...`) or the member center
page (`/m/?token=mt_...`). A token carries its member and its expiry; nothing is stored, so a token
cannot be revoked before it expires: keep lifetimes short. Checked against an injectable clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.core import signing

from loyalty.clock import Clock, system_clock
from loyalty.domain.errors import LoyaltyError

MEMBER_TOKEN_PREFIX = "mt_"
MEMBER_TOKEN_SALT = "loyalty.member-token"
MEMBER_TOKEN_TTL = timedelta(minutes=15)
MEMBER_TOKEN_MAX_TTL = timedelta(hours=24)


class TokenRefused(LoyaltyError):
    """A member token that is forged, malformed (`invalid_token`) or expired (`token_expired`)."""

    code = "invalid_token"


@dataclass(frozen=True)
class MemberGrant:
    """What a valid token says: whose data, and until when."""

    member: str
    expires_at: datetime


def issue_member_token(external_id: str, *, ttl: timedelta = MEMBER_TOKEN_TTL,
                       clock: Clock = system_clock) -> tuple[str, datetime]:
    expires_at = clock.now() + ttl
    token = signing.dumps({"m": external_id, "exp": int(expires_at.timestamp())}, salt=MEMBER_TOKEN_SALT)
    return MEMBER_TOKEN_PREFIX + token, expires_at


def read_member_grant(token: str, *, clock: Clock = system_clock) -> MemberGrant:
    if not token.startswith(MEMBER_TOKEN_PREFIX):
        raise TokenRefused("the member token is not valid")
    try:
        claims = signing.loads(token[len(MEMBER_TOKEN_PREFIX):], salt=MEMBER_TOKEN_SALT)
    except signing.BadSignature as error:
        raise TokenRefused("the member token is not valid") from error
    if not isinstance(claims, dict) or not isinstance(claims.get("m"), str) or not isinstance(claims.get("exp"), int):
        raise TokenRefused("the member token is not valid")
    if claims["exp"] <= clock.now().timestamp():
        raise TokenRefused("the member token has expired; ask the platform for a new one", code="token_expired")
    return MemberGrant(claims["m"], datetime.fromtimestamp(claims["exp"], UTC))
