"""Run the whole engine month by month over a purchase history, then print what it did."""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from time import perf_counter
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from loyalty.clock import FixedClock
from loyalty.demo.sources import SHANGHAI, Purchase, cdnow_purchases, synthetic_purchases
from loyalty.demo.story import Event, birthdays, side_events
from loyalty.domain.errors import LoyaltyError
from loyalty.domain.events import ActionEvent, OrderEvent, RefundEvent
from loyalty.domain.growth import Line
from loyalty.domain.money import format_fen
from loyalty.domain.periods import add_months, local_date, start_of_day
from loyalty.services import members, orders, points, refunds, reports, rulesets, tiers
from loyalty.services.actions import record_actions
from loyalty.store.setup import migrate

ACTIONS = ("check_in", "review", "share")


def run_demo(*, synthetic: int | None = None, seed: int = 7, console: Console | None = None,
             ruleset: dict[str, Any] | None = None) -> None:
    """The demo under the default ruleset, or under `ruleset` (a document; the backtest's tests
    replay the demo under several)."""
    console = console or Console()
    rng = random.Random(seed)
    started = perf_counter()
    migrate()
    if synthetic:
        purchases, skipped, source = synthetic_purchases(synthetic, rng), 0, f"a synthetic shop of {synthetic} members"
    else:
        purchases, skipped = cdnow_purchases(rng)
        source = "CDNOW (23,570 customers, 1997-01 to 1998-06)"
    purchases.sort(key=lambda p: (p.paid_at, p.order_id))
    first = purchases[0].paid_at
    rulesets.publish(ruleset or rulesets.preset_document("default"), actor="demo", reason="demo",
                     effective_from=start_of_day(local_date(first, SHANGHAI).replace(day=1), SHANGHAI))
    console.print(f"[bold]loyalty demo[/] on {source}: {len(purchases):,} orders"
                  + (f" ({skipped} ¥0 purchases skipped)" if skipped else ""))
    _register(purchases, rng)
    monthly = _replay(purchases, side_events(purchases, rng), console)
    _print_results(console, monthly)
    console.print(f"done in {perf_counter() - started:.1f} s")
    console.print("next: [bold]loyalty report --demo[/] writes the analytics report (var/report.html); "
                  "[bold]loyalty simulate --demo --ruleset FILE[/] tries a rule change on this history")


def _register(purchases: list[Purchase], rng: random.Random) -> None:
    first_seen: dict[str, datetime] = {}
    for p in purchases:
        first_seen.setdefault(p.member, p.paid_at)
    members.register_many(first_seen, birthdays=birthdays(sorted(first_seen), rng))


def _months(purchases: list[Purchase]) -> list[datetime]:
    day = local_date(purchases[0].paid_at, SHANGHAI).replace(day=1)
    last = local_date(purchases[-1].paid_at, SHANGHAI)
    starts = []
    while day <= last:
        starts.append(start_of_day(day, SHANGHAI))
        day = add_months(day, 1)
    return starts


def _replay(purchases: list[Purchase], events: list[Event], console: Console) -> list[tuple[str, dict[str, int]]]:
    """Day by day, as a platform would send its batches; tiers and expiry at each month start."""
    clock = FixedClock(purchases[0].paid_at)
    orders_by_day: dict[date, list[Purchase]] = defaultdict(list)
    events_by_day: dict[date, list[Event]] = defaultdict(list)
    for p in purchases:
        orders_by_day[local_date(p.paid_at, SHANGHAI)].append(p)
    for e in events:
        events_by_day[local_date(e.at, SHANGHAI)].append(e)
    monthly = []
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        months = _months(purchases)
        task = progress.add_task("replaying months", total=len(months))
        for start in months:
            day, next_start = start.date(), start_of_day(add_months(start.date(), 1), SHANGHAI)
            while day < next_start.date():
                _record_day(orders_by_day.pop(day, []), events_by_day.pop(day, []), clock)
                day += timedelta(days=1)
            clock.at = next_start
            summary = tiers.evaluate_tiers(next_start, clock=clock)
            points.expire_points(next_start, clock=clock)
            monthly.append((next_start.strftime("%Y-%m-%d"), dict(summary.tiers)))
            progress.advance(task)
    return monthly


def _record_day(purchases: list[Purchase], events: list[Event], clock: FixedClock) -> None:
    """A day's orders, then its actions and refunds, each as one batch; then its redemptions."""
    if purchases:
        clock.at = purchases[-1].paid_at
        _raise_any(orders.record_orders([
            OrderEvent(p.order_id, p.member, p.paid_at, p.amount_fen,
                       tuple(Line(category, fen) for _, category, fen in p.lines),
                       tuple(sku for sku, _, _ in p.lines)) for p in purchases], clock=clock))
    actions = [ActionEvent(e.event_id, e.member, e.kind, e.at, e.ref) for e in events if e.kind in ACTIONS]
    if actions:
        clock.at = actions[-1].at
        _raise_any(record_actions(actions, clock=clock))
    refund_events = [RefundEvent(e.event_id, e.ref, e.amount_fen, e.at) for e in events if e.kind == "refund"]
    if refund_events:
        clock.at = refund_events[-1].refunded_at
        _raise_any(refunds.record_refunds(refund_events, clock=clock))
    for event in events:
        if event.kind == "redeem":
            clock.at = event.at
            try:
                points.redeem_points(event.member, event.amount_fen, redemption_id=event.event_id, clock=clock)
            except LoyaltyError as error:
                if error.code != "insufficient_points":  # a member short of points simply cannot redeem
                    raise


def _raise_any(results: Sequence[object]) -> None:
    for result in results:
        if isinstance(result, LoyaltyError):
            raise result


def _print_results(console: Console, monthly: list[tuple[str, dict[str, int]]]) -> None:
    codes = [tier.code for tier in rulesets.in_force(datetime.max.replace(tzinfo=SHANGHAI)).ruleset.tiers]
    table = Table(title="Tier distribution at each month start (members)")
    table.add_column("as of")
    for code in codes:
        table.add_column(code, justify="right")
    for as_of, counts in monthly:
        table.add_row(as_of, *(f"{counts.get(code, 0):,}" for code in codes))
    console.print(table)

    issued = Table(title="Growth and points by source")
    for name in ("ledger", "source", "entries", "total"):
        issued.add_column(name, justify="right" if name in ("entries", "total") else "left")
    for ledger, source, n, total in reports.issued_by_source():
        issued.add_row(ledger, source, f"{n:,}", f"{total:,}")
    console.print(issued)

    r = reports.refund_totals()
    refunds_table = Table(title="Refunds reversed")
    for name in ("refunds", "amount (¥)", "growth reversed", "points reversed", "points debt", "written off"):
        refunds_table.add_column(name, justify="right")
    refunds_table.add_row(f"{r.refunds:,}", format_fen(r.amount_fen), f"{r.growth_reversed:,}",
                          f"{r.points_reversed:,}", f"{r.points_debt_created:,}", f"{r.points_written_off:,}")
    console.print(refunds_table)

    repeat = reports.repeat_purchase()
    console.print(f"Repeat-purchase rate: {repeat.rate_percent}% "
                  f"({repeat.repeat_buyers:,} of {repeat.buyers:,} buyers kept two or more orders)")
