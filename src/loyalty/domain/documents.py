"""Ruleset documents as text: YAML in files, JSON in the database, numbers always exact.

YAML floats and JSON numbers become `Decimal`, so "1.5" is 1.5 and never 1.4999999999999999.
"""

from __future__ import annotations

import difflib
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


class _ExactDumper(yaml.SafeDumper):
    """SafeDumper that writes Decimals as plain numbers, digit for digit."""


def _decimal_scalar(dumper: yaml.SafeDumper, value: Decimal) -> yaml.nodes.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:float", str(value))


_ExactDumper.add_representer(Decimal, _decimal_scalar)


def to_yaml(document: Any) -> str:
    """A document as block YAML, keys in the document's order, for people to read and edit;
    `from_yaml` reads it back to the same document."""
    return yaml.dump(document, Dumper=_ExactDumper, allow_unicode=True, sort_keys=False, default_flow_style=False)


def to_json(document: Any) -> str:
    """Canonical JSON (sorted keys); Decimals are written as strings so they stay exact."""
    def default(value: object) -> str:
        if isinstance(value, Decimal):
            return str(value)
        raise TypeError(f"cannot store {type(value).__name__} in a ruleset")

    return json.dumps(document, default=default, sort_keys=True, ensure_ascii=False)


def canonical_yaml(document: dict[str, Any]) -> str:
    """A document as it is stored (sorted keys; numbers that are not integers as strings), in
    YAML: two documents written this way differ only where their rules do."""
    return to_yaml(from_json(to_json(document)))


def document_diff(old: dict[str, Any] | None, new: dict[str, Any], old_label: str,
                  new_label: str) -> list[tuple[str, str]]:
    """The unified diff of two documents' canonical YAML, each line with its kind: "add",
    "remove", "hunk" (@@ lines), "file" (the ---/+++ header) or "same"."""
    before = canonical_yaml(old).splitlines() if old is not None else []
    lines = difflib.unified_diff(before, canonical_yaml(new).splitlines(), old_label, new_label, lineterm="")
    return [(_diff_kind(line), line) for line in lines]


def _diff_kind(line: str) -> str:
    if line.startswith(("+++", "---")):
        return "file"
    return {"+": "add", "-": "remove", "@": "hunk"}.get(line[:1], "same")
