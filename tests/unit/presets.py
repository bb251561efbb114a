"""The rulesets/ presets and small builders for rules-engine tests (pure: no Django, no database).

Inputs are written in the domain's words: a Shanghai wall-clock time, yuan as decimal strings,
order lines as (category, yuan), window facts as orders / yuan / flags.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from loyalty.domain.conditions import Facts
from loyalty.domain.documents import from_yaml
from loyalty.domain.growth import Line
from loyalty.domain.money import parse_yuan
from loyalty.domain.rules import Ruleset, parse_ruleset

REPO_ROOT = Path(__file__).resolve().parents[2]
SHANGHAI = ZoneInfo("Asia/Shanghai")
PRESETS = ("default", "seed000-weighted", "seed000-points", "seed001-all")


def preset_document(name: str) -> dict[str, Any]:
    """A fresh, mutable copy of a preset document (exact decimals)."""
    return from_yaml((REPO_ROOT / "rulesets" / f"{name}.yaml").read_text(encoding="utf-8"))


@cache
def preset(name: str) -> Ruleset:
    return parse_ruleset(preset_document(name))


def at(text: str) -> datetime:
    """A Shanghai wall-clock time: at("2027-01-02 10:00") is a Saturday morning."""
    return datetime.fromisoformat(text).replace(tzinfo=SHANGHAI)


def fen(yuan: str) -> int:
    return parse_yuan(yuan, allow_zero=True)


def lines(items: Sequence[tuple[str | None, str]]) -> list[Line]:
    """Order lines from (category, yuan) pairs."""
    return [Line(category, fen(amount)) for category, amount in items]


def window_facts(window: str = "12m", *, invited: bool = False, **metrics: int | str) -> Facts:
    """Facts over one window; amounts (`amount`, `max_single_order`) are given in yuan strings."""
    values = {
        (metric, window): fen(value) if metric in ("amount", "max_single_order") else int(value)
        for metric, value in metrics.items()
    }
    return Facts(values, {"invited": invited})
