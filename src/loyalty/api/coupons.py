"""Coupons: a member's wallet (the platform's key, or the member's own token) and redemption of
a coupon on an order (the platform's key, `coupons:write`; idempotent on code and order)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from django.http import HttpRequest, HttpResponse
from ninja import Path, Query, Router, Schema, Status
from pydantic import ConfigDict, Field

from loyalty.api.auth import Bearer, own_member
from loyalty.api.replies import ERRORS, replayed
from loyalty.api.schemas import MEMBER_ID, NO_CONTROL, Amount, MemberPath, Out
from loyalty.domain.money import format_fen, parse_yuan
from loyalty.services.coupons import MAX_PAGE, CouponView, redeem_coupon, wallet

router = Router(tags=["coupons"])
CodePath = Annotated[str, Path(min_length=1, max_length=32, pattern=MEMBER_ID, examples=["LYMFRGGZDFMZTWQ2LK"],
                               description="the coupon's code, as the member shows it")]
State = Literal["issued", "redeemed", "expired", "revoked"]


class WalletQuery(Schema):
    state: State | None = Field(default=None, description="only coupons shown in this state")
    limit: int = Field(default=50, ge=1, le=MAX_PAGE)
    cursor: str | None = Field(default=None, max_length=20, pattern="^[0-9]+$",
                               description="from the previous page's next_cursor")


class CouponOut(Out):
    code: str
    kind: str = Field(examples=["monthly"], description="monthly, free_delivery, birthday, recall, sprint, ...")
    value: str = Field(examples=["8.00"], description="face value in yuan (0.00 for a free delivery)")
    min_spend: str = Field(examples=["0.00"], description="the order's spend it needs, in yuan")
    issued_at: datetime
    valid_from: datetime
    valid_until: datetime = Field(description="exclusive: the coupon cannot be used at this instant")
    state: State = Field(description="an issued coupon past valid_until shows as expired")
    redeemed_at: datetime | None
    order_id: str | None = Field(description="the order it was redeemed on")
    template: str = Field(examples=["newcomer"], description="the ruleset's coupon template; empty for an inline grant")
    stacking_group: str = Field(examples=["cash"], description="an order carries at most one coupon per group; "
                                                                "empty: combines with any coupon")
    usage: Literal["single", "once_per_member"] = Field(
        description="once_per_member: one coupon of the template redeemed per member, ever")


class WalletOut(Out):
    coupons: list[CouponOut]
    next_cursor: str | None = Field(description="pass as `cursor` for the next (older) page; null on the last")


class CouponRedeemIn(Schema):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"member": "m-10001", "order_id": "o-20270104-001", "amount": "128.00"}]})

    member: str = Field(min_length=1, max_length=64, pattern=MEMBER_ID, description="the coupon's owner")
    order_id: str = Field(min_length=1, max_length=64, pattern=NO_CONTROL)
    amount: Amount | None = Field(default=None, examples=["128.00"],
                                  description="yuan: the order's amount before this coupon, needed only when the "
                                              "coupon has a minimum spend and the order is not recorded yet "
                                              "(a recorded order's paid amount plus the face value decides)")


class CouponRedeemOut(Out):
    member: str
    coupon: CouponOut


def _coupon(view: CouponView) -> CouponOut:
    return CouponOut(code=view.code, kind=view.kind, value=format_fen(view.value_fen),
                     min_spend=format_fen(view.min_spend_fen), issued_at=view.issued_at, valid_from=view.valid_from,
                     valid_until=view.valid_until, state=view.state,  # type: ignore[arg-type]
                     redeemed_at=view.redeemed_at, order_id=view.order_id, template=view.template,
                     stacking_group=view.stacking_group, usage=view.usage)  # type: ignore[arg-type]


@router.get("/members/{external_id}/coupons", response={200: WalletOut, **ERRORS},
            auth=Bearer("members:read", members=True),
            summary="A member's coupons, newest first, a page at a time (filter by state)")
def coupons(request: HttpRequest, external_id: MemberPath, query: Query[WalletQuery]) -> WalletOut:
    own_member(request, external_id)
    page = wallet(external_id, state=query.state, before_id=int(query.cursor) if query.cursor else None,
                  limit=query.limit)
    return WalletOut(coupons=[_coupon(c) for c in page.coupons],
                     next_cursor=str(page.next_cursor) if page.next_cursor is not None else None)


@router.post("/coupons/{code}/redeem", response={201: CouponRedeemOut, **ERRORS}, auth=Bearer("coupons:write"),
             summary="Redeem a member's coupon on an order (a replay on the same order answers the first "
                     "redemption; another order is a 409; another member's code is a 404)")
def redeem(request: HttpRequest, code: CodePath, payload: CouponRedeemIn, response: HttpResponse
           ) -> Status[CouponRedeemOut]:
    amount_fen = None if payload.amount is None else parse_yuan(payload.amount, field="amount")
    outcome = redeem_coupon(code, member=payload.member, order_id=payload.order_id, amount_fen=amount_fen)
    replayed(response, outcome.replayed)
    return Status(201, CouponRedeemOut(member=outcome.member, coupon=_coupon(outcome.coupon)))
