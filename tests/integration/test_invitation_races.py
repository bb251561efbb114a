"""Invitations racing for one member (PostgreSQL and MariaDB, real row locks): one invitation is
recorded; the same inviter's retries answer it, everyone else gets the conflict."""

from __future__ import annotations

import pytest

from loyalty.domain.errors import Conflict
from loyalty.services.invitations import InvitationOutcome, invite
from loyalty.services.members import register_member
from loyalty.store.models import Invitation, Member
from tests.integration.test_concurrency import WRITERS, in_parallel

pytestmark = [pytest.mark.server_db, pytest.mark.django_db(transaction=True)]


def test_racing_invitations_of_one_member_record_exactly_one(publish, clock):
    publish("default")
    register_member("m1", clock=clock)
    # Even writers send one shared request (retries of each other); odd ones each their own.
    results = in_parallel(lambda index: invite("m1", operator="ops" if index % 2 == 0 else f"ops-{index}",
                                               clock=clock))
    (row,) = Invitation.objects.all()
    won = [r for r in results if isinstance(r, InvitationOutcome)]
    lost = [r for r in results if not isinstance(r, InvitationOutcome)]
    assert {outcome.operator for outcome in won} == {row.operator}
    assert sum(not outcome.replayed for outcome in won) == 1
    assert len(won) in (1, WRITERS // 2)  # the winner's request alone, or every shared retry with it
    assert all(isinstance(error, Conflict) and error.code == "exists_with_different_payload" for error in lost)
    assert Member.objects.get(external_id="m1").invited
