"""Charts as inline SVG strings, for the analytics report and the ops pages.

Every function takes plain series (labels and numbers) and returns one `<svg>` element, ready to
be placed in HTML as it is: no XML prologue, no external reference (nothing to fetch: no URL, no
linked font or image), a `viewBox` and no fixed size so it scales to its container, `role="img"`,
an `aria-label` and a `<title>`. Text stays text (`svg.fonttype: none`), so it is small,
selectable and drawn by the reader's own fonts, Chinese tier names included.

The output is a pure function of the input: the same data gives byte-identical SVG (fixed
`svg.hashsalt` for element ids, no date in the metadata), so a report can be diffed and cached.

Colours are the Okabe–Ito palette (told apart with every common colour-vision deficiency); the
heatmap uses `cividis` (made for the same purpose) with black or white numbers, whichever
contrasts more with the cell.

IMPORTANT: matplotlib reads `svg.*` and font settings from its global `rcParams` when a figure
is drawn. Every chart is drawn under one lock with `rc_context`, on a `Figure` of its own (never
pyplot), so charts drawn from several threads (the web server) never see each other's settings.
"""

from __future__ import annotations

import hashlib
import html
import io
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import matplotlib
from cycler import cycler
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter

Series = Mapping[str, Sequence[float | None]]

PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")
LINE_STYLES = ("-", "--", "-.", ":")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")

# IMPORTANT: matplotlib measures text with fonts it has. It ships no CJK font, and a glyph missing
# from every listed font makes it warn (an error under pytest). Listing its bundled Last Resort
# font explicitly gives every code point a glyph of one em (the width of a CJK character), so
# the layout stays right and nothing warns. The browser never sees these names: `_finish` drops
# them from every <text> and gives the chart one rule with BROWSER_FONTS, which name the CJK
# system fonts of each platform.
_MEASURING_FONTS = ["DejaVu Sans", "Last Resort High-Efficiency"]
_MEASURED_FAMILY = re.compile(r"font-family: 'DejaVu Sans', 'Last Resort High-Efficiency'(; )?")
BROWSER_FONTS = ("system-ui, -apple-system, 'Segoe UI', 'PingFang SC', 'Hiragino Sans GB', 'Microsoft YaHei', "
                 "'Noto Sans CJK SC', 'Source Han Sans SC', 'WenQuanYi Micro Hei', sans-serif")

_RC: Any = {  # matplotlib's rcParams keys, typed as a Literal union by its stubs
    "svg.fonttype": "none",
    "svg.hashsalt": "loyalty-charts",
    "svg.image_inline": True,
    "font.family": _MEASURING_FONTS,
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.titlesize": 11,
    "axes.prop_cycle": cycler(color=list(PALETTE)),
    "legend.frameon": False,
    "legend.fontsize": 8,
}
_LOCK = threading.Lock()
_GROUP_TAG = re.compile(r"<g(?:\s[^>]*)?>|</g>")
_COORDINATE = re.compile(r"(\d\.\d\d)\d+")  # keeps 2 decimals
_METADATA = {"Date": None, "Creator": None, "Format": None, "Type": None}
# Every chart is this wide (inches), so that text comes out the same size when charts are scaled
# to the same width on a page.
WIDTH = 7.0
# Heatmap cells above this many are drawn without their numbers (the table under it has them).
ANNOTATED_CELLS_MAX = 300


def line_chart(x_labels: Sequence[str], series: Series, *, title: str, y_label: str = "",
               percent: bool = False) -> str:
    """One line per series over `x_labels` (months); `None` leaves a gap. Lines differ in colour,
    dash and marker, so they are told apart in grey too."""
    def draw(figure: Figure) -> None:
        axes = figure.add_subplot()
        positions = range(len(x_labels))
        for index, (name, values) in enumerate(series.items()):
            axes.plot(positions, [_nan(value) for value in values], label=name, linewidth=1.6, markersize=3.5,
                      color=PALETTE[index % len(PALETTE)], linestyle=LINE_STYLES[index % len(LINE_STYLES)],
                      marker=MARKERS[index % len(MARKERS)])
        _month_axis(axes, x_labels)
        _value_axis(axes, y_label, percent)
        _legend(axes, len(series))

    return _render(draw, title=title, size=(WIDTH, 3.2))


def stacked_bar_chart(x_labels: Sequence[str], series: Series, *, title: str, y_label: str = "") -> str:
    """Bars over `x_labels` (months), one segment per series stacked in order (tier distribution)."""
    def draw(figure: Figure) -> None:
        axes = figure.add_subplot()
        positions = list(range(len(x_labels)))
        bottoms = [0.0] * len(x_labels)
        for index, (name, values) in enumerate(series.items()):
            heights = [value or 0.0 for value in values]
            axes.bar(positions, heights, bottom=bottoms, width=0.8, label=name, color=PALETTE[index % len(PALETTE)],
                     edgecolor="white", linewidth=0.4)
            bottoms = [bottom + height for bottom, height in zip(bottoms, heights, strict=True)]
        _month_axis(axes, x_labels)
        _value_axis(axes, y_label, percent=False)
        _legend(axes, len(series), reverse=True)  # read top-down like the stack

    return _render(draw, title=title, size=(WIDTH, 3.2))


def bar_chart(categories: Sequence[str], series: Series, *, title: str, y_label: str = "",
              percent: bool = False) -> str:
    """Bars per category, one bar per series side by side (a single series gives plain bars), each
    labelled with its value."""
    def draw(figure: Figure) -> None:
        axes = figure.add_subplot()
        count = max(len(series), 1)
        width = 0.8 / count
        for index, (name, values) in enumerate(series.items()):
            offset = (index - (count - 1) / 2) * width
            bars = axes.bar([position + offset for position in range(len(categories))],
                            [value or 0.0 for value in values], width=width * 0.95, label=name,
                            color=PALETTE[index % len(PALETTE)])
            axes.bar_label(bars, labels=[_number(value, percent) for value in values], fontsize=7, padding=1)
        axes.set_xticks(range(len(categories)), list(categories))
        _value_axis(axes, y_label, percent)
        if len(series) > 1:
            _legend(axes, len(series))

    return _render(draw, title=title, size=(WIDTH, 3.0))


def histogram(bins: Sequence[str], counts: Sequence[int], *, title: str, x_label: str = "",
              y_label: str = "members") -> str:
    """Counts per bin, bars touching (p-alive in tenths), each labelled with its count."""
    def draw(figure: Figure) -> None:
        axes = figure.add_subplot()
        bars = axes.bar(range(len(bins)), counts, width=1.0, color=PALETTE[0], edgecolor="white", linewidth=0.8)
        axes.bar_label(bars, labels=[str(count) for count in counts], fontsize=7, padding=1)
        axes.set_xticks(range(len(bins)), list(bins), rotation=30, ha="right", rotation_mode="anchor")
        axes.set_xlabel(x_label)
        _value_axis(axes, y_label, percent=False)

    return _render(draw, title=title, size=(WIDTH, 3.0))


def heatmap(row_labels: Sequence[str], column_labels: Sequence[str], values: Sequence[Sequence[float | None]], *,
            title: str, x_label: str = "", y_label: str = "", percent: bool = False,
            scale_max: float | None = None) -> str:
    """A matrix of cells coloured by value, each with its number while there are at most
    ANNOTATED_CELLS_MAX cells; `None` is an empty cell (the untouched half of a retention
    triangle). Rows run top to bottom in the order given. Colours span 0 to `scale_max` (default:
    the largest value; a retention triangle passes the largest after month 0, whose 100% would
    otherwise leave every other cell dark); larger values take the top colour."""
    def draw(figure: Figure) -> None:
        axes = figure.add_subplot()
        grid = [[_nan(value) for value in row] for row in values]
        top = scale_max or max((value for row in values for value in row if value is not None), default=0.0) or 1.0
        colours = matplotlib.colormaps["cividis"]
        axes.imshow(grid, cmap=colours, vmin=0.0, vmax=top, aspect="auto", interpolation="nearest")
        if len(row_labels) * len(column_labels) <= ANNOTATED_CELLS_MAX:
            small = len(column_labels) > 12
            for row, cells in enumerate(values):
                for column, value in enumerate(cells):
                    if value is not None:
                        shade = colours(min(max(value / top, 0.0), 1.0))
                        axes.text(column, row, _number(value, percent), ha="center", va="center",
                                  fontsize=6 if small else 7.5, color=_ink_on(shade))
        axes.set_xticks(range(len(column_labels)), list(column_labels))
        axes.set_yticks(range(len(row_labels)), list(row_labels))
        axes.tick_params(length=0)
        axes.spines[:].set_visible(False)
        axes.set_xlabel(x_label)
        axes.set_ylabel(y_label)

    return _render(draw, title=title, size=(WIDTH, max(2.4, min(7.0, 1.2 + 0.3 * len(row_labels)))))


def _render(draw: Callable[[Figure], None], *, title: str, size: tuple[float, float]) -> str:
    with _LOCK, matplotlib.rc_context(_RC):
        figure = Figure(figsize=size, layout="constrained")
        draw(figure)
        figure.axes[0].set_title(title, loc="left")
        out = io.StringIO()
        figure.savefig(out, format="svg", metadata=_METADATA)
    return _finish(out.getvalue(), title)


def _finish(raw: str, title: str) -> str:
    """matplotlib's SVG document -> one accessible, self-contained, scalable `<svg>` element."""
    svg = raw[raw.index("<svg"):]
    svg = re.sub(r"\s*<metadata>.*?</metadata>", "", svg, flags=re.DOTALL)
    label = html.escape(title, quote=True)
    svg = re.sub(r'<svg [^>]*?(viewBox="[^"]*")[^>]*>',
                 lambda match: (f'<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" '
                                f'class="chart" {match.group(1)} role="img" aria-label="{label}">'
                                f"\n <title>{label}</title>"),
                 svg, count=1)
    # matplotlib's default style would apply to the whole HTML page (`*{...}`): keep it to charts.
    fonts = f"svg.chart text{{font-family: {BROWSER_FONTS}}}\n"
    svg = svg.replace("*{stroke-linejoin", fonts + "svg.chart *{stroke-linejoin", 1)
    svg = _MEASURED_FAMILY.sub("", svg)
    return _compact(_unique_ids(svg)).strip() + "\n"


def _compact(svg: str) -> str:
    """Smaller, same picture: no indentation, one line per path, coordinates to 0.01 pt."""
    svg = re.sub(r"\n[ \t]+", "\n", svg).replace(" \n", " ")

    def shorter(match: re.Match[str]) -> str:
        return match.group(1) + '="' + _COORDINATE.sub(r"\1", match.group(2)) + '"'

    svg = re.sub(r'\b(d|x|y|transform)="([^"]*)"', shorter, svg)
    svg = re.sub(r"<g [^>]*/>", "", svg)  # empty groups (ticks without a line)
    return re.sub(r"\n{2,}", "\n", _GROUP_TAG.sub(_without_plain_groups(), svg))


def _without_plain_groups() -> Callable[[re.Match[str]], str]:
    """A replacer that drops `<g>` tags with no attribute and their closing tags (they group
    nothing a style or a reference needs), keeping every other group."""
    plain: list[bool] = []

    def replace(match: re.Match[str]) -> str:
        tag = match.group(0)
        if tag == "</g>":
            return "" if plain.pop() else tag
        plain.append(tag == "<g>")
        return "" if tag == "<g>" else tag

    return replace


def _unique_ids(svg: str) -> str:
    """Ids unique on a page of many charts: matplotlib's group ids (figure_1, axes_1 ...), which
    nothing refers to, are dropped; the referenced ones (markers, clip paths) get a prefix made
    from the chart itself, so the output stays deterministic."""
    svg = re.sub(r'<g id="[^"]+">', "<g>", svg)
    prefix = "c" + hashlib.sha256(svg.encode()).hexdigest()[:10] + "-"
    svg = re.sub(r' id="([^"]+)"', lambda match: f' id="{prefix}{match.group(1)}"', svg)
    return re.sub(r'(xlink:href="#|url\(#)', lambda match: match.group(1) + prefix, svg)


def _month_axis(axes: Any, labels: Sequence[str]) -> None:
    """Every month's tick, but at most about a dozen labelled (the rest stay readable)."""
    step = max(1, -(-len(labels) // 12))
    axes.set_xticks(range(0, len(labels), step), [labels[index] for index in range(0, len(labels), step)],
                    rotation=45 if len(labels) > 6 else 0, ha="right" if len(labels) > 6 else "center",
                    rotation_mode="anchor")
    axes.set_xlim(-0.6, len(labels) - 0.4)


def _value_axis(axes: Any, label: str, percent: bool) -> None:
    axes.set_ylabel(label)
    axes.grid(axis="y", color="#dddddd", linewidth=0.6)
    axes.set_axisbelow(True)
    if percent:
        axes.yaxis.set_major_formatter(PercentFormatter(xmax=1.0, decimals=0))


def _legend(axes: Any, entries: int, *, reverse: bool = False) -> None:
    if entries:
        axes.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), reverse=reverse)


def _number(value: float | None, percent: bool) -> str:
    if value is None:
        return ""
    if percent:
        return f"{value:.0%}" if value in (0.0, 1.0) else f"{value:.1%}"
    return f"{value:,.0f}" if float(value).is_integer() or abs(value) >= 100 else f"{value:,.2f}"


def _nan(value: float | None) -> float:
    return float("nan") if value is None else float(value)


def _ink_on(rgba: Sequence[float]) -> str:
    """Black or white, whichever contrasts more with the cell (WCAG relative luminance)."""
    def channel(value: float) -> float:
        return value / 12.92 if value <= 0.03928 else ((value + 0.055) / 1.055) ** 2.4

    red, green, blue = (channel(value) for value in rgba[:3])
    luminance = 0.2126 * red + 0.7152 * green + 0.0722 * blue
    return "#000000" if (luminance + 0.05) / 0.05 >= 1.05 / (luminance + 0.05) else "#ffffff"
