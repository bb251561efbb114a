"""A shop drawn from the customer-base models themselves, for tests that need a fit to converge."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

SHANGHAI = ZoneInfo("Asia/Shanghai")


def shop(members: int = 150, seed: int = 7) -> pd.DataFrame:
    """A shop drawn from the models themselves: BG/NBD with r = 0.5, α = 2 weeks, a = 1, b = 3 over
    the first half of 2026, and Gamma-Gamma order values (p = 6, q = 4, v = 15 yuan)."""
    rng = np.random.default_rng(seed)
    start, rows = datetime(2026, 1, 1, 10, tzinfo=SHANGHAI), []
    for i in range(members):
        rate, drop, scale = rng.gamma(0.5, 1 / 2.0), rng.beta(1.0, 3.0), rng.gamma(4.0, 1 / 15.0)
        day = int(rng.integers(0, 60))
        while day <= 180:
            rows.append((f"m{i:03d}", start + timedelta(days=day), max(100, int(rng.gamma(6.0, 1 / scale) * 100))))
            if rng.random() < drop:
                break
            day += int(np.ceil(rng.exponential(7 / max(rate, 1e-9))))
    frame = pd.DataFrame(rows, columns=["member", "at", "amount_fen"])
    frame["at"] = pd.to_datetime(frame["at"], utc=True)
    return frame
