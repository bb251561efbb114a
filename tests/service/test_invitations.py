"""Invitations into the invitation-only tiers: who may invite, what a replay answers, and that the
top tier is reached only with an invitation."""

import pytest

from loyalty.domain.errors import Conflict, Forbidden, InvalidInput, NotFound
from loyalty.services.invitations import invite
from loyalty.services.members import register_member
from loyalty.services.tiers import evaluate_tiers
from loyalty.store.models import Invitation, Member
from tests.conftest import at
from tests.service.support import member, pay, snapshot

FEB_2027 = at("2027-02-01 00:00")
MAR_2027 = at("2027-03-01 00:00")


@pytest.fixture
def shop(default_rules, clock):
    for external_id in ("vip", "m1", "m2"):
        register_member(external_id, clock=clock)


@pytest.fixture
def black_gold(shop, clock):
    """`vip` reaches black-gold the ordinary way (¥12,000 and an operator's invitation); the clock
    then stands just after that evaluation."""
    pay("vip-o1", "vip", at("2027-01-04 10:00"), "12000", clock)
    invite("vip", operator="alice", note="founding customer", clock=clock)
    evaluate_tiers(FEB_2027, clock=clock)
    clock.at = at("2027-02-02 09:00")
    assert member("vip").tier == "black_gold"
    return "vip"


def everything():
    return snapshot(), list(Invitation.objects.order_by("id").values_list())


def test_an_operator_invitation_is_recorded_and_sets_the_flag(shop, clock):
    outcome = invite("m1", operator="alice", note="press event", clock=clock)
    assert (outcome.member, outcome.inviter, outcome.operator, outcome.note, outcome.replayed) == (
        "m1", None, "alice", "press event", False)
    assert outcome.invited_at == clock.now()
    row = Invitation.objects.get()
    assert (row.member.external_id, row.inviter, row.operator, row.note) == ("m1", None, "alice", "press event")
    assert member("m1").invited
    assert not member("m2").invited


def test_a_black_gold_member_may_invite_and_is_recorded_as_the_inviter(black_gold, clock):
    outcome = invite("m1", inviter=black_gold, clock=clock)
    assert (outcome.inviter, outcome.operator, outcome.replayed) == ("vip", "", False)
    row = Invitation.objects.get(member__external_id="m1")
    assert (row.inviter.external_id, row.operator, row.created_at) == ("vip", "", clock.now())
    assert member("m1").invited


def test_inviting_again_alike_answers_the_first_invitation_and_changes_nothing(black_gold, clock):
    first = invite("m1", inviter=black_gold, clock=clock)
    before = everything()
    clock.advance(days=3)
    again = invite("m1", inviter=black_gold, clock=clock)
    assert again == first.__class__(**{**first.__dict__, "replayed": True})
    assert everything() == before


@pytest.mark.parametrize("second", [
    {"operator": "bob"},
    {"operator": "alice", "note": "another note"},
    {"inviter": "vip"},
])
def test_another_inviter_for_an_invited_member_is_a_conflict(black_gold, clock, second):
    invite("m1", operator="alice", clock=clock)
    before = everything()
    with pytest.raises(Conflict) as caught:
        invite("m1", clock=clock, **second)
    assert (caught.value.code, caught.value.field) == ("exists_with_different_payload", "inviter")
    assert "already invited, by an operator at" in caught.value.message
    assert everything() == before


@pytest.mark.parametrize("tier", ["bronze", "diamond"])
def test_a_member_below_the_invitation_only_tier_may_not_invite(shop, clock, tier):
    Member.objects.filter(external_id="vip").update(tier=tier, tier_expires_at=at("2028-01-01 00:00"))
    before = everything()
    with pytest.raises(Forbidden) as caught:
        invite("m1", inviter="vip", clock=clock)
    assert (caught.value.code, caught.value.field) == ("inviter_not_eligible", "inviter")
    assert "black_gold" in caught.value.message
    assert everything() == before
    assert not member("m1").invited


def test_a_black_gold_tier_past_its_expiry_no_longer_invites(black_gold, clock):
    clock.at = member(black_gold).tier_expires_at
    with pytest.raises(Forbidden) as caught:
        invite("m1", inviter=black_gold, clock=clock)
    assert caught.value.code == "inviter_not_eligible"
    clock.advance(seconds=-1)
    assert invite("m1", inviter=black_gold, clock=clock).inviter == black_gold


def test_under_a_ruleset_without_invitation_only_tiers_no_member_may_invite(publish, clock):
    publish("seed000-points")
    register_member("top", clock=clock)
    register_member("m1", clock=clock)
    Member.objects.filter(external_id="top").update(tier="level_3")
    with pytest.raises(Forbidden) as caught:
        invite("m1", inviter="top", clock=clock)
    assert "none in the ruleset in force" in caught.value.message
    assert invite("m1", operator="alice", clock=clock).operator == "alice"


@pytest.mark.parametrize(("who", "field"), [
    ({"member": "nobody", "operator": "alice"}, "member"),
    ({"member": "m1", "inviter": "nobody"}, "inviter"),
])
def test_an_unknown_member_or_inviter_is_not_found_and_writes_nothing(shop, clock, who, field):
    before = everything()
    external_id = who.pop("member")
    with pytest.raises(NotFound) as caught:
        invite(external_id, clock=clock, **who)
    assert (caught.value.code, caught.value.field) == ("unknown_member", field)
    assert everything() == before


@pytest.mark.parametrize(("kwargs", "field"), [
    ({}, "inviter"),
    ({"operator": "  "}, "inviter"),
    ({"inviter": "vip", "operator": "alice"}, "inviter"),
    ({"inviter": "m1"}, "inviter"),
    ({"operator": "alice", "note": "n" * 201}, "note"),
    ({"operator": "alice\x00"}, "operator"),
])
def test_an_invitation_needs_exactly_one_inviter_who_is_someone_else(shop, clock, kwargs, field):
    before = everything()
    with pytest.raises(InvalidInput) as caught:
        invite("m1", clock=clock, **kwargs)
    assert caught.value.field == field
    assert everything() == before


def test_the_invitation_only_tier_is_reached_only_with_an_invitation(black_gold, clock):
    pay("m1-o1", "m1", at("2027-02-03 10:00"), "12000", clock)
    pay("m2-o1", "m2", at("2027-02-03 10:00"), "12000", clock)
    invite("m2", inviter=black_gold, clock=clock)
    evaluate_tiers(MAR_2027, clock=clock)
    assert (member("m1").tier, member("m1").invited) == ("diamond", False)
    assert member("m2").tier == "black_gold"
    invite("m1", operator="alice", clock=clock)
    evaluate_tiers(at("2027-04-01 00:00"), clock=clock)
    assert member("m1").tier == "black_gold"


def test_an_invitation_alone_earns_no_tier(black_gold, clock):
    invite("m1", inviter=black_gold, clock=clock)
    evaluate_tiers(MAR_2027, clock=clock)
    assert member("m1").tier == "bronze"


def test_under_immediate_upgrade_the_invitation_moves_a_qualified_member_up_at_once(publish, clock):
    publish("default", evaluation={"immediate_upgrade": True})
    register_member("m1", clock=clock)
    pay("m1-o1", "m1", at("2027-01-03 10:00"), "12000", clock)
    assert member("m1").tier == "diamond"
    clock.advance(hours=1)
    invite("m1", operator="alice", clock=clock)
    assert (member("m1").tier, member("m1").tier_reached_at) == ("black_gold", clock.now())
