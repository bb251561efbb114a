"""The member center, `/m/`: a member's own page, opened from the shop with a member token.

The platform sends the member's browser to `/m/?token=mt_...` (`member_center_url`). The view
checks the token, keeps the member in a signed, HttpOnly, SameSite=Lax cookie that expires with
the token, and redirects to `/m/` so the token leaves the address bar (and browser history).
No URL names a member: every read is for the cookie's member, so another member's data cannot be
reached by editing a URL. A missing, forged or expired token or cookie answers 401 with a page
that sends the member back to the shop. `?lang=en` (or `zh-hans`) picks the language and
remembers it in a cookie; `?page=N` pages the growth history.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

from django.core import signing
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.views.decorators.http import require_safe

from loyalty.clock import Clock, system_clock
from loyalty.domain.errors import NotFound
from loyalty.services import coupons, member_center
from loyalty.services.member_tokens import MEMBER_TOKEN_MAX_TTL, TokenRefused, issue_member_token, read_member_grant
from loyalty.web.member_page import Words, page_context
from loyalty.web.member_text import HTML_LANG, TEXT, language_of

MEMBER_COOKIE = "loyalty_member"
LANGUAGE_COOKIE = "loyalty_lang"
COOKIE_SALT = "loyalty.member-center"
COUPONS_SHOWN = 20
CLOCK: Clock = system_clock  # IMPORTANT: read at each request, so tests can set a FixedClock


def member_center_url(external_id: str, *, base: str = "", ttl: timedelta = MEMBER_TOKEN_MAX_TTL) -> str:
    """The link that opens `external_id`'s member center, valid `ttl` (e.g. printed by the demo)."""
    token, _ = issue_member_token(external_id, ttl=ttl, clock=CLOCK)
    return f"{base.rstrip('/')}/m/?{urlencode({'token': token})}"


@dataclass(frozen=True)
class Session:
    member: str
    expires_at: datetime


def _session(request: HttpRequest) -> Session | None:
    """The cookie's member, while the token it came from is valid."""
    value = request.COOKIES.get(MEMBER_COOKIE)
    if not value:
        return None
    try:
        claims = signing.loads(value, salt=COOKIE_SALT)
    except signing.BadSignature:
        return None
    if not isinstance(claims, dict) or not isinstance(claims.get("m"), str) or not isinstance(claims.get("exp"), int):
        return None
    expires_at = datetime.fromtimestamp(claims["exp"], UTC)
    return Session(claims["m"], expires_at) if expires_at > CLOCK.now() else None


def _language(request: HttpRequest) -> str:
    return language_of(request.COOKIES.get(LANGUAGE_COOKIE))


def _page_number(request: HttpRequest) -> int:
    text = request.GET.get("page", "1")
    return int(text) if text.isdigit() and len(text) < 7 else 1


def _no_store(response: HttpResponse) -> HttpResponse:
    """A member's page is theirs alone: no shared cache keeps it, no link leaks its address."""
    response["Cache-Control"] = "no-store"
    response["Referrer-Policy"] = "no-referrer"
    return response


def closed(request: HttpRequest, language: str) -> HttpResponse:
    words = Words(language)
    response = render(request, "member/closed.html", {"t": TEXT[language], "lang": HTML_LANG[language],
                                                      "switch": _switch_link(request, words)}, status=401)
    response.delete_cookie(MEMBER_COOKIE, path="/m/", samesite="Lax")
    return _no_store(response)


def _switch_link(request: HttpRequest, words: Words) -> str:
    query = {key: value for key, value in request.GET.items() if key not in ("lang", "token")}
    query["lang"] = words("switch_lang")
    return f"{request.path}?{urlencode(query)}"


def _redirect_without(request: HttpRequest, *names: str) -> HttpResponseRedirect:
    query = {key: value for key, value in request.GET.items() if key not in names}
    return HttpResponseRedirect(request.path + (f"?{urlencode(query)}" if query else ""))


def _opened(request: HttpRequest, token: str) -> HttpResponse:
    """Trade the token in the address bar for the cookie, then show the page without it."""
    try:
        grant = read_member_grant(token, clock=CLOCK)
    except TokenRefused:
        return closed(request, _language(request))
    response = _redirect_without(request, "token")
    max_age = int((grant.expires_at - CLOCK.now()).total_seconds())
    value = signing.dumps({"m": grant.member, "exp": int(grant.expires_at.timestamp())}, salt=COOKIE_SALT)
    response.set_cookie(MEMBER_COOKIE, value, max_age=max_age, path="/m/", httponly=True, samesite="Lax",
                        secure=request.is_secure())
    return _no_store(response)


@require_safe
def center(request: HttpRequest) -> HttpResponse:
    language_asked = request.GET.get("lang")
    if language_asked is not None:
        response = _redirect_without(request, "lang")
        response.set_cookie(LANGUAGE_COOKIE, language_of(language_asked), max_age=365 * 24 * 3600, path="/",
                            samesite="Lax", secure=request.is_secure())
        return response
    token = request.GET.get("token")
    if token is not None:
        return _opened(request, token)
    language = _language(request)
    session = _session(request)
    if session is None:
        return closed(request, language)
    try:
        visit = member_center.visit(session.member, clock=CLOCK)
    except NotFound:  # a member the token named and the database no longer has
        return closed(request, language)
    history = member_center.growth_history(session.member, _page_number(request))
    wallet = coupons.wallet(session.member, limit=COUPONS_SHOWN, clock=CLOCK).coupons
    words = Words(language)
    context = {"t": TEXT[language], "lang": HTML_LANG[language], "switch": _switch_link(request, words),
               **page_context(visit, history, wallet, words)}
    return _no_store(render(request, "member/center.html", context))
