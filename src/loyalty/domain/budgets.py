"""Benefit budgets, decided: what a grant costs, which grants fit a tier's monthly budget, and
how a deferred grant is kept until it is issued or lapses.

A budget caps the face value of the cash coupons the grant jobs issue to the members of one
tier in one local calendar month (`operations.budgets`, yuan). A grant (all the coupons one
member receives from one job run) is issued whole or deferred whole. Grants are decided one
after another, first fit: each is issued when the month's spend plus its cost stays within the
budget, and deferred otherwise; a later, cheaper grant may still fit. A grant that costs
nothing (free deliveries, a birthday pack) is never deferred. With a budget of ¥16 and gold
grants of 2 × ¥8 each:

    spent 0    + 1600 = 1600 <= 1600   issued
    spent 1600 + 1600 = 3200 >  1600   deferred
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from loyalty.domain.grants import CouponDraft


def grant_cost(drafts: Iterable[CouponDraft]) -> int:
    """What a grant commits the shop to at issue, in fen: the face value of its coupons. A free
    delivery or a birthday pack is worth 0 here (a waived fee is a cost only when it is used)."""
    return sum(draft.value_fen for draft in drafts)


def fits(spent_fen: int, cost_fen: int, budget_fen: int) -> bool:
    """Whether a grant of `cost_fen` may be issued after `spent_fen` of `budget_fen` went out.
    A grant of 0 always fits, even once a lowered budget is already overspent."""
    return cost_fen == 0 or spent_fen + cost_fen <= budget_fen


@dataclass(frozen=True)
class Rationed:
    """First fit, in the order given: for each cost, whether it is issued; and the spend after."""

    issued: tuple[bool, ...]
    spent_fen: int


def ration(spent_fen: int, budget_fen: int, costs_fen: Sequence[int]) -> Rationed:
    """Decide grants in order against one tier-month's budget (see the module's docstring)."""
    issued = []
    for cost in costs_fen:
        ok = fits(spent_fen, cost, budget_fen)
        issued.append(ok)
        spent_fen += cost if ok else 0
    return Rationed(tuple(issued), spent_fen)


def drafts_document(drafts: Iterable[CouponDraft]) -> list[dict[str, Any]]:
    """A deferred grant's coupons as JSON, every field of the draft: times in ISO 8601 with their
    offset (exact instants), so that `drafts_from` gives back the very same drafts."""
    return [{name: value.isoformat() if isinstance(value, datetime) else value
             for name, value in asdict(d).items()} for d in drafts]


def drafts_from(document: Iterable[Mapping[str, Any]]) -> list[CouponDraft]:
    """The coupons `drafts_document` wrote, as they were: the same keys, values and validity."""
    times = {"valid_from", "valid_until"}
    found = []
    for d in document:
        fields: dict[str, Any] = {name: datetime.fromisoformat(value) if name in times else value
                                  for name, value in d.items()}
        found.append(CouponDraft(**fields))
    return found
