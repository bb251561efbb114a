"""The member center's status read, `GET /api/v1/members/{id}`, dispatched by Django straight to
its handler.

Every page view of the member center reads it. Ninja's work around a handler (its own URL
resolution, a pydantic model for the path parameter, a provisional response, its auth wrapper)
cost about 55 µs of the read's 500 µs in the process, about a tenth of a worker's CPU per read
under load (BENCHMARKS.md, 8a). This view does the same steps: the same `Bearer`, the same check
of the path segment (`MemberPath`), the same handler, and errors through the API's own exception
handlers (`api.on_exception`), so the answers are the same byte for byte; and it reads the key and
the member in one snapshot. The Ninja operation stays declared, for the OpenAPI document; the
URLconf sends the requests here, so the API tests exercise this view."""

from __future__ import annotations

from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django.views.decorators.http import require_GET
from ninja.errors import AuthenticationError, ValidationError
from pydantic import TypeAdapter
from pydantic import ValidationError as InvalidValue

from loyalty.api import api, members
from loyalty.api.auth import Bearer
from loyalty.api.schemas import MemberPath
from loyalty.store import raw

READ_MEMBERS = Bearer("members:read", members=True)  # as the Ninja operation declares
MEMBER_SEGMENT: TypeAdapter[str] = TypeAdapter(MemberPath)


def _segment(external_id: str) -> str:
    try:
        return MEMBER_SEGMENT.validate_python(external_id)
    except InvalidValue as error:
        raise ValidationError([{**error.errors()[0], "loc": ("path", "external_id")}]) from error


@require_GET
def member_status(request: HttpRequest, external_id: str) -> HttpResponseBase:
    try:
        # One read snapshot from the key to the last entry (on SQLite, one read lock per request).
        with raw.snapshot():
            # Ninja's order: who is calling (401/403) before what they ask for (422).
            caller = READ_MEMBERS(request)
            if caller is None:
                raise AuthenticationError()
            request.auth = caller  # type: ignore[attr-defined]
            return members.status(request, _segment(external_id))
    except Exception as error:  # the kinds the API has no handler for are raised again
        return api.on_exception(request, error)
