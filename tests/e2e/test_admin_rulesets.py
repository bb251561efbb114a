"""Operators publish ruleset versions from the admin: a broken candidate is refused with its
problems under the field and nothing written; the diff against the version in force shows the
changed lines; Publish stores version N+1 with the operator and the reason, only for the text
whose diff was shown; the notice period refuses a harder version inline unless forced; viewers
and operators read versions but cannot publish.

Version 1 is the default preset, in force from 2020-01-01 (the `default_rules` fixture)."""

import re
from html import unescape

import pytest

from loyalty.domain.documents import canonical_yaml, from_json, to_json, to_yaml
from loyalty.services import rulesets
from loyalty.services.staff import create_staff
from loyalty.store.models import RulesetVersion
from tests.conftest import at

URL = "/admin/loyalty/rulesetversion/publish/"


@pytest.fixture
def admin_client(client, default_rules):
    create_staff("ada", "secret-1", "admin")
    client.login(username="ada", password="secret-1")
    return client


def richer(name: str = "richer growth") -> str:
    """The default preset with 2 growth per yuan instead of 1 (easier: no notice needed)."""
    document = rulesets.preset_document("default")
    document["name"] = name
    document["growth"]["per_yuan"] = 2
    return to_yaml(document)


def harder() -> str:
    """The default preset with gold at 4 orders instead of 3: tiers get harder (90 days' notice)."""
    document = rulesets.preset_document("default")
    document["name"] = "harder gold"
    document["tiers"][2]["when"] = {"any": [{"orders": ">= 4"}, {"amount": ">= 800"}]}
    return to_json(document)  # JSON is YAML too


def diff_lines(response) -> list[tuple[str, str]]:
    """(kind, text) of every line of the diff the page shows."""
    found = re.findall(r'<span class="diff-(\w+)"[^>]*>(.*?)</span>', response.content.decode(), re.S)
    return [(kind, unescape(text)) for kind, text in found]


def show_diff(client, candidate: str, **fields: str):
    return client.post(URL, {"candidate": candidate, "effective_from": "2031-01-01", "reason": "", **fields,
                             "diff": "Show the diff"})


def publish(client, candidate: str, previewed: str, **fields: str):
    data = {"candidate": candidate, "effective_from": "2031-01-01", "reason": "", "previewed": previewed, **fields,
            "publish": "Publish"}
    return client.post(URL, data)


def test_the_form_is_prefilled_with_the_version_in_force_as_yaml(admin_client):
    listed = admin_client.get("/admin/loyalty/rulesetversion/")
    assert URL.encode() in listed.content  # the way in, from the versions' list

    page = admin_client.get(URL)

    assert page.status_code == 200
    text = page.context["form"].initial["candidate"]
    assert text == canonical_yaml(rulesets.preset_document("default"))
    assert "name: default\n" in text and "  notice_days: 90\n" in text
    assert b'name="publish"' not in page.content  # nothing to publish before a diff was shown


def test_a_broken_candidate_is_refused_under_the_field_and_nothing_is_written(admin_client):
    broken = "name: broken\ntiers: []\n"
    shown = show_diff(admin_client, broken)
    errors = shown.context["form"].errors["candidate"]
    assert any(error.startswith("tiers") for error in errors)
    assert 'id="id_candidate_errors"' in shown.content.decode() and "diff" not in shown.context

    posted = publish(admin_client, broken, previewed="anything", reason="try")

    assert posted.status_code == 200 and posted.context["form"].errors["candidate"] == errors
    assert list(RulesetVersion.objects.values_list("version", flat=True)) == [1]


def test_the_diff_shows_the_changed_lines_against_the_version_in_force(admin_client):
    shown = show_diff(admin_client, richer())

    lines = diff_lines(shown)
    changed = [line for line in lines if line[0] in ("add", "remove")]
    # growth.per_yuan 1 -> 2 and the name; points.per_yuan (also 1) is unchanged.
    assert changed == [("remove", "-  per_yuan: 1"), ("add", "+  per_yuan: 2"),
                       ("remove", "-name: default"), ("add", "+name: richer growth")]
    assert lines[0] == ("file", "--- version 1 (in force)") and lines[1] == ("file", "+++ candidate")
    assert b'name="publish"' in shown.content
    assert RulesetVersion.objects.count() == 1


def test_publish_writes_the_next_version_with_the_operator_and_the_reason(admin_client):
    candidate = richer()
    checksum = show_diff(admin_client, candidate).context["checksum"]

    posted = publish(admin_client, candidate, checksum, reason="double growth for 2031")

    version = RulesetVersion.objects.get(version=2)
    assert posted.status_code == 302 and posted["Location"] == f"/admin/loyalty/rulesetversion/{version.pk}/change/"
    assert (version.name, version.published_by, version.reason) == ("richer growth", "ada", "double growth for 2031")
    assert version.effective_from == at("2031-01-01 00:00")  # midnight in the ruleset's Asia/Shanghai
    assert from_json(version.document)["growth"]["per_yuan"] == 2
    detail = admin_client.get(posted["Location"])
    assert detail.status_code == 200
    assert ("add", "+  per_yuan: 2") in diff_lines(detail) and ("file", "--- version 1") in diff_lines(detail)
    # The same form sent again is the same version (the service's replay), not a third one.
    publish(admin_client, candidate, checksum, reason="double growth for 2031")
    assert RulesetVersion.objects.count() == 2


def test_publish_refuses_a_text_whose_diff_was_not_shown(admin_client):
    checksum = show_diff(admin_client, richer()).context["checksum"]

    posted = publish(admin_client, richer("edited after the diff"), checksum, reason="x")

    assert "The text changed since its diff was shown" in posted.content.decode()
    assert ("add", "+name: edited after the diff") in diff_lines(posted)  # the new diff, to read first
    assert RulesetVersion.objects.count() == 1


def test_a_harder_version_inside_the_notice_period_is_refused_inline_unless_forced_with_a_reason(admin_client):
    tomorrow = admin_client.get(URL).context["form"].initial["effective_from"]
    candidate = harder()
    checksum = show_diff(admin_client, candidate, effective_from=tomorrow).context["checksum"]

    refused = publish(admin_client, candidate, checksum, effective_from=tomorrow, reason="")
    assert any("needs 90 days' notice" in error for error in refused.context["form"].errors["effective_from"])
    no_reason = publish(admin_client, candidate, checksum, effective_from=tomorrow, reason="", force="on")
    assert no_reason.context["form"].errors["reason"] == [
        "forcing a publication inside the notice period needs a reason"]
    assert RulesetVersion.objects.count() == 1

    forced = publish(admin_client, candidate, checksum, effective_from=tomorrow, reason="agreed with legal",
                     force="on")
    assert forced.status_code == 302
    assert RulesetVersion.objects.get(version=2).reason == "agreed with legal"


def test_the_backtest_runs_on_the_same_text_from_the_publish_page(admin_client):
    shown = admin_client.post(URL, {"candidate": harder(), "effective_from": "2031-01-01", "backtest": "Run"})

    assert shown.context["result"]["rulesets"] == {"baseline": "default", "candidate": "harder gold"}
    assert "(baseline) → harder gold (candidate)" in shown.content.decode()
    assert RulesetVersion.objects.count() == 1


@pytest.mark.parametrize("role", ["viewer", "operator"])
def test_viewers_and_operators_read_versions_but_cannot_publish(client, default_rules, role):
    create_staff("vic", "secret-2", role)
    client.login(username="vic", password="secret-2")

    listed = client.get("/admin/loyalty/rulesetversion/")
    assert listed.status_code == 200 and URL.encode() not in listed.content
    version = RulesetVersion.objects.get(version=1)
    assert client.get(f"/admin/loyalty/rulesetversion/{version.pk}/change/").status_code == 200
    assert client.get(URL).status_code == 403
    assert client.post(URL, {"candidate": richer(), "effective_from": "2031-01-01", "previewed": "x",
                             "publish": "Publish"}).status_code == 403
    assert RulesetVersion.objects.count() == 1
