"""What every page of the console shares: read-only pages, inlines of the latest rows, refusals."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest


class ReadOnly(admin.ModelAdmin):
    """Shows, searches and filters; never adds, changes or deletes."""

    list_per_page = 50

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def warn_refused(request: HttpRequest, heading: str, refused: list[str]) -> None:
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
