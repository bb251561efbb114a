"""The shop's tables as pandas frames: what every metric in `analytics.metrics` reads.

`load_frames` reads each table with one statement (the ORM writes the SQL, the driver's rows go
straight into a frame, with no per-row conversion in Python), so it stays quick at 100,000+
members. Tests and the CDNOW benchmark build `Frames` from plain data instead
(`Frames.from_purchases`). Invariants a reader must know:

- every datetime column is timezone-aware UTC; `orders.business_date` is the local calendar day
  (the ruleset's timezone) as a naive midnight, which is what months and cohorts are cut on;
- `orders` keeps every order with its `refunded_fen`; a purchase is an order not refunded in full
  (`amount_fen > refunded_fen`), and its value is the net `amount_fen − refunded_fen`;
- a member's tier at a moment is read from `tier_changes` (`tier_at`), the rule of
  `services.budget_report.issued_by_tier`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import pandas as pd
from django.db import connection
from django.db.models import QuerySet

from loyalty.clock import FixedClock, system_clock
from loyalty.domain.periods import add_months, start_of_day
from loyalty.services import rulesets
from loyalty.services.budget_report import budget_report
from loyalty.services.reports import LIABILITY_COLUMNS, points_liability
from loyalty.store.models import BudgetSpend, Coupon, Member, Order, TierChange

MEMBER_COLUMNS = ("member_id", "external_id", "tier", "registered_at")
ORDER_COLUMNS = ("member_id", "paid_at", "business_date", "amount_fen", "refunded_fen")
CHANGE_COLUMNS = ("member_id", "from_tier", "to_tier", "changed_at")
COUPON_COLUMNS = ("member_id", "kind", "key", "value_fen", "issued_at", "state", "redeemed_at")
BUDGET_COLUMNS = ("month", "tier", "budget_fen", "spent_fen", "issued_fen", "redeemed_fen")
UTC_COLUMNS = ("registered_at", "paid_at", "changed_at", "issued_at", "redeemed_at")


class Purchase(Protocol):
    """What `Frames.from_purchases` needs of a purchase (the demo's `sources.Purchase` fits)."""

    @property
    def member(self) -> str: ...
    @property
    def paid_at(self) -> datetime: ...
    @property
    def amount_fen(self) -> int: ...


@dataclass(frozen=True)
class Frames:
    members: pd.DataFrame  # MEMBER_COLUMNS; `tier` is the tier now
    orders: pd.DataFrame  # ORDER_COLUMNS
    tier_changes: pd.DataFrame  # CHANGE_COLUMNS, in the order they happened
    coupons: pd.DataFrame  # COUPON_COLUMNS
    timezone: ZoneInfo
    tier_order: tuple[str, ...]  # lowest first, as the ruleset lists them
    liability: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=list(LIABILITY_COLUMNS)))
    budgets: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=list(BUDGET_COLUMNS)))

    @property
    def base_tier(self) -> str:
        return self.tier_order[0]

    def kept_orders(self) -> pd.DataFrame:
        """Orders not refunded in full, with their net value `net_fen`."""
        orders = self.orders
        net = orders["amount_fen"] - orders["refunded_fen"]
        return orders.assign(net_fen=net)[net > 0]

    def transactions(self) -> pd.DataFrame:
        """member (external id), at (paid_at, aware), amount_fen (net, int64): the kept orders,
        in time order, as the customer-base models (`analytics.clv`) read them."""
        kept = self.kept_orders()
        names = self.members.set_index("member_id")["external_id"]
        frame = pd.DataFrame({"member": kept["member_id"].map(names).to_numpy(),
                              "at": kept["paid_at"].to_numpy(),
                              "amount_fen": kept["net_fen"].astype("int64").to_numpy()})
        frame["at"] = pd.to_datetime(frame["at"], utc=True)
        return frame.sort_values("at", kind="stable").reset_index(drop=True)

    def tier_at(self, moment: datetime | pd.Timestamp) -> pd.Series:
        """Every member's tier at `moment` (index member_id): the `to_tier` of their latest change
        at or before it, else the `from_tier` of their first change after it, else their tier now."""
        at = pd.Timestamp(moment).tz_convert("UTC")
        changes = self.tier_changes
        before = changes[changes["changed_at"] <= at].groupby("member_id")["to_tier"].last()
        after = changes[changes["changed_at"] > at].groupby("member_id")["from_tier"].first()
        now = self.members.set_index("member_id")["tier"]
        return before.combine_first(after).combine_first(now).reindex(now.index)

    def tiers_at_each(self, member_ids: pd.Series, moments: pd.Series) -> pd.Series:
        """The same rule for one moment per row (a coupon's `issued_at`), aligned with the rows."""
        rows = pd.DataFrame({"member_id": member_ids.to_numpy(), "at": moments.to_numpy(),
                             "row": range(len(member_ids))}).sort_values("at", kind="stable")
        rows["at"] = pd.to_datetime(rows["at"], utc=True)
        changes = self.tier_changes.assign(at=self.tier_changes["changed_at"]).sort_values("at", kind="stable")
        pick = ["member_id", "at", "from_tier", "to_tier"]
        back = pd.merge_asof(rows, changes[pick], on="at", by="member_id", direction="backward")
        ahead = pd.merge_asof(rows, changes[pick], on="at", by="member_id", direction="forward",
                              allow_exact_matches=False)
        now = rows["member_id"].map(self.members.set_index("member_id")["tier"])
        held = back["to_tier"].combine_first(ahead["from_tier"]).combine_first(now.reset_index(drop=True))
        held.index = rows["row"].to_numpy()
        return held.sort_index().set_axis(member_ids.index)

    def only(self, member_ids: Iterable[int]) -> Frames:
        """These frames for some members only (the ledger-wide liability and budget rows stay)."""
        keep = pd.Index(list(member_ids))
        return replace(self, **{name: frame[frame["member_id"].isin(keep)] for name, frame in (
            ("members", self.members), ("orders", self.orders), ("tier_changes", self.tier_changes),
            ("coupons", self.coupons))})

    @classmethod
    def from_purchases(cls, purchases: Iterable[Purchase], *, timezone: ZoneInfo,
                       tier_order: Sequence[str] = ("bronze",), tier_changes: pd.DataFrame | None = None) -> Frames:
        """Frames of a shop known only by its purchases (CDNOW): one member per buyer, registered at
        their first purchase, in the base tier unless `tier_changes` (member external ids in
        `member`, from_tier, to_tier, changed_at) says otherwise; nothing refunded, no coupons."""
        rows = [(p.member, p.paid_at, p.amount_fen) for p in purchases]
        raw = pd.DataFrame(rows, columns=["member", "paid_at", "amount_fen"])
        raw["paid_at"] = pd.to_datetime(raw["paid_at"], utc=True)
        return cls.from_orders(raw, timezone=timezone, tier_order=tier_order, tier_changes=tier_changes)

    @classmethod
    def from_orders(cls, orders: pd.DataFrame, *, timezone: ZoneInfo, tier_order: Sequence[str] = ("bronze",),
                    tier_changes: pd.DataFrame | None = None, current_tiers: pd.Series | None = None) -> Frames:
        """As `from_purchases`, from a frame of member (external id), paid_at (aware), amount_fen and,
        optionally, refunded_fen. `current_tiers` (by external id) overrides the tier now."""
        paid_at = pd.to_datetime(orders["paid_at"], utc=True)
        codes, names = pd.factorize(orders["member"], sort=True)
        ids = pd.Series(codes + 1, index=orders.index)
        first = paid_at.groupby(ids).min()
        members = pd.DataFrame({"member_id": first.index.astype("int64"), "external_id": names.astype(str),
                                "tier": tier_order[0], "registered_at": first.to_numpy()})
        refunded = orders.get("refunded_fen", 0)
        frame = pd.DataFrame({"member_id": ids.astype("int64"), "paid_at": paid_at,
                              "business_date": paid_at.dt.tz_convert(timezone).dt.tz_localize(None).dt.normalize(),
                              "amount_fen": orders["amount_fen"].astype("int64"),
                              "refunded_fen": pd.Series(refunded, index=orders.index).astype("int64")})
        id_of = pd.Series(members["member_id"].to_numpy(), index=members["external_id"])
        changes = _empty(CHANGE_COLUMNS)
        if tier_changes is not None and len(tier_changes):
            changes = pd.DataFrame({"member_id": tier_changes["member"].map(id_of).astype("int64"),
                                    "from_tier": tier_changes["from_tier"], "to_tier": tier_changes["to_tier"],
                                    "changed_at": pd.to_datetime(tier_changes["changed_at"], utc=True)})
            changes = changes.sort_values("changed_at", kind="stable").reset_index(drop=True)
            latest = changes.groupby("member_id")["to_tier"].last()
            members["tier"] = members["member_id"].map(latest).fillna(tier_order[0])
        if current_tiers is not None:
            members["tier"] = members["external_id"].map(current_tiers).fillna(members["tier"])
        return cls(members, frame.sort_values("paid_at", kind="stable").reset_index(drop=True), changes,
                   _empty(COUPON_COLUMNS), timezone, tuple(tier_order))


def load_frames(*, start: date | None = None, end: date | None = None, tiers: Sequence[str] | None = None,
                as_of: datetime | None = None) -> Frames:
    """The database's members, orders (paid on or before `end`), tier changes and coupons, the
    monthly points liability and the budget rows of [start, end] from their services, under the
    ruleset in force at `as_of` (default: now). `tiers` keeps the members whose tier at the start
    of `start` (without `start`: their tier now) is one of them."""
    now = as_of or system_clock.now()
    ruleset = rulesets.in_force(now).ruleset
    zone = ruleset.timezone
    orders = Order.objects.all() if end is None else Order.objects.filter(business_date__lte=end)
    frames = Frames(
        members=_read(Member.objects.values_list("id", "external_id", "tier", "registered_at"), MEMBER_COLUMNS),
        orders=_read(orders.order_by("paid_at", "id").values_list(*ORDER_COLUMNS), ORDER_COLUMNS),
        tier_changes=_read(TierChange.objects.order_by("changed_at", "id").values_list(*CHANGE_COLUMNS),
                           CHANGE_COLUMNS),
        coupons=_read(Coupon.objects.order_by("issued_at", "id").values_list(*COUPON_COLUMNS), COUPON_COLUMNS),
        timezone=zone, tier_order=tuple(tier.code for tier in ruleset.tiers),
        liability=_liability(start, end))
    frames = replace(frames, budgets=_budgets(frames, start, end, now))
    if tiers is None:
        return frames
    held = frames.tier_at(start_of_day(start, zone)) if start else frames.members.set_index("member_id")["tier"]
    return frames.only(held.index[held.isin(list(tiers))])


def _read(query: QuerySet[Any, Any], columns: Sequence[str]) -> pd.DataFrame:
    """One statement, the driver's rows as they come: SQLite's text datetimes and PostgreSQL's
    datetime objects are both parsed by pandas, column by column."""
    sql, params = query.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        frame = pd.DataFrame(cursor.fetchall(), columns=list(columns))
    for name in frame.columns:
        if name in UTC_COLUMNS:
            frame[name] = pd.to_datetime(frame[name], utc=True, format="ISO8601")
        elif name == "business_date":
            frame[name] = pd.to_datetime(frame[name], format="ISO8601")
        elif name.endswith("_fen") or name == "member_id":
            frame[name] = frame[name].astype("int64")
    return frame


def _empty(columns: Sequence[str]) -> pd.DataFrame:
    frame = pd.DataFrame({name: pd.Series(dtype="object") for name in columns})
    for name in columns:
        if name in UTC_COLUMNS:
            frame[name] = pd.to_datetime(frame[name], utc=True)
        elif name.endswith("_fen") or name == "member_id":
            frame[name] = frame[name].astype("int64")
    return frame


def _liability(start: date | None, end: date | None) -> pd.DataFrame:
    """`loyalty report liability --by month` for [start, end]: the service's rows, not a re-count."""
    rows = [row.as_dict() for row in points_liability(by="month", first_day=start, last_day=end).rows]
    return pd.DataFrame(rows, columns=list(LIABILITY_COLUMNS))


def _budgets(frames: Frames, start: date | None, end: date | None, now: datetime) -> pd.DataFrame:
    """`loyalty report budgets` for every month of [start, end] with a spend or an issued coupon."""
    issued = frames.coupons["issued_at"].dt.tz_convert(frames.timezone).dt.strftime("%Y-%m")
    months = set(issued) | set(BudgetSpend.objects.values_list("month", flat=True))
    first = start and f"{start:%Y-%m}"
    last = end and f"{end:%Y-%m}"
    clock = FixedClock(now)
    rows = []
    for month in sorted(m for m in months if (not first or m >= first) and (not last or m <= last)):
        for row in budget_report(month, clock=clock).rows:
            rows.append((row.month, row.tier, row.budget_fen, row.spent_fen, row.issued_fen, row.redeemed_fen))
    return pd.DataFrame(rows, columns=list(BUDGET_COLUMNS))


def month_starts(first: date, last: date, zone: ZoneInfo) -> list[datetime]:
    """00:00 local on the 1st of every month from `first`'s to `last`'s."""
    day, starts = first.replace(day=1), []
    while day <= last:
        starts.append(start_of_day(day, zone))
        day = add_months(day, 1)
    return starts
