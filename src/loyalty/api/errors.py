"""Every error the API answers has one shape, `{"error": {"code", "message", "field"}}`, and a 4xx
status for every client mistake. The engine's errors map by kind; the edge adds its own
(authentication, scopes, rate limits, malformed or oversized bodies)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseNotFound
from django.http.response import HttpResponseBase
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError

from loyalty.domain.errors import Conflict, Forbidden, InvalidInput, LoyaltyError, NotFound, Refused

STATUS_BY_KIND: tuple[tuple[type[LoyaltyError], int], ...] = (
    (InvalidInput, 422), (NotFound, 404), (Conflict, 409), (Refused, 422), (Forbidden, 403),
)


class ApiError(LoyaltyError):
    """An error only the edge knows (authentication, scopes, limits), with its HTTP status."""

    status = 400

    def __init__(self, message: str, *, code: str, status: int, field: str | None = None,
                 headers: dict[str, str] | None = None):
        super().__init__(message, field=field, code=code)
        self.status = status
        self.headers = headers or {}


def status_of(error: LoyaltyError) -> int:
    if isinstance(error, ApiError):
        return error.status
    return next((status for kind, status in STATUS_BY_KIND if isinstance(error, kind)), 400)


def body(code: str, message: str, field: str | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "field": field}}


def _field_of(location: Any) -> str | None:
    """pydantic's location, e.g. ("body", "payload", "items", 0, "amount") -> "items[0].amount"."""
    parts = list(location)[2:] if location and location[0] == "body" else list(location)[1:]
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or None


API_PREFIX = "/api/v1/"


class UnknownRoutes:
    """Middleware: under /api/v1/, Django's HTML 404 for a path no route matches and Ninja's empty
    405 for a method the path does not take become the one error shape (the `Allow` header kept).
    Ninja's PathView returns its 405 itself, so no exception handler ever sees it; and a catch-all
    route would answer the unknown paths only. Other paths (the admin, ...) are left as they are."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        response = self.get_response(request)
        if not isinstance(response, (HttpResponseNotFound, HttpResponseNotAllowed)) \
                or not request.path_info.startswith(API_PREFIX):
            return response
        # The request's path and method are not echoed: they are the client's text, hostile or not.
        if isinstance(response, HttpResponseNotAllowed):
            allowed = ", ".join(sorted(method.strip() for method in response["Allow"].split(",")))
            answer = _json(405, body("method_not_allowed", f"this endpoint takes {allowed}, not that method"))
            answer["Allow"] = allowed
            return answer
        return _json(404, body("not_found", f"no endpoint at this path; the endpoints are listed at {API_PREFIX}docs"))


def _json(status: int, data: dict[str, Any]) -> HttpResponse:
    return HttpResponse(json.dumps(data, ensure_ascii=False), status=status,
                        content_type="application/json; charset=utf-8")


def install(api: NinjaAPI) -> None:
    def respond(request: HttpRequest, status: int, code: str, message: str, field: str | None = None,
                headers: dict[str, str] | None = None) -> HttpResponse:
        response = api.create_response(request, body(code, message, field), status=status)
        for name, value in (headers or {}).items():
            response[name] = value
        return response

    @api.exception_handler(LoyaltyError)
    def loyalty_error(request: HttpRequest, error: LoyaltyError) -> HttpResponse:
        return respond(request, status_of(error), error.code, error.message, error.field,
                       getattr(error, "headers", None))

    @api.exception_handler(ValidationError)
    def invalid(request: HttpRequest, error: ValidationError) -> HttpResponse:
        first = error.errors[0] if error.errors else {}
        field = _field_of(first.get("loc", ()))
        message = str(first.get("msg", "invalid input"))
        return respond(request, 422, "invalid_input", f"{field}: {message}" if field else message, field)

    @api.exception_handler(AuthenticationError)
    def unauthenticated(request: HttpRequest, error: AuthenticationError) -> HttpResponse:
        return respond(request, 401, "unauthenticated",
                       "send an API key or member token as `Authorization: Bearer <token>`",
                       headers={"WWW-Authenticate": "Bearer"})

    # IMPORTANT: Ninja reads `request.body` outside its parse guard, so an oversized body raises
    # RequestDataTooBig itself (not wrapped in an HttpError); left alone, Django answers an HTML 400.
    @api.exception_handler(RequestDataTooBig)
    def too_big(request: HttpRequest, error: RequestDataTooBig) -> HttpResponse:
        return respond(request, 413, "body_too_large", "the request body is larger than the API accepts")

    @api.exception_handler(HttpError)
    def http_error(request: HttpRequest, error: HttpError) -> HttpResponse:
        cause = error.__cause__
        if isinstance(cause, RequestDataTooBig):
            return respond(request, 413, "body_too_large", "the request body is larger than the API accepts")
        # RecursionError: a body nested thousands deep ([[[[...]]]]) is malformed too, not a server fault.
        if isinstance(cause, (ValueError, UnicodeDecodeError, json.JSONDecodeError, RecursionError)):
            return respond(request, 400, "malformed_json", f"the body is not valid JSON: {cause}")
        return respond(request, error.status_code, "http_error", str(error))
