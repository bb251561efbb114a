"""Customer-base models: who is still a customer, how often they will buy, and what it is worth.

BG/NBD (Fader, Hardie & Lee 2005) models each member's purchases as a Poisson process that stops
for good, after any purchase, with a member-specific probability; Gamma-Gamma models the average
order value. Both are fitted with `lifetimes`; docs/models.md gives the formulas and the CDNOW
acceptance figures. Invariants a reader must know:

- a member buys at most once a *day* (the local calendar day in the shop's timezone, by default
  `as_of`'s): the orders of one day are one purchase whose value is their sum;
- the purchases are those paid at or before `as_of`, and the last day observed is `as_of`'s day
  (`--as-of DATE` means the day's last moment, 23:59:59.999999);
- frequency = purchase days − 1 (repeat purchases), recency = first → last purchase day and
  T = first purchase day → last day observed, in weeks (days / 7) by default;
- money goes into the models in yuan (floats), and every money output comes back as integer fen,
  rounded half up (`fen_from_yuan`); probabilities and counts are floats here, decimal strings in JSON.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta, tzinfo
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import betaln, gammaln

from loyalty.domain.errors import InvalidInput, Refused

with warnings.catch_warnings():  # lifetimes 0.11 sets a pandas option that pandas 3 deprecates, on import
    warnings.simplefilter("ignore", DeprecationWarning)
    from lifetimes import BetaGeoFitter, GammaGammaFitter
    from lifetimes.utils import ConvergenceError

UNIT_DAYS = 7  # the models' time unit: a week, as in the paper
MIN_REPEAT_BUYERS = 20  # fewer, and four parameters are not identified: the fit is refused
CHURN_THRESHOLD = 0.5  # p_alive below this puts a member who bought more than once on the churn list
SUMMARY_COLUMNS = ("frequency", "recency", "T", "monetary_value", "past_value_fen", "last_purchase_on")


def fen_from_yuan(yuan: float) -> int:
    """Yuan (a model's float) to integer fen, rounded half up on the float's shortest decimal form
    (12.345 yuan → 1235 fen): the float's binary error never decides a half."""
    return int((Decimal(repr(float(yuan))) * 100).to_integral_value(rounding=ROUND_HALF_UP))


def decimal_text(value: float, places: int) -> str:
    """A float as a decimal string with `places` places, rounded half up ("0.1235")."""
    return str(Decimal(repr(float(value))).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP))


def summarize(transactions: pd.DataFrame, *, as_of: datetime, timezone: tzinfo | None = None,
              unit_days: int = UNIT_DAYS) -> pd.DataFrame:
    """One row per member who bought at or before `as_of` (index `member`), SUMMARY_COLUMNS.

    Written here rather than taken from `lifetimes.utils.summary_data_from_transaction_data`:
    that helper cuts days through pandas periods, which drop the timezone (a UserWarning on
    pandas 3) and so count UTC days instead of the shop's; with freq="W" it counts calendar-week
    periods instead of days / 7, which does not reproduce the paper; and it knows nothing of fen.
    `monetary_value` is the mean value (yuan) of the repeat purchase days, the first excluded
    (0 without repeats), as Gamma-Gamma and the paper define it."""
    if as_of.tzinfo is None or as_of.utcoffset() is None:
        raise InvalidInput("as_of must carry a timezone offset", field="as_of")
    zone = timezone or as_of.tzinfo
    seen = transactions[transactions["at"] <= pd.Timestamp(as_of)]
    days = pd.DataFrame({"member": seen["member"].astype(str).to_numpy(),
                         "day": seen["at"].dt.tz_convert(zone).dt.tz_localize(None).dt.normalize().to_numpy(),
                         "fen": seen["amount_fen"].astype("int64").to_numpy()})
    days = days.groupby(["member", "day"], as_index=False)["fen"].sum().sort_values(["member", "day"])
    by_member = days.groupby("member")
    first, last = by_member["day"].min(), by_member["day"].max()
    frequency = by_member.size() - 1
    past_fen = by_member["fen"].sum()
    repeat_fen = past_fen - by_member["fen"].first()
    end = pd.Timestamp(as_of.astimezone(zone).date())
    summary = pd.DataFrame({
        "frequency": frequency.astype("int64"),
        "recency": (last - first).dt.days / unit_days,
        "T": (end - first).dt.days / unit_days,
        "monetary_value": (repeat_fen / frequency.where(frequency > 0) / 100).fillna(0.0),
        "past_value_fen": past_fen.astype("int64"),
        "last_purchase_on": last.dt.date})
    summary.index.name = "member"
    return summary


@dataclass(frozen=True)
class GammaGamma:
    p: float
    q: float
    v: float


@dataclass(frozen=True)
class CustomerBaseModel:
    """Fitted parameters; `log_likelihood` is BG/NBD's over `customers` members, in `unit_days` units."""

    r: float
    alpha: float
    a: float
    b: float
    log_likelihood: float
    customers: int
    gamma_gamma: GammaGamma | None = None
    unit_days: int = UNIT_DAYS
    penalizer: float = 0.0  # the L2 penalty BG/NBD needed to converge (0: none, the published fit)

    def bgnbd(self) -> BetaGeoFitter:
        fitter = BetaGeoFitter()
        fitter.params_ = pd.Series({"r": self.r, "alpha": self.alpha, "a": self.a, "b": self.b})
        return fitter


def bgnbd_log_likelihood(r: float, alpha: float, a: float, b: float, frequency: np.ndarray, recency: np.ndarray,
                         T: np.ndarray) -> float:
    """The paper's log-likelihood, summed over members, in the time unit of the data:
    ln[B(a, b+x)/B(a, b) · Γ(r+x) α^r / Γ(r) · ((α+T)^−(r+x) + [x>0] a/(b+x−1) (α+t_x)^−(r+x))].
    Ours rather than lifetimes' private one, which reports it per member in a rescaled time."""
    x = np.asarray(frequency, dtype=float)
    common = betaln(a, b + x) - betaln(a, b) + gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    stays = -(r + x) * np.log(alpha + T)
    drops = np.log(a) - np.log(b + np.maximum(x, 1) - 1) - (r + x) * np.log(alpha + recency)
    return float(np.sum(common + np.logaddexp(stays, np.where(x > 0, drops, -np.inf))))


@contextlib.contextmanager
def _fitting() -> Iterator[None]:
    """lifetimes prints the optimizer's state to stdout when it fails (our JSON goes there) and
    resets the process's warning filters inside its likelihood: both are kept in here. The
    optimizer's intermediate overflows are harmless: the result is checked."""
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


def fit(summary: pd.DataFrame) -> CustomerBaseModel:
    """BG/NBD on every member; Gamma-Gamma on the repeat buyers with a positive `monetary_value`
    (None when they are too few, it does not converge or its mean is infinite, q ≤ 1)."""
    repeat = summary[summary["frequency"] > 0]
    if len(repeat) < MIN_REPEAT_BUYERS:
        raise Refused(f"the customer-base models need at least {MIN_REPEAT_BUYERS} members who bought on two "
                      f"different days; there are {len(repeat)} (of {len(summary)} buyers)",
                      code="too_few_repeat_buyers")
    x, t_x, T = (summary[c].to_numpy() for c in ("frequency", "recency", "T"))
    for penalizer in PENALIZERS:
        params = _fit_bgnbd(x, t_x, T, penalizer)
        if params is not None:
            break
    else:
        raise Refused("the BG/NBD model did not converge on these purchases: they are too few, or too regular, "
                      "to tell its four parameters apart", code="model_did_not_converge")
    r, alpha, a, b = (float(params[k]) for k in ("r", "alpha", "a", "b"))
    return CustomerBaseModel(r, alpha, a, b, bgnbd_log_likelihood(r, alpha, a, b, x, t_x, T), len(summary),
                             _fit_gamma_gamma(repeat[repeat["monetary_value"] > 0]), penalizer=penalizer)


# Tried in turn until BG/NBD converges: none first (the published fit), then lifetimes' L2 penalty
# on the parameters, weakest first. A small or very regular shop (everyone buying every week, none
# gone) leaves the four parameters undetermined without one; the penalty keeps them finite, and
# the model says which it took (`penalizer`).
PENALIZERS = (0.0, 0.001, 0.01, 0.1)


def _fit_bgnbd(x: np.ndarray, t_x: np.ndarray, T: np.ndarray, penalizer: float) -> pd.Series | None:
    try:
        with _fitting():
            params = BetaGeoFitter(penalizer_coef=penalizer).fit(x, t_x, T).params_
    except (ConvergenceError, np.linalg.LinAlgError):
        return None
    return params if np.all(np.isfinite(params.to_numpy())) else None


def _fit_gamma_gamma(repeat: pd.DataFrame) -> GammaGamma | None:
    if len(repeat) < MIN_REPEAT_BUYERS:
        return None
    try:
        with _fitting():
            params = GammaGammaFitter().fit(repeat["frequency"], repeat["monetary_value"]).params_
    except (ConvergenceError, np.linalg.LinAlgError):
        return None
    p, q, v = (float(params[k]) for k in ("p", "q", "v"))
    return GammaGamma(p, q, v) if np.all(np.isfinite([p, q, v])) and q > 1 else None


def predict(model: CustomerBaseModel, summary: pd.DataFrame, *, horizon_days: int) -> pd.DataFrame:
    """`summary` with p_alive, expected_purchases (in the next `horizon_days`), expected_order_value
    (yuan) and expected_value_fen = expected_purchases × expected_order_value, undiscounted.
    The order value is Gamma-Gamma's E[M | x, m̄] (for a member without repeats, the population
    mean p·v/(q−1)); without a Gamma-Gamma fit, the member's own mean per purchase day."""
    x, t_x, T = (summary[c].to_numpy(dtype=float) for c in ("frequency", "recency", "T"))
    bgnbd = model.bgnbd()
    with np.errstate(all="ignore"):
        p_alive = np.asarray(bgnbd.conditional_probability_alive(x, t_x, T), dtype=float)
        expected = np.asarray(bgnbd.conditional_expected_number_of_purchases_up_to_time(
            horizon_days / model.unit_days, x, t_x, T), dtype=float)
    if model.gamma_gamma is not None:
        gamma = GammaGammaFitter()
        gamma.params_ = pd.Series(asdict(model.gamma_gamma))
        order_value = np.asarray(gamma.conditional_expected_average_profit(x, summary["monetary_value"].to_numpy()),
                                 dtype=float)
    else:
        order_value = summary["past_value_fen"].to_numpy() / (x + 1) / 100
    value_fen = [fen_from_yuan(yuan) for yuan in expected * order_value]
    return summary.assign(p_alive=p_alive, expected_purchases=expected, expected_order_value=order_value,
                          expected_value_fen=pd.Series(value_fen, index=summary.index, dtype="int64"))


@dataclass(frozen=True)
class ChurnRisk:
    """A member the recall job may win back: `value_at_risk_fen` = past_value_fen × (1 − p_alive)."""

    member: str
    p_alive: float
    expected_purchases: float
    expected_value_fen: int
    past_value_fen: int
    value_at_risk_fen: int
    last_purchase_on: date

    def as_dict(self) -> dict[str, Any]:
        """For JSON and CSV: probabilities and counts as decimal strings, money in fen."""
        return {"member": self.member, "p_alive": decimal_text(self.p_alive, 4),
                "expected_purchases": decimal_text(self.expected_purchases, 2),
                "expected_value_fen": self.expected_value_fen, "past_value_fen": self.past_value_fen,
                "value_at_risk_fen": self.value_at_risk_fen, "last_purchase_on": self.last_purchase_on.isoformat()}


CHURN_COLUMNS = tuple(ChurnRisk.__dataclass_fields__)


def churn_risk(predictions: pd.DataFrame, *, threshold: float = CHURN_THRESHOLD,
               min_past_value_fen: int = 0) -> list[ChurnRisk]:
    """Members who bought on two days or more, spent at least `min_past_value_fen`, and whose
    p_alive is below `threshold`; the largest value at risk first (then the lowest p_alive,
    then the member id). A member with a single purchase day has p_alive 1 under BG/NBD and is
    never on it: the model has no evidence of a rhythm that stopped."""
    rows = predictions[(predictions["frequency"] > 0) & (predictions["p_alive"] < threshold)
                       & (predictions["past_value_fen"] >= min_past_value_fen)]
    found = [ChurnRisk(str(member), float(row.p_alive), float(row.expected_purchases), int(row.expected_value_fen),
                       int(row.past_value_fen), _value_at_risk(int(row.past_value_fen), float(row.p_alive)),
                       row.last_purchase_on)
             for member, row in zip(rows.index, rows.itertuples(index=False), strict=True)]
    return sorted(found, key=lambda risk: (-risk.value_at_risk_fen, risk.p_alive, risk.member))


def _value_at_risk(past_value_fen: int, p_alive: float) -> int:
    """past value × (1 − p_alive), in fen, rounded half up."""
    share = Decimal(1) - Decimal(repr(p_alive))
    return int((past_value_fen * share).to_integral_value(rounding=ROUND_HALF_UP))


def churn_risk_list(transactions: pd.DataFrame, *, as_of: datetime, horizon_days: int = 90,
                    threshold: float = CHURN_THRESHOLD, min_past_value_fen: int = 0,
                    timezone: tzinfo | None = None) -> tuple[CustomerBaseModel, list[ChurnRisk]]:
    """Fit on the purchases up to `as_of` and list the members at risk (what the recall job calls)."""
    summary = summarize(transactions, as_of=as_of, timezone=timezone)
    model = fit(summary)
    predictions = predict(model, summary, horizon_days=horizon_days)
    return model, churn_risk(predictions, threshold=threshold, min_past_value_fen=min_past_value_fen)


def model_as_json(model: CustomerBaseModel) -> dict[str, Any]:
    gamma = model.gamma_gamma
    return {"bgnbd": {"r": decimal_text(model.r, 4), "alpha": decimal_text(model.alpha, 4),
                      "a": decimal_text(model.a, 4), "b": decimal_text(model.b, 4),
                      "log_likelihood": decimal_text(model.log_likelihood, 1)},
            "gamma_gamma": None if gamma is None else {k: decimal_text(v, 4) for k, v in asdict(gamma).items()},
            "time_unit": "week" if model.unit_days == 7 else f"{model.unit_days} days",
            "customers": model.customers, "penalizer": decimal_text(model.penalizer, 3)}


def p_alive_histogram(p_alive: np.ndarray) -> dict[str, list[Any]]:
    """Ten bins of width 0.1, each closed on the left; the last, 0.9–1.0, holds 1.0 too."""
    bins = np.minimum(np.floor(np.asarray(p_alive, dtype=float) * 10), 9).astype(int)
    counts = np.bincount(bins, minlength=10)
    return {"bins": [f"{i / 10:.1f}-{(i + 1) / 10:.1f}" for i in range(10)], "members": [int(n) for n in counts]}


def summary_for_report(transactions: pd.DataFrame, *, as_of: datetime, horizon_days: int = 90, top: int = 20,
                       timezone: tzinfo | None = None) -> dict[str, Any]:
    """The models' section of the analytics report (JSON-serialisable; shape in docs/models.md).
    Totals are sums over members: expected_value_fen_total adds the members' rounded fen."""
    summary = summarize(transactions, as_of=as_of, timezone=timezone)
    model = fit(summary)
    predictions = predict(model, summary, horizon_days=horizon_days)
    keep = ("member", "p_alive", "expected_purchases", "expected_value_fen", "past_value_fen")
    return {"model": model_as_json(model), "horizon_days": horizon_days,
            "expected_purchases_total": decimal_text(float(predictions["expected_purchases"].sum()), 1),
            "expected_value_fen_total": int(predictions["expected_value_fen"].sum()),
            "p_alive_histogram": p_alive_histogram(predictions["p_alive"].to_numpy()),
            "churn_risk": [{k: row[k] for k in keep} for row in
                           (risk.as_dict() for risk in churn_risk(predictions)[:top])]}


def churn_report(as_of: datetime, *, horizon_days: int = 90, threshold: float = CHURN_THRESHOLD) -> dict[str, Any]:
    """`loyalty report churn`: the database's purchases up to `as_of` (Frames.transactions: net of
    refunds, fully refunded orders dropped), days in the ruleset's timezone; the members at risk."""
    from loyalty.analytics.frames import load_frames  # here: the models themselves run without Django

    frames = load_frames(end=as_of.date() + timedelta(days=1), as_of=as_of)  # a superset; summarize cuts
    model, risks = churn_risk_list(frames.transactions(), as_of=as_of, horizon_days=horizon_days,
                                   threshold=threshold, timezone=frames.timezone)
    return {"report": "churn_risk", "as_of": as_of.isoformat(), "timezone": frames.timezone.key,
            "horizon_days": horizon_days, "threshold": decimal_text(threshold, 4), "unit": "fen",
            "model": model_as_json(model), "columns": list(CHURN_COLUMNS), "rows": [risk.as_dict() for risk in risks]}
