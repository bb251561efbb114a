"""What the `loyalty` command prints: readable tables and progress bars (rich)."""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from loyalty.domain.documents import from_json
from loyalty.domain.events import OrderEvent
from loyalty.domain.money import format_fen
from loyalty.domain.tiers import Gap
from loyalty.services import rulesets
from loyalty.services.imports import import_orders
from loyalty.services.members import member_status

console = Console()


def ruleset_text(version: int | None) -> str:
    """The stored document of a version (default: the latest) as JSON, with its header."""
    row = rulesets.stored(version)
    if row is None:
        return "no ruleset has been published"
    document = json.dumps(from_json(row.document), ensure_ascii=False, indent=2, default=str)
    return (f"# version {row.version} ({row.name}), in force from {row.effective_from.isoformat()}, "
            f"published by {row.published_by}\n{document}")


def _gap_text(gap: Gap) -> str:
    amount = gap.metric in ("amount", "max_single_order")
    needed = format_fen(int(gap.needed)) if amount else str(gap.needed)
    current = format_fen(int(gap.current)) if amount else str(gap.current)
    return f"{gap.metric} ({gap.window or 'score'}): {current} of {needed}"


def print_member(external_id: str) -> None:
    status = member_status(external_id)
    expires = status.tier_expires_at.isoformat() if status.tier_expires_at else "never"
    console.print(f"[bold]{status.external_id}[/]  tier [bold]{status.tier.name}[/] ({status.tier.code}), "
                  f"valid until {expires}")
    console.print(f"growth {status.growth_balance:,} · points {status.points_balance:,} "
                  f"({status.points_spendable:,} spendable, debt {status.points_debt:,})")
    if status.next_tier:
        wanted = "; ".join(_gap_text(g) for g in status.gaps) or "met: upgrades at the next evaluation"
        console.print(f"next tier {status.next_tier.name} ({status.next_tier.code}): {wanted}")
    table = Table(title="Last entries")
    for name in ("occurred at", "ledger", "delta", "source", "reference"):
        table.add_column(name, justify="right" if name == "delta" else "left")
    for entry in status.recent:
        table.add_row(entry.occurred_at.isoformat(), entry.ledger, f"{entry.delta:+,}", entry.source, entry.reference)
    console.print(table)


def run_import(events: list[tuple[int, OrderEvent]]) -> None:
    columns = (TextColumn("importing orders"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("import", total=len(events))
        summary = import_orders(events, progress=lambda n: progress.advance(task, n))
    console.print(f"imported {summary.orders:,} orders ({summary.replayed:,} already there), "
                  f"registered {summary.members_registered:,} members, "
                  f"growth {summary.growth:,}, points {summary.points:,}")


def print_backtest(document: dict[str, Any]) -> None:
    """`loyalty simulate`: month by month, each figure as "baseline → candidate" where they differ."""
    from loyalty.analytics.backtest import shown

    names, rows = document["rulesets"], shown(document)
    console.print(f"[bold]Backtest[/]: {names['baseline']} (baseline) → {names['candidate']} (candidate)")
    tiers = Table(title="Members per tier after each month's evaluation")
    tiers.add_column("month")
    for code in document["tiers"]:
        tiers.add_column(code, justify="right")
    for month, cells in rows.tiers:
        tiers.add_row(month, *cells)
    flows = Table(title="Issued in each month")
    for column in ("month", "orders", "growth", "points", "coupons (¥)", "free deliveries"):
        flows.add_column(column, justify="left" if column == "month" else "right")
    for cells in rows.flows:
        flows.add_row(*cells)
    totals = Table(title=f"Totals (a free delivery costs ¥{document['delivery_fee']})")
    for column in ("", "baseline", "candidate"):
        totals.add_column(column, justify="right" if column else "left")
    for what, base, cand in rows.totals:
        totals.add_row(what, base, cand)
    for table in (tiers, flows, totals):
        console.print(table)
    moved = document["moved"]
    console.print(f"{moved['members']:,} members would end in another tier"
                  + "".join(f"\n  {m['from']} → {m['to']}: {m['members']:,}" for m in moved["by_move"]))
