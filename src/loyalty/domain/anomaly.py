"""The nightly statistical detector: robust z-scores over log1p-transformed member features.

For each feature f in DETECTOR_FEATURES, over the members scored that night:

    x      = log1p(value)                    (refunded amounts in yuan)
    median = median(x)                       over the members scored, or, for a SPARSE feature
                                             (most members have 0), over those with a value above 0
    scale  = max(1.4826 × MAD(x), SCALE_FLOOR)   MAD = median(|x − median|) over the same members;
                                             1.4826 makes it σ for normally distributed data
    z_f    = max(0, (x − median) ÷ scale)     one-sided: only "more than the others" is suspicious;
                                             a sparse feature at 0 scores 0

and the member's score is max_f z_f. A member is flagged when score > the ruleset's
`risk.detector.threshold`. Judging a sparse feature among the members who have it keeps one
refund, or one purchase on a night most members bought nothing, from looking extreme; the floor
keeps a population of identical values (MAD 0) from turning a small difference into a huge z.
The score depends only on the population's values, not their order, and rises with each of
the member's own values (for a fixed median and scale).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import median_abs_deviation

DETECTOR_FEATURES = ("orders", "orders_7d", "velocity", "refunded_fen", "growth_day", "shared_members")
SCALE_FLOOR = 0.5  # in log1p units: e^0.5 ≈ 1.65, so one unit of z is at least a 65% rise
SPARSE = frozenset({"refunded_fen", "growth_day", "shared_members"})
_YUAN = {"refunded_fen": 100}


@dataclass(frozen=True)
class Reference:
    """The population's median and scale per feature, on the log1p scale."""

    median: dict[str, float]
    scale: dict[str, float]


def transformed(features: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({name: np.log1p(features[name].astype("float64") / _YUAN.get(name, 1))
                         for name in DETECTOR_FEATURES}, index=features.index)


def fit(features: pd.DataFrame) -> Reference:
    x = transformed(features)
    median, scale = {}, {}
    for name in DETECTOR_FEATURES:
        values = x[name][x[name] > 0] if name in SPARSE else x[name]
        median[name] = float(values.median()) if len(values) else 0.0
        mad = float(median_abs_deviation(values, scale="normal")) if len(values) else 0.0
        scale[name] = max(mad, SCALE_FLOOR)
    return Reference(median, scale)


def feature_z(features: pd.DataFrame, reference: Reference) -> pd.DataFrame:
    x = transformed(features)
    z = {name: ((x[name] - reference.median[name]) / reference.scale[name]).clip(lower=0.0)
         for name in DETECTOR_FEATURES}
    for name in SPARSE:
        z[name] = z[name].where(x[name] > 0, 0.0)
    return pd.DataFrame(z, index=features.index)


def scores(features: pd.DataFrame, reference: Reference | None = None) -> pd.Series:
    """Each member's score: the largest one-sided robust z over the features (0 for nobody)."""
    z = feature_z(features, reference or fit(features))
    return z.max(axis=1) if len(z) else pd.Series(0.0, index=features.index)


def milli(score: float) -> int:
    """A score kept exactly: thousandths, rounded half up (scores are never negative)."""
    return int(np.floor(score * 1000 + 0.5))
