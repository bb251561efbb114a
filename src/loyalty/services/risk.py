"""The nightly risk scan: score every member active in the window, store the scores, hold the
newly flagged.

One scan as of T reads four frames (one query each: orders, refunds and growth entries in the
window, and the device/address/ip links of the members found), computes the features
(`domain/risk_features.py`), the rules (`domain/risk.py`) and the detector (`domain/anomaly.py`),
and, in one transaction, writes one `RiskScore` per member scored and places holds
(`services/holds.py`) on the members flagged at T who were not flagged in the window before it.
Rows are unique per (member, as_of) and a rerun keeps the first, so a scan cut short by a crash
is simply run again. The rules, exactly: docs/abuse.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pandas as pd
from django.db import transaction

from loyalty.clock import Clock, system_clock
from loyalty.domain import anomaly
from loyalty.domain.periods import require_aware
from loyalty.domain.risk import RiskRules, day_growth_reference, reasons, rule_hits
from loyalty.domain.risk_features import COLUMNS, FEATURES, empty_frame, member_features
from loyalty.domain.schedule import daily
from loyalty.services import rulesets
from loyalty.services.holds import place_holds
from loyalty.store.models import LedgerEntry, MemberLink, Order, Refund, RiskScore

ROWS_PER_INSERT = 2000
RATES = frozenset({"refund_rate", "refunded_order_rate", "weekly_before", "velocity"})  # the other features count


@dataclass(frozen=True)
class Scan:
    as_of: datetime
    scored: int
    flagged: int
    newly_flagged: int  # flagged at as_of and not in the window before: handed to the holds
    held: int  # holds newly placed (0 under dry_run)

    @property
    def rate(self) -> float:
        return self.flagged / self.scored if self.scored else 0.0


@dataclass(frozen=True)
class Verdicts:
    """The scan's result before it is stored: per member, score, flagged and reasons."""

    features: pd.DataFrame
    scores: pd.Series
    flagged: pd.Series
    reasons: dict[int, list[dict[str, Any]]]


def assess(features: pd.DataFrame, rules: RiskRules) -> Verdicts:
    """Rules and detector over one night's features; shared by the scan and the tests."""
    hits = rule_hits(features, rules)
    scores = anomaly.scores(features)
    hits["anomaly"] = scores > float(rules.threshold)
    flagged = hits.any(axis=1)
    reference = day_growth_reference(features)
    found = {member: reasons(features.loc[member], hits.loc[member], rules, reference, float(scores.loc[member]))
             for member in features.index[flagged]}
    return Verdicts(features, scores, flagged, found)


def frames(as_of: datetime, rules: RiskRules) -> dict[str, pd.DataFrame]:
    """The scan's input, as of `as_of`, in the shapes `member_features` reads."""
    start = as_of - timedelta(days=max(rules.refund_rate.window_days, rules.velocity.history_days))
    window = as_of - timedelta(days=rules.refund_rate.window_days)
    orders = Order.objects.filter(paid_at__gt=start, paid_at__lte=as_of).values_list(
        "member_id", "order_id", "paid_at", "amount_fen")
    refunds = Refund.objects.filter(refunded_at__gt=window, refunded_at__lte=as_of).values_list(
        "order_id", "refunded_at", "amount_fen")
    growth = LedgerEntry.objects.filter(ledger="growth", delta__gt=0, occurred_at__gt=window,
                                        occurred_at__lte=as_of).values_list("member_id", "occurred_at", "delta")
    found = {"orders": _frame("orders", orders), "refunds": _frame("refunds", refunds),
             "growth": _frame("growth", growth)}
    active = sorted(set(found["orders"]["member"]) | set(found["growth"]["member"]))
    # Every member on a value any active member was seen with: they are who it is shared with.
    values = MemberLink.objects.filter(member_id__in=active).values("value")
    links = MemberLink.objects.filter(value__in=values).values_list("member_id", "kind", "value")
    found["links"] = _frame("links", links if active else [])
    return found


def _frame(kind: str, rows: Any) -> pd.DataFrame:
    listed = list(rows)
    if not listed:
        return empty_frame(kind)
    frame = pd.DataFrame(listed, columns=list(COLUMNS[kind]))
    for column in ("paid_at", "refunded_at", "at"):
        if column in frame:
            frame[column] = pd.to_datetime(frame[column], utc=True)
    return frame


def scan(as_of: datetime, *, clock: Clock = system_clock, dry_run: bool = False) -> Scan:
    """Score, store and hold as of `as_of`; see the module's docstring."""
    require_aware(as_of, "as_of")
    rules = rulesets.in_force(as_of).ruleset.risk
    found = frames(as_of, rules)
    features = member_features(found["orders"], found["refunds"], found["growth"], found["links"], as_of,
                               window_days=rules.refund_rate.window_days,
                               history_days=rules.velocity.history_days)
    verdicts = assess(features, rules)
    flagged_ids = [int(member) for member in features.index[verdicts.flagged]]
    if dry_run:
        newly = _not_flagged_before(flagged_ids, as_of, rules)
        return Scan(as_of, len(features), len(flagged_ids), len(newly), 0)
    with transaction.atomic():
        _store(verdicts, as_of, clock.now())
        newly = _not_flagged_before(flagged_ids, as_of, rules)
        details = {member: {"as_of": as_of.isoformat(), "score_milli": anomaly.milli(verdicts.scores.loc[member]),
                            "reasons": verdicts.reasons[member]} for member in newly}
        codes = sorted({reason["code"] for member in newly for reason in verdicts.reasons[member]})
        reason = f"risk scan: {', '.join(codes)}"[:64]
        held = place_holds(newly, reason=reason, details=details, at=as_of) if newly else 0
    return Scan(as_of, len(features), len(flagged_ids), len(newly), held)


def _store(verdicts: Verdicts, as_of: datetime, now: datetime) -> None:
    done = set(RiskScore.objects.filter(as_of=as_of).values_list("member_id", flat=True))
    rows = [RiskScore(member_id=int(member), as_of=as_of, computed_at=now,
                      score_milli=anomaly.milli(float(verdicts.scores.loc[member])),
                      flagged=bool(verdicts.flagged.loc[member]), reasons=verdicts.reasons.get(member, []),
                      features=_plain(verdicts.features.loc[member]))
            for member in verdicts.features.index if int(member) not in done]
    RiskScore.objects.bulk_create(rows, batch_size=ROWS_PER_INSERT)


def _plain(row: pd.Series) -> dict[str, object]:
    """Counts as integers, rates as 3-place decimal strings: JSON without floats."""
    return {name: f"{float(row[name]):.3f}" if name in RATES else int(row[name]) for name in FEATURES}


def _not_flagged_before(members: list[int], as_of: datetime, rules: RiskRules) -> list[int]:
    since = as_of - timedelta(days=rules.refund_rate.window_days)
    seen = set(RiskScore.objects.filter(member_id__in=members, flagged=True, as_of__gte=since, as_of__lt=as_of)
               .values_list("member_id", flat=True))
    return sorted(member for member in members if member not in seen)


SCAN_AT = time(3)
RISK_SCAN_SCHEDULE = daily(SCAN_AT)  # 03:00 local, after the day's late events and the 00:00 jobs


def scan_moment(day: date) -> datetime:
    """03:00 of `day` in the timezone of the ruleset in force then: when the nightly scan runs."""
    zone = rulesets.in_force(datetime.combine(day, SCAN_AT, tzinfo=UTC)).ruleset.timezone
    return datetime.combine(day, SCAN_AT, tzinfo=zone)


def risk_scan(due_at: datetime, *, clock: Clock, dry_run: bool) -> dict[str, int]:
    """The nightly job: one scan as of its due moment. Counts are read back from the stored
    rows, so a run resumed after a crash reports what an uninterrupted one would."""
    result = scan(due_at, clock=clock, dry_run=dry_run)
    if dry_run:
        return {"flagged": result.flagged, "newly_flagged": result.newly_flagged, "scored": result.scored}
    night = RiskScore.objects.filter(as_of=due_at)
    flagged = list(night.filter(flagged=True).values_list("member_id", flat=True))
    rules = rulesets.in_force(due_at).ruleset.risk
    return {"flagged": len(flagged), "newly_flagged": len(_not_flagged_before(flagged, due_at, rules)),
            "scored": night.count()}
