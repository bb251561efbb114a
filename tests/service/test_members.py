from datetime import date

import pytest

from loyalty.domain.errors import Conflict, InvalidInput, NotFound
from loyalty.services.members import get_member, id_ranges, register_member
from loyalty.store.models import Member
from tests.conftest import at
from tests.service.support import snapshot


def test_a_new_member_starts_in_the_base_tier_with_nothing(default_rules, clock):
    registration = register_member("m1", birthday=date(1990, 5, 17), clock=clock)
    member = registration.member
    assert registration.created
    assert (member.tier, member.tier_expires_at, member.invited) == ("bronze", None, False)
    assert (member.growth_balance, member.points_balance, member.points_debt) == (0, 0, 0)
    assert member.registered_at == clock.now()
    assert member.birthday == date(1990, 5, 17)


def test_registering_the_same_member_again_returns_the_same_member(default_rules, clock):
    first = register_member("m1", birthday=date(1990, 5, 17), clock=clock)
    clock.advance(days=3)
    before = snapshot()
    again = register_member("m1", birthday=date(1990, 5, 17), clock=clock)
    assert not again.created
    assert again.member.id == first.member.id
    assert again.member.registered_at == first.member.registered_at
    assert snapshot() == before


def test_registering_again_with_a_different_birthday_is_a_conflict(default_rules, clock):
    register_member("m1", birthday=date(1990, 5, 17), clock=clock)
    before = snapshot()
    with pytest.raises(Conflict) as caught:
        register_member("m1", birthday=date(1991, 5, 17), clock=clock)
    assert caught.value.code == "exists_with_different_payload"
    assert caught.value.field == "external_id"
    assert snapshot() == before
    assert Member.objects.get(external_id="m1").birthday == date(1990, 5, 17)


def test_registering_again_without_the_birthday_given_first_is_a_conflict(default_rules, clock):
    register_member("m1", birthday=date(1990, 5, 17), clock=clock)
    with pytest.raises(Conflict) as caught:
        register_member("m1", clock=clock)
    assert caught.value.code == "exists_with_different_payload"


@pytest.mark.parametrize("external_id", ["", "has space", "tab\there", "x" * 65])
def test_a_bad_external_id_is_refused_naming_the_field_and_writes_nothing(default_rules, clock, external_id):
    before = snapshot()
    with pytest.raises(InvalidInput) as caught:
        register_member(external_id, clock=clock)
    assert caught.value.field == "external_id"
    assert snapshot() == before


def test_an_external_id_of_64_characters_is_accepted(default_rules, clock):
    assert register_member("x" * 64, clock=clock).created


def test_registration_without_a_ruleset_in_force_is_refused_and_writes_nothing(default_rules, clock):
    before = snapshot()
    with pytest.raises(NotFound) as caught:
        register_member("m1", clock=clock, registered_at=at("2019-06-01 10:00"))
    assert caught.value.code == "no_ruleset_in_force"
    assert snapshot() == before


def test_an_unknown_member_is_not_found(default_rules):
    with pytest.raises(NotFound) as caught:
        get_member("nobody")
    assert (caught.value.code, caught.value.field) == ("unknown_member", "member")


def test_id_ranges_cover_every_member_once_in_shares_of_the_given_size(default_rules, clock):
    assert id_ranges(3) == []
    for number in range(8):
        register_member(f"m{number}", clock=clock)
    Member.objects.filter(external_id__in=["m0", "m5"]).delete()
    ids = sorted(Member.objects.values_list("id", flat=True))
    ranges = id_ranges(3)
    assert all(0 < hi - lo <= 3 for lo, hi in ranges)
    assert [m for lo, hi in ranges for m in ids if lo <= m < hi] == ids
    assert ranges[0][0] == ids[0] and ranges[-1][1] == ids[-1] + 1
    assert id_ranges(100) == [(ids[0], ids[-1] + 1)]


def test_an_id_range_holds_at_least_one_id(default_rules):
    with pytest.raises(InvalidInput) as caught:
        id_ranges(0)
    assert caught.value.field == "chunk"

