"""Members and their history: the ledger inline, adjustments with a reason, invitations; orders,
refunds, tier changes and entries, read-only."""

from __future__ import annotations

import uuid
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse

from loyalty.admin.base import INLINE_ROWS, ReadOnly, ReadOnlyInline, warn_refused
from loyalty.domain.errors import LoyaltyError
from loyalty.services import (
    adjustments,
    invitations,
)
from loyalty.store import models


class LedgerInline(ReadOnlyInline):
    model = models.LedgerEntry
    fields = ("occurred_at", "ledger", "delta", "source", "reference", "ruleset_version")
    ordering = ("-occurred_at", "-id")
    verbose_name_plural = f"ledger (the latest {INLINE_ROWS} entries, newest first)"


class LotInline(ReadOnlyInline):
    model = models.PointsLot
    fields = ("earned_at", "source", "reference", "points", "remaining", "available_at", "expires_at")
    ordering = ("-earned_at", "-id")
    verbose_name_plural = f"points lots (the latest {INLINE_ROWS})"


class CouponInline(ReadOnlyInline):
    model = models.Coupon
    fields = ("code", "kind", "value_fen", "min_spend_fen", "state", "valid_from", "valid_until", "order_id")
    ordering = ("-issued_at", "-id")
    verbose_name_plural = f"coupons (the latest {INLINE_ROWS})"


class AdjustForm(forms.Form):
    """One adjustment. `adjustment_id` is drawn when the form is shown and travels with it, so
    the same form sent twice (a double click, a reload) is one adjustment: the service replays it."""

    ledger = forms.ChoiceField(choices=models.LEDGERS, widget=forms.RadioSelect, initial="points")
    delta = forms.IntegerField(help_text="Signed: 100 credits, -100 debits. Never overdraws.",
                               error_messages={"required": "Give the change: a signed whole number.",
                                               "invalid": "The change is a signed whole number, e.g. 100 or -100."})
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3, "cols": 80}), max_length=1000,
                             help_text="Why: kept with the adjustment and sent in its webhook.",
                             error_messages={"required": "Give a reason: every adjustment keeps why it was made."})
    adjustment_id = forms.CharField(widget=forms.HiddenInput, max_length=64)

    def clean_reason(self) -> str:
        reason = self.cleaned_data["reason"].strip()
        if not reason:
            raise forms.ValidationError("Give a reason: every adjustment keeps why it was made.")
        return str(reason)


@admin.register(models.Member)
class MemberAdmin(ReadOnly):
    """Members are searched by external id; a member's page shows the latest ledger entries, lots
    and coupons, and adjusts growth or points with a reason (through `services.adjustments`)."""

    list_display = ("external_id", "tier", "tier_expires_at", "growth_balance", "points_balance", "points_debt",
                    "orders_count", "invited")
    list_filter = ("tier", "invited")
    search_fields = ("external_id",)
    actions = ("invite_members",)
    inlines = (LedgerInline, LotInline, CouponInline)
    change_form_template = "admin/loyalty/member_change_form.html"

    def get_urls(self) -> list[Any]:
        view = self.admin_site.admin_view(self.adjust_view)
        return [path("<path:object_id>/adjust/", view, name="loyalty_member_adjust"), *super().get_urls()]

    def adjust_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        if not request.user.has_perm("loyalty.add_adjustment"):
            raise PermissionDenied
        member = self.get_object(request, object_id)
        if member is None:
            raise Http404("no such member")
        form = AdjustForm(request.POST or None, initial={"adjustment_id": f"admin-{uuid.uuid4().hex}"})
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                outcome = adjustments.adjust(member.external_id, data["ledger"], data["delta"], reason=data["reason"],
                                             actor=request.user.get_username(), adjustment_id=data["adjustment_id"])
            except LoyaltyError as error:  # inline, under the field the service names
                form.add_error(error.field if error.field in form.fields else None, error.message)
            else:
                done = "was already made" if outcome.replayed else "made"
                messages.success(request, f"Adjustment {outcome.adjustment_id} ({outcome.ledger} {outcome.delta:+d}) "
                                          f"{done}.")
                return HttpResponseRedirect(reverse("admin:loyalty_member_change", args=[member.pk]))
        context = {**self.admin_site.each_context(request), "form": form, "opts": self.model._meta,
                   "original": member, "title": f"Adjust {member.external_id}"}
        return TemplateResponse(request, "admin/loyalty/adjust.html", context)

    @admin.action(description="Invite to invitation-only tiers", permissions=["invite"])
    def invite_members(self, request: HttpRequest, queryset: Any) -> None:
        """Through the invitation service, as the logged-in operator; members invited by someone
        else keep their first invitation."""
        operator = request.user.get_username()
        invited, again, refused = 0, 0, []
        for external_id in queryset.order_by("id").values_list("external_id", flat=True):
            try:
                outcome = invitations.invite(external_id, operator=operator)
            except LoyaltyError as error:
                refused.append(f"{external_id} ({error.message})")
                continue
            if outcome.replayed:
                again += 1
            else:
                invited += 1
        messages.success(request, f"{invited} invited, {again} already invited by {operator}.")
        warn_refused(request, "Not invited", refused)

    def has_invite_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("loyalty.add_invitation")


@admin.register(models.Invitation)
class InvitationAdmin(ReadOnly):
    """Made through the API (by a member) or the Member page's action (by an operator)."""

    list_display = ("created_at", "member", "inviter", "operator", "note")
    search_fields = ("member__external_id", "inviter__external_id", "operator")
    list_select_related = ("member", "inviter")


@admin.register(models.LedgerEntry)
class LedgerEntryAdmin(ReadOnly):
    list_display = ("occurred_at", "member", "ledger", "delta", "source", "reference", "ruleset_version")
    list_filter = ("ledger", "source")
    search_fields = ("member__external_id", "reference", "idempotency_key")
    list_select_related = ("member",)


@admin.register(models.Order)
class OrderAdmin(ReadOnly):
    list_display = ("order_id", "member", "paid_at", "amount_fen", "refunded_fen", "growth_base", "growth_bonus",
                    "points")
    search_fields = ("order_id", "member__external_id")
    list_select_related = ("member",)


@admin.register(models.Refund)
class RefundAdmin(ReadOnly):
    list_display = ("refund_id", "order", "member", "amount_fen", "growth_reversed", "points_reversed",
                    "points_debt_created", "points_written_off")
    search_fields = ("refund_id", "order__order_id", "member__external_id")


@admin.register(models.TierChange)
class TierChangeAdmin(ReadOnly):
    list_display = ("changed_at", "member", "from_tier", "to_tier", "reason", "expires_at")
    list_filter = ("reason", "to_tier")
    search_fields = ("member__external_id",)


@admin.register(models.Adjustment)
class AdjustmentAdmin(ReadOnly):
    list_display = ("created_at", "member", "ledger", "delta", "actor", "reason")
    search_fields = ("member__external_id", "actor", "reason")
