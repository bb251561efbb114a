"""The operators' console: the Django admin, read-only over the ledger.

Entries, lots and debts are never edited by hand: a correction is an adjustment, made through
the adjustment service (with its reason and actor), so the admin shows the ledger and changes
nothing in it. Richer operator actions (adjust with a reason, invite, review queues) come with
the console work.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

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


@admin.register(models.Member)
class MemberAdmin(ReadOnly):
    list_display = ("external_id", "tier", "tier_expires_at", "growth_balance", "points_balance", "points_debt",
                    "orders_count", "invited")
    list_filter = ("tier", "invited")
    search_fields = ("external_id",)


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


@admin.register(models.RulesetVersion)
class RulesetVersionAdmin(ReadOnly):
    list_display = ("version", "name", "effective_from", "published_at", "published_by")
