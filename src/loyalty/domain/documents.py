"""Ruleset documents as text: YAML in files, JSON in the database, numbers always exact.

YAML floats and JSON numbers become `Decimal`, so "1.5" is 1.5 and never 1.4999999999999999.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import yaml

from loyalty.domain.errors import RulesetInvalid


class _ExactLoader(yaml.SafeLoader):
    """SafeLoader that reads floats as Decimal."""


def _decimal(loader: yaml.SafeLoader, node: yaml.nodes.ScalarNode) -> Decimal:
    return Decimal(str(loader.construct_scalar(node)).replace("_", ""))


_ExactLoader.add_constructor("tag:yaml.org,2002:float", _decimal)


def from_yaml(text: str) -> dict[str, Any]:
    try:
        document = yaml.load(text, Loader=_ExactLoader)
    except (yaml.YAMLError, ArithmeticError) as error:
        raise RulesetInvalid([f"$: not valid YAML: {error}"]) from error
    if not isinstance(document, dict):
        raise RulesetInvalid(["$: a ruleset is a mapping"])
    return document


def from_json(text: str) -> dict[str, Any]:
    document = json.loads(text, parse_float=Decimal)
    if not isinstance(document, dict):
        raise RulesetInvalid(["$: a ruleset is a mapping"])
    return document


def to_json(document: Any) -> str:
    """Canonical JSON (sorted keys); Decimals are written as strings so they stay exact."""
    def default(value: object) -> str:
        if isinstance(value, Decimal):
            return str(value)
        raise TypeError(f"cannot store {type(value).__name__} in a ruleset")

    return json.dumps(document, default=default, sort_keys=True, ensure_ascii=False)
