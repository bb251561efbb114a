"""The analytics report's HTML page, rendered from a hand-written document: every section, nothing
fetched from outside, every chart followed by its numbers, the document's numbers shown exactly."""

from __future__ import annotations

import re
from html.parser import HTMLParser

from loyalty.analytics.report import render_html
from tests.analytics.report_document import DOCUMENT, document

SECTIONS = ("overview", "tier-distribution", "tier-migration", "cohort-retention", "arpu-frequency",
            "repeat-purchase", "coupons-budget", "points-liability", "rfm-segments", "customer-base-model")


class Page(HTMLParser):
    """Every start tag with its attributes, in order, and the text."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def named(self, name: str) -> list[dict[str, str | None]]:
        return [attrs for tag, attrs in self.tags if tag == name]


def test_every_section_is_there_with_a_heading_and_listed_in_the_contents():
    page = Page(render_html(DOCUMENT))
    assert [attrs["id"] for attrs in page.named("section")] == list(SECTIONS)
    assert [attrs["href"] for attrs in page.named("a")] == [f"#{anchor}" for anchor in SECTIONS]
    assert len(page.named("h1")) == 1 and len(page.named("h2")) == len(SECTIONS)
    assert page.named("html") == [{"lang": "en"}]


def test_the_page_fetches_nothing_and_runs_no_script():
    html = render_html(DOCUMENT)
    page = Page(html)
    for tag, attrs in page.tags:
        for name in ("src", "href", "xlink:href", "action", "srcset", "poster", "data"):
            value = attrs.get(name)
            if value is not None:
                assert value == "" or value.startswith(("#", "data:")), (tag, name, value)
    assert not {"script", "link", "iframe", "object", "embed", "img", "base"} & {tag for tag, _ in page.tags}
    assert "@import" not in html and "@font-face" not in html and not re.search(r"url\((?!#)", html)
    # the only URLs are the SVG namespace names, which nothing fetches
    assert set(re.findall(r"https?://[^\"' )]+", html)) == {"http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink"}


def test_every_chart_is_followed_by_its_numbers_and_has_an_accessible_name():
    page = Page(render_html(DOCUMENT))
    order = [tag for tag, _ in page.tags if tag in ("figure", "details", "table", "section")]
    charts = [attrs for tag, attrs in page.tags if tag == "svg"]
    assert len(charts) == order.count("figure") == 12
    for index, tag in enumerate(order):
        if tag == "figure":
            assert order[index + 1] in ("details", "table"), order[index:index + 2]
    assert all(svg["role"] == "img" and svg["aria-label"] for svg in charts)


def test_the_documents_numbers_are_shown_exactly():
    text = " ".join(Page(render_html(DOCUMENT)).text)
    for shown in ("23.00%", "15.00%",  # repeat rate "0.2300"; within 30 days "0.1500"
                  "9876.54",  # expected_value_fen_total 987654
                  "15,602",  # outstanding points at the last period
                  "29 / 13",  # coupons issued 15 + 7 + 7, redeemed 6 + 5 + 2
                  "11.67%",  # cohort 2027-01, month 2: "0.1167"
                  "71.43%",  # gold cash coupons: "0.7143"
                  "1234.50",  # champions' median monetary value, 123450 fen
                  "Moved up: 12; stayed: 47; moved down: 1.",  # above (8+2+2), on (40+5+2), below (1) the diagonal
                  "0.2430", "-9582.4", "0.1234", "999.00"):  # BG/NBD r; log-likelihood; a p_alive; 99900 fen
        assert shown in text, shown


def test_average_arpu_weights_each_month_by_its_members():
    text = " ".join(Page(render_html(DOCUMENT)).text)
    # bronze: (4210×50 + 3990×70 + 4105×75) ÷ (50+70+75) = 797,675 ÷ 195 = 4090.64 fen -> 40.91 yuan
    # gold: (30500×2 + 29900×3 + 31234×7) ÷ 12 = 369,338 ÷ 12 = 30778.17 fen -> 307.78 yuan
    assert "40.91" in text and "307.78" in text


def test_tier_names_are_shown_and_marked_as_chinese_and_member_ids_are_escaped():
    html = render_html(DOCUMENT)
    assert '<span lang="zh-Hans">黄金</span> (gold)' in html
    assert "m-&lt;007&gt;" in html and "m-<007>" not in html


def test_a_model_that_could_not_be_fitted_is_said_in_its_section():
    html = render_html(document(models={"error": "the customer-base models need at least 20 members who bought "
                                                 "on two days or more; there are 3", "code": "too_few_repeat_buyers"}))
    section = html[html.index('id="customer-base-model"'):]
    assert "The models were not fitted: the customer-base models need at least 20 members" in section
    assert "<svg" not in section and "Expected purchases" not in html


def test_an_empty_period_renders_notes_instead_of_charts():
    empty = {
        "period": {"from": "2030-01-01", "to": "2030-01-31", "tiers": None, "as_of": "2030-02-01T00:00:00+08:00"},
        "repeat_purchase": {"buyers": 0, "repeat_buyers": 0, "rate": "0.0000"},
        "repurchase_within": {"days": 30, "eligible": 0, "repurchased": 0, "rate": "0.0000"},
        "cohorts": {"months": [], "rows": []},
        "by_tier": {"months": [], "tiers": ["bronze"], "members": {"bronze": []}, "arpu_fen": {"bronze": []},
                    "frequency": {"bronze": []}},
        "tier_distribution": {"months": [], "tiers": ["bronze"], "counts": {"bronze": []}},
        "tier_migration": {"from": "2030-01-01", "to": "2030-01-31", "tiers": ["bronze"], "matrix": [[0]]},
        "coupons": {"rows": []}, "benefit_cost": {"rows": []}, "points_liability": {"rows": []},
        "rfm": {"segments": []},
    }
    page = Page(render_html(document(metrics=empty, models={"error": "no purchases", "code": "refused"})))
    text = " ".join(page.text)
    assert "No month in the period." in text and "No first purchase in the period." in text
    assert "No coupon issued in the period." in text and "No buyer in the period." in text
    assert len(page.named("svg")) == 1  # only the repeat-purchase bars (two zero rates)
