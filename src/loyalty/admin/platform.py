"""The platform's plumbing: job runs, API keys, webhook endpoints, deliveries and the outbox."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.http import HttpRequest

from loyalty.admin.base import ReadOnly
from loyalty.clock import system_clock
from loyalty.domain.errors import InvalidInput
from loyalty.services import (
    webhooks,
)
from loyalty.services.apikeys import check_scopes, create_key, revoke
from loyalty.store import models


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
