"""The sections of the analytics report's HTML page, one function each, over the JSON document.

Every chart is followed by its numbers (a table in a `<details>`), so nothing is said only by a
picture. Numbers are shown exactly as the document has them: rates as percentages of their
decimal strings, money as yuan from integer fen; charts get floats, for drawing only. Every
text from the document is escaped.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping, Sequence
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from loyalty.analytics import charts
from loyalty.domain.money import format_fen

Section = tuple[str, str, str]  # anchor, heading, HTML
CENT = Decimal("0.01")


class Raw(str):
    """HTML already escaped, passed through a table as it is."""


def all_sections(metrics: dict[str, Any], models: dict[str, Any], names: Mapping[str, str]) -> list[Section]:
    return [
        ("overview", "Overview", overview(metrics, models)),
        ("tier-distribution", "Tier distribution over time", tier_distribution(metrics["tier_distribution"], names)),
        ("tier-migration", "Tier migration", tier_migration(metrics["tier_migration"], names)),
        ("cohort-retention", "Cohort retention", cohort_retention(metrics["cohorts"])),
        ("arpu-frequency", "ARPU and purchase frequency by tier", arpu_frequency(metrics["by_tier"], names)),
        ("repeat-purchase", "Repeat purchase", repeat_purchase(metrics["repeat_purchase"],
                                                               metrics["repurchase_within"])),
        ("coupons-budget", "Coupons and benefit cost against budget",
         coupons_and_budget(metrics["coupons"], metrics["benefit_cost"], names)),
        ("points-liability", "Points liability", points_liability(metrics["points_liability"])),
        ("rfm-segments", "RFM segments", rfm_segments(metrics["rfm"])),
        ("customer-base-model", "Customer-base model", customer_base_model(models)),
    ]


def overview(metrics: dict[str, Any], models: dict[str, Any]) -> str:
    repeat, within = metrics["repeat_purchase"], metrics["repurchase_within"]
    liability = metrics["points_liability"]["rows"]
    coupons = metrics["coupons"]["rows"]
    cards = [
        ("Buyers", f"{repeat['buyers']:,}"),
        ("Repeat buyers", f"{repeat['repeat_buyers']:,}"),
        ("Repeat-purchase rate", percent(repeat["rate"])),
        (f"Bought again within {within['days']} days", percent(within["rate"])),
        ("Coupons issued / redeemed",
         f"{sum(r['issued'] for r in coupons):,} / {sum(r['redeemed'] for r in coupons):,}"),
        ("Points outstanding", f"{liability[-1]['outstanding']:,}" if liability else "–"),
    ]
    if "error" not in models:
        days = models["horizon_days"]
        cards += [(f"Expected purchases, next {days} days", models["expected_purchases_total"]),
                  (f"Expected value, next {days} days (yuan)", yuan(models["expected_value_fen_total"]))]
    items = "".join(f"<div><dt>{_escape(label)}</dt><dd>{_escape(value)}</dd></div>" for label, value in cards)
    return f'<dl class="cards">{items}</dl>'


def tier_distribution(data: dict[str, Any], names: Mapping[str, str]) -> str:
    months, tiers = data["months"], data["tiers"]
    if not months:
        return nothing("No month in the period.")
    held = [t for t in tiers if any(data["counts"][t])] or tiers  # the legend names tiers someone held
    svg = charts.stacked_bar_chart(months, {tier_label(t, names): data["counts"][t] for t in held},
                                   title="Members per tier at each month's start", y_label="members")
    rows = [[month, *(data["counts"][t][index] for t in tiers)] for index, month in enumerate(months)]
    return figure(svg, "Members per tier at the first moment of each month.") + numbers(
        ["month", *(tier_cell(t, names) for t in tiers)], rows)


def tier_migration(data: dict[str, Any], names: Mapping[str, str]) -> str:
    tiers, matrix = data["tiers"], data["matrix"]
    if not tiers or not any(any(row) for row in matrix):
        return nothing("No member held a tier at the period's start.")
    labels = [tier_label(t, names) for t in tiers]
    svg = charts.heatmap(labels, labels, matrix, title="Members by tier then (rows) and now (columns)",
                         x_label=f"tier on {data['to']}", y_label=f"tier on {data['from']}")
    up = sum(value for i, row in enumerate(matrix) for j, value in enumerate(row) if j > i)
    down = sum(value for i, row in enumerate(matrix) for j, value in enumerate(row) if j < i)
    stayed = sum(matrix[i][i] for i in range(len(matrix)))
    summary = f"<p>Moved up: {up:,}; stayed: {stayed:,}; moved down: {down:,}.</p>"
    rows = [[tier_cell(t, names), *row] for t, row in zip(tiers, matrix, strict=True)]
    return summary + figure(svg, "Members counted once: by the tier they held then and now.") + numbers(
        ["from \\ to", *(tier_cell(t, names) for t in tiers)], rows)


def cohort_retention(data: dict[str, Any]) -> str:
    rows, months = data["rows"], [str(month) for month in data["months"]]
    if not rows:
        return nothing("No first purchase in the period.")
    grid: list[list[float | None]] = [[float(rate) for rate in row["retention"]]
                                      + [None] * (len(months) - len(row["retention"])) for row in rows]
    later = [value for line in grid for value in line[1:] if value is not None]
    svg = charts.heatmap([row["cohort"] for row in rows], months, grid, title="Share of each cohort buying, by month",
                         x_label="months since the first purchase", y_label="cohort (month of first purchase)",
                         percent=True, scale_max=max(later, default=0.0) or None)
    table = [[row["cohort"], row["size"], *(percent(rate) for rate in row["retention"]),
              *([""] * (len(months) - len(row["retention"])))] for row in rows]
    return figure(svg, "Month 0 is the month of the first purchase (100%); colours span 0 to the highest later "
                        "month.") + numbers(["cohort", "size", *(f"month {m}" for m in months)], table)


def arpu_frequency(data: dict[str, Any], names: Mapping[str, str]) -> str:
    months = data["months"]
    tiers = [t for t in data["tiers"] if any(data["members"][t])]  # a tier nobody held has no average
    if not months or not tiers:
        return nothing("No member in a tier in the period.")
    labels = {t: tier_label(t, names) for t in tiers}

    def held(t: str, values: Sequence[Any]) -> list[float | None]:
        """A month when nobody held the tier is a gap, not a zero."""
        return [float(v) if n else None for v, n in zip(values, data["members"][t], strict=True)]

    arpu = charts.line_chart(months, {labels[t]: [None if v is None else v / 100 for v in held(t, data["arpu_fen"][t])]
                                      for t in tiers}, title="ARPU per month (yuan per member)", y_label="yuan")
    frequency = charts.line_chart(months, {labels[t]: held(t, data["frequency"][t]) for t in tiers},
                                  title="Purchases per member per month", y_label="purchases")
    average = [_weighted_yuan(data["arpu_fen"][t], data["members"][t]) for t in tiers]
    bars = charts.bar_chart([labels[t] for t in tiers], {"ARPU": [float(a) for a in average]},
                            title="Average monthly ARPU over the period", y_label="yuan")
    members_arpu = [[month, *(cell for t in tiers for cell in (data["members"][t][i], yuan(data["arpu_fen"][t][i])))]
                    for i, month in enumerate(months)]
    frequencies = [[month, *(data["frequency"][t][i] for t in tiers)] for i, month in enumerate(months)]
    return (figure(arpu, "ARPU: net yuan the tier's members paid in the month ÷ its members at the month's start.")
            + numbers(["month", *(f"{labels[t]} {what}" for t in tiers for what in ("members", "ARPU (yuan)"))],
                      members_arpu)
            + figure(frequency, "Frequency: their purchases in the month ÷ those members.")
            + numbers(["month", *(labels[t] for t in tiers)], frequencies)
            + figure(bars, "Each month's ARPU weighted by the tier's members that month.")
            + numbers(["tier", "average monthly ARPU (yuan)"],
                      [[tier_cell(t, names), str(value)] for t, value in zip(tiers, average, strict=True)]))


def repeat_purchase(repeat: dict[str, Any], within: dict[str, Any]) -> str:
    svg = charts.bar_chart(["bought twice or more", f"bought again within {within['days']} days"],
                           {"rate": [float(repeat["rate"]), float(within["rate"])]},
                           title="Repeat purchase", y_label="share of buyers", percent=True)
    rows = [["repeat purchase", repeat["buyers"], repeat["repeat_buyers"], percent(repeat["rate"])],
            [f"within {within['days']} days", within["eligible"], within["repurchased"], percent(within["rate"])]]
    return figure(svg, "Repeat buyers ÷ buyers; and buyers who bought again within the window ÷ those the window "
                        "could be judged for.") + numbers(["measure", "of", "did", "rate"], rows)


def coupons_and_budget(coupons: dict[str, Any], cost: dict[str, Any], names: Mapping[str, str]) -> str:
    parts = ["<h3>Coupons</h3>"]
    if coupons["rows"]:
        labels = [f"{tier_label(r['tier'], names)} · {r['kind']}" for r in coupons["rows"]]
        svg = charts.bar_chart(labels, {"issued": [r["issued"] for r in coupons["rows"]],
                                        "redeemed": [r["redeemed"] for r in coupons["rows"]]},
                               title="Coupons issued and redeemed, by tier and kind", y_label="coupons")
        rows = [[tier_cell(r["tier"], names), r["kind"], r["issued"], r["redeemed"], percent(r["rate"])]
                for r in coupons["rows"]]
        parts += [figure(svg, "By the tier the member held when the coupon was issued."),
                  numbers(["tier", "kind", "issued", "redeemed", "rate"], rows)]
    else:
        parts.append(nothing("No coupon issued in the period."))
    parts.append("<h3>Benefit cost against budget</h3>")
    if not cost["rows"]:
        return "".join([*parts, nothing("No benefit budget or cost in the period.")])
    tiers = list(dict.fromkeys(r["tier"] for r in cost["rows"]))
    totals = {what: [_sum_or_none([r[f"{what}_fen"] for r in cost["rows"] if r["tier"] == t]) for t in tiers]
              for what in ("budget", "issued", "redeemed")}
    svg = charts.bar_chart([tier_label(t, names) for t in tiers],
                           {what: [None if v is None else v / 100 for v in values] for what, values in totals.items()},
                           title="Benefit cost over the period against budget", y_label="yuan")
    rows = [[r["month"], tier_cell(r["tier"], names), yuan(r["budget_fen"]), yuan(r["issued_fen"]),
             yuan(r["redeemed_fen"])] for r in cost["rows"]]
    return "".join([*parts, figure(svg, "Sums over the period's months, in yuan; no budget bar where a month had "
                                         "no cap."),
                    numbers(["month", "tier", "budget (yuan)", "issued (yuan)", "redeemed (yuan)"], rows)])


def points_liability(data: dict[str, Any]) -> str:
    rows = data["rows"]
    if not rows:
        return nothing("No points entry in the period.")
    periods = [row["period"] for row in rows]
    shown = [key for key in ("outstanding", "earned", "redeemed", "expired") if key in rows[0]]
    svg = charts.line_chart(periods, {key: [row[key] for row in rows] for key in shown},
                            title="Points liability per month", y_label="points")
    columns = list(rows[0])
    return figure(svg, "Outstanding at each month's end, and the month's movements (docs: Points liability).") + \
        numbers(columns, [[row[c] for c in columns] for row in rows])


def rfm_segments(data: dict[str, Any]) -> str:
    segments = data["segments"]
    if not segments:
        return nothing("No buyer in the period.")
    svg = charts.bar_chart([s["segment"] for s in segments], {"members": [s["members"] for s in segments]},
                           title="Members per RFM segment", y_label="members")
    rows = [[s["segment"], s["members"], percent(s["share"]), s["recency_days_median"], s["frequency_median"],
             yuan(s["monetary_fen_median"])] for s in segments]
    return figure(svg, "Segments by recency, frequency and monetary scores (docs: RFM).") + numbers(
        ["segment", "members", "share", "recency (days, median)", "frequency (median)", "monetary (yuan, median)"],
        rows)


def customer_base_model(models: dict[str, Any]) -> str:
    if "error" in models:
        return f'<p class="error" role="note">The models were not fitted: {_escape(models["error"])}</p>'
    model, histogram = models["model"], models["p_alive_histogram"]
    parameters = [["BG/NBD", name, value] for name, value in model["bgnbd"].items()]
    gamma = model.get("gamma_gamma")
    parameters += ([["Gamma-Gamma", name, value] for name, value in gamma.items()] if gamma
                   else [["Gamma-Gamma", "not fitted", ""]])
    svg = charts.histogram(histogram["bins"], histogram["members"], title="Members by probability of being alive",
                           x_label="P(alive)")
    risk = [[r["member"], r["p_alive"], r["expected_purchases"], yuan(r["expected_value_fen"]),
             yuan(r["past_value_fen"])] for r in models["churn_risk"]]
    penalty = model.get("penalizer", "0.000")
    penalised = (f" BG/NBD needed an L2 penalty of {_escape(penalty)} to converge on these purchases: read its "
                 f"parameters as a sensible rate, not published-grade estimates." if penalty != "0.000" else "")
    return (f"<p>{model['customers']:,} customers; time unit: {_escape(model['time_unit'])}; horizon: "
            f"{models['horizon_days']} days.{penalised}</p>"
            + table(["model", "parameter", "value"], parameters, caption="Fitted parameters")
            + figure(svg, "P(alive): the probability that the member has not stopped buying.")
            + numbers(["P(alive)", "members"], zip(histogram["bins"], histogram["members"], strict=True))
            + "<h3>Churn risk: the top of the list</h3>"
            + (table(["member", "P(alive)", "expected purchases", "expected value (yuan)", "past value (yuan)"], risk)
               if risk else nothing("No member on the churn-risk list.")))


def tier_label(code: str, names: Mapping[str, str]) -> str:
    """A tier as a chart shows it: name and code (青铜 bronze), so the chart still reads where the
    viewer's machine has no font for the name."""
    name = names.get(code)
    return f"{name} {code}" if name and name != code else code


def tier_cell(code: str, names: Mapping[str, str]) -> Raw:
    """A tier in a table: name and code, the name marked as Chinese when it is, for screen readers."""
    name = names.get(code)
    if not name or name == code:
        return Raw(_escape(code))
    lang = ' lang="zh-Hans"' if any(ord(ch) > 0x2E80 for ch in name) else ""
    return Raw(f"<span{lang}>{_escape(name)}</span> ({_escape(code)})")


def percent(rate: str | None) -> str:
    """A 4-place decimal rate as a percentage with 2 places, exactly: "0.2345" -> "23.45%"."""
    return "–" if rate is None else f"{Decimal(rate) * 100:.2f}%"


def yuan(fen: int | None) -> str:
    return "–" if fen is None else format_fen(int(fen))


def table(headers: Sequence[str], rows: Iterable[Sequence[object]], *, caption: str = "") -> str:
    head = "".join(f'<th scope="col">{_cell(h)}</th>' for h in headers)
    body = "".join("<tr>" + "".join(f'<th scope="row">{_cell(v)}</th>' if i == 0 else f"<td>{_cell(v)}</td>"
                                    for i, v in enumerate(row)) + "</tr>" for row in rows)
    titled = f"<caption>{_escape(caption)}</caption>" if caption else ""
    return f'<div class="scroll"><table>{titled}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def numbers(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    return f"<details><summary>The numbers</summary>{table(headers, rows)}</details>"


def figure(svg: str, caption: str) -> str:
    return f"<figure>{svg}<figcaption>{_escape(caption)}</figcaption></figure>"


def nothing(text: str) -> str:
    return f'<p class="note">{_escape(text)}</p>'


def _cell(value: object) -> str:
    if isinstance(value, Raw):
        return str(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return _escape("" if value is None else value)


def _escape(value: object) -> str:
    return html.escape(str(value), quote=True)


def _sum_or_none(values: Sequence[int | None]) -> int | None:
    return None if any(v is None for v in values) else sum(v for v in values if v is not None)


def _weighted_yuan(arpu_fen: Sequence[int], members: Sequence[int]) -> Decimal:
    """Σ ARPU × members ÷ Σ members, in yuan to the fen, half up. Each month's ARPU is already
    rounded to the fen, so this is within half a fen of the exact member-month average."""
    total = sum(members)
    weighted = sum(a * m for a, m in zip(arpu_fen, members, strict=True))
    return (Decimal(weighted) / total / 100 if total else Decimal(0)).quantize(CENT, rounding=ROUND_HALF_UP)
