"""Coupon templates in the ruleset (`coupons:`), grants that name them or stay inline, the rules a
coupon records from its template (stacking group, usage), and a tier's entitlements."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from loyalty.domain.coupons import Terms, check_combinable, check_revocable
from loyalty.domain.entitlements import MonthlyCoupon, entitlements
from loyalty.domain.errors import Conflict, RulesetInvalid
from loyalty.domain.grants import birthday_gifts, month_of, monthly_coupons, welcome_coupons
from loyalty.domain.rules import CouponGrant, parse_ruleset
from loyalty.domain.templates import CouponOffer
from tests.unit.presets import SHANGHAI, at, preset, preset_document

TIERS = [{"code": "bronze"}, {"code": "gold", "when": {"orders": ">= 3"}}]


def ruleset(**sections: Any) -> Any:
    return parse_ruleset({"tiers": TIERS, **sections})


def problems(**sections: Any) -> list[str]:
    with pytest.raises(RulesetInvalid) as caught:
        ruleset(**sections)
    return caught.value.problems


def test_a_template_takes_its_defaults_from_its_value() -> None:
    rules = ruleset(coupons={"cash8": {"value": "8"}, "ship": {"value": "0", "kind": "free_delivery"},
                             "once": {"value": "5", "min_spend": "50", "valid_days": 30, "usage": "once_per_member",
                                      "stacking_group": "newcomer"},
                             "loose": {"value": "3", "stacking_group": None}})
    assert rules.coupons == {
        "cash8": CouponOffer(800, 0, None, "cash8", "cash", "single", ""),
        "ship": CouponOffer(0, 0, None, "ship", "delivery", "single", "free_delivery"),
        "once": CouponOffer(500, 5000, 30, "once", "newcomer", "once_per_member", ""),
        "loose": CouponOffer(300, 0, None, "loose", "", "single", ""),
    }


def test_grants_name_a_template_or_stay_inline_with_the_defaults() -> None:
    rules = ruleset(coupons={"gold_monthly": {"value": "8", "min_spend": "40"}, "bday": {"value": "10"}},
                    benefits={"gold": {"monthly_coupons": [{"template": "gold_monthly", "count": 2},
                                                           {"value": "3"}]}},
                    operations={"birthday_coupon": {"template": "bday"},
                                "recall": {"coupon": {"value": "10", "min_spend": "20"}}})
    gold, inline = rules.benefits["gold"].monthly_coupons
    assert (gold.value_fen, gold.count, gold.terms.template, gold.terms.min_spend_fen) == (800, 2, "gold_monthly", 4000)
    assert (inline.value_fen, inline.count, inline.terms) == (300, 1, CouponOffer(300))
    assert rules.operations.birthday_coupon == CouponOffer(1000, template="bday")
    assert rules.operations.recall is not None
    assert rules.operations.recall.coupon == CouponOffer(1000, 2000)  # anonymous: cash, single


def test_every_existing_preset_parses_to_the_same_grants_as_before() -> None:
    """The default ruleset's inline grants are anonymous templates with the defaults."""
    rules = preset("default")
    gold = rules.benefits["gold"].monthly_coupons
    assert [(g.value_fen, g.count, g.terms.template, g.terms.stacking_group, g.terms.usage) for g in gold] == [
        (800, 2, "", "cash", "single")]
    assert rules.operations.birthday_coupon == CouponOffer(1000)
    for name in ("seed000-points", "seed000-weighted", "seed001-all"):
        preset(name)


@pytest.mark.parametrize(("sections", "expected"), [
    ({"coupons": {"x": {"min_spend": "5"}}},
     "coupons.x.value: required: the coupon's value in yuan (0 for a free delivery)"),
    ({"coupons": {"x": {"value": "5", "usage": "twice"}}},
     "coupons.x.usage: must be one of single, once_per_member; got 'twice'"),
    ({"coupons": {"x": {"value": "5", "stacking_group": "a b"}}},
     "coupons.x.stacking_group: a stacking group is an identifier of at most 32 characters, or null; got 'a b'"),
    ({"coupons": {"x": {"value": "5", "colour": "red"}}}, "coupons.x.colour: unknown key 'colour'"),
    ({"coupons": {"x-1": {"value": "5"}}},
     "coupons.x-1: a template code is an identifier such as 'gold_monthly', got 'x-1'"),
    ({"coupons": {"x": {"value": "5", "valid_days": 0}}}, "coupons.x.valid_days: expected a whole number >= 1, got 0"),
    ({"coupons": {"x": {"value": "5", "kind": "k" * 25}}},
     f"coupons.x.kind: a kind is an identifier of at most 24 characters; got '{'k' * 25}'"),
    ({"benefits": {"gold": {"monthly_coupons": [{"template": "nope", "count": 2}]}}},
     "benefits.gold.monthly_coupons[0].template: unknown coupon template 'nope'; define it under coupons"),
    ({"coupons": {"x": {"value": "5"}}, "benefits": {"gold": {"monthly_coupons": [{"template": "x", "value": "3"}]}}},
     "benefits.gold.monthly_coupons[0].value: unknown key 'value'"),
    ({"benefits": {"gold": {"monthly_coupons": [{"value": "3", "min_spend": "9"}]}}},
     "benefits.gold.monthly_coupons[0].min_spend: unknown key 'min_spend'"),
    ({"operations": {"birthday_coupon": {"template": "nope"}}},
     "operations.birthday_coupon.template: unknown coupon template 'nope'; define it under coupons"),
    ({"operations": {"welcome_pack": {"coupons": [{"count": 1}]}}},
     "operations.welcome_pack.coupons[0].value: required: the coupon's value in yuan, or a template"),
    ({"operations": {"welcome_pack": {"coupons": [{"value": "5", "valid_days": 7}, {"value": "3"}]}}},
     "operations.welcome_pack.coupons: every coupon of the pack needs the same valid_days"),
    ({"operations": {"welcome_pack": {"coupons": [{"value": "5"}], "when": "always"}}},
     "operations.welcome_pack.when: unknown key 'when'"),
])
def test_a_bad_template_or_reference_is_named_by_its_path(sections: dict[str, Any], expected: str) -> None:
    assert expected in problems(**sections)


def test_the_default_welcome_pack_is_one_5_yuan_coupon_from_50_yuan_valid_30_days() -> None:
    pack = preset("default").operations.welcome_pack
    # Registered 2027-01-04 09:30 Shanghai: valid to 2027-02-03 09:30, the same time 30 local days on.
    drafts = welcome_coupons(pack, at("2027-01-04 09:30"), SHANGHAI, 7)
    assert [(d.key, d.kind, d.value_fen, d.min_spend_fen, d.template, d.stacking_group, d.usage) for d in drafts] == [
        ("welcome:coupon:1:7", "welcome", 500, 5000, "newcomer", "cash", "single")]
    assert (drafts[0].valid_from, drafts[0].valid_until) == (at("2027-01-04 09:30"), at("2027-02-03 09:30"))
    assert welcome_coupons((), at("2027-01-04 09:30"), SHANGHAI, 7) == []
    two = welcome_coupons((CouponGrant(300, 2, CouponOffer(300)),), at("2027-01-04 09:30"), SHANGHAI, 7)
    assert [d.key for d in two] == ["welcome:coupon:1:7", "welcome:coupon:2:7"]


def test_coupons_record_their_templates_terms_and_kind() -> None:
    rules = ruleset(coupons={"g": {"value": "8", "min_spend": "40", "valid_days": 3, "stacking_group": "gold",
                                   "usage": "once_per_member", "kind": "gold_cash"}},
                    benefits={"gold": {"monthly_coupons": [{"template": "g"}], "free_delivery_per_month": 1}},
                    operations={"birthday_coupon": {"template": "g"}})
    month = month_of(at("2027-02-01 00:00"), SHANGHAI)
    cash, delivery = monthly_coupons(rules.benefits["gold"], month, 7)
    # A monthly coupon is valid for its month: the template's valid_days is not read.
    assert (cash.kind, cash.min_spend_fen, cash.template, cash.stacking_group, cash.usage, cash.valid_until) == (
        "gold_cash", 4000, "g", "gold", "once_per_member", at("2027-03-01 00:00"))
    assert (delivery.kind, delivery.stacking_group, delivery.template) == ("free_delivery", "delivery", "")
    gift = birthday_gifts(rules.operations.birthday_coupon, False, at("2027-05-20 00:00").date(), SHANGHAI, 7)[0]
    assert (gift.kind, gift.valid_until, gift.stacking_group) == ("gold_cash", at("2027-05-23 00:00"), "gold")


def terms(**changes: Any) -> Terms:
    base: dict[str, Any] = {"code": "LYC", "state": "issued", "order_id": "", "value_fen": 800, "min_spend_fen": 0,
                            "valid_from": at("2027-01-01 00:00"), "valid_until": at("2027-02-01 00:00"),
                            "template": "t", "stacking_group": "cash", "usage": "single"}
    return Terms(**{**base, **changes})


def test_one_coupon_per_stacking_group_on_an_order_and_different_groups_combine() -> None:
    check_combinable(terms(), "o1", template_used=False, groups_on_order={"delivery"})
    check_combinable(terms(stacking_group=""), "o1", template_used=False, groups_on_order={"cash", ""})
    with pytest.raises(Conflict) as caught:
        check_combinable(terms(), "o1", template_used=False, groups_on_order={"cash"})
    assert caught.value.code == "stacking_conflict" and "'cash'" in caught.value.message


def test_a_once_per_member_template_refuses_a_second_redemption_and_single_does_not_care() -> None:
    check_combinable(terms(), "o1", template_used=True, groups_on_order=())
    check_combinable(terms(usage="once_per_member"), "o1", template_used=False, groups_on_order=())
    with pytest.raises(Conflict) as caught:
        check_combinable(terms(usage="once_per_member"), "o1", template_used=True, groups_on_order=())
    assert caught.value.code == "template_already_used"


def test_a_redeemed_coupon_cannot_be_revoked() -> None:
    check_revocable(terms())
    check_revocable(terms(state="expired"))
    with pytest.raises(Conflict) as caught:
        check_revocable(terms(state="redeemed", order_id="o1"))
    assert caught.value.code == "coupon_already_redeemed"


def test_entitlements_are_the_tiers_benefits_from_the_ruleset() -> None:
    rules = preset("default")
    gold, diamond = entitlements(rules, "gold"), entitlements(rules, "diamond")
    assert (gold.monthly_coupons, gold.free_delivery_per_month, gold.discount, gold.flags) == (
        (MonthlyCoupon(800, 2, 0),), 1, Decimal(0), ("refund_priority",))
    assert (diamond.monthly_coupons, diamond.free_delivery_per_month) == ((MonthlyCoupon(2000, 5, 0),), None)
    assert diamond.flags == ("birthday_pack", "priority_delivery", "refund_priority")  # BENEFIT_FLAGS order
    nothing = entitlements(parse_ruleset({**preset_document("default"), "benefits": {}}), "gold")
    assert (nothing.monthly_coupons, nothing.free_delivery_per_month, nothing.flags) == ((), 0, ())
