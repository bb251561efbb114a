"""Which changes between two ruleset versions make tiers harder for members: those need notice.

A new version *tightens* the one in force when, for any tier of the version in force:
  * the tier is gone (its members would fall to the base tier at their next evaluation);
  * its new condition is not implied by its old one: some member who qualified before might not
    qualify now (a threshold up, a condition added, an `any` losing a branch, an invitation now
    required, a metric read over another window, a score whose weights changed);
or when tiers are kept for less: `validity_months` shorter, or `on_expiry` from `one_down` to
`recompute` (a drop of several tiers at once).

The implication test is structural and errs on the safe side: what it cannot prove lenient is a
tightening: thresholds compare as real numbers (`> 2` is not taken to imply `>= 3`), and any
change of window counts, even to a longer one (growth and points sums can fall as a window grows).

    old gold: {any: [{orders: ">= 3"}, {amount: ">= 800"}]}
    new gold: {any: [{orders: ">= 3"}, {amount: ">= 1000"}]}     tightened: amount 800 -> 1000
    new gold: {any: [{orders: ">= 2"}, {amount: ">= 800"}]}      not tightened: easier
"""

from __future__ import annotations

from loyalty.domain.conditions import OPERATORS, AllOf, AnyOf, Comparison, Condition, Flag
from loyalty.domain.rules import Ruleset

LOWER = (">=", ">")
UPPER = ("<=", "<")


def tightenings(old: Ruleset, new: Ruleset) -> list[str]:
    """Every way `new` makes a tier of `old` harder to reach or to keep, in words; empty: none."""
    found: list[str] = []
    for tier in old.tiers[1:]:
        match = next((t for t in new.tiers if t.code == tier.code), None)
        if match is None:
            found.append(f"tier {tier.code} is removed")
        elif match.when is None or tier.when is None:
            continue  # the base tier has no condition: it is everyone's
        elif not _implies(tier.when, match.when, old, new):
            found.append(f"tier {tier.code}: the new condition is stricter (or not provably as lenient)")
            if match.invitation_only and not tier.invitation_only:
                found[-1] += "; it now needs an invitation"
    if new.evaluation.validity_months < old.evaluation.validity_months:
        found.append(f"tiers are valid {new.evaluation.validity_months} months instead of "
                     f"{old.evaluation.validity_months}")
    if old.evaluation.on_expiry == "one_down" and new.evaluation.on_expiry != "one_down":
        found.append(f"on expiry, {new.evaluation.on_expiry} instead of one_down")
    return found


def _implies(old: Condition, new: Condition, old_rules: Ruleset, new_rules: Ruleset) -> bool:
    """Whether every member meeting `old` (under `old_rules`) meets `new` (under `new_rules`)."""
    if isinstance(old, AnyOf):
        return all(_implies(part, new, old_rules, new_rules) for part in old.parts)
    if isinstance(new, AllOf):
        return all(_implies(old, part, old_rules, new_rules) for part in new.parts)
    if isinstance(new, AnyOf) and any(_implies(old, part, old_rules, new_rules) for part in new.parts):
        return True
    if isinstance(old, AllOf):
        return any(_implies(part, new, old_rules, new_rules) for part in old.parts)
    if isinstance(old, Flag) and isinstance(new, Flag):
        return old == new
    if isinstance(old, Comparison) and isinstance(new, Comparison):
        return _same_measure(old, new, old_rules, new_rules) and _bound_implies(old, new)
    return False


def _same_measure(old: Comparison, new: Comparison, old_rules: Ruleset, new_rules: Ruleset) -> bool:
    """The two comparisons read the same number: same metric over the same window (a metric
    without its own window reads the ruleset's); a score also needs the same weights."""
    if old.key(old_rules.evaluation.window) != new.key(new_rules.evaluation.window):
        return False
    if old.metric == "score":
        return old_rules.score == new_rules.score and \
            old_rules.evaluation.window == new_rules.evaluation.window
    return True


def _bound_implies(old: Comparison, new: Comparison) -> bool:
    """Whether `value old.op a` implies `value new.op b`, for every real value."""
    a, b = old.threshold, new.threshold
    if old.op == "==":
        return OPERATORS[new.op](a, b)
    if old.op in LOWER and new.op in LOWER:
        return b < a if (old.op, new.op) == (">=", ">") else b <= a
    if old.op in UPPER and new.op in UPPER:
        return b > a if (old.op, new.op) == ("<=", "<") else b >= a
    return False
