"""The operations console's filters, read from the query string: `from` and `to` (dates, both
inclusive, either open) and `tier` (a tier code of the ruleset in force; members are picked by
the tier they held at the period's start, as in docs/metrics.md)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from django import forms
from django.http import QueryDict

DATE_HELP = "YYYY-MM-DD"


@dataclass(frozen=True)
class Filters:
    start: date | None = None
    end: date | None = None
    tier: str | None = None

    @property
    def key(self) -> str:
        """The filters as a cache key part."""
        return f"{self.start or ''}:{self.end or ''}:{self.tier or ''}"

    @property
    def tiers(self) -> list[str] | None:
        return [self.tier] if self.tier else None


def _day(label: str) -> forms.DateField:
    return forms.DateField(required=False, input_formats=["%Y-%m-%d"], label=label,
                           error_messages={"invalid": f"{label}: write a date as {DATE_HELP}, e.g. 2027-01-31."})


class FilterForm(forms.Form):
    """`from` is a Python keyword, so the date fields are added by name in __init__."""

    def __init__(self, data: QueryDict, tiers: list[tuple[str, str]]):
        super().__init__({k: v for k, v in data.items() if k in ("from", "to", "tier")} or None)
        self.fields["from"] = _day("From")
        self.fields["to"] = _day("To")
        codes = ", ".join(code for code, _ in tiers)
        self.fields["tier"] = forms.ChoiceField(
            required=False, label="Tier", choices=[("", "Every tier"), *tiers],
            error_messages={"invalid_choice": f"Tier: %(value)s is not a tier of the ruleset in force; "
                                              f"choose one of {codes}."})

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        start, end = data.get("from"), data.get("to")
        if start and end and start > end:
            raise forms.ValidationError(f"From ({start}) is after To ({end}): the period would be empty.")
        return data

    def filters(self) -> Filters:
        """The valid filters (none given: everything)."""
        if not self.is_bound:
            return Filters()
        data = self.cleaned_data
        return Filters(data.get("from"), data.get("to"), data.get("tier") or None)
