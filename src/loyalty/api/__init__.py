"""The REST API under /api/v1: Django Ninja routers over the services, nothing more.

The schema is served at /api/v1/openapi.json and the interactive docs at /api/v1/docs, from
Ninja's own bundled files (no CDN)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja import NinjaAPI
from ninja.renderers import JSONRenderer

from loyalty.api import coupons, errors, events, members, quotes, replies, rewards, rulesets
from loyalty.api.parser import ExactJSON


class Utf8JSON(JSONRenderer):
    """Every answer's JSON, written by `replies.to_json`."""

    def render(self, request: HttpRequest, data: Any, *, response_status: int) -> bytes:
        return replies.to_json(data)


api = NinjaAPI(
    title="loyalty",
    version="1",
    description=(
        "Membership growth for shops: members, tiers, growth and points, events from the shop's platform.\n\n"
        "Authenticate with `Authorization: Bearer <API key>` (scopes per endpoint) or, for the member-center "
        "page, a member token from `POST /members/{id}/token`. Money is a decimal string in yuan (\"128.00\"). "
        "Every write is idempotent on its id; errors are `{\"error\": {\"code\", \"message\", \"field\"}}`."
    ),
    parser=ExactJSON(),
    renderer=Utf8JSON(),
    urls_namespace="api",
)
errors.install(api)
api.add_router("", members.router)
api.add_router("", events.router)
api.add_router("", rulesets.router)
api.add_router("", coupons.router)
api.add_router("", quotes.router)
api.add_router("", rewards.router)
