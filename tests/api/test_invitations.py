"""POST /members/{external_id}/invitations: a black-gold member invites another member; a replay
answers the first invitation, another inviter is a 409, an inviter below black-gold a 403."""

from __future__ import annotations

from datetime import timedelta

import pytest

from loyalty.clock import system_clock
from loyalty.store.models import Invitation, Member
from tests.api.support import answer, error_of, is_replay, snapshot

pytestmark = pytest.mark.django_db


@pytest.fixture
def club(shop):
    """m-1 (bronze), and vip-1, vip-2 holding black-gold for another year; dia-1 holds diamond."""
    for external_id in ("vip-1", "vip-2", "dia-1"):
        answer(shop.post("/members", {"external_id": external_id}), 201)
    next_year = system_clock.now() + timedelta(days=365)
    Member.objects.filter(external_id__startswith="vip-").update(tier="black_gold", tier_expires_at=next_year,
                                                                 invited=True)
    Member.objects.filter(external_id="dia-1").update(tier="diamond", tier_expires_at=next_year)
    return shop


def test_a_black_gold_member_invites_and_the_member_is_flagged(club):
    body = answer(club.post("/members/m-1/invitations", {"inviter": "vip-1", "note": "my sister"}), 201)
    assert {k: body[k] for k in ("member", "inviter", "note")} == {"member": "m-1", "inviter": "vip-1",
                                                                   "note": "my sister"}
    assert Member.objects.get(external_id="m-1").invited
    assert Invitation.objects.get().inviter.external_id == "vip-1"


def test_a_replay_answers_the_first_invitation_and_changes_nothing(club):
    first = club.post("/members/m-1/invitations", {"inviter": "vip-1"})
    before = snapshot()
    again = club.post("/members/m-1/invitations", {"inviter": "vip-1"})
    assert answer(again, 201) == answer(first, 201)
    assert is_replay(again) and not is_replay(first)
    assert snapshot() == before


@pytest.mark.parametrize("second", [{"inviter": "vip-2"}, {"inviter": "vip-1", "note": "another note"}])
def test_another_invitation_of_an_invited_member_is_a_409(club, second):
    answer(club.post("/members/m-1/invitations", {"inviter": "vip-1"}), 201)
    before = snapshot()
    error = error_of(club.post("/members/m-1/invitations", second), 409)
    assert (error["code"], error["field"]) == ("exists_with_different_payload", "inviter")
    assert snapshot() == before


@pytest.mark.parametrize("inviter", ["dia-1", "m-1"])
def test_an_inviter_below_black_gold_is_a_403_that_writes_nothing(club, inviter):
    answer(club.post("/members", {"external_id": "m-5"}), 201)
    before = snapshot()
    error = error_of(club.post("/members/m-5/invitations", {"inviter": inviter}), 403)
    assert (error["code"], error["field"]) == ("inviter_not_eligible", "inviter")
    assert snapshot() == before


@pytest.mark.parametrize(("path", "body", "status", "code", "field"), [
    ("/members/nobody/invitations", {"inviter": "vip-1"}, 404, "unknown_member", "member"),
    ("/members/m-1/invitations", {"inviter": "nobody"}, 404, "unknown_member", "inviter"),
    ("/members/m-1/invitations", {"inviter": "m-1"}, 422, "invalid_input", "inviter"),
    ("/members/m-1/invitations", {}, 422, "invalid_input", "inviter"),
    ("/members/m-1/invitations", {"inviter": "vip-1", "note": "x" * 201}, 422, "invalid_input", "note"),
])
def test_unknown_members_and_malformed_invitations_are_refused_naming_the_field(club, path, body, status, code,
                                                                                 field):
    before = snapshot()
    error = error_of(club.post(path, body), status)
    assert (error["code"], error["field"]) == (code, field)
    assert snapshot() == before
