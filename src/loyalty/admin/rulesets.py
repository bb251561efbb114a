"""Ruleset versions: read, diff, backtest and publish (docs/web.md, docs/backtest.md)."""

from __future__ import annotations

import hashlib
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from loyalty.admin.base import ReadOnly
from loyalty.analytics import backtest
from loyalty.clock import system_clock
from loyalty.domain.documents import canonical_yaml, document_diff, from_json, from_yaml, to_json
from loyalty.domain.errors import LoyaltyError, RulesetInvalid
from loyalty.domain.periods import local_date
from loyalty.domain.rules import Ruleset
from loyalty.services import (
    rulesets,
)
from loyalty.store import models


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
