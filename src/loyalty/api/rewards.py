"""Points redemption (the platform's key, `points:write`; idempotent on redemption_id) and the
reward catalogue (`members:read`, or any member's own token: the catalogue is the same for all).

A member token cannot redeem: spending points moves value, and the platform confirms it (the
goods must ship, the member be who they say), as a bank's page would have its bank confirm."""

from __future__ import annotations

from datetime import datetime

from django.http import HttpRequest, HttpResponse
from ninja import Router, Schema, Status
from pydantic import ConfigDict, Field

from loyalty.api.auth import Bearer
from loyalty.api.replies import ERRORS, replayed
from loyalty.api.schemas import NO_CONTROL, MemberPath, Out
from loyalty.domain.money import format_fen
from loyalty.domain.rewards import MAX_QUANTITY
from loyalty.services.rewards import RedemptionView, catalogue, redeem
from loyalty.store.models import Reward

router = Router(tags=["rewards"])
REWARD_CODE = r"^[-a-zA-Z0-9_]+$"


class RedeemIn(Schema):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"redemption_id": "rd-20270104-001", "reward": "mug-2027", "quantity": 1},
        {"redemption_id": "rd-20270104-002", "points": 500, "note": "paid part of order o-88 with points"}]})

    redemption_id: str = Field(min_length=1, max_length=64, examples=["rd-1"],
                               description="the client's id of this redemption: a retry sends the same one")
    reward: str | None = Field(default=None, min_length=1, max_length=64, pattern=REWARD_CODE,
                               examples=["mug-2027"], description="a reward's code (GET /rewards); or give points")
    # strict: "2" (a string) and 2.0 are client mistakes, not numbers to coerce.
    quantity: int = Field(default=1, ge=1, le=MAX_QUANTITY, strict=True, description="units of the reward")
    points: int | None = Field(default=None, gt=0, strict=True, examples=[500],
                               description="instead of a reward: points to spend on what the platform prices itself")
    note: str = Field(default="", max_length=200, pattern=NO_CONTROL)


class LotDrawnOut(Out):
    lot: int
    expires_at: datetime | None = Field(description="the lot's expiry; null: it never expires")
    points: int


class RewardCouponOut(Out):
    code: str
    value: str = Field(examples=["8.00"])
    min_spend: str = Field(examples=["0.00"])
    valid_from: datetime
    valid_until: datetime = Field(description="exclusive")


class RedemptionOut(Out):
    redemption_id: str
    member: str
    reward: str | None = Field(description="null for a spend of points")
    quantity: int
    points: int = Field(description="points spent")
    lots: list[LotDrawnOut] = Field(description="what was drawn, soonest-expiring first")
    balance_after: int | None = Field(description="the member's points balance right after")
    coupons: list[RewardCouponOut] = Field(description="the coupons a coupon reward issued")
    redeemed_at: datetime


class RewardOut(Out):
    code: str
    name: str
    kind: str = Field(examples=["goods"], description="goods or coupon")
    points_cost: int
    value: str | None = Field(description="a coupon reward's face value in yuan; null for goods")
    min_spend: str | None
    valid_days: int | None
    stock: int | None = Field(description="units left; null: unlimited")
    per_member_limit: int | None
    available_until: datetime | None


class CatalogueOut(Out):
    rewards: list[RewardOut]


def _redemption(view: RedemptionView) -> RedemptionOut:
    return RedemptionOut(
        redemption_id=view.redemption_id, member=view.member, reward=view.reward, quantity=view.quantity,
        points=view.points, lots=[LotDrawnOut(lot=lot.lot_id, expires_at=lot.expires_at, points=lot.points)
                                  for lot in view.lots],
        balance_after=view.balance_after, redeemed_at=view.redeemed_at,
        coupons=[RewardCouponOut(code=c.code, value=format_fen(c.value_fen), min_spend=format_fen(c.min_spend_fen),
                                 valid_from=c.valid_from, valid_until=c.valid_until) for c in view.coupons])


def _reward(row: Reward) -> RewardOut:
    coupon = row.kind == "coupon"
    return RewardOut(code=row.code, name=row.name, kind=row.kind, points_cost=row.points_cost,
                     value=format_fen(row.value_fen) if coupon else None,
                     min_spend=format_fen(row.min_spend_fen) if coupon else None,
                     valid_days=row.valid_days if coupon else None, stock=row.stock,
                     per_member_limit=row.per_member_limit, available_until=row.available_until)


@router.post("/members/{external_id}/points/redeem", response={201: RedemptionOut, **ERRORS},
             auth=Bearer("points:write"),
             summary="Spend points on a reward (or an amount of points), soonest-expiring lots first; a replay "
                     "answers the first redemption, another body under the same redemption_id is a 409")
def redeem_route(request: HttpRequest, external_id: MemberPath, payload: RedeemIn, response: HttpResponse
                 ) -> Status[RedemptionOut]:
    view = redeem(external_id, payload.redemption_id, reward=payload.reward, quantity=payload.quantity,
                  points=payload.points, note=payload.note)
    replayed(response, view.replayed)
    return Status(201, _redemption(view))


@router.get("/rewards", response={200: CatalogueOut, **ERRORS}, auth=Bearer("members:read", members=True),
            summary="The rewards a member may redeem now: active, inside their window, in stock")
def rewards(request: HttpRequest) -> CatalogueOut:
    return CatalogueOut(rewards=[_reward(row) for row in catalogue()])
