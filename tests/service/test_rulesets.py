"""Publishing rulesets: idempotent on the request (document, effective_from, reason), a replay
with another reason is a conflict, and what the store cannot keep is refused before it is written."""

from __future__ import annotations

import pytest

from loyalty.domain.errors import Conflict, RulesetInvalid
from loyalty.services import rulesets
from loyalty.store.models import RulesetVersion
from tests.conftest import RULES_FROM, at

pytestmark = pytest.mark.django_db

FEBRUARY = at("2027-02-01 00:00")


def _stored() -> list[tuple[object, ...]]:
    return list(RulesetVersion.objects.order_by("version").values_list())


def _publish(document=None, effective_from=FEBRUARY, actor="ops:li", reason="double growth in February"):
    return rulesets.publish(document or rulesets.preset_document("default"), effective_from=effective_from,
                            actor=actor, reason=reason)


def test_the_same_request_again_returns_the_first_version_and_writes_nothing():
    first = _publish()
    before = _stored()
    again = _publish()
    assert (again.pk, again.version, again.reason) == (first.pk, 1, "double growth in February")
    assert _stored() == before


def test_a_replay_by_another_actor_returns_the_first_version_with_its_actor():
    """The actor is who sends the request, not part of it: a retry from another key or login."""
    _publish(actor="api-key:ops")
    before = _stored()
    again = _publish(actor="cli:li")
    assert (again.version, again.published_by) == (1, "api-key:ops")
    assert _stored() == before


@pytest.mark.parametrize(("first", "second"), [("double growth in February", "typo fixed"), ("", "now with a reason"),
                                               ("a reason", "")])
def test_a_replay_with_another_reason_is_a_conflict_and_writes_nothing(first, second):
    _publish(reason=first)
    before = _stored()
    with pytest.raises(Conflict) as raised:
        _publish(reason=second)
    assert (raised.value.code, raised.value.field) == ("exists_with_different_payload", "reason")
    assert "version 1" in raised.value.message
    assert _stored() == before


def test_the_same_document_from_a_later_start_is_the_next_version():
    _publish()
    later = _publish(effective_from=at("2027-03-01 00:00"), reason="another reason")
    assert later.version == 2


def test_a_changed_document_with_the_same_start_is_the_next_version():
    _publish(effective_from=RULES_FROM)
    document = rulesets.preset_document("default")
    document["growth"]["per_yuan"] = 2
    assert _publish(document, effective_from=RULES_FROM, reason="another reason").version == 2


@pytest.mark.parametrize(("change", "problem"), [
    ({"name": "n" * 101}, "name: at most 100 characters, got 101"),
    ({"tier": "g" * 33}, "tiers[2].code: at most 32 characters, got 33"),
])
def test_what_the_store_cannot_keep_is_refused_before_it_is_written(change, problem):
    """varchar(100) and varchar(32): PostgreSQL and MariaDB would refuse them; SQLite would keep them."""
    document = rulesets.preset_document("default")
    if "name" in change:
        document["name"] = change["name"]
    else:
        document["tiers"][2]["code"] = change["tier"]
    with pytest.raises(RulesetInvalid) as raised:
        _publish(document)
    assert problem in raised.value.problems
    assert _stored() == []
