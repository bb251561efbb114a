"""The member center's page as words and numbers in one language: turns a visit (services.member_center)
into the template's context. Money shows as ¥ decimal strings, dates in the ruleset's timezone.
Nothing here decides anything; it only says it.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from loyalty.domain.conditions import AMOUNT_METRICS, AnyOf, Comparison, Condition, Flag
from loyalty.domain.money import format_fen
from loyalty.domain.periods import Window
from loyalty.domain.rules import Tier
from loyalty.domain.tiers import Gap
from loyalty.services.coupons import CouponView
from loyalty.services.member_center import Benefit, HistoryPage, Visit
from loyalty.web.member_text import TEXT, TIER_NAMES_EN


class Words:
    """One language's strings, formatted."""

    def __init__(self, language: str):
        self.language = language
        self.table = TEXT[language]

    def __call__(self, key: str, **fields: Any) -> str:
        return self.table[key].format(**fields)

    def tier(self, tier: Tier) -> str:
        return TIER_NAMES_EN.get(tier.code, tier.name) if self.language == "en" else tier.name


def day(moment: datetime, zone: ZoneInfo) -> str:
    return moment.astimezone(zone).strftime("%Y-%m-%d")


def _figure(metric: str, value: Decimal) -> str:
    """As the API shows a gap's figures: amounts are fen, shown as yuan; other metrics as counted."""
    return format_fen(int(value)) if metric in AMOUNT_METRICS else str(value)


def gap_text(gap: Gap, words: Words) -> str:
    missing = max(gap.needed - gap.current, Decimal(0))
    return words(f"gap_{gap.metric}", n=_figure(gap.metric, missing))


def condition_text(node: Condition | None, words: Words, default: Window) -> str:
    """A tier's condition in words, e.g. "订单数 ≥ 3 (近 12 个月) 或 消费金额 ≥ ¥800.00 (近 12 个月)"."""
    if node is None:
        return ""
    if isinstance(node, Comparison):
        text = words(f"cond_{node.metric}", n=_figure(node.metric, node.threshold))
        return text if node.metric == "score" else f"{text} ({window_text(node.window or default, words)})"
    if isinstance(node, Flag):
        return words(f"cond_{node.name}")
    parts = [condition_text(part, words, default) for part in node.parts]
    if isinstance(node, AnyOf):
        return f" {words('or')} ".join(parts)
    return f" {words('and')} ".join(f"[{p}]" if isinstance(n, AnyOf) and len(n.parts) > 1 else p
                                     for n, p in zip(node.parts, parts, strict=True))


def window_text(window: Window, words: Words) -> str:
    if window.kind == "trailing_months":
        return words("window_months", n=window.months)
    return words(f"window_{window.kind}")


def benefit_text(benefit: Benefit, words: Words) -> tuple[str, str]:
    """A benefit's title and its detail line."""
    if benefit.kind == "coupon":
        detail = (words("benefit_coupon_min", min=format_fen(benefit.min_spend_fen)) if benefit.min_spend_fen
                  else words("benefit_coupon_any"))
        return words("benefit_coupon", count=benefit.count, value=format_fen(benefit.value_fen)), detail
    if benefit.kind == "free_delivery":
        if benefit.count is None:
            return words("benefit_free_delivery_unlimited"), ""
        return words("benefit_free_delivery", n=benefit.count), ""
    if benefit.kind == "discount":
        return words("benefit_discount", pct=f"{(benefit.discount * 100).normalize():f}"), ""
    return words(f"flag_{benefit.flag}"), ""


def _cards(benefits: list[Benefit], words: Words, new: frozenset[str]) -> list[dict[str, Any]]:
    cards = []
    for benefit in benefits:
        title, detail = benefit_text(benefit, words)
        cards.append({"title": title, "detail": detail, "new": benefit.key in new, "key": benefit.key})
    return cards


def page_context(visit: Visit, history: HistoryPage, coupons: list[CouponView], words: Words) -> dict[str, Any]:
    status, news = visit.status, visit.news
    tier, upcoming = words.tier(status.tier), status.next_tier
    upcoming_name = words.tier(upcoming) if upcoming else ""
    growth_since = status.growth_balance - visit.growth_before if news.growth_rose else 0
    return {
        "tier": tier, "tier_code": status.tier.code,
        "tier_until": (words("valid_until", date=day(status.tier_expires_at, visit.timezone))
                       if status.tier_expires_at else words("never_expires")),
        "growth": status.growth_balance, "growth_since": growth_since,
        "growth_since_text": words("growth_since", n=growth_since),
        "growth_held": status.growth_held, "growth_held_text": words("growth_held", n=status.growth_held),
        "progress": visit.progress, "animate": news.growth_rose,
        "progress_percent": _percent(visit.progress), "progress_from_percent": _percent(news.progress_from),
        "progress_label": words("progress_bar", tier=upcoming_name or tier),
        "next_tier": upcoming_name, "next_tier_heading": words("next_tier", tier=upcoming_name),
        "to_next_text": words("to_next", tier=upcoming_name), "qualified_text": words("qualified", tier=upcoming_name),
        "gaps": [gap_text(gap, words) for gap in status.gaps],
        "any_one": bool(upcoming and isinstance(upcoming.when, AnyOf)),
        "conditions": condition_text(upcoming.when, words, visit.evaluation_window) if upcoming else "",
        "celebrate": news.celebrate, "celebrate_text": words("celebrate_text", tier=tier),
        "tiers": [{"heading": words("benefits_of", tier=words.tier(card.tier)), "code": card.tier.code,
                   "unlocked": card.unlocked,
                   "benefits": _cards(card.benefits, words, news.new_benefits if card.unlocked else frozenset())}
                  for card in visit.tiers],
        "next_benefits": _cards(visit.tiers[1].benefits, words, frozenset()) if len(visit.tiers) > 1 else [],
        "coupons": [_coupon(coupon, words, visit.timezone) for coupon in coupons],
        **_points(visit, words),
        "history": [{"delta": f"{e.delta:+d}", "source": words(f"source_{e.source}"), "reference": e.reference,
                     "when": day(e.occurred_at, visit.timezone), "when_iso": e.occurred_at.isoformat()}
                    for e in history.entries],
        "page": history.page, "pages": history.pages,
        "page_text": words("history_page", page=history.page, pages=history.pages),
    }


def _coupon(coupon: CouponView, words: Words, zone: ZoneInfo) -> dict[str, str]:
    return {"value": format_fen(coupon.value_fen), "state": coupon.state, "state_text": words(f"state_{coupon.state}"),
            "min_spend": format_fen(coupon.min_spend_fen) if coupon.min_spend_fen else "",
            "min_text": words("benefit_coupon_min", min=format_fen(coupon.min_spend_fen)),
            "until_text": words("coupon_until", date=day(coupon.valid_until, zone))}


def _points(visit: Visit, words: Words) -> dict[str, Any]:
    status, days = visit.status, visit.expiring_days
    return {"points_balance": status.points_balance, "points_spendable": status.points_spendable,
            "points_debt": status.points_debt, "points_debt_text": words("points_debt", n=status.points_debt),
            "expiring_heading": words("points_expiring", days=days),
            "expiring_none": words("points_expiring_none", days=days),
            "expiring": [words("points_expiring_item", n=e.points, date=day(e.expires_at, visit.timezone))
                         for e in visit.expiring]}


def _percent(permille: int) -> str:
    """650 -> "65.0" (a CSS width in %, and the bar's aria-valuenow)."""
    return f"{permille // 10}.{permille % 10}"
