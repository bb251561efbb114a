"""What every endpoint answers alike: the documented error statuses, and the replay header.

A replay of an idempotent call answers exactly what the first call answered (status and body);
`Idempotent-Replayed: true` tells the client it changed nothing, as Stripe does."""

from __future__ import annotations

from typing import Any

from django.http import HttpResponse

from loyalty.api.schemas import ErrorOut

ERRORS: dict[int, Any] = {status: ErrorOut for status in (400, 401, 403, 404, 409, 413, 422, 429)}


def replayed(response: HttpResponse, was_replay: bool) -> None:
    if was_replay:
        response["Idempotent-Replayed"] = "true"
