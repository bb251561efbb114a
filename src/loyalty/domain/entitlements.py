"""What a tier entitles a member to, as the member center shows it: a pure lookup in the
ruleset in force (no database: the member's status costs no extra query for it).

E.g. the default ruleset's gold tier: two ¥8 monthly coupons, one free delivery a month, no
tier discount, the refund-priority flag; diamond: five ¥20 coupons, unlimited free delivery,
the birthday pack and priority delivery. A tier the ruleset gives nothing has no entitlements
(no coupons, 0 free deliveries, no discount, no flags).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from loyalty.domain.rules import BENEFIT_FLAGS, Ruleset, TierBenefits


@dataclass(frozen=True)
class MonthlyCoupon:
    value_fen: int
    count: int
    min_spend_fen: int


@dataclass(frozen=True)
class Entitlements:
    monthly_coupons: tuple[MonthlyCoupon, ...]
    free_delivery_per_month: int | None  # None: unlimited
    discount: Decimal  # 0.05 = 5% off
    flags: tuple[str, ...]  # in the order of BENEFIT_FLAGS


NONE = TierBenefits()


def entitlements(ruleset: Ruleset, tier_code: str) -> Entitlements:
    """The benefits of `tier_code` under `ruleset` (a tier it does not name: none)."""
    benefits = ruleset.benefits.get(tier_code, NONE)
    coupons = tuple(MonthlyCoupon(grant.value_fen, grant.count, grant.terms.min_spend_fen)
                    for grant in benefits.monthly_coupons)
    return Entitlements(coupons, benefits.free_delivery_per_month, benefits.discount,
                        tuple(flag for flag in BENEFIT_FLAGS if flag in benefits.flags))
