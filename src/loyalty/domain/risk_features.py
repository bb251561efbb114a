"""Per-member features for one night's risk scan, computed with pandas from plain frames.

The same function runs on frames read from the database (`services/risk.py`) and on frames
built straight from a purchase log (the CDNOW tests), so the false-positive rate measured on
real customers is the rate of the code that runs at night. The frames (times tz-aware):

    orders   member, order_id, paid_at, amount_fen
    refunds  order_id, refunded_at, amount_fen
    growth   member, at, delta        (growth ledger entries; only positive ones count as earned)
    links    member, kind, value      (device, address or ip seen with the member; may be empty)

With W = window_days and H = history_days, as of T, for each member active in (T − W, T]
(an order paid or growth earned in it):

    orders, paid_fen       orders paid in (T − W, T] and their amount
    refunded_fen           refunds up to T of those orders; refund_rate = refunded_fen ÷ paid_fen
    refunded_order_rate    those orders with any refund ÷ orders
    orders_7d              orders paid in (T − 7 days, T]
    weekly_before          orders paid in (T − H, T − 7 days] ÷ ((H − 7) ÷ 7)
    velocity               orders_7d ÷ max(weekly_before, 1)
    growth_day             growth earned in (T − 1 day, T]
    shared_members         the most distinct members seen on any one of the member's device,
                           address or ip values, the member included (0 without links)
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pandas as pd

FEATURES = ("orders", "paid_fen", "refunded_fen", "refund_rate", "refunded_order_rate", "orders_7d",
            "weekly_before", "velocity", "growth_day", "shared_members")
COLUMNS = {
    "orders": ("member", "order_id", "paid_at", "amount_fen"),
    "refunds": ("order_id", "refunded_at", "amount_fen"),
    "growth": ("member", "at", "delta"),
    "links": ("member", "kind", "value"),
}
_DTYPES = {"paid_at": "datetime64[ns, UTC]", "refunded_at": "datetime64[ns, UTC]", "at": "datetime64[ns, UTC]",
           "amount_fen": "int64", "delta": "int64"}


def empty_frame(kind: str) -> pd.DataFrame:
    """A frame of `kind` with no rows and the right column types, e.g. links where none are recorded."""
    return pd.DataFrame({column: pd.Series([], dtype=_DTYPES.get(column, "object")) for column in COLUMNS[kind]})


def member_features(orders: pd.DataFrame, refunds: pd.DataFrame, growth: pd.DataFrame, links: pd.DataFrame,
                    as_of: datetime, *, window_days: int, history_days: int) -> pd.DataFrame:
    """One row per active member (the index), one column per name in FEATURES; see above."""
    end = pd.Timestamp(as_of)
    start, week, day = end - timedelta(days=window_days), end - timedelta(days=7), end - timedelta(days=1)
    history = end - timedelta(days=history_days)
    recent = orders[(orders["paid_at"] > min(start, history)) & (orders["paid_at"] <= end)]
    in_window = recent[recent["paid_at"] > start]
    earned = growth[(growth["at"] > start) & (growth["at"] <= end) & (growth["delta"] > 0)]
    members = pd.Index(pd.unique(pd.concat([in_window["member"], earned["member"]], ignore_index=True)))
    frame = pd.DataFrame(index=members)
    frame.index.name = "member"
    _order_features(frame, in_window, refunds, end)
    before = recent[(recent["paid_at"] > history) & (recent["paid_at"] <= week)]
    frame["orders_7d"] = _count(recent[recent["paid_at"] > week], members)
    frame["weekly_before"] = _count(before, members) / ((history_days - 7) / 7)
    frame["velocity"] = frame["orders_7d"] / frame["weekly_before"].clip(lower=1.0)
    frame["growth_day"] = earned[earned["at"] > day].groupby("member")["delta"].sum().reindex(members, fill_value=0)
    frame["shared_members"] = _shared(links, members)
    return frame.astype({"orders": "int64", "paid_fen": "int64", "refunded_fen": "int64", "orders_7d": "int64",
                         "growth_day": "int64", "shared_members": "int64"})[list(FEATURES)]


def _order_features(frame: pd.DataFrame, in_window: pd.DataFrame, refunds: pd.DataFrame, end: pd.Timestamp) -> None:
    members = frame.index
    done = refunds[(refunds["refunded_at"] <= end) & refunds["order_id"].isin(in_window["order_id"])]
    refunded = in_window["order_id"].map(done.groupby("order_id")["amount_fen"].sum()).fillna(0)
    per_order = in_window.assign(refunded=refunded, was_refunded=refunded > 0)
    totals = per_order.groupby("member").agg(orders=("order_id", "size"), paid_fen=("amount_fen", "sum"),
                                             refunded_fen=("refunded", "sum"),
                                             refunded_orders=("was_refunded", "sum")).reindex(members, fill_value=0)
    frame["orders"] = totals["orders"]
    frame["paid_fen"] = totals["paid_fen"]
    frame["refunded_fen"] = totals["refunded_fen"]
    frame["refund_rate"] = (totals["refunded_fen"] / totals["paid_fen"].where(totals["paid_fen"] > 0)).fillna(0.0)
    frame["refunded_order_rate"] = (totals["refunded_orders"] / totals["orders"].where(totals["orders"] > 0)
                                    ).fillna(0.0)


def _count(orders: pd.DataFrame, members: pd.Index) -> pd.Series:
    return orders.groupby("member").size().reindex(members, fill_value=0).astype("int64")


def _shared(links: pd.DataFrame, members: pd.Index) -> pd.Series:
    if links.empty:
        return pd.Series(0, index=members, dtype="int64")
    sharing = links.groupby(["kind", "value"])["member"].transform("nunique")
    return links.assign(sharing=sharing).groupby("member")["sharing"].max().reindex(members, fill_value=0)
