"""Operators invite members into the invitation-only tiers from the Member list: the action goes
through the invitation service as the logged-in operator, and staff without the permission do
not get it."""

import pytest
from django.contrib.auth.models import Permission, User

from loyalty.services.invitations import invite
from loyalty.services.members import register_member
from loyalty.store.models import Invitation, Member


@pytest.fixture
def members(default_rules, clock):
    for external_id in ("m1", "m2", "m3"):
        register_member(external_id, clock=clock)
    return {m.external_id: m.id for m in Member.objects.all()}


def logged_in(client, user):
    client.force_login(user)
    return client


def invite_selected(client, *ids):
    return client.post("/admin/loyalty/member/", {"action": "invite_members", "_selected_action": list(ids)},
                       follow=True)


def test_an_operator_invites_the_selected_members_as_themselves(client, members, clock):
    operator = logged_in(client, User.objects.create_superuser("li.ops", "li@example.com", "secret"))
    invite("m2", operator="wang.ops", clock=clock)
    page = invite_selected(operator, members["m1"], members["m2"])
    assert page.status_code == 200
    text = page.content.decode()
    assert "1 invited, 0 already invited by li.ops." in text
    assert "Not invited: m2 (m2 was already invited, by an operator at " in text
    rows = dict(Invitation.objects.values_list("member__external_id", "operator"))
    assert rows == {"m1": "li.ops", "m2": "wang.ops"}
    assert list(Member.objects.filter(invited=True).order_by("id").values_list("external_id", flat=True)) == [
        "m1", "m2"]
    again = invite_selected(operator, members["m1"])
    assert "0 invited, 1 already invited by li.ops." in again.content.decode()
    assert Invitation.objects.count() == 2
    assert operator.get("/admin/loyalty/invitation/").status_code == 200


def test_staff_without_the_add_invitation_permission_do_not_get_the_action(client, members):
    viewer = User.objects.create_user("viewer", "v@example.com", "secret", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_member"))
    page = logged_in(client, viewer).get("/admin/loyalty/member/")
    assert page.status_code == 200 and b"m1" in page.content
    assert b"invite_members" not in page.content
    invite_selected(client, members["m1"])
    assert not Invitation.objects.exists() and not Member.objects.filter(invited=True).exists()
    viewer.user_permissions.add(Permission.objects.get(codename="add_invitation"))
    assert b"invite_members" in client.get("/admin/loyalty/member/").content
