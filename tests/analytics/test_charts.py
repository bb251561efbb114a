"""Charts as inline SVG: deterministic, self-contained, accessible, Chinese labels as text."""

from __future__ import annotations

import re
import threading
import warnings
import xml.etree.ElementTree as ET

from loyalty.analytics import charts

SVG = "{http://www.w3.org/2000/svg}"
XLINK_HREF = "{http://www.w3.org/1999/xlink}href"
MONTHS = ["2027-01", "2027-02", "2027-03"]
TIERS = {"青铜": [50, 70, 75], "白银": [8, 15, 18], "黄金": [2, 3, 7]}


def every_chart() -> dict[str, str]:
    return {
        "line": charts.line_chart(MONTHS, {"青铜": [0.4, 0.3714, None], "白银": [0.875, 0.8, 0.8333]},
                                  title="Purchases per member", y_label="purchases"),
        "stacked": charts.stacked_bar_chart(MONTHS, TIERS, title="Members per tier", y_label="members"),
        "bars": charts.bar_chart(["青铜", "白银", "黄金"], {"ARPU": [42.1, 120.5, 305.0]}, title="ARPU",
                                 y_label="yuan"),
        "grouped": charts.bar_chart(["silver · cash", "gold · cash"], {"issued": [15, 7], "redeemed": [6, 5]},
                                    title="Coupons"),
        "histogram": charts.histogram(["0.0-0.5", "0.5-1.0"], [17, 83], title="P(alive)", x_label="P(alive)"),
        "triangle": charts.heatmap(["2027-01", "2027-02"], ["0", "1"], [[1.0, 0.25], [1.0, None]],
                                   title="Retention", percent=True, scale_max=0.25),
        "migration": charts.heatmap(["青铜", "白银"], ["青铜", "白银"], [[40, 8], [1, 5]], title="Migration"),
    }


def texts(svg: str) -> list[str]:
    return [element.text or "" for element in ET.fromstring(svg).iter(f"{SVG}text")]


def test_the_same_data_gives_byte_identical_svg():
    first, second = every_chart(), every_chart()
    assert first == second
    assert len(set(first.values())) == len(first)  # and different charts differ


def test_charts_drawn_from_several_threads_match_those_drawn_one_by_one():
    expected = every_chart()
    results: list[dict[str, str]] = []
    threads = [threading.Thread(target=lambda: results.append(every_chart())) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [expected] * 3


def test_a_chart_refers_to_nothing_outside_itself():
    for name, svg in every_chart().items():
        root = ET.fromstring(svg)
        for element in root.iter():
            for attribute, value in element.attrib.items():
                if attribute in ("href", XLINK_HREF, "src"):
                    assert value.startswith(("#", "data:")), (name, attribute, value)
        # the only URLs are the two namespace names, which nothing fetches
        assert re.findall(r"https?://", svg) == ["http://", "http://"], name
        assert "xmlns=\"http://www.w3.org/2000/svg\"" in svg
        assert re.findall(r"url\((?!#)", svg) == [] and "@import" not in svg and "@font-face" not in svg, name
        assert not svg.startswith("<?xml") and "<!DOCTYPE" not in svg and "<metadata>" not in svg, name


def test_every_chart_has_a_role_a_label_a_title_and_a_view_box_but_no_fixed_size():
    for name, svg in every_chart().items():
        root = ET.fromstring(svg)
        assert root.get("role") == "img", name
        assert root.get("aria-label") and root[0].tag == f"{SVG}title" and root[0].text == root.get("aria-label")
        assert re.fullmatch(r"0 0 [\d.]+ [\d.]+", root.get("viewBox") or ""), name
        assert root.get("width") is None and root.get("height") is None, name
    assert ET.fromstring(charts.bar_chart(["a"], {"n": [1]}, title="ARPU <by> tier & month")).get(
        "aria-label") == "ARPU <by> tier & month"


def test_chinese_tier_names_are_text_and_raise_no_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # matplotlib's "Glyph ... missing from font(s)" would fail here
        svg = charts.stacked_bar_chart(MONTHS, TIERS, title="各等级会员数", y_label="members")
    assert {"青铜", "白银", "黄金", "各等级会员数"} <= set(texts(svg))
    # the browser picks the fonts: CJK system fonts are named; matplotlib's measuring fonts are not
    assert "PingFang SC" in svg and "Noto Sans CJK SC" in svg
    assert "DejaVu" not in svg and "Last Resort" not in svg


def test_the_values_drawn_are_written_on_the_chart():
    shown = texts(every_chart()["bars"])
    assert {"42.10", "120", "305"} <= set(shown)  # under 100 with cents, else whole yuan
    assert {"15", "7", "6", "5"} <= set(texts(every_chart()["grouped"]))
    assert {"17", "83", "0.0-0.5", "0.5-1.0"} <= set(texts(every_chart()["histogram"]))
    assert {"100%", "25.0%", "2027-01", "2027-02"} <= set(texts(every_chart()["triangle"]))
    assert {"40", "8", "1", "5"} <= set(texts(every_chart()["migration"]))
    assert set(MONTHS) <= set(texts(every_chart()["line"]))


def test_heatmap_numbers_are_black_on_light_cells_and_white_on_dark_ones():
    svg = charts.heatmap(["a"], ["low", "high"], [[0, 10]], title="contrast")
    cells = {element.text: element.get("style", "") for element in ET.fromstring(svg).iter(f"{SVG}text")}
    assert "fill: #ffffff" in cells["0"]  # cividis starts dark blue
    assert "fill: #ffffff" not in cells["10"]  # and ends light yellow: black, the default fill


def test_a_large_chart_stays_small():
    months = [f"{2026 + i // 12}-{i % 12 + 1:02d}" for i in range(24)]
    tiers = {f"tier {t}": [float(100 * t + i) for i in range(24)] for t in range(6)}
    assert len(charts.line_chart(months, tiers, title="24 months, 6 tiers").encode()) < 40_000
    triangle = [[0.5] * (24 - row) + [None] * row for row in range(24)]  # 300 cells: annotated
    assert len(charts.heatmap(months, [str(m) for m in range(24)], triangle, title="t", percent=True)
               .encode()) < 60_000
