"""The member center over HTTP (Django's test client): the token is traded for a cookie, the page is
HTML with the numbers in it (no script needed), 401 without a valid token, pages, languages.

The member (as in tests/service/test_member_center.py): two ¥100 orders on 2027-01-04, silver from
the evaluation on 2027-02-01 (valid to 2028-02-01), 200 growth and 200 points; gold needs 1 more
order or ¥600.00 more, the bar stands at 66.6%.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.core import signing
from django.test import Client

from loyalty.clock import FixedClock
from loyalty.services.member_tokens import issue_member_token
from loyalty.services.members import register_member
from loyalty.services.tiers import evaluate_tiers
from loyalty.web import member
from tests.conftest import at
from tests.service.support import act, pay

NOW = at("2027-02-01 10:00")


@pytest.fixture
def now(monkeypatch) -> FixedClock:
    clock = FixedClock(NOW)
    monkeypatch.setattr(member, "CLOCK", clock)
    return clock


@pytest.fixture
def silver(default_rules, clock, now):
    for external_id in ("m1", "m2"):
        register_member(external_id, clock=clock)
    pay("o1", "m1", at("2027-01-04 10:00"), "100", clock)
    pay("o2", "m1", at("2027-01-04 11:00"), "100", clock)
    evaluate_tiers(at("2027-02-01 00:00"), clock=FixedClock(at("2027-02-01 00:00")))
    return "m1"


def opened(external_id: str, now: FixedClock, **token: timedelta) -> Client:
    client = Client()
    text, _ = issue_member_token(external_id, clock=now, **token)
    response = client.get("/m/", {"token": text})
    assert response.status_code == 302 and response["Location"] == "/m/"
    return client


def text_of(response) -> str:
    return re.sub(r"\s+", " ", response.content.decode())


def test_the_token_is_traded_for_a_signed_httponly_cookie_that_expires_with_it(silver, now):
    client = Client()
    token, _ = issue_member_token(silver, ttl=timedelta(minutes=15), clock=now)
    response = client.get(f"/m/?token={token}")
    assert (response.status_code, response["Location"]) == (302, "/m/")  # the token leaves the address bar
    cookie = response.cookies[member.MEMBER_COOKIE]
    assert (cookie["httponly"], cookie["samesite"], cookie["path"], cookie["max-age"]) == (True, "Lax", "/m/", 900)
    assert signing.loads(cookie.value, salt=member.COOKIE_SALT)["m"] == silver  # signed, not a bare id
    forger = Client()  # a cookie signed with anything but the server's key and salt is nobody's
    forger.cookies[member.MEMBER_COOKIE] = signing.dumps({"m": "m2", "exp": 2**40}, salt="guessed")
    assert forger.get("/m/").status_code == 401
    assert response["Cache-Control"] == "no-store" and response["Referrer-Policy"] == "no-referrer"
    assert client.get("/m/").status_code == 200
    now.advance(minutes=15)  # the cookie's member ends with the token
    assert client.get("/m/").status_code == 401


def test_the_page_shows_tier_progress_and_balances_as_html(silver, now):
    page = text_of(opened(silver, now).get("/m/"))
    assert '<html lang="zh-Hans">' in page
    assert 'data-testid="tier-name">白银<' in page and "有效期至 2028-02-01" in page
    assert 'data-testid="growth">200<' in page and "自上次访问 +200" in page
    assert 'aria-valuenow="66.6"' in page and "width:66.6%" in page
    assert "距离黄金还差：" in page and "<li>1 笔订单</li>" in page and "<li>消费 ¥600.00</li>" in page
    assert "订单数 ≥ 3 (近 12 个月) 或 消费金额 ≥ ¥800.00 (近 12 个月)" in page  # the next tier's conditions
    assert "每月 2 张 ¥8.00 优惠券" in page  # gold's benefit, in the preview and locked
    assert 'data-testid="points-balance">200<' in page and 'data-testid="points-spendable">200<' in page
    assert 'id="celebration"' in page and "您已升级为白银会员" in page  # the first visit since the upgrade
    assert page.count('class="benefit unlocked new"') == 1  # the ¥5 monthly coupon


def test_the_second_visit_has_no_celebration_and_no_red_dots(silver, now):
    client = opened(silver, now)
    client.get("/m/")
    page = text_of(client.get("/m/"))
    assert 'id="celebration"' not in page and "benefit unlocked new" not in page and "<script" not in page


@pytest.mark.parametrize("token", ["", "mt_forged", "lk_not-a-member-token"])
def test_a_missing_or_forged_token_gets_the_friendly_401_page(silver, token):
    response = Client().get("/m/", {"token": token} if token else {})
    assert response.status_code == 401
    assert "请回到商城，重新打开会员中心" in response.content.decode()


def test_an_expired_token_gets_the_401_page(silver, now):
    token, _ = issue_member_token(silver, ttl=timedelta(minutes=15), clock=now)
    now.advance(minutes=16)
    response = Client().get("/m/", {"token": token})
    assert response.status_code == 401 and "链接已失效" in response.content.decode()
    assert response.cookies[member.MEMBER_COOKIE].value == ""  # any cookie left is cleared


def test_a_member_sees_only_their_own_page_and_no_url_names_a_member(silver, now):
    page = text_of(opened("m2", now).get("/m/"))
    assert 'data-testid="tier-name">青铜<' in page and 'data-testid="growth">0<' in page
    assert "有效期至" not in page  # bronze never expires; m1's silver is not shown
    for path in ("/m/m1", "/m/m1/", "/m/?member=m1", "/m/?external_id=m1"):
        response = opened("m2", now).get(path)
        assert response.status_code == 404 or 'data-testid="tier-name">青铜<' in text_of(response)


def test_the_language_switch_remembers_english(silver, now):
    client = opened(silver, now)
    response = client.get("/m/", {"lang": "en"})
    assert (response.status_code, response["Location"]) == (302, "/m/")
    page = text_of(client.get("/m/"))
    assert '<html lang="en">' in page and 'data-testid="tier-name">Silver<' in page
    assert "<li>Orders: 1 more</li>" in page and "<li>Spending: ¥600.00 more</li>" in page
    assert "Valid until 2028-02-01" in page and 'href="/m/?lang=zh-hans"' in page
    client.get("/m/", {"lang": "zh-hans"})
    assert 'data-testid="tier-name">白银<' in text_of(client.get("/m/"))


def test_growth_history_is_paged_twenty_at_a_time_newest_first(silver, now):
    for day in range(5, 28):  # 23 check-ins of 5 growth, 2027-01-05 .. 01-27: 25 growth entries with o1, o2
        act(f"c{day}", silver, "check_in", at(f"2027-01-{day:02d} 08:00"), FixedClock(at(f"2027-01-{day:02d} 08:00")))
    client = opened(silver, now)
    first = text_of(client.get("/m/"))
    assert first.count('<span class="delta">') == 20 and "第 1 / 2 页" in first and 'href="?page=2#history"' in first
    assert re.search(r'2027-01-27</time> · 签到</span> <span class="delta">\+5<', first)
    second = text_of(client.get("/m/", {"page": "2"}))
    assert re.findall(r'<span class="delta">([^<]+)<', second) == ["+5", "+5", "+5", "+100", "+100"]
    assert "第 2 / 2 页" in second and 'href="?page=1#history"' in second
    assert "第 1 / 2 页" in text_of(client.get("/m/", {"page": "x"}))


def test_member_center_url_opens_the_page(silver, now):
    url = member.member_center_url(silver, base="http://shop.test/")
    assert url.startswith("http://shop.test/m/?token=mt_")
    response = Client().get(url.removeprefix("http://shop.test"))
    assert response.status_code == 302


def test_every_language_has_every_string_and_names_every_flag_and_source() -> None:
    from loyalty.domain.rules import BENEFIT_FLAGS
    from loyalty.store.models import SOURCES
    from loyalty.web.member_text import TEXT

    assert TEXT["zh-hans"].keys() == TEXT["en"].keys()
    needed = {f"flag_{flag}" for flag in BENEFIT_FLAGS} | {f"source_{source}" for source, _ in SOURCES}
    assert needed <= TEXT["en"].keys()
