"""Order, refund and action events, one at a time or up to 1,000 per request.

Each event is idempotent on its id: a replay answers what the first call answered (with
`Idempotent-Replayed: true`); the same id with a different payload is a 409. A batch is
recorded in one transaction and answers one result per event, in order: `applied`,
`replayed`, or `error` with the event's own error; a bad event never refuses the others.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from django.http import HttpRequest, HttpResponse
from ninja import Router, Status

from loyalty.api.auth import Bearer
from loyalty.api.errors import body
from loyalty.api.replies import ERRORS, replayed
from loyalty.api.schemas import (
    ActionIn,
    ActionOut,
    ActionsBatchIn,
    BatchOut,
    OrderIn,
    OrderOut,
    OrdersBatchIn,
    RefundIn,
    RefundOut,
    RefundsBatchIn,
)
from loyalty.domain.errors import LoyaltyError
from loyalty.domain.events import parse_action, parse_order, parse_refund
from loyalty.services.actions import record_actions
from loyalty.services.batches import only
from loyalty.services.orders import record_orders
from loyalty.services.refunds import record_refunds

router = Router(tags=["events"])
WRITE = Bearer("events:write")
Event = TypeVar("Event")


def _public(outcome: Any) -> dict[str, Any]:
    """The outcome as the client sees it: the first call's answer, without the replay flag."""
    fields = dataclasses.asdict(outcome)
    fields.pop("replayed", None)
    return fields


def _one(response: HttpResponse, payload: Any, parse: Callable[[Mapping[str, Any]], Event],
         record: Callable[[Sequence[Event]], list[Any]]) -> Status[dict[str, Any]]:
    outcome = only(record([parse(payload.model_dump(exclude_none=True))]))
    replayed(response, outcome.replayed)
    return Status(201, _public(outcome))


def _batch(events: list[dict[str, Any]], id_field: str, parse: Callable[[Mapping[str, Any]], Event],
           record: Callable[[Sequence[Event]], list[Any]]) -> BatchOut:
    parsed: list[Event | LoyaltyError] = []
    for raw in events:
        try:
            parsed.append(parse(raw))
        except LoyaltyError as error:
            parsed.append(error)
    valid = [event for event in parsed if not isinstance(event, LoyaltyError)]
    recorded = iter(record(valid))
    results, counts = [], {"applied": 0, "replayed": 0, "error": 0}
    for raw, event in zip(events, parsed, strict=True):
        answer = event if isinstance(event, LoyaltyError) else next(recorded)
        event_id = raw.get(id_field) if isinstance(raw.get(id_field), str) else None
        if isinstance(answer, LoyaltyError):
            status, result, problem = "error", None, body(answer.code, answer.message, answer.field)["error"]
        else:
            status, result, problem = ("replayed" if answer.replayed else "applied"), _public(answer), None
        counts[status] += 1
        results.append({"status": status, "id": event_id, "result": result, "error": problem})
    return BatchOut(applied=counts["applied"], replayed=counts["replayed"], failed=counts["error"],
                    results=results)  # type: ignore[arg-type]


@router.post("/events/orders", response={201: OrderOut, **ERRORS}, auth=WRITE,
             summary="A paid order: growth and points per the ruleset in force at paid_at")
def order(request: HttpRequest, payload: OrderIn, response: HttpResponse) -> Status[dict[str, Any]]:
    return _one(response, payload, parse_order, record_orders)


@router.post("/events/refunds", response={201: RefundOut, **ERRORS}, auth=WRITE,
             summary="A refund of (part of) an order: reverses growth and points in proportion")
def refund(request: HttpRequest, payload: RefundIn, response: HttpResponse) -> Status[dict[str, Any]]:
    return _one(response, payload, parse_refund, record_refunds)


@router.post("/events/actions", response={201: ActionOut, **ERRORS}, auth=WRITE,
             summary="A member action: check-in, review or share")
def action(request: HttpRequest, payload: ActionIn, response: HttpResponse) -> Status[dict[str, Any]]:
    return _one(response, payload, parse_action, record_actions)


@router.post("/events/orders:batch", response={200: BatchOut, **ERRORS}, auth=WRITE,
             summary="Up to 1,000 orders in one transaction, one result per order")
def orders_batch(request: HttpRequest, payload: OrdersBatchIn) -> BatchOut:
    return _batch(payload.events, "order_id", parse_order, record_orders)


@router.post("/events/refunds:batch", response={200: BatchOut, **ERRORS}, auth=WRITE,
             summary="Up to 1,000 refunds in one transaction, one result per refund")
def refunds_batch(request: HttpRequest, payload: RefundsBatchIn) -> BatchOut:
    return _batch(payload.events, "refund_id", parse_refund, record_refunds)


@router.post("/events/actions:batch", response={200: BatchOut, **ERRORS}, auth=WRITE,
             summary="Up to 1,000 actions in one transaction, one result per action")
def actions_batch(request: HttpRequest, payload: ActionsBatchIn) -> BatchOut:
    return _batch(payload.events, "event_id", parse_action, record_actions)
