"""The schema stays distributable by member id (docs/scaling.md).

Every member-owned table carries `member_id`, a foreign key to `members`, and at least one
index whose first column is `member_id`; `members` itself is keyed by `id`. The check is a
function of plain data (a table's columns, its references, its indexes as column lists), so
it is tested on a deliberately bad table as well as run on the real models. No database.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from django.apps import apps
from django.db import models

from loyalty.store.models import (
    ApiKey,
    BudgetSpend,
    JobRun,
    LinkedValue,
    Member,
    OpsAlert,
    Reward,
    RulesetVersion,
    WebhookEndpoint,
)

DISTRIBUTION_COLUMN = "member_id"
DISTRIBUTION_ROOT = Member  # distributed by its own `id`
# Replicated to every node (or, job_runs, budget_spends and ops_alerts, local on the
# coordinator; linked_values, distributed by its own value): no member_id.
REFERENCE_TABLES = (RulesetVersion, ApiKey, WebhookEndpoint, Reward, JobRun, BudgetSpend, OpsAlert, LinkedValue)
# The tables docs/scaling.md distributes; a new member-owned model is checked all the same.
DOCUMENTED_MEMBER_TABLES = {
    "orders", "order_items", "refunds", "actions", "ledger_entries", "points_lots", "points_debts",
    "tier_changes", "adjustments", "redemptions", "outbox_events", "webhook_deliveries", "coupons", "invitations",
    "deferred_grants", "review_cases", "member_links", "risk_scores", "member_center_views",
}


@dataclass(frozen=True)
class TableShape:
    """What the distribution check needs to know about one table, as plain data."""

    table: str
    columns: frozenset[str]
    indexes: tuple[tuple[str, ...], ...]  # column lists: indexes, unique constraints, the primary key
    references: dict[str, str] = field(default_factory=dict)  # foreign-key column -> referenced table


def distribution_problems(shape: TableShape, root_table: str = "members") -> list[str]:
    """What keeps `shape` from being distributed by member id and co-located with `root_table`."""
    problems = []
    if DISTRIBUTION_COLUMN not in shape.columns:
        problems.append(f"{shape.table}: no {DISTRIBUTION_COLUMN} column (a ForeignKey named `member`)")
    elif shape.references.get(DISTRIBUTION_COLUMN) != root_table:
        problems.append(f"{shape.table}: {DISTRIBUTION_COLUMN} is not a foreign key to {root_table}")
    if not any(index and index[0] == DISTRIBUTION_COLUMN for index in shape.indexes):
        listed = ", ".join(f"({', '.join(index)})" for index in shape.indexes) or "none"
        problems.append(f"{shape.table}: no index whose first column is {DISTRIBUTION_COLUMN} (indexes: {listed})")
    return problems


def _column(model: type[models.Model], name: str) -> str:
    # Meta.indexes may name a field "-paid_at" for a descending column.
    field = model._meta.get_field(name.lstrip("-"))
    assert isinstance(field, models.Field), f"{model._meta.db_table}: {name} is not a column"
    return field.column


def _columns(model: type[models.Model], names: Sequence[str]) -> tuple[str, ...]:
    return tuple(_column(model, name) for name in names)


def shape_of(model: type[models.Model]) -> TableShape:
    """The table a Django model creates: every index Django will build for it, as column lists."""
    meta = model._meta
    concrete = meta.concrete_fields
    indexes: list[tuple[str, ...]] = [(meta.pk.column,)] if meta.pk is not None else []
    # A field's own index: db_index=True, unique=True, and a ForeignKey unless db_index=False.
    indexes += [(f.column,) for f in concrete if (f.db_index or f.unique) and not f.primary_key]
    # Expression indexes have no `fields`: they lead with no column and count for nothing here.
    indexes += [_columns(model, index.fields) for index in meta.indexes]
    indexes += [_columns(model, names) for names in meta.unique_together]
    indexes += [_columns(model, c.fields) for c in meta.constraints if isinstance(c, models.UniqueConstraint)]
    references = {f.column: f.related_model._meta.db_table for f in concrete
                  if isinstance(f, models.ForeignKey)}
    return TableShape(meta.db_table, frozenset(f.column for f in concrete), tuple(indexes), references)


def _member_owned_models() -> list[type[models.Model]]:
    excluded = {DISTRIBUTION_ROOT, *REFERENCE_TABLES}
    return [m for m in apps.get_app_config("loyalty").get_models() if m not in excluded]


def test_every_member_owned_table_has_member_id_and_an_index_leading_with_it() -> None:
    shapes = [shape_of(model) for model in _member_owned_models()]
    assert {s.table for s in shapes} >= DOCUMENTED_MEMBER_TABLES, "a table named in docs/scaling.md is missing"
    problems = [problem for shape in shapes for problem in distribution_problems(shape)]
    assert not problems, "not distributable by member id:\n" + "\n".join(problems)


def test_members_is_keyed_by_id_and_the_excluded_tables_are_the_root_and_the_reference_table() -> None:
    loyalty_models = set(apps.get_app_config("loyalty").get_models())
    assert {DISTRIBUTION_ROOT, *REFERENCE_TABLES} <= loyalty_models
    assert Member._meta.db_table == "members"
    assert Member._meta.pk is not None and Member._meta.pk.column == "id", "members must be keyed by `id`"
    for model in REFERENCE_TABLES:
        assert DISTRIBUTION_COLUMN not in shape_of(model).columns, f"{model._meta.db_table} is not member-owned"


def test_the_check_reports_a_table_without_member_id_and_without_a_leading_index() -> None:
    coupons = TableShape("coupons", frozenset({"id", "code", "issued_at"}), (("id",), ("code",), ("issued_at",)))
    assert distribution_problems(coupons) == [
        "coupons: no member_id column (a ForeignKey named `member`)",
        "coupons: no index whose first column is member_id (indexes: (id), (code), (issued_at))",
    ]


def test_the_check_reports_member_id_that_no_index_leads_with_or_that_points_elsewhere() -> None:
    trailing = TableShape("coupons", frozenset({"id", "code", "member_id"}), (("id",), ("code", "member_id")),
                          {"member_id": "members"})
    assert distribution_problems(trailing) == [
        "coupons: no index whose first column is member_id (indexes: (id), (code, member_id))"]
    elsewhere = TableShape("coupons", frozenset({"id", "member_id"}), (("member_id", "id"),),
                           {"member_id": "accounts"})
    assert distribution_problems(elsewhere) == ["coupons: member_id is not a foreign key to members"]


def test_the_check_accepts_a_table_keyed_and_indexed_by_member_id() -> None:
    lots = TableShape("coupons", frozenset({"id", "member_id"}), (("id",), ("member_id", "id")),
                      {"member_id": "members"})
    assert distribution_problems(lots) == []
