"""Rulesets: list the versions, read one, publish the next (validated; every problem named)."""

from __future__ import annotations

from datetime import UTC
from typing import Annotated

from django.http import HttpRequest
from ninja import Path, Router, Status

from loyalty.api.auth import Bearer, caller
from loyalty.api.errors import ApiError
from loyalty.api.replies import ERRORS
from loyalty.api.schemas import RulesetDetailOut, RulesetIn, RulesetOut
from loyalty.domain.documents import from_json
from loyalty.services import rulesets
from loyalty.store.models import RulesetVersion

router = Router(tags=["rulesets"])


def _out(version: RulesetVersion) -> RulesetOut:
    # In UTC, as stored: a fresh version still holds the caller's offset, and a replay of the
    # publish must answer exactly what the first call answered.
    return RulesetOut(version=version.version, name=version.name, checksum=version.checksum,
                      effective_from=version.effective_from.astimezone(UTC),
                      published_at=version.published_at.astimezone(UTC),
                      published_by=version.published_by, reason=version.reason)


@router.get("/rulesets", response={200: list[RulesetOut], **ERRORS}, auth=Bearer("members:read"),
            summary="Every published version, oldest first")
def versions(request: HttpRequest) -> list[RulesetOut]:
    return [_out(version) for version in RulesetVersion.objects.order_by("version")]


@router.get("/rulesets/{version}", response={200: RulesetDetailOut, **ERRORS}, auth=Bearer("members:read"),
            summary="One version with its document")
def version(request: HttpRequest, version: Annotated[int, Path(examples=[1])]) -> RulesetDetailOut:
    stored = rulesets.stored(version) if 0 < version < 2**31 else None
    if stored is None:
        raise ApiError(f"no ruleset version {version}", code="unknown_ruleset", status=404, field="version")
    return RulesetDetailOut(**_out(stored).model_dump(), document=from_json(stored.document))


@router.post("/rulesets", response={201: RulesetOut, **ERRORS}, auth=Bearer("rulesets:write"),
             summary="Publish the next version, in force from effective_from (idempotent on the same "
                     "document, effective_from and reason; another reason is a 409)",
             description="A version that makes tiers harder than the one in force (a threshold up, a tier "
                         "removed or made invitation-only, shorter validity) must start at least "
                         "`publishing.notice_days` (default 90) from now, or is refused (422 `notice_period`), "
                         "unless `force` is true and a reason is given.")
def publish(request: HttpRequest, payload: RulesetIn) -> Status[RulesetOut]:
    published = rulesets.publish(payload.document, effective_from=payload.effective_from, actor=caller(request).actor,
                                 reason=payload.reason, force=payload.force)
    return Status(201, _out(published))
