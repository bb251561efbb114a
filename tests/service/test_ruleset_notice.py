"""Ruleset versions over time: a version that makes tiers harder needs the notice period (unless
an operator forces it, with a reason); evaluation uses the version in force at `as_of`, and what
it writes names that version."""

from __future__ import annotations

from datetime import timedelta

import pytest

from loyalty.clock import FixedClock
from loyalty.domain.errors import InvalidInput, Refused
from loyalty.services import rulesets
from loyalty.services.members import register_member
from loyalty.services.tiers import evaluate_tiers
from loyalty.store.models import LedgerEntry, RulesetVersion, TierChange
from tests.conftest import RULES_FROM, at
from tests.service.support import member, pay

NOW = at("2027-01-04 09:00")


def stricter_gold(amount: str = "1000", notice_days: int | None = None):
    document = rulesets.preset_document("default")
    document["tiers"][2]["when"] = {"any": [{"orders": ">= 3"}, {"amount": f">= {amount}"}]}
    if notice_days is not None:
        document["publishing"] = {"notice_days": notice_days}
    return document


def publish(document, effective_from, *, clock=None, **kwargs):
    return rulesets.publish(document, effective_from=effective_from, actor="ops:li", clock=clock or FixedClock(NOW),
                            **kwargs)


def stored():
    return list(RulesetVersion.objects.order_by("version").values_list())


def test_a_stricter_version_inside_the_notice_period_is_refused_naming_effective_from(default_rules):
    before = stored()
    with pytest.raises(Refused) as caught:
        publish(stricter_gold(), NOW + timedelta(days=90) - timedelta(seconds=1))
    assert (caught.value.code, caught.value.field) == ("notice_period", "effective_from")
    assert "tier gold" in caught.value.message and "90 days" in caught.value.message
    assert stored() == before


def test_a_stricter_version_with_the_full_notice_is_published(default_rules):
    assert publish(stricter_gold(), NOW + timedelta(days=90)).version == 2


def test_an_easier_version_needs_no_notice(default_rules):
    assert publish(stricter_gold(amount="600"), NOW).version == 2


@pytest.mark.parametrize(("in_force_days", "new_days", "needed"), [(30, None, 90), (30, 30, 30), (30, 120, 120)])
def test_the_notice_is_the_longer_of_the_version_in_force_and_the_new_one(db, in_force_days, new_days, needed):
    document = rulesets.preset_document("default")
    document["publishing"] = {"notice_days": in_force_days}
    publish(document, RULES_FROM)
    with pytest.raises(Refused):
        publish(stricter_gold(notice_days=new_days), NOW + timedelta(days=needed) - timedelta(seconds=1))
    assert publish(stricter_gold(notice_days=new_days), NOW + timedelta(days=needed)).version == 2


def test_an_operator_may_force_a_stricter_version_giving_the_reason(default_rules):
    forced = publish(stricter_gold(), NOW, force=True, reason="price rise agreed with the board")
    assert (forced.version, forced.reason, forced.effective_from) == (2, "price rise agreed with the board", NOW)
    assert publish(stricter_gold(), NOW, reason="price rise agreed with the board") == forced  # a replay


@pytest.mark.parametrize("reason", ["", "   "])
def test_forcing_without_a_reason_is_refused(default_rules, reason):
    before = stored()
    with pytest.raises(InvalidInput) as caught:
        publish(stricter_gold(), NOW, force=True, reason=reason)
    assert caught.value.field == "reason"
    assert stored() == before


def test_the_first_version_needs_no_notice(db):
    assert publish(stricter_gold(), NOW).version == 1


def test_evaluation_uses_the_version_in_force_at_as_of_and_records_it(default_rules, clock):
    """Gold needs ¥1,000 instead of ¥800 from March, announced on 1 December (90 days ahead)."""
    march = at("2027-03-01 00:00")
    publish(stricter_gold(), march, clock=FixedClock(at("2026-12-01 00:00")))
    for external_id in ("early", "late"):
        register_member(external_id, clock=clock)
        pay(f"{external_id}-o1", external_id, at("2027-01-04 10:00"), "900", clock)
    february = evaluate_tiers(at("2027-02-01 00:00"), clock=clock, member_ids=[member("early").id])
    after = evaluate_tiers(march, clock=clock, member_ids=[member("late").id])
    assert (february.ruleset_version, member("early").tier) == (1, "gold")
    assert (after.ruleset_version, member("late").tier) == (2, "silver")
    assert dict(TierChange.objects.values_list("member__external_id", "ruleset_version")) == {"early": 1, "late": 2}


def test_an_entry_records_the_version_in_force_when_its_order_was_paid(default_rules, clock):
    march = at("2027-03-01 00:00")
    publish(stricter_gold(), march, clock=FixedClock(at("2026-12-01 00:00")))
    register_member("m1", clock=clock)
    pay("before", "m1", march - timedelta(seconds=1), "100", clock)
    pay("after", "m1", march, "100", clock)
    versions = dict(LedgerEntry.objects.filter(ledger="growth").values_list("reference", "ruleset_version"))
    assert versions == {"before": 1, "after": 2}
