"""`loyalty demo` ends by creating the local demo operator (admin role, the same password on every
run over the same var/) and printing the pages to open: the member center of the member in the
highest tier, the operations console and the admin.

A small shop under the default rules, tiers evaluated on 2027-02-01: m1 paid once (silver);
m2 paid ¥100 three times (gold, growth 300); m3 paid ¥50 three times (gold, growth 150). The
showcase is m2: gold is the highest tier held, and m2 has more growth in it than m3."""

import io
import re
from urllib.parse import parse_qs, urlsplit

import pytest
from rich.console import Console

from loyalty.clock import FixedClock
from loyalty.demo.links import DEMO_OPERATOR, demo_links, print_links
from loyalty.services import tiers
from loyalty.services.member_tokens import read_member_grant
from loyalty.services.members import register_member
from loyalty.store.models import Member
from loyalty.web.member import member_center_url
from tests.conftest import at
from tests.service.support import pay

LINK = re.compile(r"http://127\.0\.0\.1:8000(/m/\?token=\S+)")


@pytest.fixture
def shop(default_rules, clock):
    for name in ("m1", "m2", "m3"):
        register_member(name, clock=clock)
    pay("a1", "m1", at("2026-12-28 10:00"), "100", clock)
    for n, day in enumerate(("28", "29", "30")):
        pay(f"b{n}", "m2", at(f"2026-12-{day} 10:00"), "100", clock)
        pay(f"c{n}", "m3", at(f"2026-12-{day} 11:00"), "50", clock)
    month = at("2027-02-01 00:00")
    tiers.evaluate_tiers(month, clock=FixedClock(month))
    return dict(Member.objects.values_list("external_id", "tier"))


def links_printed(tmp_path):
    links = demo_links(tmp_path / "var" / "demo-operator.txt",
                       lambda m: member_center_url(m, base="http://127.0.0.1:8000"))
    out = io.StringIO()
    print_links(Console(file=out, width=60), links)  # narrower than a link: it must not wrap
    return links, out.getvalue()


def test_the_demo_prints_the_showcase_members_page_the_console_the_admin_and_a_login(client, shop, tmp_path):
    assert shop == {"m1": "silver", "m2": "gold", "m3": "gold"}

    links, text = links_printed(tmp_path)

    assert (links.member, links.tier) == ("m2", "gold")
    assert "run make serve to open them" in text
    assert "  operations console: http://127.0.0.1:8000/ops/\n" in text
    assert "  admin:              http://127.0.0.1:8000/admin/\n" in text
    password = (tmp_path / "var" / "demo-operator.txt").read_text().strip()
    assert f"log in as demo-operator, password {password} (admin role" in text
    path = LINK.search(text).group(1)
    assert read_member_grant(parse_qs(urlsplit(path).query)["token"][0]).member == "m2"
    page = client.get(path, follow=True)  # the token goes into a cookie, then /m/ shows the member
    assert page.status_code == 200 and page.redirect_chain[-1][0].endswith("/m/")
    assert "黄金" in page.content.decode()  # gold's name in the default ruleset


def test_the_demo_operator_is_an_admin_whose_password_stays_across_runs(client, shop, tmp_path):
    first, _ = links_printed(tmp_path)
    second, _ = links_printed(tmp_path)  # a second run over the same var/ (and here the same database)

    assert first.password == second.password and len(first.password) >= 16
    assert (tmp_path / "var" / "demo-operator.txt").stat().st_mode & 0o077 == 0  # only its owner reads it
    assert client.login(username=DEMO_OPERATOR, password=first.password)
    assert client.get("/admin/loyalty/rulesetversion/publish/").status_code == 200  # the admin role publishes
    assert client.get("/ops/").status_code == 200


def test_before_anyone_registered_there_is_no_member_page_to_print(db, default_rules, tmp_path):
    links, text = links_printed(tmp_path)
    assert links.member_url is None and "member center" not in text and "admin:" in text
