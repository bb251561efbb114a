"""The ruleset: one declarative, validated document that the whole engine executes.

A worked example, the default ruleset's gold tier and growth rules (YAML, exact decimals)::

    tiers:
      - {code: gold, name: 黄金, when: {any: [{orders: ">= 3"}, {amount: ">= 800"}]}}
    growth:
      per_yuan: 1
      category_multipliers: {fresh: 1.5}
      day_multipliers: {saturday: 2, sunday: 2}
      large_order_bonus: {min_amount: "300", growth: 50}

A Saturday order of ¥400 with ¥100 fresh earns floor((300 + 100 × 1.5) × 2) + 50 = 950 growth.

`parse_ruleset` turns a mapping (from YAML with `parse_float=Decimal`, or JSON from the database)
into frozen dataclasses, or raises `RulesetInvalid` listing every `path: problem` it found.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from functools import cached_property
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from loyalty.domain.conditions import Condition, Predicate, compile_condition, parse_condition, requires_flag
from loyalty.domain.errors import RulesetInvalid
from loyalty.domain.periods import WEEKDAYS, Window
from loyalty.domain.risk import RiskRules, parse_risk_rules
from loyalty.domain.templates import CouponOffer, default_group, parse_offer, parse_templates

ACTION_TYPES = ("check_in", "review", "share")
EXPIRY_POLICIES = ("never", "days_after_earning", "end_of_month", "end_of_year")
RETURN_POLICIES = ("within_balance", "allow_debt")
DOWNGRADE_POLICIES = ("recompute", "one_down")
NORMALISATIONS = ("none", "percentile", "minmax")
SCORE_METRICS = ("amount", "orders", "growth", "points", "active_days", "interactions", "max_single_order")
BENEFIT_FLAGS = (
    "welcome_pack", "birthday_pack", "priority_delivery", "dedicated_service", "custom_service",
    "exclusive_events", "offline_invitations", "refund_priority",
)
ROUNDINGS = ("floor",)
PRICE_STACKINGS = ("better", "both")  # how member day and tier discount combine in a quote
PRICE_ROUNDINGS = ("half_up", "floor")  # how a line's percentage discount becomes whole fen
# Bounds of what the store keeps: RulesetVersion.name and Member.tier (and TierChange's tiers)
# are varchar(100) and varchar(32), which PostgreSQL and MariaDB refuse to overflow. A tier's
# name is kept only inside the document, but shown on every status: a label, as long as a name.
NAME_MAX = 100
TIER_CODE_MAX = 32
TIER_NAME_MAX = 100


@dataclass(frozen=True)
class Tier:
    code: str
    name: str
    when: Condition | None  # None only for the base tier
    rank: int

    @property
    def invitation_only(self) -> bool:
        return requires_flag(self.when, "invited")


@dataclass(frozen=True)
class Score:
    """S = Σ weight × normalise(metric) over the evaluation window; amount counts in yuan."""

    weights: Mapping[str, Decimal]
    normalise: str = "none"
    caps: Mapping[str, Decimal] = field(default_factory=dict)


@dataclass(frozen=True)
class Evaluation:
    window: Window = field(default_factory=Window)
    immediate_upgrade: bool = False
    validity_months: int = 12
    on_expiry: str = "recompute"


@dataclass(frozen=True)
class LargeOrderBonus:
    min_amount_fen: int
    growth: int


@dataclass(frozen=True)
class GrowthRules:
    per_yuan: Decimal = Decimal(1)
    category_multipliers: Mapping[str, Decimal] = field(default_factory=dict)
    day_multipliers: Mapping[str, Decimal] = field(default_factory=dict)
    large_order_bonus: LargeOrderBonus | None = None
    daily_cap: int | None = None

    @cached_property
    def line_rates(self) -> dict[str, Decimal]:
        """Growth per yuan of a line, by category (per_yuan × the category's multiplier), worked
        out once: every order line reads it. Categories not named earn `per_yuan`."""
        return {category: self.per_yuan * multiplier for category, multiplier in self.category_multipliers.items()}


@dataclass(frozen=True)
class ActionRule:
    growth: int
    points: int = 0
    per_day: int | None = None
    per_order: int | None = None


@dataclass(frozen=True)
class PointsRules:
    per_yuan: Decimal = Decimal(1)
    birthday_multiplier: Decimal = Decimal(1)
    pending_days: int = 0
    expiry: str = "never"
    expiry_days: int | None = None
    return_policy: str = "allow_debt"


@dataclass(frozen=True)
class CouponGrant:
    """`count` coupons of `value_fen` a grant issues on the terms of `offer` (None: the defaults)."""

    value_fen: int
    count: int
    offer: CouponOffer | None = None

    @property
    def terms(self) -> CouponOffer:
        return self.offer or CouponOffer(self.value_fen, stacking_group=default_group(self.value_fen))


@dataclass(frozen=True)
class TierBenefits:
    monthly_coupons: tuple[CouponGrant, ...] = ()
    free_delivery_per_month: int | None = 0  # None: unlimited
    discount: Decimal = Decimal(0)  # 0.10 = 10% off
    flags: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Sprint:
    """Month-end sprint: on days `first_day`..`last_day` (local), members within `within_percent`
    of the next tier's threshold get a notice and, when `coupon` is set, a coupon."""

    first_day: int
    last_day: int
    within_percent: Decimal
    tiers: frozenset[str] = frozenset()  # target tiers; empty: any tier above
    coupon: CouponOffer | None = None


@dataclass(frozen=True)
class Recall:
    """A warning (and a coupon, when set) `days_before_drop` days before a tier would drop."""

    days_before_drop: int
    coupon: CouponOffer | None = None


@dataclass(frozen=True)
class AfterUpgrade:
    """The first `orders` paid orders after an upgrade earn growth × `growth_multiplier` (floor),
    when paid within `within_days` of it (None: as long as the tier lasts)."""

    orders: int
    growth_multiplier: Decimal
    within_days: int | None = None


@dataclass(frozen=True)
class Operations:
    """Campaigns carried out by the lifecycle jobs and the order path; None turns one off."""

    birthday_coupon: CouponOffer | None = None
    sprint: Sprint | None = None
    recall: Recall | None = None
    after_upgrade: AfterUpgrade | None = None
    expiring_notice_days: int = 30  # points.expiring notices this many days ahead; 0: none
    budgets: Mapping[str, int] = field(default_factory=dict)  # tier -> fen of coupons per local month (benefits.md)
    welcome_pack: tuple[CouponGrant, ...] = ()  # issued on registration through the API; empty: none


@dataclass(frozen=True)
class Pricing:
    """How a price quote combines the member-day and the tier discount: `better` (the larger rate
    applies) or `both` (member day first, then the tier discount on what is left); and how each
    line's discount is rounded to the fen: `half_up` (half a fen goes to the member, as a till
    rounds) or `floor` (never more than the rate gives). See docs/quotes.md."""

    stacking: str = "better"
    rounding: str = "half_up"


@dataclass(frozen=True)
class Limits:
    """How many members may share one device or one delivery address (`risk.members_per_device`,
    `risk.members_per_address`; None: no limit). The first N members seen with a value earn as
    usual; events of the N+1-th and later are recorded and credit nothing (docs/abuse.md)."""

    members_per_device: int | None = None
    members_per_address: int | None = None


@dataclass(frozen=True)
class Ruleset:
    name: str
    timezone: ZoneInfo
    currency: str
    tiers: tuple[Tier, ...]
    evaluation: Evaluation
    growth: GrowthRules
    actions: Mapping[str, ActionRule]
    points: PointsRules
    benefits: Mapping[str, TierBenefits]
    score: Score | None = None
    member_day: tuple[str, Decimal] | None = None  # (weekday, discount)
    notice_days: int = 90
    operations: Operations = field(default_factory=Operations)
    pricing: Pricing = field(default_factory=Pricing)
    coupons: Mapping[str, CouponOffer] = field(default_factory=dict)  # the coupon templates, by code
    limits: Limits = field(default_factory=Limits)  # members per device or address (risk.*)
    risk: RiskRules = field(default_factory=RiskRules)  # rules that flag and the detector (risk.flags, risk.detector)
    tier_tests: tuple[Predicate, ...] = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        # Compiled once per ruleset: tier conditions as closures, aligned with `tiers`.
        window = self.evaluation.window
        tests = tuple(compile_condition(t.when, window) if t.when else (lambda facts: True) for t in self.tiers)
        object.__setattr__(self, "tier_tests", tests)

    @property
    def base_tier(self) -> Tier:
        return self.tiers[0]

    def tier(self, code: str) -> Tier:
        for tier in self.tiers:
            if tier.code == code:
                return tier
        return self.base_tier  # a tier removed by a newer ruleset falls back to the base


def parse_ruleset(document: Mapping[str, Any]) -> Ruleset:
    """Validate and build a Ruleset; raises RulesetInvalid naming every `path: problem`."""
    r = _Reader()
    if not isinstance(document, Mapping):
        raise RulesetInvalid(["$: a ruleset is a mapping"])
    r.only(document, "", {
        "name", "timezone", "currency", "tiers", "evaluation", "score", "growth", "actions",
        "points", "benefits", "member_day", "publishing", "risk", "operations", "description",
        "pricing",
        "coupons",
    })
    name = r.text(document.get("name", "unnamed"), "name", NAME_MAX)
    zone = r.timezone(document.get("timezone", "Asia/Shanghai"), "timezone")
    score = _score(r, document.get("score"))
    tiers = _tiers(r, document.get("tiers"), score_enabled=score is not None)
    risk = r.mapping(document.get("risk", {}), "risk")
    r.only(risk, "risk", {"daily_growth_cap", *LIMIT_KEYS, "flags", "detector"})
    r.templates = parse_templates(r, document.get("coupons"))  # before the grants that name them
    ruleset = Ruleset(
        name=name,
        timezone=zone,
        currency=str(document.get("currency", "CNY")),
        tiers=tiers,
        evaluation=_evaluation(r, document.get("evaluation", {})),
        growth=_growth(r, document.get("growth", {}), risk),
        actions=_actions(r, document.get("actions", {})),
        points=_points(r, document.get("points", {})),
        benefits=_benefits(r, document.get("benefits", {}), {t.code for t in tiers}),
        score=score,
        member_day=_member_day(r, document.get("member_day")),
        notice_days=r.integer(r.mapping(document.get("publishing", {}), "publishing").get("notice_days", 90),
                              "publishing.notice_days", minimum=0),
        operations=_operations(r, document.get("operations", {}), {t.code for t in tiers}),
        pricing=_pricing(r, document.get("pricing", {})),
        coupons=r.templates,
        limits=_limits(r, risk),
        risk=parse_risk_rules(r, risk),
    )
    if r.problems:
        raise RulesetInvalid(r.problems)
    return ruleset


class _Reader:
    """Collects every problem with its path instead of stopping at the first."""

    def __init__(self) -> None:
        self.problems: list[str] = []
        self.templates: dict[str, CouponOffer] = {}  # the `coupons:` section, once read

    def fail(self, path: str, problem: str) -> None:
        self.problems.append(f"{path or '$'}: {problem}")

    def mapping(self, value: object, path: str) -> Mapping[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            self.fail(path, "must be a mapping")
            return {}
        return value

    def sequence(self, value: object, path: str) -> list[Any]:
        if value is None:
            return []
        if not isinstance(value, list):
            self.fail(path, "must be a list")
            return []
        return value

    def only(self, value: Mapping[str, Any], path: str, allowed: set[str]) -> None:
        for key in value:
            if key not in allowed:
                self.fail(f"{path}.{key}" if path else str(key), f"unknown key {key!r}")

    def decimal(self, value: object, path: str, *, minimum: Decimal = Decimal(0)) -> Decimal:
        if isinstance(value, (bool, float)):
            self.fail(path, f"expected an exact decimal, got {value!r}")
            return Decimal(0)
        try:
            number = Decimal(str(value))
        except InvalidOperation:
            self.fail(path, f"expected a number, got {value!r}")
            return Decimal(0)
        if not number.is_finite() or number < minimum:
            self.fail(path, f"must be a number >= {minimum}, got {value!r}")
            return Decimal(0) if not number.is_finite() else number  # NaN cannot be compared later
        return number

    def integer(self, value: object, path: str, *, minimum: int = 0) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            self.fail(path, f"expected a whole number >= {minimum}, got {value!r}")
            return minimum
        return value

    def boolean(self, value: object, path: str) -> bool:
        # bool("false") is True: a JSON string must not switch a setting on.
        if not isinstance(value, bool):
            self.fail(path, f"expected true or false, got {value!r}")
            return False
        return value

    def fen(self, value: object, path: str) -> int:
        yuan = self.decimal(value, path)
        if yuan > 10**10:  # "1e999999999" would overflow the decimal context when scaled to fen
            self.fail(path, f"amount is implausibly large: {value!r}")
            return 0
        fen = yuan * 100
        if fen != fen.to_integral_value():
            self.fail(path, f"more than two decimal places: {value!r}")
        return int(fen)

    def text(self, value: object, path: str, maximum: int) -> str:
        text = str(value)
        if len(text) > maximum:
            self.fail(path, f"at most {maximum} characters, got {len(text)}")
        return text

    def choice(self, value: object, path: str, options: tuple[str, ...]) -> str:
        if value not in options:
            self.fail(path, f"must be one of {', '.join(options)}; got {value!r}")
            return options[0]
        return str(value)

    def timezone(self, value: object, path: str) -> ZoneInfo:
        try:
            return ZoneInfo(str(value))
        except (ZoneInfoNotFoundError, ValueError, OSError):  # "America" is a directory of zones
            self.fail(path, f"unknown timezone {value!r}")
            return ZoneInfo("UTC")


def _tiers(r: _Reader, raw: object, *, score_enabled: bool) -> tuple[Tier, ...]:
    if not isinstance(raw, list) or not raw:
        r.fail("tiers", "must be a non-empty list, lowest tier first")
        return (Tier("base", "base", None, 0),)
    tiers, seen = [], set()
    for i, item in enumerate(raw):
        path = f"tiers[{i}]"
        item = r.mapping(item, path)
        r.only(item, path, {"code", "name", "when"})
        code = str(item.get("code", ""))
        if not code.isidentifier():
            r.fail(f"{path}.code", f"must be an identifier such as 'gold', got {code!r}")
        elif len(code) > TIER_CODE_MAX:
            r.fail(f"{path}.code", f"at most {TIER_CODE_MAX} characters, got {len(code)}")
        if code in seen:
            r.fail(f"{path}.code", f"duplicate tier {code!r}")
        seen.add(code)
        when = None
        if "when" in item:
            when = parse_condition(item["when"], f"{path}.when", r.problems, score_enabled=score_enabled)
        if i == 0 and when is not None:
            r.fail(f"{path}.when", "the first tier is the base tier every member holds; it has no condition")
        if i > 0 and when is None:
            r.fail(f"{path}.when", "every tier above the base needs a condition")
        tiers.append(Tier(code, r.text(item.get("name", code), f"{path}.name", TIER_NAME_MAX), when, i))
    return tuple(tiers)


def _score(r: _Reader, raw: object) -> Score | None:
    if raw is None:
        return None
    raw = r.mapping(raw, "score")
    r.only(raw, "score", {"weights", "normalise", "caps"})
    weights = {}
    for metric, weight in r.mapping(raw.get("weights"), "score.weights").items():
        if metric not in SCORE_METRICS:
            r.fail(f"score.weights.{metric}", f"unknown metric {metric!r}")
        weights[metric] = r.decimal(weight, f"score.weights.{metric}")
    if not weights:
        r.fail("score.weights", "name at least one metric and its weight")
    normalise = r.choice(raw.get("normalise", "none"), "score.normalise", NORMALISATIONS)
    caps = {m: r.decimal(v, f"score.caps.{m}") for m, v in r.mapping(raw.get("caps"), "score.caps").items()}
    if normalise == "minmax":
        for metric in weights:
            if caps.get(metric, Decimal(0)) <= 0:
                r.fail(f"score.caps.{metric}", "minmax normalisation needs a positive cap for every weighted metric")
    return Score(weights, normalise, caps)


def _evaluation(r: _Reader, raw: object) -> Evaluation:
    raw = r.mapping(raw, "evaluation")
    r.only(raw, "evaluation", {"window", "immediate_upgrade", "validity_months", "on_expiry", "schedule"})
    window_raw = r.mapping(raw.get("window", {}), "evaluation.window")
    kind = r.choice(window_raw.get("kind", "trailing_months"), "evaluation.window.kind",
                    ("trailing_months", "calendar_year", "lifetime"))
    months = r.integer(window_raw.get("months", 12), "evaluation.window.months", minimum=1)
    if raw.get("schedule", "monthly") != "monthly":
        r.fail("evaluation.schedule", "only 'monthly' (the 1st at 00:00) is supported")
    return Evaluation(
        window=Window(kind, months),
        immediate_upgrade=r.boolean(raw.get("immediate_upgrade", False), "evaluation.immediate_upgrade"),
        validity_months=r.integer(raw.get("validity_months", 12), "evaluation.validity_months", minimum=1),
        on_expiry=r.choice(raw.get("on_expiry", "recompute"), "evaluation.on_expiry", DOWNGRADE_POLICIES),
    )


def _growth(r: _Reader, raw: object, risk: Mapping[str, Any]) -> GrowthRules:
    raw = r.mapping(raw, "growth")
    r.only(raw, "growth", {"per_yuan", "rounding", "category_multipliers", "day_multipliers", "large_order_bonus"})
    r.choice(raw.get("rounding", "floor"), "growth.rounding", ROUNDINGS)
    days = r.mapping(raw.get("day_multipliers"), "growth.day_multipliers")
    for day in days:
        if day not in WEEKDAYS:
            r.fail(f"growth.day_multipliers.{day}", f"unknown weekday {day!r}")
    bonus = None
    if raw.get("large_order_bonus") is not None:
        b = r.mapping(raw["large_order_bonus"], "growth.large_order_bonus")
        r.only(b, "growth.large_order_bonus", {"min_amount", "growth"})
        bonus = LargeOrderBonus(r.fen(b.get("min_amount"), "growth.large_order_bonus.min_amount"),
                                r.integer(b.get("growth"), "growth.large_order_bonus.growth"))
    cap = risk.get("daily_growth_cap")
    return GrowthRules(
        per_yuan=r.decimal(raw.get("per_yuan", 1), "growth.per_yuan"),
        category_multipliers={
            str(k): r.decimal(v, f"growth.category_multipliers.{k}")
            for k, v in r.mapping(raw.get("category_multipliers"), "growth.category_multipliers").items()
        },
        day_multipliers={str(k): r.decimal(v, f"growth.day_multipliers.{k}") for k, v in days.items()},
        large_order_bonus=bonus,
        daily_cap=None if cap is None else r.integer(cap, "risk.daily_growth_cap", minimum=1),
    )


LIMIT_KEYS = ("members_per_device", "members_per_address")


def _limits(r: _Reader, risk: Mapping[str, Any]) -> Limits:
    """`risk.members_per_device` / `members_per_address`: a whole number of at least 1, or null (off)."""
    caps = [None if risk.get(key) is None else r.integer(risk[key], f"risk.{key}", minimum=1) for key in LIMIT_KEYS]
    return Limits(*caps)


def _actions(r: _Reader, raw: object) -> Mapping[str, ActionRule]:
    actions = {}
    for name, rule in r.mapping(raw, "actions").items():
        path = f"actions.{name}"
        if name not in ACTION_TYPES:
            r.fail(path, f"unknown action {name!r}; known: {', '.join(ACTION_TYPES)}")
            continue
        rule = r.mapping(rule, path)
        r.only(rule, path, {"growth", "points", "per_day", "per_order"})
        per_day, per_order = rule.get("per_day"), rule.get("per_order")
        actions[name] = ActionRule(
            growth=r.integer(rule.get("growth", 0), f"{path}.growth"),
            points=r.integer(rule.get("points", 0), f"{path}.points"),
            per_day=None if per_day is None else r.integer(per_day, f"{path}.per_day", minimum=1),
            per_order=None if per_order is None else r.integer(per_order, f"{path}.per_order", minimum=1),
        )
    return actions


def _points(r: _Reader, raw: object) -> PointsRules:
    raw = r.mapping(raw, "points")
    r.only(raw, "points", {"per_yuan", "rounding", "birthday_multiplier", "pending_days", "expiry", "return_policy"})
    r.choice(raw.get("rounding", "floor"), "points.rounding", ROUNDINGS)
    expiry = r.mapping(raw.get("expiry", {}), "points.expiry")
    r.only(expiry, "points.expiry", {"policy", "days"})
    policy = r.choice(expiry.get("policy", "never"), "points.expiry.policy", EXPIRY_POLICIES)
    days = None
    if policy == "days_after_earning":
        days = r.integer(expiry.get("days"), "points.expiry.days", minimum=1)
    return PointsRules(
        per_yuan=r.decimal(raw.get("per_yuan", 1), "points.per_yuan"),
        birthday_multiplier=r.decimal(raw.get("birthday_multiplier", 1), "points.birthday_multiplier",
                                      minimum=Decimal(1)),
        pending_days=r.integer(raw.get("pending_days", 0), "points.pending_days"),
        expiry=policy,
        expiry_days=days,
        return_policy=r.choice(raw.get("return_policy", "allow_debt"), "points.return_policy", RETURN_POLICIES),
    )


def _benefits(r: _Reader, raw: object, tier_codes: set[str]) -> Mapping[str, TierBenefits]:
    benefits = {}
    for code, item in r.mapping(raw, "benefits").items():
        path = f"benefits.{code}"
        if code not in tier_codes:
            r.fail(path, f"unknown tier {code!r}")
        item = r.mapping(item, path)
        r.only(item, path, {"monthly_coupons", "free_delivery_per_month", "discount", "flags"})
        coupons = _grants(r, item.get("monthly_coupons"), f"{path}.monthly_coupons", inline={"value"})
        delivery = item.get("free_delivery_per_month", 0)
        flags = r.sequence(item.get("flags"), f"{path}.flags")
        for flag in flags:
            if flag not in BENEFIT_FLAGS:
                r.fail(f"{path}.flags", f"unknown benefit {flag!r}")
        discount = r.decimal(item.get("discount", 0), f"{path}.discount")
        if discount >= 1:
            r.fail(f"{path}.discount", "a discount is a fraction below 1 (0.10 = 10% off)")
        benefits[code] = TierBenefits(
            monthly_coupons=coupons,
            free_delivery_per_month=None if delivery == "unlimited"
            else r.integer(delivery, f"{path}.free_delivery_per_month"),
            discount=discount,
            flags=frozenset(str(flag) for flag in flags),
        )
    return benefits


def _pricing(r: _Reader, raw: object) -> Pricing:
    raw = r.mapping(raw, "pricing")
    r.only(raw, "pricing", {"stacking", "rounding"})
    return Pricing(stacking=r.choice(raw.get("stacking", "better"), "pricing.stacking", PRICE_STACKINGS),
                   rounding=r.choice(raw.get("rounding", "half_up"), "pricing.rounding", PRICE_ROUNDINGS))


def _member_day(r: _Reader, raw: object) -> tuple[str, Decimal] | None:
    if raw is None:
        return None
    raw = r.mapping(raw, "member_day")
    r.only(raw, "member_day", {"weekday", "discount"})
    weekday = r.choice(raw.get("weekday"), "member_day.weekday", WEEKDAYS)
    discount = r.decimal(raw.get("discount"), "member_day.discount")
    if discount >= 1:
        r.fail("member_day.discount", "a discount is a fraction below 1 (0.12 = 12% off, 88折)")
    return weekday, discount


def _operations(r: _Reader, raw: object, tier_codes: set[str]) -> Operations:
    raw = r.mapping(raw, "operations")
    r.only(raw, "operations", {"birthday_coupon", "sprint", "recall", "after_upgrade", "points_expiring", "budgets",
                               "welcome_pack"})
    welcome = r.mapping(raw.get("welcome_pack"), "operations.welcome_pack")
    r.only(welcome, "operations.welcome_pack", {"coupons"})
    expiring = r.mapping(raw.get("points_expiring", {}), "operations.points_expiring")
    r.only(expiring, "operations.points_expiring", {"days_before"})
    budgets = {}
    for code, value in r.mapping(raw.get("budgets"), "operations.budgets").items():
        if code not in tier_codes:
            r.fail(f"operations.budgets.{code}", f"unknown tier {code!r}")
        budgets[str(code)] = r.fen(value, f"operations.budgets.{code}")
    return Operations(
        birthday_coupon=_offer(r, raw.get("birthday_coupon"), "operations.birthday_coupon"),
        sprint=_sprint(r, raw.get("sprint"), tier_codes),
        recall=_recall(r, raw.get("recall")),
        after_upgrade=_after_upgrade(r, raw.get("after_upgrade")),
        expiring_notice_days=r.integer(expiring.get("days_before", 30), "operations.points_expiring.days_before"),
        budgets=budgets,
        welcome_pack=_welcome_pack(r, welcome.get("coupons")),
    )


def _welcome_pack(r: _Reader, raw: object) -> tuple[CouponGrant, ...]:
    """The pack is one grant with one validity, announced in one `coupon.issued` event."""
    pack = _grants(r, raw, "operations.welcome_pack.coupons")
    if len({grant.terms.valid_days for grant in pack}) > 1:
        r.fail("operations.welcome_pack.coupons", "every coupon of the pack needs the same valid_days")
    return pack


def _grants(r: _Reader, raw: object, path: str, inline: set[str] | None = None) -> tuple[CouponGrant, ...]:
    """`[{template, count} | {value, ..., count}]`: `count` coupons of each (default 1). Inline
    monthly coupons take only a value (they are valid for their month, with no minimum)."""
    grants = []
    for i, item in enumerate(r.sequence(raw, path)):
        item = r.mapping(item, f"{path}[{i}]")
        if inline is None:
            offer = parse_offer(r, item, f"{path}[{i}]", r.templates, extra={"count"})
        else:
            offer = parse_offer(r, item, f"{path}[{i}]", r.templates, extra={"count"}, inline=inline, positive=False)
        count = r.integer(item.get("count", 1), f"{path}[{i}].count", minimum=1)
        if offer is not None:
            grants.append(CouponGrant(offer.value_fen, count, offer))
    return tuple(grants)


def _offer(r: _Reader, raw: object, path: str) -> CouponOffer | None:
    """An operation's coupon: a template, or inline `{value, min_spend, valid_days}`."""
    if raw is None:
        return None
    return parse_offer(r, r.mapping(raw, path), path, r.templates)


def _sprint(r: _Reader, raw: object, tier_codes: set[str]) -> Sprint | None:
    if raw is None:
        return None
    raw = r.mapping(raw, "operations.sprint")
    r.only(raw, "operations.sprint", {"days_of_month", "within_percent", "tiers", "coupon"})
    days = raw.get("days_of_month", [25, 30])
    first, last = 25, 30
    if not (isinstance(days, list) and len(days) == 2
            and all(isinstance(d, int) and not isinstance(d, bool) and 1 <= d <= 31 for d in days)
            and days[0] <= days[1]):
        r.fail("operations.sprint.days_of_month", f"expected [first, last], days 1 to 31 in order, got {days!r}")
    else:
        first, last = days
    found = len(r.problems)
    percent = r.decimal(raw.get("within_percent", 20), "operations.sprint.within_percent")
    if not 0 < percent <= 100 and len(r.problems) == found:
        r.fail("operations.sprint.within_percent", f"a percentage above 0 and at most 100, got {percent}")
    tiers = r.sequence(raw.get("tiers"), "operations.sprint.tiers")
    for code in tiers:
        if code not in tier_codes:
            r.fail("operations.sprint.tiers", f"unknown tier {code!r}")
    return Sprint(first, last, percent, frozenset(str(code) for code in tiers),
                  _offer(r, raw.get("coupon"), "operations.sprint.coupon"))


def _recall(r: _Reader, raw: object) -> Recall | None:
    if raw is None:
        return None
    raw = r.mapping(raw, "operations.recall")
    r.only(raw, "operations.recall", {"days_before_drop", "coupon"})
    return Recall(r.integer(raw.get("days_before_drop", 30), "operations.recall.days_before_drop", minimum=1),
                  _offer(r, raw.get("coupon"), "operations.recall.coupon"))


def _after_upgrade(r: _Reader, raw: object) -> AfterUpgrade | None:
    if raw is None:
        return None
    raw = r.mapping(raw, "operations.after_upgrade")
    r.only(raw, "operations.after_upgrade", {"orders", "growth_multiplier", "within_days"})
    days = raw.get("within_days")
    return AfterUpgrade(r.integer(raw.get("orders", 3), "operations.after_upgrade.orders", minimum=1),
                        r.decimal(raw.get("growth_multiplier"), "operations.after_upgrade.growth_multiplier",
                                  minimum=Decimal(1)),
                        None if days is None else r.integer(days, "operations.after_upgrade.within_days", minimum=1))
