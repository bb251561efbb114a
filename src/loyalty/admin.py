"""The operators' console: the Django admin, read-only over the ledger.

Entries, lots and debts are never edited by hand: a correction is an adjustment, made through
the adjustment service (with its reason and actor), so the admin shows the ledger and changes
nothing in it. Every operator action goes through its service, as the logged-in operator:
inviting members into the invitation-only tiers, revoking coupons, reversing redemptions,
releasing deferred grants, acknowledging alerts, approving or rejecting review cases, adjusting
a member with a reason and publishing a ruleset version (after its diff; docs/web.md).
"""

from __future__ import annotations

import hashlib
import threading
import uuid
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ActionForm
from django.core.exceptions import PermissionDenied
from django.db.models import Case, Value, When
from django.forms.models import BaseInlineFormSet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from loyalty.analytics import backtest
from loyalty.clock import system_clock
from loyalty.domain.documents import canonical_yaml, document_diff, from_json, from_yaml, to_json
from loyalty.domain.errors import InvalidInput, LoyaltyError, RulesetInvalid
from loyalty.domain.money import format_fen
from loyalty.domain.periods import local_date
from loyalty.domain.rewards import RewardTerms
from loyalty.domain.rewards import problems as reward_problems
from loyalty.domain.rules import Ruleset
from loyalty.services import (
    adjustments,
    budgets,
    coupons,
    deferrals,
    holds,
    invitations,
    redemptions,
    rewards,
    rulesets,
    webhooks,
)
from loyalty.services.apikeys import check_scopes, create_key, revoke
from loyalty.services.budget_report import TierBudget, budget_report
from loyalty.store import models


class ReadOnly(admin.ModelAdmin):
    """Shows, searches and filters; never adds, changes or deletes."""

    list_per_page = 50

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def _warn_refused(request: HttpRequest, heading: str, refused: list[str]) -> None:
    """What a bulk action could not do, the first ten named, as one warning."""
    if refused:
        more = f" and {len(refused) - 10} more." if len(refused) > 10 else "."
        messages.warning(request, f"{heading}: {'; '.join(refused[:10])}{more}")


INLINE_ROWS = 50


class LatestRows(BaseInlineFormSet):
    """The member's newest rows only: the full list is one link away, filtered to the member."""

    def get_queryset(self) -> Any:
        return super().get_queryset()[:INLINE_ROWS]


class ReadOnlyInline(admin.TabularInline):
    formset = LatestRows
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


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
        _warn_refused(request, "Not invited", refused)

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
        _warn_refused(request, "Not revoked", refused)

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
        _warn_refused(request, "Not reversed", refused)

    def has_reverse_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("loyalty.change_redemption")


class BacktestForm(forms.Form):
    candidate = forms.CharField(widget=forms.Textarea(attrs={"rows": 18, "cols": 100, "spellcheck": "false"}),
                                help_text="The candidate ruleset, YAML or JSON, as `loyalty ruleset validate` "
                                          "reads it.")
    baseline = forms.TypedChoiceField(coerce=int, required=False,
                                      help_text="What to compare with: the version in force now, or a stored one.")
    delivery_fee = forms.DecimalField(min_value=Decimal(0), decimal_places=2, initial=Decimal(0), required=False,
                                      help_text="What a free delivery costs the shop, in yuan.")
    months = forms.IntegerField(min_value=1, required=False, help_text="Show only the last N months.")

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        versions = models.RulesetVersion.objects.order_by("-version").values_list("version", "name")
        baseline = self.fields["baseline"]
        assert isinstance(baseline, forms.TypedChoiceField)
        baseline.choices = [(0, "the version in force now"),
                                           *((v, f"version {v} ({name})") for v, name in versions)]

    def clean_candidate(self) -> Ruleset:
        try:
            return rulesets.validate(from_yaml(self.cleaned_data["candidate"]))
        except RulesetInvalid as error:  # every problem, inline under the field
            raise forms.ValidationError(list(error.problems)) from error
        except LoyaltyError as error:
            raise forms.ValidationError(error.message) from error


def backtest_context(candidate: Ruleset, baseline: Ruleset, months: int | None, fee_fen: int) -> dict[str, Any]:
    """The backtest's comparison as the backtest and publish pages show it (admin/loyalty/backtest_result.html)."""
    result = backtest.simulate(candidate, baseline, backtest.history_from_db(), months=months, delivery_fee_fen=fee_fen)
    rows = backtest.shown(result)
    return {"result": result, "tier_rows": rows.tiers, "flow_rows": rows.flows, "totals": rows.totals}


def render_diff(lines: list[tuple[str, str]], same: str) -> str:
    return render_to_string("admin/loyalty/ruleset_diff.html", {"lines": lines, "same": same})


def active_ruleset(as_of: datetime) -> rulesets.ActiveRuleset | None:
    try:
        return rulesets.in_force(as_of)
    except LoyaltyError:  # nothing published yet, or only versions that start later
        return None


class PublishForm(forms.Form):
    candidate = forms.CharField(label="Ruleset (YAML)",
                                widget=forms.Textarea(attrs={"rows": 30, "cols": 100, "spellcheck": "false"}),
                                help_text="Prefilled with the version in force. JSON is accepted too.")
    effective_from = forms.CharField(max_length=40, help_text="YYYY-MM-DD (midnight in the ruleset's timezone) "
                                                              "or an ISO time with an offset: 2027-03-01T00:00+08:00.")
    reason = forms.CharField(required=False, max_length=1000, widget=forms.Textarea(attrs={"rows": 2, "cols": 100}),
                             help_text="Why: kept with the version. Required to force.")
    force = forms.BooleanField(required=False, label="Publish inside the notice period",
                               help_text="Only for a version that makes tiers harder sooner than "
                                         "publishing.notice_days allows; needs a reason.")

    document: dict[str, Any]
    ruleset: Ruleset | None = None

    def clean_candidate(self) -> str:
        text = str(self.cleaned_data["candidate"])
        try:
            self.document = from_yaml(text)
            self.ruleset = rulesets.validate(self.document)
        except RulesetInvalid as error:  # every problem, inline under the field
            raise forms.ValidationError(list(error.problems)) from error
        except LoyaltyError as error:
            raise forms.ValidationError(error.message) from error
        return text

    def clean_effective_from(self) -> datetime | None:
        """As `loyalty ruleset publish --effective-from` reads it; a date is in the candidate's timezone."""
        text = self.cleaned_data["effective_from"].strip()
        try:
            if len(text) == 10:
                if self.ruleset is None:  # the candidate's own problems come first
                    return None
                return datetime.combine(date.fromisoformat(text), datetime.min.time(), tzinfo=self.ruleset.timezone)
            moment = datetime.fromisoformat(text)
        except ValueError as error:
            raise forms.ValidationError(f"not a date or a time: {text!r}") from error
        if moment.tzinfo is None:
            raise forms.ValidationError("a time needs its offset, e.g. 2027-03-01T00:00+08:00")
        return moment


@admin.register(models.RulesetVersion)
class RulesetVersionAdmin(ReadOnly):
    """Versions are read here (each with its diff against the version before), a candidate is
    backtested on the shop's history, and operators with `loyalty.add_rulesetversion` publish
    one: the candidate's problems are listed under the field, its diff against the version in
    force is shown, and Publish goes through `services.rulesets.publish` (the notice period
    applies) only for the text whose diff was shown."""

    list_display = ("version", "name", "effective_from", "published_at", "published_by")
    change_list_template = "admin/loyalty/rulesetversion_changelist.html"
    fields = ("version", "name", "effective_from", "published_at", "published_by", "reason", "checksum",
              "document_yaml", "changes")
    readonly_fields = ("document_yaml", "changes")

    def get_urls(self) -> list[Any]:
        view = self.admin_site.admin_view
        return [path("backtest/", view(self.backtest_view), name="loyalty_rulesetversion_backtest"),
                path("publish/", view(self.publish_view), name="loyalty_rulesetversion_publish"),
                *super().get_urls()]

    @admin.display(description="document (YAML)")
    def document_yaml(self, obj: models.RulesetVersion) -> str:
        return format_html('<pre style="white-space:pre-wrap;margin:0">{}</pre>',
                           canonical_yaml(from_json(obj.document)))

    @admin.display(description="changes from the version before")
    def changes(self, obj: models.RulesetVersion) -> str:
        before = models.RulesetVersion.objects.filter(version__lt=obj.version).order_by("-version").first()
        if before is None:
            return "The first version: nothing before it."
        lines = document_diff(from_json(before.document), from_json(obj.document), f"version {before.version}",
                              f"version {obj.version}")
        return render_diff(lines, f"The same document as version {before.version}.")

    def backtest_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        form = BacktestForm(request.POST or None)
        context: dict[str, Any] = {**self.admin_site.each_context(request), "form": form, "opts": self.model._meta}
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            baseline = (rulesets.by_version(data["baseline"]).ruleset if data["baseline"]
                        else rulesets.in_force(system_clock.now()).ruleset)
            fee = int((data["delivery_fee"] or Decimal(0)) * 100)
            context.update(backtest_context(data["candidate"], baseline, data["months"], fee))
        return TemplateResponse(request, "admin/loyalty/backtest.html", context)

    def publish_view(self, request: HttpRequest) -> HttpResponse:
        """Every valid post shows the diff (and the backtest when asked); Publish publishes only
        the text whose diff the page showed (`previewed`: its checksum), so nothing unseen goes out."""
        if not request.user.has_perm("loyalty.add_rulesetversion"):
            raise PermissionDenied
        now = system_clock.now()
        active = active_ruleset(now)
        in_force = rulesets.stored(active.version) if active else None
        base = from_json(in_force.document) if in_force else None
        tomorrow = local_date(now, active.ruleset.timezone) + timedelta(days=1) if active else None
        form = PublishForm(request.POST or None, initial={"candidate": canonical_yaml(base) if base else "",
                                                          "effective_from": tomorrow.isoformat() if tomorrow else ""})
        context: dict[str, Any] = {**self.admin_site.each_context(request), "form": form, "opts": self.model._meta,
                                   "in_force": in_force, "latest": rulesets.stored(), "title": "Publish a ruleset",
                                   "in_force_from": active.effective_from.astimezone(active.ruleset.timezone)
                                   if active else None}
        if request.method == "POST" and form.is_valid():
            checksum = hashlib.sha256(to_json(form.document).encode()).hexdigest()
            shown = f"version {in_force.version} (in force)" if in_force else "nothing published"
            context.update(checksum=checksum, diff=render_diff(document_diff(base, form.document, shown, "candidate"),
                                                               "The candidate is the version in force, unchanged."))
            if "publish" in request.POST:
                if request.POST.get("previewed") != checksum:
                    form.add_error(None, "The text changed since its diff was shown: read the diff below, then "
                                         "publish.")
                elif (published := self._publish(request, form)) is not None:
                    return HttpResponseRedirect(reverse("admin:loyalty_rulesetversion_change", args=[published.pk]))
            elif "backtest" in request.POST and active is not None and form.ruleset is not None:
                context.update(backtest_context(form.ruleset, active.ruleset, None, 0))
        return TemplateResponse(request, "admin/loyalty/publish.html", context)

    def _publish(self, request: HttpRequest, form: PublishForm) -> models.RulesetVersion | None:
        data = form.cleaned_data
        try:
            version = rulesets.publish(form.document, effective_from=data["effective_from"],
                                       actor=request.user.get_username(), reason=data["reason"].strip(),
                                       force=data["force"])
        except LoyaltyError as error:  # the notice period, a start before the latest, a replay with another reason
            form.add_error(error.field if error.field in form.fields else None, error.message)
            return None
        self.log_addition(request, version, f"published: {data['reason'].strip()}")
        messages.success(request, f"Published {version.name} as version {version.version}, in force from "
                                  f"{version.effective_from.isoformat()}.")
        return version


@admin.register(models.JobRun)
class JobRunAdmin(ReadOnly):
    """Written only by `loyalty jobs run-due`: a failed or crashed run is retried by the next one."""

    list_display = ("job", "due_at", "state", "attempts", "started_at", "finished_at", "counts")
    list_filter = ("job", "state")
    search_fields = ("job", "error")
    ordering = ("-due_at", "job")
    date_hierarchy = "due_at"


class ApiKeyForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(choices=[(s, s) for s in models.SCOPES], widget=forms.CheckboxSelectMultiple)

    class Meta:
        model = models.ApiKey
        fields = ("name", "scopes", "rate_per_minute")


@admin.register(models.ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    """Keys are created here or with `loyalty apikey create`; the key is shown once, after saving,
    and only its hash is kept. A key is never deleted, only revoked (so its use stays traceable)."""

    form = ApiKeyForm
    list_display = ("prefix", "name", "scopes", "rate_per_minute", "created_at", "revoked_at")
    list_filter = ("revoked_at",)
    search_fields = ("name", "prefix")
    actions = ("revoke_keys",)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        return ("name", "prefix", "created_at", "revoked_at") if obj else ()

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        if change:
            obj.scopes = check_scopes(obj.scopes)
            obj.save()
            return
        made = create_key(obj.name, form.cleaned_data["scopes"], rate_per_minute=obj.rate_per_minute)
        obj.pk, obj.prefix, obj.created_at = made.key.pk, made.key.prefix, made.key.created_at
        messages.warning(request, f"The new key (shown only now, copy it): {made.plaintext}")

    @admin.action(description="Revoke selected keys", permissions=["change"])  # not for viewers
    def revoke_keys(self, request: HttpRequest, queryset: Any) -> None:
        for key in queryset.filter(revoked_at__isnull=True):
            revoke(key.prefix)
        messages.success(request, "Revoked.")


class WebhookEndpointForm(forms.ModelForm):
    url = forms.URLField(max_length=500, assume_scheme="https")
    events = forms.MultipleChoiceField(choices=[(e, e) for e in models.WEBHOOK_EVENTS], required=False,
                                       widget=forms.CheckboxSelectMultiple, help_text="None ticked: every type.")
    secret = forms.CharField(required=False, max_length=80, help_text="Leave blank to generate one (whsec_…).")

    class Meta:
        model = models.WebhookEndpoint
        fields = ("url", "events", "active", "description", "secret")

    def clean_url(self) -> str:
        try:
            return webhooks.check_url(self.cleaned_data["url"])
        except InvalidInput as error:
            raise forms.ValidationError(error.message) from error


@admin.register(models.WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    """Endpoints are added here or with `loyalty webhooks add`. The secret signs every delivery, so
    the receiver needs it; it is shown (read-only) on the endpoint's page. Deactivate an endpoint
    instead of deleting it: its deliveries stay traceable."""

    form = WebhookEndpointForm
    list_display = ("url", "events", "active", "description", "created_at")
    list_filter = ("active",)
    search_fields = ("url", "description")

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        return ("secret", "created_at") if obj else ()

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        if not change:
            obj.created_at = system_clock.now()
            obj.secret = obj.secret or webhooks.new_secret()
        obj.save()


class HasError(admin.SimpleListFilter):
    title = "last error"
    parameter_name = "error"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", "with an error"), ("no", "without")]

    def queryset(self, request: HttpRequest, queryset: Any) -> Any:
        if self.value() == "yes":
            return queryset.exclude(last_error="")
        if self.value() == "no":
            return queryset.filter(last_error="")
        return queryset


@admin.register(models.WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnly):
    """Deliveries change only through the dispatcher; an operator may replay parked ones."""

    list_display = ("id", "event_summary", "endpoint", "member", "state", "attempts", "next_attempt_at",
                    "last_status", "last_error", "delivered_at")
    list_filter = ("state", "attempts", "last_status", HasError, "endpoint")
    search_fields = ("event__event_id", "member__external_id", "last_error")
    list_select_related = ("event", "endpoint", "member")
    actions = ("replay_deliveries",)

    @admin.display(description="event")
    def event_summary(self, obj: models.WebhookDelivery) -> str:
        return f"{obj.event.type} {obj.event.event_id}"

    @admin.action(description="Replay selected deliveries", permissions=["replay"])
    def replay_deliveries(self, request: HttpRequest, queryset: Any) -> None:
        moved = webhooks.replay(queryset.values_list("id", flat=True))
        messages.success(request, f"{moved} deliveries queued again (pending ones are left as they are).")

    def has_replay_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("loyalty.change_webhookdelivery")


@admin.register(models.OutboxEvent)
class OutboxEventAdmin(ReadOnly):
    list_display = ("created_at", "type", "member", "event_id", "fanned_out_at")
    list_filter = ("type",)
    search_fields = ("event_id", "key", "member__external_id")
    list_select_related = ("member",)


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
        _warn_refused(request, "Not decided", refused)

    def has_decide_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("loyalty.change_reviewcase")
