"""Abuse: risk scores and the review queue (approve or reject, with a note; docs/abuse.md)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ActionForm
from django.db.models import Case, Value, When
from django.http import HttpRequest

from loyalty.admin.base import ReadOnly, warn_refused
from loyalty.domain.errors import LoyaltyError
from loyalty.services import (
    holds,
)
from loyalty.store import models


class DecisionForm(ActionForm):
    note = forms.CharField(required=False, max_length=500, label="Note (why: required to decide)")


@admin.register(models.RiskScore)
class RiskScoreAdmin(ReadOnly):
    """The nightly risk scan's scores (docs/abuse.md), flagged ones filterable: what an operator
    reads next to a review case."""

    list_display = ("member", "as_of", "score", "flagged", "reasons")
    list_filter = ("flagged", "as_of")
    search_fields = ("member__external_id",)
    list_select_related = ("member",)
    ordering = ("-as_of", "-score_milli")

    @admin.display(description="score", ordering="score_milli")
    def score(self, obj: models.RiskScore) -> str:
        return str(Decimal(obj.score_milli).scaleb(-3))


@admin.register(models.ReviewCase)
class ReviewCaseAdmin(ReadOnly):
    """The review queue: members held by the flagging rules or the detector, open cases first.
    Approve posts the withheld credit, reject forfeits it; both need a note, go through
    `services.holds` as the logged-in operator, and are logged (docs/abuse.md)."""

    list_display = ("id", "member", "state", "reason_list", "opened_at", "withheld", "decided_by", "decided_at",
                    "note")
    list_filter = ("state",)
    search_fields = ("member__external_id", "decided_by", "note")
    list_select_related = ("member",)
    readonly_fields = ("member", "state", "reasons", "details", "opened_at", "withheld", "decided_at",
                       "decided_by", "note", "growth", "points", "orders", "actions")
    action_form = DecisionForm
    actions = ("approve_cases", "reject_cases")

    def get_queryset(self, request: HttpRequest) -> Any:
        return super().get_queryset(request).alias(
            open_first=Case(When(state="open", then=Value(0)), default=Value(1))).order_by("open_first", "-opened_at")

    @admin.display(description="reasons")
    def reason_list(self, obj: models.ReviewCase) -> str:
        return ", ".join(obj.reasons)

    @admin.display(description="growth / points (orders, actions)")
    def withheld(self, obj: models.ReviewCase) -> str:
        """Held now for an open case; released or forfeited for a decided one."""
        held = holds.held_totals(obj.member_id) if obj.state == "open" else obj
        return f"{held.growth} / {held.points} ({held.orders}, {held.actions})"

    @admin.action(description="Approve selected cases: post the withheld credit (give a note)",
                  permissions=["decide"])
    def approve_cases(self, request: HttpRequest, queryset: Any) -> None:
        self._decide(request, queryset, holds.approve, "approved")

    @admin.action(description="Reject selected cases: forfeit the withheld credit (give a note)",
                  permissions=["decide"])
    def reject_cases(self, request: HttpRequest, queryset: Any) -> None:
        self._decide(request, queryset, holds.reject, "rejected")

    def _decide(self, request: HttpRequest, queryset: Any, decide: Any, done: str) -> None:
        note = request.POST.get("note", "").strip()
        if not note:
            messages.error(request, "Give a note saying why: nothing was decided.")
            return
        decided, refused = 0, []
        for case in queryset.order_by("id"):
            try:
                decide(case.id, by=request.user.get_username(), note=note)
            except LoyaltyError as error:
                refused.append(f"case {case.id} ({error.message})")
                continue
            self.log_change(request, case, f"{done}: {note}")
            decided += 1
        messages.success(request, f"{decided} {done}.")
        warn_refused(request, "Not decided", refused)

    def has_decide_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("loyalty.change_reviewcase")
