"""What the API tests share: a JSON client that carries a bearer token, the checks on the one
error shape, and `snapshot()`, the "nothing changed" check over every table of the store.

Real code throughout: Django's test client runs the whole stack (middleware, Ninja, services,
the database); keys come from `loyalty.services.apikeys`, never from a double.
"""

from __future__ import annotations

import json
from typing import Any

from django.apps import apps
from django.http import HttpResponse
from django.test import Client

from loyalty.services.apikeys import create_key
from loyalty.store.models import SCOPES, Member

BASE = "/api/v1"
ORDER_DAY = "2027-01-04T10:00:00+08:00"  # a Monday in Shanghai: no weekend multiplier


class Api:
    """The API as a client sees it: JSON bodies (or raw text), `Authorization: Bearer <token>`."""

    def __init__(self, token: str | None = None):
        self.token = token
        self.client = Client()

    def _headers(self, token: str | None) -> dict[str, str]:
        chosen = self.token if token is None else token
        return {"Authorization": f"Bearer {chosen}"} if chosen else {}

    def get(self, path: str, *, token: str | None = None, **query: Any) -> HttpResponse:
        return self.client.get(BASE + path, query, headers=self._headers(token))

    def post(self, path: str, body: Any = None, *, raw: str | bytes | None = None,
             token: str | None = None) -> HttpResponse:
        data = raw if raw is not None else ("" if body is None else json.dumps(body))
        return self.client.post(BASE + path, data, content_type="application/json", headers=self._headers(token))

    def anonymous(self) -> Api:
        return Api(token="")


def key_for(name: str, *scopes: str, rate_per_minute: int = 6000) -> str:
    """A live API key's plaintext (every scope when none is named)."""
    return create_key(name, scopes or SCOPES, rate_per_minute=rate_per_minute).plaintext


def answer(response: HttpResponse, status: int) -> Any:
    """The JSON body of a response that must have `status` (and be JSON, never HTML)."""
    assert response.status_code == status, (response.status_code, response.content[:2000])
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    return json.loads(response.content)


def error_of(response: HttpResponse, status: int) -> dict[str, Any]:
    """The `{"error": {"code", "message", "field"}}` of a 4xx answer, checked for its shape."""
    assert 400 <= status < 500
    body = answer(response, status)
    assert set(body) == {"error"}, body
    error = body["error"]
    assert set(error) == {"code", "message", "field"}, error
    assert isinstance(error["code"], str) and error["code"], error
    assert isinstance(error["message"], str) and error["message"], error
    assert error["field"] is None or isinstance(error["field"], str), error
    return dict(error)


def is_replay(response: HttpResponse) -> bool:
    return response.headers.get("Idempotent-Replayed") == "true"


def _store_models() -> list[Any]:
    return list(apps.get_app_config(Member._meta.app_label).get_models())


def snapshot() -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table the store owns (ledger, members, keys, rulesets, outbox, ...)."""
    return {model._meta.db_table: list(model.objects.order_by("pk").values_list()) for model in _store_models()}


def counts() -> dict[str, int]:
    return {model._meta.db_table: model.objects.count() for model in _store_models()}


def order(order_id: str, member: str = "m-1", amount: str = "100.00", paid_at: str = ORDER_DAY,
          **extra: Any) -> dict[str, Any]:
    return {"order_id": order_id, "member": member, "paid_at": paid_at, "amount": amount, **extra}


def refund(refund_id: str, order_id: str, amount: str, refunded_at: str = "2027-01-05T09:00:00+08:00"
           ) -> dict[str, Any]:
    return {"refund_id": refund_id, "order_id": order_id, "amount": amount, "refunded_at": refunded_at}


def action(event_id: str, member: str = "m-1", kind: str = "check_in", at: str = "2027-01-04T08:00:00+08:00",
           **extra: Any) -> dict[str, Any]:
    return {"event_id": event_id, "member": member, "type": kind, "at": at, **extra}
