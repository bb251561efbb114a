"""Coupons, rewards, redemptions and budgets: revoke, reverse, release and acknowledge, each through its service."""

from __future__ import annotations

import threading
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ActionForm
from django.http import HttpRequest

from loyalty.admin.base import ReadOnly, warn_refused
from loyalty.clock import system_clock
from loyalty.domain.errors import LoyaltyError
from loyalty.domain.money import format_fen
from loyalty.domain.rewards import RewardTerms
from loyalty.domain.rewards import problems as reward_problems
from loyalty.services import (
    budgets,
    coupons,
    deferrals,
    redemptions,
    rewards,
)
from loyalty.services.budget_report import TierBudget, budget_report
from loyalty.store import models


class RevokeForm(ActionForm):
    reason = forms.CharField(required=False, max_length=200, label="Reason (for revoking)")


@admin.register(models.Coupon)
class CouponAdmin(ReadOnly):
    """Issued by the grant jobs, redeemed through the API, returned by refunds: never edited by hand,
    only revoked (an action, with a reason, through the coupon service).
    The state is as stored: an issued coupon past `valid_until` is expired all the same."""

    list_display = ("code", "member", "kind", "value_fen", "min_spend_fen", "state", "valid_from", "valid_until",
                    "order_id", "redeemed_at", "template", "stacking_group", "usage")
    list_filter = ("state", "kind", "stacking_group", "usage")
    search_fields = ("code", "member__external_id", "order_id", "template")
    list_select_related = ("member",)
    ordering = ("-id",)
    action_form = RevokeForm
    actions = ("revoke_coupons",)

    @admin.action(description="Revoke selected coupons (give a reason)", permissions=["revoke"])
    def revoke_coupons(self, request: HttpRequest, queryset: Any) -> None:
        """Through `services.coupons.revoke_coupon`, as the logged-in operator; redeemed coupons
        stay as they are (said in a warning), revoked ones are left alone."""
        reason = request.POST.get("reason", "").strip()
        if not reason:
            messages.error(request, "Give a reason for revoking: nothing was revoked.")
            return
        operator = request.user.get_username()
        revoked, again, refused = 0, 0, []
        for code in queryset.order_by("id").values_list("code", flat=True):
            try:
                outcome = coupons.revoke_coupon(code, reason=reason, by=operator)
            except LoyaltyError as error:
                refused.append(f"{code} ({error.message})")
                continue
            again += outcome.replayed
            revoked += not outcome.replayed
        messages.success(request, f"{revoked} revoked, {again} already revoked.")
        warn_refused(request, "Not revoked", refused)

    def has_revoke_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("loyalty.change_coupon")


class RewardForm(forms.ModelForm):
    class Meta:
        model = models.Reward
        fields = ("code", "name", "kind", "points_cost", "value_fen", "min_spend_fen", "valid_days", "stock",
                  "per_member_limit", "active", "available_from", "available_until")

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        # The stock as the form showed it travels with the form, so "changed" means the operator
        # changed it, not that redemptions took units since the form was opened.
        if "stock" in self.fields:
            self.fields["stock"].show_hidden_initial = True

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if self.errors:
            return data

        def value(name: str) -> Any:  # the list page's form edits only `active`: the rest is as stored
            return data[name] if name in data else getattr(self.instance, name)

        terms = RewardTerms(value("code"), value("kind"), value("points_cost"), value("value_fen") or 0,
                            value("min_spend_fen") or 0, value("valid_days"), value("stock"),
                            value("per_member_limit"), value("active"), value("available_from"),
                            value("available_until"))
        for field, problem in reward_problems(terms).items():
            self.add_error(field, problem)
        return data


@admin.register(models.Reward)
class RewardAdmin(admin.ModelAdmin):
    """The points catalogue. A saved change writes only the fields changed, so stock taken by
    redemptions while the form was open is not put back. Rewards are never deleted (redemptions
    point at them): deactivate one instead."""

    form = RewardForm
    list_display = ("code", "name", "kind", "points_cost", "value_fen", "stock", "per_member_limit", "active",
                    "available_from", "available_until")
    list_editable = ("active",)
    list_filter = ("active", "kind")
    search_fields = ("code", "name")
    ordering = ("points_cost", "code")
    actions = ("activate", "deactivate")

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        rewards.save_reward(obj, list(form.changed_data) if change else None)

    @admin.action(description="Offer selected rewards", permissions=["change"])
    def activate(self, request: HttpRequest, queryset: Any) -> None:
        messages.success(request, f"{queryset.update(active=True, updated_at=system_clock.now())} offered.")

    @admin.action(description="Withdraw selected rewards", permissions=["change"])
    def deactivate(self, request: HttpRequest, queryset: Any) -> None:
        messages.success(request, f"{queryset.update(active=False, updated_at=system_clock.now())} withdrawn.")


@admin.register(models.Redemption)
class RedemptionAdmin(ReadOnly):
    """Made through the API; an operator may reverse one (points and stock go back, once)."""

    list_display = ("created_at", "redemption_id", "member", "reward", "quantity", "points", "state",
                    "balance_after", "reversed_at", "reversed_by")
    list_filter = ("state", "reward")
    search_fields = ("redemption_id", "member__external_id", "reward__code")
    list_select_related = ("member", "reward")
    ordering = ("-id",)
    actions = ("reverse",)

    @admin.action(description="Reverse selected redemptions (points and stock go back)", permissions=["reverse"])
    def reverse(self, request: HttpRequest, queryset: Any) -> None:
        operator = request.user.get_username()
        done, refused = 0, []
        for redemption_id in queryset.filter(state="completed").order_by("id").values_list("redemption_id", flat=True):
            try:
                redemptions.reverse_redemption(redemption_id, actor=operator)
            except LoyaltyError as error:
                refused.append(f"{redemption_id} ({error.message})")
                continue
            done += 1
        messages.success(request, f"{done} reversed.")
        warn_refused(request, "Not reversed", refused)

    def has_reverse_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("loyalty.change_redemption")


class _BudgetRows(threading.local):
    """The budget report of each month shown, once per request (the admin's threads apart)."""

    request: HttpRequest | None = None
    reports: dict[str, dict[str, TierBudget]]


@admin.register(models.BudgetSpend)
class BudgetSpendAdmin(ReadOnly):
    """Each tier-month's benefit budget against what the grant jobs spent (docs/benefits.md,
    Budgets): written only by the jobs and releases, in the transaction that issues the coupons."""

    list_display = ("month", "tier", "budget", "spent", "remaining", "deferred", "deferred_value", "issued",
                    "redeemed", "alerted_at")
    list_filter = ("tier", "month")
    ordering = ("-month", "tier")
    _rows = _BudgetRows()

    def get_queryset(self, request: HttpRequest) -> Any:
        if self._rows.request is not request:
            self._rows.request, self._rows.reports = request, {}
        return super().get_queryset(request)

    def _row(self, obj: models.BudgetSpend) -> TierBudget | None:
        if obj.month not in self._rows.reports:
            rows = budget_report(obj.month).rows
            self._rows.reports[obj.month] = {row.tier: row for row in rows}
        return self._rows.reports[obj.month].get(obj.tier)

    def _yuan(self, obj: models.BudgetSpend, name: str) -> str:
        row = self._row(obj)
        value = getattr(row, name) if row else None
        return "-" if value is None else format_fen(value)

    @admin.display(description="budget (yuan)")
    def budget(self, obj: models.BudgetSpend) -> str:
        return self._yuan(obj, "budget_fen")

    @admin.display(description="spent")
    def spent(self, obj: models.BudgetSpend) -> str:
        return format_fen(obj.spent_fen)

    @admin.display(description="remaining")
    def remaining(self, obj: models.BudgetSpend) -> str:
        return self._yuan(obj, "remaining_fen")

    @admin.display(description="deferred grants")
    def deferred(self, obj: models.BudgetSpend) -> int:
        row = self._row(obj)
        return row.deferred if row else 0

    @admin.display(description="deferred value")
    def deferred_value(self, obj: models.BudgetSpend) -> str:
        return self._yuan(obj, "deferred_value_fen")

    @admin.display(description="issued")
    def issued(self, obj: models.BudgetSpend) -> str:
        return self._yuan(obj, "issued_fen")

    @admin.display(description="redeemed")
    def redeemed(self, obj: models.BudgetSpend) -> str:
        return self._yuan(obj, "redeemed_fen")


@admin.register(models.DeferredGrant)
class DeferredGrantAdmin(ReadOnly):
    """Grants a budget deferred. The release job issues them daily once the budget allows (raise
    it with a new ruleset version); the action runs that release now."""

    list_display = ("created_at", "member", "tier", "month", "reason", "cost_fen", "valid_until", "state",
                    "closed_at")
    list_filter = ("state", "tier", "month", "reason")
    search_fields = ("key", "member__external_id")
    list_select_related = ("member",)
    ordering = ("-id",)
    actions = ("release_now",)

    @admin.action(description="Release deferred grants now (every waiting one the budget allows, oldest first)",
                  permissions=["release"])
    def release_now(self, request: HttpRequest, queryset: Any) -> None:
        counts = deferrals.release_deferred(system_clock.now())
        messages.success(request, f"{counts['released']} released ({counts['coupons']} coupons), "
                                  f"{counts['lapsed']} lapsed, {counts['waiting']} still waiting.")

    def has_release_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("loyalty.change_deferredgrant")


@admin.register(models.OpsAlert)
class OpsAlertAdmin(ReadOnly):
    """What operators must look at; acknowledge an alert once it is handled."""

    list_display = ("created_at", "subject", "message", "acknowledged_at", "acknowledged_by")
    list_filter = ("kind", ("acknowledged_at", admin.EmptyFieldListFilter))
    search_fields = ("subject", "message", "key")
    ordering = ("-created_at",)
    actions = ("acknowledge",)

    @admin.action(description="Acknowledge selected alerts", permissions=["acknowledge"])
    def acknowledge(self, request: HttpRequest, queryset: Any) -> None:
        done = budgets.acknowledge(queryset.values_list("id", flat=True), by=request.user.get_username(),
                                   at=system_clock.now())
        messages.success(request, f"{done} alerts acknowledged.")

    def has_acknowledge_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("loyalty.change_opsalert")
