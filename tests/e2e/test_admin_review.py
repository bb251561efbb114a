"""Operators work the review queue in the admin: open cases first, with the flags' reasons and
what is withheld; approve or reject with a note, through the holds service, logged with who and why."""

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Permission, User

from loyalty.services import holds
from loyalty.services.members import register_member
from loyalty.store.models import Member, ReviewCase
from tests.conftest import at
from tests.service.support import pay

MONDAY = at("2027-01-04 10:00")



@pytest.fixture
def cases(default_rules, clock):
    """m1 and m2 held, each with a ¥400 order withheld (450 growth, 400 points); m3 decided."""
    members = [register_member(name, clock=clock).member for name in ("m1", "m2", "m3")]
    holds.place_holds([m.id for m in members], reason="refund_rate", details={members[0].id: {"rate": "0.9"}},
                      at=at("2027-01-04 09:00"))
    holds.approve(ReviewCase.objects.get(member=members[2]).id, by="earlier", note="fine", clock=clock)
    for name in ("m1", "m2"):
        pay(f"o-{name}", name, MONDAY, "400", clock)
    return {m.external_id: ReviewCase.objects.filter(member=m).latest("id").id for m in members}


def decide(client, action, note, *ids):
    return client.post("/admin/loyalty/reviewcase/", {"action": action, "note": note,
                                                     "_selected_action": list(ids)}, follow=True)


def test_the_queue_lists_open_cases_first_with_reasons_and_what_is_withheld(operator, cases):
    page = operator.get("/admin/loyalty/reviewcase/").content.decode()
    assert page.index(">m1<") < page.index(">m3<") and page.index(">m2<") < page.index(">m3<")
    assert "refund_rate" in page and "450 / 400 (1, 0)" in page
    detail = operator.get(f"/admin/loyalty/reviewcase/{cases['m1']}/change/").content.decode()
    assert "0.9" in detail


def test_an_operator_approves_and_rejects_from_the_queue_with_a_note(operator, cases):
    nothing = decide(operator, "approve_cases", " ", cases["m1"])
    assert "Give a note saying why: nothing was decided." in nothing.content.decode()
    assert ReviewCase.objects.get(id=cases["m1"]).state == "open"

    approved = decide(operator, "approve_cases", "a real customer", cases["m1"], cases["m3"]).content.decode()
    assert "1 approved." in approved and f"Not decided: case {cases['m3']} (review case" in approved
    m1 = Member.objects.get(external_id="m1")
    assert (m1.growth_balance, m1.points_balance, m1.held_since) == (450, 400, None)

    rejected = decide(operator, "reject_cases", "refund loop", cases["m2"]).content.decode()
    assert "1 rejected." in rejected
    m2 = Member.objects.get(external_id="m2")
    assert (m2.growth_balance, m2.points_balance, m2.held_since) == (0, 0, None)
    case = ReviewCase.objects.get(id=cases["m2"])
    assert (case.state, case.decided_by, case.note, case.growth, case.points) == ("rejected", "ops", "refund loop",
                                                                                 450, 400)
    logged = sorted(LogEntry.objects.values_list("object_id", "change_message"))
    assert logged == [(str(cases["m1"]), "approved: a real customer"), (str(cases["m2"]), "rejected: refund loop")]


def test_staff_who_may_only_view_cases_cannot_decide_them(client, cases):
    viewer = User.objects.create_user("viewer", "v@example.com", "secret", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_reviewcase"))
    client.force_login(viewer)
    assert b"approve_cases" not in client.get("/admin/loyalty/reviewcase/").content
    decide(client, "approve_cases", "sneaky", cases["m1"])
    assert ReviewCase.objects.get(id=cases["m1"]).state == "open"
