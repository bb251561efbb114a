"""Coupon templates: the terms a coupon is issued on, named once in the ruleset's `coupons:`
section and referenced by the grants (monthly coupons, birthday, recall, sprint, welcome pack).

A grant either names a template (`{template: gold_monthly, count: 2}`) or writes its terms
inline as before (`{value: "8", count: 2}`); an inline grant is an anonymous template with the
defaults: no minimum spend, stacking group `cash` (`delivery` when its value is 0), usage
`single`. E.g.::

    coupons:
      newcomer: {value: "5", min_spend: "50", valid_days: 30, usage: once_per_member}
      gold_monthly: {value: "8", stacking_group: cash}
      free_ship: {value: "0", kind: free_delivery}        # stacking group `delivery`

Each coupon records its template's code, stacking group and usage when it is issued, so a
later ruleset never changes the rules of a coupon already in a wallet. `stacking_group: null`
is a coupon that combines with any other.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the reader lives with the ruleset parser, which imports this module
    from loyalty.domain.rules import _Reader

SINGLE, ONCE_PER_MEMBER = "single", "once_per_member"
USAGES = (SINGLE, ONCE_PER_MEMBER)
CASH, DELIVERY = "cash", "delivery"
TEMPLATE_CODE_MAX = 64  # Coupon.template
GROUP_MAX = 32  # Coupon.stacking_group
KIND_MAX = 24  # Coupon.kind
TEMPLATE_KEYS = {"value", "min_spend", "valid_days", "stacking_group", "usage", "kind"}
INLINE_KEYS = {"value", "min_spend", "valid_days"}


@dataclass(frozen=True)
class CouponOffer:
    """The terms of a coupon a grant issues. `valid_days` None: the grant's own validity (see
    docs/benefits.md); `template` "" for an inline grant; `kind` "": the grant's kind;
    `stacking_group` "": combines with any coupon."""

    value_fen: int
    min_spend_fen: int = 0
    valid_days: int | None = None
    template: str = ""
    stacking_group: str = CASH
    usage: str = SINGLE
    kind: str = ""


def default_group(value_fen: int) -> str:
    """A cash coupon stacks in `cash`, a value-0 coupon (a free delivery) in `delivery`."""
    return CASH if value_fen > 0 else DELIVERY


def parse_templates(r: _Reader, raw: object) -> dict[str, CouponOffer]:
    """The `coupons:` section: template code -> its terms."""
    templates = {}
    for code, item in r.mapping(raw, "coupons").items():
        path = f"coupons.{code}"
        if not str(code).isidentifier():
            r.fail(path, f"a template code is an identifier such as 'gold_monthly', got {code!r}")
        elif len(str(code)) > TEMPLATE_CODE_MAX:
            r.fail(path, f"a template code has at most {TEMPLATE_CODE_MAX} characters, got {len(str(code))}")
        item = r.mapping(item, path)
        r.only(item, path, TEMPLATE_KEYS)
        if "value" not in item:
            r.fail(f"{path}.value", "required: the coupon's value in yuan (0 for a free delivery)")
        value = r.fen(item.get("value", 0), f"{path}.value")
        days = item.get("valid_days")
        templates[str(code)] = CouponOffer(
            value, r.fen(item.get("min_spend", 0), f"{path}.min_spend"),
            None if days is None else r.integer(days, f"{path}.valid_days", minimum=1), str(code),
            _group(r, item.get("stacking_group", default_group(value)), f"{path}.stacking_group"),
            r.choice(item.get("usage", SINGLE), f"{path}.usage", USAGES),
            _kind(r, item.get("kind", ""), f"{path}.kind"))
    return templates


def _group(r: _Reader, value: object, path: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str) or not value.isidentifier() or len(value) > GROUP_MAX:
        r.fail(path, f"a stacking group is an identifier of at most {GROUP_MAX} characters, or null; got {value!r}")
        return CASH
    return value


def _kind(r: _Reader, value: object, path: str) -> str:
    if value == "":
        return ""
    if not isinstance(value, str) or not value.isidentifier() or len(value) > KIND_MAX:
        r.fail(path, f"a kind is an identifier of at most {KIND_MAX} characters; got {value!r}")
        return ""
    return value


def parse_offer(r: _Reader, raw: Mapping[str, Any], path: str, templates: Mapping[str, CouponOffer],
                *, extra: Collection[str] = (), inline: Collection[str] = INLINE_KEYS,
                positive: bool = True) -> CouponOffer | None:
    """A grant's coupon: `{template: code}` or inline terms (`inline` keys), plus the grant's own
    `extra` keys (e.g. `count`). An inline value must be above 0 when `positive`. None: invalid
    (the problem is recorded)."""
    if "template" in raw:
        r.only(raw, path, {"template", *extra})
        code = raw["template"]
        if not isinstance(code, str) or code not in templates:
            r.fail(f"{path}.template", f"unknown coupon template {code!r}; define it under coupons")
            return None
        return templates[code]
    r.only(raw, path, {*inline, "template", *extra})
    if "value" not in raw:
        r.fail(f"{path}.value", "required: the coupon's value in yuan, or a template")
        return None
    found = len(r.problems)
    value = r.fen(raw["value"], f"{path}.value")
    if positive and value <= 0 and len(r.problems) == found:
        r.fail(f"{path}.value", f"a coupon is worth more than 0, got {raw['value']!r}")
    days = raw.get("valid_days")
    return CouponOffer(value, r.fen(raw.get("min_spend", 0), f"{path}.min_spend"),
                       None if days is None else r.integer(days, f"{path}.valid_days", minimum=1),
                       stacking_group=default_group(value))
