"""The operations console (/ops/) through Django's test client: who may open it, the figures each
dashboard shows for the hand-counted shop of tests/e2e/ops_shop.py, the filters, and the staff
roles that migration 0015 creates."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from django.apps import apps
from django.contrib.auth.models import Group, User
from django.core.cache import cache

from loyalty.domain.errors import Conflict, InvalidInput
from loyalty.services import jobs
from loyalty.services.staff import create_staff
from loyalty.web.templatetags.ops_format import duration_text
from tests.e2e.cli import cli_on
from tests.e2e.ops_shop import PERIOD, record_shop

PAGES = ("/ops/", "/ops/retention/", "/ops/revenue/", "/ops/benefits/", "/ops/abuse/", "/ops/health/")


@pytest.fixture(autouse=True)
def fresh_cache():
    """The dashboards' figures are cached for a minute: every test starts without them."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def shop(db):
    record_shop()


@pytest.fixture
def viewer(client, db):
    client.force_login(create_staff("vera", "pw-vera", "viewer"))
    return client


def page(client, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200, response.content.decode()[:2000]
    return response.content.decode()


def row(*cells: str) -> str:
    """A table row as report_sections writes it: the first cell a row header."""
    return f'<tr><th scope="row">{cells[0]}</th>' + "".join(f"<td>{c}</td>" for c in cells[1:]) + "</tr>"


# Who may open it ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_without_a_login_every_page_sends_to_the_admin_login_and_back(client):
    for url in PAGES:
        response = client.get(url + "?tier=silver")
        assert response.status_code == 302
        assert response["Location"] == f"/admin/login/?next={url}%3Ftier%3Dsilver"


@pytest.mark.django_db
def test_a_user_without_a_staff_role_gets_403(client):
    plain = User.objects.create_user("nobody", password="pw")
    plain.user_permissions.set(Group.objects.get(name="viewer").permissions.all())  # not staff
    client.force_login(plain)
    assert [client.get(url).status_code for url in PAGES] == [403] * len(PAGES)
    client.force_login(User.objects.create_user("staff-only", password="pw", is_staff=True))  # staff, no role
    assert [client.get(url).status_code for url in PAGES] == [403] * len(PAGES)


def test_every_role_and_a_superuser_open_every_page(client, shop):
    for name, role in (("v", "viewer"), ("o", "operator"), ("ad", "admin")):
        client.force_login(create_staff(name, "pw", role))
        assert [client.get(url).status_code for url in PAGES] == [200] * len(PAGES), role
    client.force_login(User.objects.create_superuser("root", "root@example.com", "pw"))
    assert [client.get(url).status_code for url in PAGES] == [200] * len(PAGES)


def test_the_pages_only_read(viewer, shop):
    assert viewer.post("/ops/").status_code == 405


# The dashboards' figures -------------------------------------------------------------------


def test_tiers_shows_the_members_per_tier_at_each_month_start(viewer, shop):
    html = page(viewer, f"/ops/?{PERIOD}")
    assert html.count("<svg") == 1 and 'class="chart"' in html
    # 1 January: nobody registered yet. 1 February 00:00: b bronze, a and c silver.
    assert row("2025-01", "0", "0", *["0"] * 4) in html
    assert row("2025-02", "1", "2", *["0"] * 4) in html
    assert "No member held a tier at the period&#x27;s start." in html  # nobody registered on 01-01
    moved = page(viewer, "/ops/?from=2025-01-05&to=2025-02-28")
    assert "Moved up: 2; stayed: 1; moved down: 0." in moved and moved.count("<svg") == 2
    assert 'aria-current="page">Tiers</a>' in html


def test_retention_shows_repeat_purchase_per_tier_and_the_cohort(viewer, shop):
    html = page(viewer, f"/ops/retention/?{PERIOD}")
    assert html.count("<svg") == 3
    # Everyone was bronze on 01-01. Buyers a (3 kept orders) and c (1); b's order was refunded in
    # full. Both first bought in January, more than 30 days before as_of; a again 15 days later.
    assert row('<span lang="zh-Hans">青铜</span> (bronze)', "2", "1", "50.00%", "2", "1", "50.00%") in html
    assert row('<span lang="zh-Hans">白银</span> (silver)', "0", "0", "0.00%", "0", "0", "0.00%") in html
    assert row("repeat purchase", "2", "1", "50.00%") in html
    assert row("within 30 days", "2", "1", "50.00%") in html
    assert row("2025-01", "2", "100.00%", "50.00%") in html  # the January cohort, a back in February


def test_revenue_shows_arpu_and_frequency_per_tier_and_month(viewer, shop):
    html = page(viewer, f"/ops/revenue/?{PERIOD}")
    assert html.count("<svg") == 3
    # February: b (bronze) paid nothing; a (silver) paid ¥60 once: 6000 fen / 2 silver members.
    assert row("2025-02", "1", "0.00", "2", "30.00") in html
    assert row("2025-02", "0.0000", "0.5000") in html
    assert row('<span lang="zh-Hans">白银</span> (silver)', "30.00") in html
    assert row('<span lang="zh-Hans">青铜</span> (bronze)', "0.00") in html


def test_benefits_shows_coupons_and_their_cost_against_the_budget(viewer, shop):
    html = page(viewer, f"/ops/benefits/?{PERIOD}")
    assert html.count("<svg") == 2
    # Two ¥5 monthly coupons for the silver members on 1 February, a's redeemed; no budget set.
    assert row('<span lang="zh-Hans">白银</span> (silver)', "monthly", "2", "1", "50.00%") in html
    assert row("2025-02", '<span lang="zh-Hans">白银</span> (silver)', "–", "10.00", "5.00") in html


def test_the_abuse_queue_lists_open_cases_with_links_to_the_admin(viewer, shop):
    html = page(viewer, "/ops/abuse/")
    cards = dict(re.findall(r"<dt>([^<]+)</dt><dd>([^<]+)</dd>", html))
    assert cards == {"Open review cases": "2", "Decided cases": "1", "Scored by the latest scan": "4",
                     "Flagged by the latest scan": "2"}
    assert 'href="/admin/loyalty/reviewcase/?state__exact=open"' in html
    cases = re.findall(r'<a href="/admin/loyalty/reviewcase/(\d+)/change/">case \d+</a></th><td>(\w)</td>'
                       r"<td>([^<]+)</td><td>([^<]+)</td>", html)
    assert [c[1:] for c in cases] == [("d", "refund_rate", "2025-03-02 09:00 CST"),
                                      ("e", "refund_rate", "2025-03-02 09:00 CST")]
    assert html.count("<svg") == 1
    assert row("2025-03-03 03:00 CST", "4", "2") in html and row("2025-03-02 03:00 CST", "4", "1") in html


def test_job_runs_and_webhook_health_highlight_what_failed(viewer, shop):
    html = page(viewer, "/ops/health/")
    failed = re.search(r'<tr class="failed"><th scope="row">points_expiry<small>.*?</tr>', html)
    assert failed and "2025-02-02 00:00 CST" in failed.group(0) and "<strong>failed</strong>" in failed.group(0)
    assert ('<tr class="failed"><th scope="row">points_expiry</th><td>2025-02-02 00:00 CST</td><td>2</td>'
            '<td class="text">ValueError: lot 7 is gone</td></tr>') in html
    assert html.count('<tr class="failed">') == 1 + 1 + 2  # its job, its run, both endpoints
    # Endpoint 1: a's tier change delivered, c's parked. Endpoint 2: both coupons pending, one retried.
    one = re.search(r'#1 https://shop.example/hooks/tiers</th>(.*?)</tr>', html)
    two = re.search(r'#2 https://shop.example/hooks/coupons</th>(.*?)</tr>', html)
    assert one and re.fullmatch(r"<td>yes</td><td>0</td><td>0</td><td>1</td><td><strong>1</strong></td><td>–</td>",
                                one.group(1))
    assert two and re.fullmatch(r"<td>yes</td><td>2</td><td>1</td><td>0</td><td>0</td><td>\d+ d \d+ h</td>",
                                two.group(1))
    # Not fanned out yet: a's coupon.redeemed (02-03 11:00), three member.held, one review_decided.
    assert re.search(r"Outbox events not yet fanned out: 5, the oldest \d+ d \d+ h old", html)
    assert html.count("<svg") == 1


def test_ages_read_in_their_two_largest_units():
    assert duration_text(timedelta(days=3, hours=4, minutes=5)) == "3 d 4 h"
    assert duration_text(timedelta(hours=2, minutes=5, seconds=9)) == "2 h 5 min"
    assert duration_text(timedelta(minutes=1, seconds=40)) == "1 min 40 s"
    assert duration_text(timedelta(seconds=40)) == "40 s"


# Filters -----------------------------------------------------------------------------------


def test_a_period_and_a_tier_narrow_every_figure(viewer, shop):
    query = "from=2025-02-01&to=2025-02-28&tier=silver"
    retention = page(viewer, f"/ops/retention/?{query}")
    # Silver on 1 February: a and c; in February only a bought, once; nobody first bought then.
    assert row('<span lang="zh-Hans">白银</span> (silver)', "1", "0", "0.00%", "0", "0", "0.00%") in retention
    assert "(bronze)" not in retention.split('id="repeat-by-tier"')[1].split("</section>")[0]
    revenue = page(viewer, f"/ops/revenue/?{query}")
    assert row("2025-02", "2", "30.00") in revenue and row("2025-02", "0.5000") in revenue
    assert "members of the tier silver (held at the period's start)" in revenue
    # The filters travel with the nav.
    assert f'href="/ops/benefits/?{query.replace("&", "&amp;")}"' in revenue


@pytest.mark.parametrize(("query", "message"), [
    ("from=2025-13-01", "From: write a date as YYYY-MM-DD, e.g. 2027-01-31."),
    ("to=yesterday", "To: write a date as YYYY-MM-DD, e.g. 2027-01-31."),
    ("from=2025-03-01&to=2025-02-01", "From (2025-03-01) is after To (2025-02-01): the period would be empty."),
    ("tier=emerald", "Tier: emerald is not a tier of the ruleset in force; choose one of bronze, silver, gold, "
                     "platinum, diamond, black_gold."),
])
def test_bad_filters_answer_400_saying_what_is_wrong_and_show_no_figures(viewer, shop, query, message):
    response = viewer.get(f"/ops/retention/?{query}")
    html = response.content.decode()
    assert response.status_code == 400
    assert f"<li>{message}</li>" in html and 'role="alert"' in html
    assert "<svg" not in html and "The numbers" not in html
    assert ('aria-invalid="true"' in html) is ("after To" not in message)  # a field's own error marks it


def test_blank_filters_mean_no_filter(viewer, shop):
    urls = ("/ops/retention/?from=&to=&tier=", "/ops/retention/")
    blank, none = (page(viewer, url).split("<main")[1] for url in urls)
    assert blank == none


@pytest.mark.django_db
def test_before_a_ruleset_is_published_the_analytics_pages_say_so(viewer):
    assert "publish one first" in page(viewer, "/ops/")
    assert page(viewer, "/ops/health/").count("no ruleset published") == len(jobs.JOBS)  # every schedule


# The roles ---------------------------------------------------------------------------------


def _codenames(role: str) -> set[str]:
    return set(Group.objects.get(name=role).permissions.values_list("codename", flat=True))


@pytest.mark.django_db
def test_the_migration_gives_each_role_its_permissions():
    models = [m._meta.model_name for m in apps.get_app_config("loyalty").get_models()]
    views = {f"view_{m}" for m in models}
    assert _codenames("viewer") == views
    assert _codenames("operator") == views | {
        "add_invitation", "change_coupon", "change_redemption", "change_webhookdelivery", "change_deferredgrant",
        "change_opsalert", "change_reviewcase", "add_adjustment"}
    assert _codenames("admin") == {f"{verb}_{m}" for m in models for verb in ("add", "change", "delete", "view")}


@pytest.mark.django_db
def test_staff_may_do_what_their_role_allows_and_no_more():
    viewer, operator, admin = (create_staff(r, "pw", r) for r in ("viewer", "operator", "admin"))
    assert all(u.is_staff and not u.is_superuser for u in (viewer, operator, admin))
    checks = ("loyalty.view_member", "loyalty.change_reviewcase", "loyalty.add_adjustment",
              "loyalty.add_rulesetversion", "loyalty.add_apikey", "loyalty.change_webhookendpoint")
    assert [viewer.has_perm(p) for p in checks] == [True, False, False, False, False, False]
    assert [operator.has_perm(p) for p in checks] == [True, True, True, False, False, False]
    assert [admin.has_perm(p) for p in checks] == [True] * len(checks)
    assert not admin.has_perm("auth.add_user")  # managing staff stays with superusers


@pytest.mark.django_db
def test_create_staff_refuses_an_unknown_role_a_taken_name_and_no_password():
    create_staff("olga", "pw", "operator")
    with pytest.raises(Conflict, match="exists already"):
        create_staff("olga", "pw", "viewer")
    with pytest.raises(InvalidInput, match="role must be one of viewer, operator, admin"):
        create_staff("oleg", "pw", "root")
    with pytest.raises(InvalidInput, match="password must not be empty"):
        create_staff("oleg", "", "viewer")
    assert User.objects.get(username="olga").check_password("pw")


def test_loyalty_staff_create_reads_the_password_from_stdin(tmp_path: Path):
    loyalty = cli_on(tmp_path, "staff.sqlite3")
    loyalty("migrate")
    env_run = [sys.executable, "-m", "loyalty.cli", "staff", "create", "olga", "--role", "operator",
               "--password-stdin"]
    done = subprocess.run(env_run, input="s3cret pass\n", capture_output=True, text=True, timeout=300, cwd=tmp_path,
                          env=_env(tmp_path))
    assert done.returncode == 0 and "created olga (operator)" in done.stderr
    again = subprocess.run(env_run, input="other\n", capture_output=True, text=True, timeout=300, cwd=tmp_path,
                           env=_env(tmp_path))
    assert again.returncode == 1 and "error [username_taken]: a user named 'olga' exists already" in again.stderr
    wrong = loyalty("staff", "create", "oleg", "--role", "root", "--password-stdin", code=2)
    assert "invalid choice: 'root'" in wrong.stderr


def _env(tmp_path: Path) -> dict[str, str]:
    env = {**os.environ, "LOYALTY_DATABASE_URL": f"sqlite:///{tmp_path / 'staff.sqlite3'}"}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    return env
