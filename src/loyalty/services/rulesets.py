"""Ruleset versions: validate documents, publish them with `effective_from`, find the one in force.

Parsed rulesets are cached per process, keyed by every version's (number, checksum, start), so
the hot path pays one small query to know the cache is current and never re-parses YAML.
"""

from __future__ import annotations

import hashlib
import importlib.resources
from bisect import bisect_right
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from django.db import transaction

from loyalty.clock import Clock, system_clock
from loyalty.domain.documents import from_json, from_yaml, to_json
from loyalty.domain.errors import Conflict, InvalidInput, NotFound, Refused
from loyalty.domain.notice import tightenings
from loyalty.domain.periods import require_aware
from loyalty.domain.rules import Ruleset, parse_ruleset
from loyalty.store import sql
from loyalty.store.models import RulesetVersion

PRESETS = ("default", "seed000-weighted", "seed000-points", "seed001-all")


@dataclass(frozen=True)
class ActiveRuleset:
    version: int
    ruleset: Ruleset
    effective_from: datetime


def preset_document(name: str) -> dict[str, Any]:
    """One of the shipped presets (`rulesets/NAME.yaml`) as a document."""
    if name not in PRESETS:
        raise NotFound(f"unknown preset {name!r}; presets: {', '.join(PRESETS)}", field="preset")
    text = (importlib.resources.files("loyalty") / "rulesets" / f"{name}.yaml").read_text("utf-8")
    return from_yaml(text)


def read_document(path: str | Path) -> dict[str, Any]:
    """A ruleset document from a YAML or JSON file (raises RulesetInvalid with every problem)."""
    text = Path(path).read_text("utf-8")
    return from_json(text) if str(path).endswith(".json") else from_yaml(text)


def validate(document: dict[str, Any]) -> Ruleset:
    return parse_ruleset(document)


def publish(document: dict[str, Any], *, effective_from: datetime, actor: str, reason: str = "",
            force: bool = False, clock: Clock = system_clock) -> RulesetVersion:
    """Store a validated document as the next version. Publishing the same document with the
    same start and reason again returns the existing version (idempotent); with another reason it
    is a Conflict (`exists_with_different_payload`), as a replay with a different payload is for
    every idempotent write. The actor is not part of the request: it is who sent it (a retry may
    come from another key or login, as for adjustments), and the version keeps the first one.

    A version that tightens the tiers of the one in force at its start (`domain.notice`) must
    start at least `publishing.notice_days` from now (the longer of the two versions' notice), or
    is Refused (`notice_period`); an operator may `force` it, giving the reason."""
    ruleset = parse_ruleset(document)
    require_aware(effective_from, "effective_from")
    if force and not reason.strip():
        raise InvalidInput("forcing a publication inside the notice period needs a reason", field="reason")
    canonical = to_json(document)
    checksum = hashlib.sha256(canonical.encode()).hexdigest()
    with transaction.atomic():
        latest = RulesetVersion.objects.select_for_update().order_by("-version").first()
        if latest and latest.checksum == checksum and latest.effective_from == effective_from:
            if latest.reason != reason:
                raise Conflict(
                    f"this document was already published from {effective_from.isoformat()} as version "
                    f"{latest.version}, with another reason; a replay must send the same one",
                    field="reason", code="exists_with_different_payload")
            return latest
        if latest and effective_from < latest.effective_from:
            raise InvalidInput(
                f"effective_from must not precede the latest version's ({latest.effective_from.isoformat()})",
                field="effective_from")
        if latest and not force:
            # The latest version is the one in force at `effective_from`: no version may start earlier.
            _check_notice(parse_ruleset(from_json(latest.document)), ruleset, latest.version, effective_from,
                          clock.now())
        return RulesetVersion.objects.create(
            version=(latest.version + 1) if latest else 1, name=ruleset.name, document=canonical,
            checksum=checksum, effective_from=effective_from, published_at=clock.now(),
            published_by=actor, reason=reason)


def _check_notice(in_force: Ruleset, ruleset: Ruleset, version: int, effective_from: datetime,
                  now: datetime) -> None:
    found = tightenings(in_force, ruleset)
    notice_days = max(in_force.notice_days, ruleset.notice_days)
    earliest = now + timedelta(days=notice_days)
    if found and effective_from < earliest:
        raise Refused(
            f"this version makes tiers harder than version {version} ({'; '.join(found)}): it needs "
            f"{notice_days} days' notice, so it may start at {earliest.isoformat()} at the earliest "
            "(or be forced by an operator with a reason)",
            field="effective_from", code="notice_period")


class Rulebook:
    """Every published version, parsed; one lookup per transaction instead of one per event."""

    def __init__(self, versions: list[ActiveRuleset]):
        self.versions = versions
        self._starts = [v.effective_from for v in versions]

    def in_force(self, as_of: datetime) -> ActiveRuleset:
        """The version whose effective_from is the latest at or before `as_of`."""
        index = bisect_right(self._starts, as_of)
        if index == 0:
            raise NotFound(f"no ruleset is in force at {as_of.isoformat()}; publish one first",
                           code="no_ruleset_in_force")
        return self.versions[index - 1]

    def by_version(self, version: int) -> ActiveRuleset:
        for active in self.versions:
            if active.version == version:
                return active
        raise NotFound(f"unknown ruleset version {version}", code="unknown_ruleset_version")


_cache: dict[tuple[tuple[Any, ...], ...], Rulebook] = {}


def rulebook(stamp: tuple[tuple[Any, ...], ...] | None = None) -> Rulebook:
    """The published versions, re-parsed only when the set of versions changed (`stamp`, if the
    caller read it already along with other queries)."""
    stamp = sql.ruleset_stamp() if stamp is None else stamp
    if stamp not in _cache:
        rows = RulesetVersion.objects.order_by("effective_from", "version").values_list(
            "version", "document", "effective_from")
        _cache.clear()
        _cache[stamp] = Rulebook([ActiveRuleset(v, parse_ruleset(from_json(document)), start)
                                  for v, document, start in rows])
    return _cache[stamp]


def in_force(as_of: datetime) -> ActiveRuleset:
    return rulebook().in_force(as_of)


def by_version(version: int) -> ActiveRuleset:
    return rulebook().by_version(version)


def stored(version: int | None = None) -> RulesetVersion | None:
    """A stored version (default: the latest published)."""
    query = RulesetVersion.objects.order_by("-version")
    return query.filter(version=version).first() if version else query.first()
