"""The analytics report (`loyalty report`): one JSON document of the shop's metrics and its
customer-base models, and the same document as one self-contained HTML page.

`build_report` reads (it never writes); `render_html` is a pure function of the document, so a
saved JSON document renders the same page again. The page loads nothing: CSS is inline, charts
are inline SVG (`analytics.charts`), there is no script, and every chart is followed by its
numbers in a table. Shape and definitions: docs/reports.md and docs/metrics.md.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import UTC, date, datetime, time
from typing import Any

from django.db.models import Max

from loyalty.analytics import clv, metrics, report_sections
from loyalty.analytics.frames import load_frames
from loyalty.domain.errors import Refused
from loyalty.services import rulesets
from loyalty.store.models import Order


def build_report(*, as_of: datetime, start: date | None = None, end: date | None = None,
                 tiers: Sequence[str] | None = None, horizon_days: int = 90) -> dict[str, Any]:
    """The report's document: the metrics of [start, end] for members in `tiers` (by the tier they
    held at `start`), and the customer-base models fitted on their purchases up to `as_of`.
    `models` is {"error", "code"} when the models cannot be fitted (too few repeat buyers)."""
    frames = load_frames(start=start, end=end, tiers=tiers, as_of=as_of)
    ruleset = rulesets.in_force(as_of).ruleset
    try:
        models: dict[str, Any] = clv.summary_for_report(frames.transactions(), as_of=as_of,
                                                         horizon_days=horizon_days, timezone=frames.timezone)
    except Refused as refused:
        models = {"error": refused.message, "code": refused.code}
    return {
        "report": "analytics",
        "generated_for": {"as_of": as_of.isoformat(), "from": start and start.isoformat(),
                          "to": end and end.isoformat(), "tiers": None if tiers is None else list(tiers),
                          "horizon_days": horizon_days},
        "tier_names": {tier.code: tier.name for tier in ruleset.tiers},
        "metrics": metrics.summary(frames, as_of=as_of, start=start, end=end, tiers=tiers),
        "models": models,
    }


def data_as_of(now: datetime) -> datetime:
    """The moment a report is as of when none is given: now, or the end of the day of the latest
    recorded order when the history stops earlier (an archive such as the demo's 1997–1998), so
    that recency and the models' p(alive) are not measured from years after the data ends."""
    latest = Order.objects.aggregate(latest=Max("paid_at"))["latest"]
    if latest is None:
        return now
    zone = rulesets.in_force(latest).ruleset.timezone
    return min(now, end_of_day(latest.astimezone(zone).date()))


def end_of_day(day: date) -> datetime:
    """The day's last moment (23:59:59.999999) in the timezone of the ruleset then in force: what
    `--as-of DATE` and `--to DATE` mean when they set the report's `as_of`. Not 00:00 of the next
    day, which would make the next day (and month) part of the report."""
    zone = rulesets.in_force(datetime.combine(day, time(12), tzinfo=UTC)).ruleset.timezone
    return datetime.combine(day, time.max, tzinfo=zone)


def render_html(document: dict[str, Any]) -> str:
    """The document as one HTML page that needs nothing else: no request, no script."""
    names = document.get("tier_names") or {}
    sections = report_sections.all_sections(document["metrics"], document["models"], names)
    contents = "".join(f'<li><a href="#{anchor}">{html.escape(heading)}</a></li>'
                       for anchor, heading, _ in sections)
    body = "\n".join(f'<section id="{anchor}" aria-labelledby="{anchor}-h">\n<h2 id="{anchor}-h">'
                     f"{html.escape(heading)}</h2>\n{content}\n</section>" for anchor, heading, content in sections)
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>Loyalty analytics report</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<main>\n"
            f"<h1>Loyalty analytics report</h1>\n"
            f"<p class=\"scope\">{html.escape(_scope_text(document['generated_for']))}</p>\n"
            f'<nav aria-label="Sections"><ol>{contents}</ol></nav>\n{body}\n</main>\n</body>\n</html>\n')


def _scope_text(given: dict[str, Any]) -> str:
    period = f"{given.get('from') or 'the beginning'} to {given.get('to') or 'the end'}"
    tiers = ", ".join(given["tiers"]) if given.get("tiers") else "every tier"
    return f"Purchases from {period}; members of {tiers}; as of {given['as_of']}."


STYLE = """
:root{color-scheme:light;--ink:#1a1a1a;--muted:#555;--line:#d0d0d0;--band:#f4f6f8;--accent:#0072B2}
*{box-sizing:border-box}
body{margin:0;color:var(--ink);background:#fff;line-height:1.5;font:16px/1.5 system-ui,-apple-system,"Segoe UI",
"PingFang SC","Hiragino Sans GB","Microsoft YaHei","Noto Sans CJK SC","Source Han Sans SC",sans-serif}
main{max-width:60rem;margin:0 auto;padding:1rem}
h1{font-size:1.6rem;margin:.5rem 0}
h2{font-size:1.25rem;margin:2rem 0 .5rem;padding-top:.5rem;border-top:2px solid var(--line)}
h3{font-size:1.05rem;margin:1.2rem 0 .4rem}
a{color:var(--accent)}
.scope,.note{color:var(--muted)}
nav ol{columns:2 14rem;padding-left:1.2rem;margin:.5rem 0}
figure{margin:1rem 0}
figcaption{color:var(--muted);font-size:.9rem}
svg.chart{display:block;width:100%;height:auto;max-width:48rem}
details{margin:.5rem 0 1rem}
summary{cursor:pointer;color:var(--accent)}
.scroll{overflow-x:auto;max-width:100%}
table{border-collapse:collapse;font-size:.875rem;margin:.4rem 0;font-variant-numeric:tabular-nums}
caption{text-align:left;color:var(--muted);padding:.2rem 0}
th,td{border:1px solid var(--line);padding:.25rem .5rem;text-align:right;white-space:nowrap}
th{background:var(--band)}
th:first-child,td:first-child{text-align:left}
dl.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(11rem,1fr));gap:.6rem;margin:.5rem 0}
dl.cards div{border:1px solid var(--line);border-radius:6px;padding:.5rem .7rem;background:var(--band)}
dl.cards dt{font-size:.85rem;color:var(--muted)}
dl.cards dd{margin:0;font-size:1.3rem;font-weight:600}
.error{border-left:4px solid #D55E00;padding:.4rem .8rem;background:#fff4ec}
@media print{nav{display:none}}
"""
