"""Read-only summaries the demo and the console print: issued value, refunds, repeat purchase."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Count, F, Sum

from loyalty.store.models import LedgerEntry, Order, Refund


def issued_by_source() -> list[tuple[str, str, int, int]]:
    """(ledger, source, entries, total delta) for every ledger and source, largest first."""
    rows = (LedgerEntry.objects.values_list("ledger", "source")
            .annotate(n=Count("id"), total=Sum("delta")).order_by("ledger", "-total"))
    return [(ledger, source, int(n), int(total or 0)) for ledger, source, n, total in rows]


@dataclass(frozen=True)
class RefundTotals:
    refunds: int
    amount_fen: int
    growth_reversed: int
    points_reversed: int
    points_debt_created: int
    points_written_off: int


def refund_totals() -> RefundTotals:
    totals = Refund.objects.aggregate(
        n=Count("id"), amount=Sum("amount_fen"), growth=Sum("growth_reversed"), points=Sum("points_reversed"),
        debt=Sum("points_debt_created"), written_off=Sum("points_written_off"))
    return RefundTotals(*(int(totals[k] or 0) for k in ("n", "amount", "growth", "points", "debt", "written_off")))


@dataclass(frozen=True)
class RepeatPurchase:
    buyers: int
    repeat_buyers: int

    @property
    def rate_percent(self) -> str:
        """As a percentage with one decimal, computed in integers (no float)."""
        if not self.buyers:
            return "0.0"
        tenths = (self.repeat_buyers * 1000 + self.buyers // 2) // self.buyers
        return f"{tenths // 10}.{tenths % 10}"


def repeat_purchase() -> RepeatPurchase:
    """Members with at least one order kept (not refunded in full), and those with two or more."""
    counts = (Order.objects.filter(amount_fen__gt=F("refunded_fen")).values("member_id")
              .annotate(n=Count("id")).values_list("n", flat=True))
    buyers = repeat = 0
    for n in counts.iterator(chunk_size=10_000):
        buyers += 1
        repeat += n >= 2
    return RepeatPurchase(buyers, repeat)
