"""How analytics figures become JSON: rates as 4-place decimal strings, money as whole fen.
Each rounding is half up and done in integers, so a figure never depends on float printing."""

from __future__ import annotations

import math


def rate_text(numerator: int, denominator: int) -> str:
    """numerator / denominator with 4 decimals, half up ("0.0000" over nothing)."""
    if denominator <= 0:
        return "0.0000"
    scaled = (2 * 10_000 * int(numerator) + int(denominator)) // (2 * int(denominator))
    return f"{scaled // 10_000}.{scaled % 10_000:04d}"


def fen_average(total_fen: int, count: int) -> int:
    """Average money in whole fen, half a fen rounded up (0 over nothing)."""
    if count <= 0:
        return 0
    return (2 * int(total_fen) + int(count)) // (2 * int(count))


def half_up(value: float) -> int:
    """A median of integers (a whole number or one ending in .5, both exact in a float) to an int."""
    return math.floor(value + 0.5)


def median_text(value: float) -> str:
    """A median of integers as a decimal string: "5" or "1.5"."""
    return str(int(value)) if float(value).is_integer() else f"{value:.1f}"
