"""The tables. Every member-owned table carries `member_id` and an index that starts with it,
so the schema can be distributed by member id without changing a query.

Ledger entries are only inserted, never updated or deleted; a correction is a new entry that
points at the one it corrects. Cached balances on `Member` always equal the ledger sums:
    growth_balance == Σ growth entries
    points_balance == Σ points entries == Σ lots.remaining − points_debt
    points_debt    == Σ debts.remaining
Every value-moving row has a UNIQUE idempotency key or client id.
"""

from __future__ import annotations

from django.db import models

LEDGERS = [("growth", "growth"), ("points", "points")]
SOURCES = [(s, s) for s in (
    "order", "refund", "check_in", "review", "share", "task", "adjustment", "redemption",
    "expiry", "campaign",
)]


class Member(models.Model):
    external_id = models.CharField(max_length=64, unique=True)
    tier = models.CharField(max_length=32)
    tier_reached_at = models.DateTimeField(null=True, blank=True)
    tier_expires_at = models.DateTimeField(null=True, blank=True)
    invited = models.BooleanField(default=False)
    birthday = models.DateField(null=True, blank=True)
    registered_at = models.DateTimeField()
    growth_balance = models.BigIntegerField(default=0)
    points_balance = models.BigIntegerField(default=0)
    points_debt = models.BigIntegerField(default=0)
    orders_count = models.IntegerField(default=0)  # lifetime, paid orders
    paid_fen = models.BigIntegerField(default=0)  # lifetime, before refunds
    refunded_fen = models.BigIntegerField(default=0)
    payload_hash = models.CharField(max_length=64)
    # Set while the member has an open review case (ReviewCase): the credit of what is recorded
    # meanwhile is withheld. Read with the member's row by the event batches, which lock it anyway.
    held_since = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "members"

    def __str__(self) -> str:
        return self.external_id


class RulesetVersion(models.Model):
    version = models.IntegerField(unique=True)
    name = models.CharField(max_length=100)
    document = models.TextField(help_text="Canonical JSON; numbers that are not integers are strings.")
    checksum = models.CharField(max_length=64)
    effective_from = models.DateTimeField(db_index=True)
    published_at = models.DateTimeField()
    published_by = models.CharField(max_length=100)
    reason = models.TextField(blank=True)

    class Meta:
        db_table = "ruleset_versions"
        ordering = ["version"]

    def __str__(self) -> str:
        return f"v{self.version} {self.name}"


class Order(models.Model):
    order_id = models.CharField(max_length=64, unique=True)
    member = models.ForeignKey(Member, on_delete=models.PROTECT, db_index=False)  # orders_member_paid leads
    paid_at = models.DateTimeField()
    business_date = models.DateField()
    amount_fen = models.BigIntegerField()
    refunded_fen = models.BigIntegerField(default=0)
    growth_base = models.BigIntegerField()
    growth_bonus = models.BigIntegerField()
    points = models.BigIntegerField()
    growth_reversed = models.BigIntegerField(default=0)
    points_reversed = models.BigIntegerField(default=0)
    ruleset_version = models.IntegerField()
    payload_hash = models.CharField(max_length=64)
    recorded_at = models.DateTimeField()
    quote_id = models.CharField(max_length=64, blank=True, default="")  # the price quote it cites, if any
    # Why the order credited nothing (`device_shared`, `address_shared`); '' when it credited as usual.
    capped_reason = models.CharField(max_length=32, blank=True, default="", db_default="")
    # Where it came from, when the platform says (docs/abuse.md); '' when not sent.
    device_id = models.CharField(max_length=128, blank=True, default="", db_default="")
    ip = models.CharField(max_length=45, blank=True, default="", db_default="")
    address_hash = models.CharField(max_length=128, blank=True, default="", db_default="")
    hold = models.CharField(max_length=8, blank=True, default="", db_default="")  # see HOLD_STATES

    class Meta:
        db_table = "orders"
        indexes = [models.Index(fields=["member", "paid_at"], name="orders_member_paid")]

    def __str__(self) -> str:
        return self.order_id


class OrderItem(models.Model):
    # Items are read by member and order (items_member_order); orders are never deleted.
    order = models.ForeignKey(Order, to_field="order_id", db_column="order_ref", on_delete=models.PROTECT,
                              related_name="items", db_index=False)
    member = models.ForeignKey(Member, on_delete=models.PROTECT, db_index=False)
    sku = models.CharField(max_length=64)
    category = models.CharField(max_length=64, blank=True)
    amount_fen = models.BigIntegerField()

    class Meta:
        db_table = "order_items"
        indexes = [models.Index(fields=["member", "order"], name="items_member_order")]


class Refund(models.Model):
    refund_id = models.CharField(max_length=64, unique=True)
    order = models.ForeignKey(Order, to_field="order_id", db_column="order_ref", on_delete=models.PROTECT,
                              related_name="refunds")
    member = models.ForeignKey(Member, on_delete=models.PROTECT)
    amount_fen = models.BigIntegerField()
    refunded_at = models.DateTimeField()
    growth_reversed = models.BigIntegerField()
    points_reversed = models.BigIntegerField()
    points_debt_created = models.BigIntegerField(default=0)
    points_written_off = models.BigIntegerField(default=0)
    payload_hash = models.CharField(max_length=64)
    recorded_at = models.DateTimeField()

    class Meta:
        db_table = "refunds"


class Action(models.Model):
    event_id = models.CharField(max_length=64, unique=True)
    member = models.ForeignKey(Member, on_delete=models.PROTECT, db_index=False)
    type = models.CharField(max_length=16)
    at = models.DateTimeField()
    business_date = models.DateField()
    ref = models.CharField(max_length=64, blank=True)
    growth = models.BigIntegerField()
    points = models.BigIntegerField()
    capped_reason = models.CharField(max_length=32, blank=True)
    device_id = models.CharField(max_length=128, blank=True, default="", db_default="")  # as on Order
    ip = models.CharField(max_length=45, blank=True, default="", db_default="")
    address_hash = models.CharField(max_length=128, blank=True, default="", db_default="")
    ruleset_version = models.IntegerField()
    payload_hash = models.CharField(max_length=64)
    recorded_at = models.DateTimeField()
    hold = models.CharField(max_length=8, blank=True, default="", db_default="")  # see HOLD_STATES

    class Meta:
        db_table = "actions"
        indexes = [
            models.Index(fields=["member", "type", "business_date"], name="actions_member_day"),
            models.Index(fields=["member", "type", "ref"], name="actions_member_ref"),
        ]


class LedgerEntry(models.Model):
    member = models.ForeignKey(Member, on_delete=models.PROTECT, db_index=False)
    ledger = models.CharField(max_length=6, choices=LEDGERS)
    delta = models.BigIntegerField()
    source = models.CharField(max_length=16, choices=SOURCES)
    reference = models.CharField(max_length=128)
    idempotency_key = models.CharField(max_length=160)  # unique: see Meta.constraints
    reverses = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, db_index=False)
    ruleset_version = models.IntegerField(null=True, blank=True)
    occurred_at = models.DateTimeField()
    business_date = models.DateField()
    recorded_at = models.DateTimeField()

    class Meta:
        db_table = "ledger_entries"
        verbose_name_plural = "ledger entries"
        # A constraint rather than unique=True: on PostgreSQL, Django adds a second `_like`
        # index to every unique CharField, which the two hottest inserts would pay for nothing.
        constraints = [models.UniqueConstraint(fields=["idempotency_key"], name="entries_idempotency_key_unique")]
        indexes = [
            models.Index(fields=["member", "ledger", "business_date"], name="entries_member_day"),
            models.Index(fields=["member", "ledger", "id"], name="entries_member_ledger"),
        ]


class PointsLot(models.Model):
    member = models.ForeignKey(Member, on_delete=models.PROTECT, db_index=False)
    key = models.CharField(max_length=160, help_text="The idempotency key of the award; unique.")
    source = models.CharField(max_length=16, choices=SOURCES)
    reference = models.CharField(max_length=128)
    points = models.BigIntegerField()
    remaining = models.BigIntegerField()
    earned_at = models.DateTimeField()
    available_at = models.DateTimeField()
    expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "points_lots"
        constraints = [models.UniqueConstraint(fields=["key"], name="lots_key_unique")]  # see LedgerEntry
        indexes = [models.Index(fields=["member", "remaining"], name="lots_member_live")]


class PointsDebt(models.Model):
    member = models.ForeignKey(Member, on_delete=models.PROTECT, db_index=False)
    key = models.CharField(max_length=160, unique=True)
    reference = models.CharField(max_length=128)
    amount = models.BigIntegerField()
    remaining = models.BigIntegerField()
    created_at = models.DateTimeField()

    class Meta:
        db_table = "points_debts"
        indexes = [models.Index(fields=["member", "remaining"], name="debts_member_open")]


class TierChange(models.Model):
    member = models.ForeignKey(Member, on_delete=models.PROTECT, db_index=False)
    key = models.CharField(max_length=160)  # unique: see Meta.constraints
    from_tier = models.CharField(max_length=32)
    to_tier = models.CharField(max_length=32)
    reason = models.CharField(max_length=16)
    changed_at = models.DateTimeField()
    expires_at = models.DateTimeField(null=True, blank=True)
    ruleset_version = models.IntegerField()

    class Meta:
        db_table = "tier_changes"
        constraints = [models.UniqueConstraint(fields=["key"], name="tier_changes_key_unique")]  # see OutboxEvent
        indexes = [models.Index(fields=["member", "changed_at"], name="tier_changes_member")]


class Adjustment(models.Model):
    adjustment_id = models.CharField(max_length=64, unique=True)
    member = models.ForeignKey(Member, on_delete=models.PROTECT)
    ledger = models.CharField(max_length=6, choices=LEDGERS)
    delta = models.BigIntegerField()
    reason = models.TextField()
    actor = models.CharField(max_length=100)
    payload_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField()

    class Meta:
        db_table = "adjustments"


REWARD_KINDS = [(k, k) for k in ("goods", "coupon")]


class Reward(models.Model):
    """The points catalogue: goods (the platform delivers them) or coupons issued at once, for
    `points_cost` points each. `stock` null is unlimited; it only shrinks under a condition, so
    it never goes below zero. Operators manage it in the admin (docs/benefits.md)."""

    code = models.SlugField(max_length=64, unique=True, help_text="What the API names it, e.g. mug-2027.")
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=8, choices=REWARD_KINDS, default="goods")
    points_cost = models.BigIntegerField(help_text="Points per unit; more than zero.")
    value_fen = models.BigIntegerField(default=0, help_text="Coupon rewards: the coupon's face value, in fen.")
    min_spend_fen = models.BigIntegerField(default=0, help_text="Coupon rewards: the spend it needs, in fen.")
    valid_days = models.IntegerField(null=True, blank=True, help_text="Coupon rewards: days valid from issue.")
    stock = models.BigIntegerField(null=True, blank=True, help_text="Units left; empty means unlimited.")
    per_member_limit = models.IntegerField(null=True, blank=True,
                                           help_text="Units one member may hold (reversed ones not counted).")
    active = models.BooleanField(default=True)
    available_from = models.DateTimeField(null=True, blank=True)
    available_until = models.DateTimeField(null=True, blank=True, help_text="Exclusive.")
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        db_table = "rewards"
        constraints = [
            models.CheckConstraint(condition=models.Q(points_cost__gt=0), name="rewards_cost_positive"),
            models.CheckConstraint(condition=models.Q(stock__isnull=True) | models.Q(stock__gte=0),
                                   name="rewards_stock_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.code} ({self.name})"


REDEMPTION_STATES = [(s, s) for s in ("completed", "reversed")]


class Redemption(models.Model):
    """Points spent: on `quantity` units of a reward, or (no reward) on something the platform
    prices itself. `lots` keeps what was drawn, [[lot id, expires_at or null, points], ...], so
    a replay answers the first answer and a reversal knows the expiries to give back."""

    redemption_id = models.CharField(max_length=64, unique=True)
    member = models.ForeignKey(Member, on_delete=models.PROTECT)
    points = models.BigIntegerField()
    note = models.CharField(max_length=200, blank=True)
    payload_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField()
    reward = models.ForeignKey(Reward, on_delete=models.PROTECT, null=True, blank=True, db_index=False)
    quantity = models.IntegerField(default=1)
    state = models.CharField(max_length=10, choices=REDEMPTION_STATES, default="completed")
    lots = models.JSONField(default=list, blank=True)
    balance_after = models.BigIntegerField(null=True, blank=True)
    ruleset_version = models.IntegerField(null=True, blank=True)
    reversed_at = models.DateTimeField(null=True, blank=True)
    reversed_by = models.CharField(max_length=100, blank=True)

    class Meta:
        db_table = "redemptions"
        # redemptions_member_reward: the per-member limit counts a member's units of one reward.
        indexes = [models.Index(fields=["member", "reward", "state"], name="redemptions_member_reward")]


SCOPES = ("events:write", "members:read", "members:write", "coupons:write", "rulesets:write", "reports:read",
          "points:write")


class ApiKey(models.Model):
    """A platform's or operator's key. Only its SHA-256 is stored: the key is shown once, at
    creation. `prefix` (public, unique) finds the row; the hash is compared in constant time."""

    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, unique=True)
    secret_hash = models.CharField(max_length=64)
    scopes = models.JSONField(default=list)
    rate_per_minute = models.IntegerField(default=6000)
    created_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "api_keys"
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"


WEBHOOK_EVENTS = ("member.tier_changed", "member.downgrade_warning", "coupon.issued", "points.expiring",
                  "points.adjusted", "member.sprint_notice", "coupon.redeemed", "coupon.returned", "coupon.revoked",
                  "budget.exceeded", "points.redeemed", "points.redemption_reversed", "member.held",
                  "member.review_decided")


class WebhookEndpoint(models.Model):
    """Where the platform wants events. The secret signs deliveries, so it is kept (like a
    password the server must be able to use, not just check)."""

    url = models.URLField(max_length=500)
    secret = models.CharField(max_length=80)
    events = models.JSONField(default=list, blank=True, help_text="Event types to send; empty means all.")
    active = models.BooleanField(default=True)
    description = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        db_table = "webhook_endpoints"

    def __str__(self) -> str:
        return self.url

    def wants(self, event_type: str) -> bool:
        return self.active and (not self.events or event_type in self.events)


class OutboxEvent(models.Model):
    """A change the platform hears about, written in the same transaction as the change.
    `key` makes emitting idempotent; `body` is the exact JSON every delivery sends and signs."""

    member = models.ForeignKey(Member, on_delete=models.PROTECT, db_index=False)
    event_id = models.CharField(max_length=40)  # unique, as is `key`: see Meta.constraints
    key = models.CharField(max_length=200)
    type = models.CharField(max_length=40)
    body = models.TextField()
    created_at = models.DateTimeField()
    fanned_out_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "outbox_events"
        # Constraints rather than unique=True, as on the ledger: no `_like` index on PostgreSQL,
        # which a month end writing a million rows would maintain for nothing.
        constraints = [models.UniqueConstraint(fields=["event_id"], name="outbox_event_id_unique"),
                       models.UniqueConstraint(fields=["key"], name="outbox_key_unique")]
        indexes = [models.Index(fields=["member", "created_at"], name="outbox_events_member"),
                   models.Index(fields=["fanned_out_at", "id"], name="outbox_events_pending")]


DELIVERY_STATES = [(s, s) for s in ("pending", "delivered", "parked")]


class WebhookDelivery(models.Model):
    """One event to one endpoint: retried with backoff until delivered or parked."""

    member = models.ForeignKey(Member, on_delete=models.PROTECT, db_index=False)
    event = models.ForeignKey(OutboxEvent, on_delete=models.PROTECT, db_index=False)
    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.PROTECT)
    state = models.CharField(max_length=10, choices=DELIVERY_STATES, default="pending")
    attempts = models.IntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    last_status = models.IntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "webhook_deliveries"
        constraints = [models.UniqueConstraint(fields=["event", "endpoint"], name="webhook_deliveries_once")]
        indexes = [models.Index(fields=["member", "event"], name="webhook_deliveries_member"),
                   models.Index(fields=["state", "next_attempt_at"], name="webhook_deliveries_due")]


JOB_STATES = [(s, s) for s in ("running", "done", "failed")]


class JobRun(models.Model):
    """One scheduled job for one due moment (e.g. the monthly evaluation for 2027-02-01 00:00
    local). (job, due_at) is unique, so catching up after downtime runs each due moment once; a
    run left `running` by a crash is resumed by the next `jobs run-due`."""

    job = models.CharField(max_length=64)
    due_at = models.DateTimeField()
    state = models.CharField(max_length=10, choices=JOB_STATES, default="running")
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    attempts = models.IntegerField(default=1)
    counts = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        db_table = "job_runs"
        constraints = [models.UniqueConstraint(fields=["job", "due_at"], name="job_runs_once")]
        indexes = [models.Index(fields=["job", "state"], name="job_runs_state")]


COUPON_STATES = [(s, s) for s in ("issued", "redeemed", "expired", "revoked")]


class Coupon(models.Model):
    """An issued benefit: a cash coupon (`value_fen` > 0) or a free delivery (`kind`
    "free_delivery", value 0). `key` makes every grant idempotent, e.g.
    "monthly:2027-02:silver:1:<member id>"; `code` is what the member shows at checkout."""

    member = models.ForeignKey(Member, on_delete=models.PROTECT, db_index=False)
    code = models.CharField(max_length=32)  # unique, as is `key`: see Meta.constraints
    key = models.CharField(max_length=160)
    kind = models.CharField(max_length=24)  # monthly | free_delivery | birthday | recall | welcome | sprint
    value_fen = models.BigIntegerField(default=0)
    min_spend_fen = models.BigIntegerField(default=0)
    issued_at = models.DateTimeField()
    valid_from = models.DateTimeField()
    valid_until = models.DateTimeField()
    state = models.CharField(max_length=10, choices=COUPON_STATES, default="issued")
    redeemed_at = models.DateTimeField(null=True, blank=True)
    order_id = models.CharField(max_length=64, blank=True)
    ruleset_version = models.IntegerField(null=True, blank=True)
    # Recorded at issue from the ruleset's template (docs/benefits.md): a later ruleset never
    # changes the rules of a coupon already issued.
    # Defaults in the database too: bulk inserts that name only the older columns stay valid.
    template = models.CharField(max_length=64, blank=True, default="", db_default="")  # "": an inline grant
    stacking_group = models.CharField(max_length=32, blank=True, default="cash", db_default="cash")  # "": any
    usage = models.CharField(max_length=16, default="single", db_default="single")  # single | once_per_member
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.CharField(max_length=100, blank=True, default="", db_default="")
    revoke_reason = models.CharField(max_length=200, blank=True, default="", db_default="")

    class Meta:
        db_table = "coupons"
        constraints = [models.UniqueConstraint(fields=["code"], name="coupons_code_unique"),
                       models.UniqueConstraint(fields=["key"], name="coupons_key_unique")]  # see OutboxEvent
        # coupons_member_order: a refund finds the coupons redeemed on its order (the order's member is known).
        indexes = [models.Index(fields=["member", "state", "valid_until"], name="coupons_member_state"),
                   models.Index(fields=["member", "order_id"], name="coupons_member_order")]


class Invitation(models.Model):
    """Who invited a member into the invitation-only tiers: an existing member of the top tier
    (`inviter`) or an operator (`operator`, with a note). One per member; it sets Member.invited."""

    member = models.OneToOneField(Member, on_delete=models.PROTECT, related_name="invitation")
    inviter = models.ForeignKey(Member, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    operator = models.CharField(max_length=100, blank=True)
    note = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        db_table = "invitations"


class BudgetSpend(models.Model):
    """What the grant jobs issued to one tier in one local month ("2027-02") under a budget, in
    face value (docs/benefits.md, Budgets). Locked and updated in each chunk's transaction, so
    concurrent runs never overspend; `alerted_at` records the month's one budget alert."""

    tier = models.CharField(max_length=32)
    month = models.CharField(max_length=7)
    spent_fen = models.BigIntegerField(default=0)
    alerted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "budget_spends"
        constraints = [models.UniqueConstraint(fields=["tier", "month"], name="budget_spends_once")]
        verbose_name = "budget spend"

    def __str__(self) -> str:
        return f"{self.tier} {self.month}"


DEFERRAL_STATES = [(s, s) for s in ("deferred", "released", "lapsed")]


class DeferredGrant(models.Model):
    """A grant that did not fit its tier's monthly budget: kept with its coupons as they would
    have been issued (`drafts`: key, kind, value, minimum spend, validity), until the release
    job issues it under its own key or its validity passes (lapsed). `key` is the grant's key."""

    member = models.ForeignKey(Member, on_delete=models.PROTECT, db_index=False)
    key = models.CharField(max_length=160)  # unique: see Meta.constraints
    tier = models.CharField(max_length=32)
    month = models.CharField(max_length=7)  # the local month it was deferred in
    reason = models.CharField(max_length=16)  # monthly | birthday | recall | sprint: the job that granted it
    drafts = models.JSONField()
    cost_fen = models.BigIntegerField()
    valid_until = models.DateTimeField()
    ruleset_version = models.IntegerField()
    state = models.CharField(max_length=10, choices=DEFERRAL_STATES, default="deferred")
    created_at = models.DateTimeField()
    closed_at = models.DateTimeField(null=True, blank=True)  # when it was released or lapsed

    class Meta:
        db_table = "deferred_grants"
        constraints = [models.UniqueConstraint(fields=["key"], name="deferred_grants_key_unique")]
        indexes = [models.Index(fields=["member", "created_at"], name="deferred_grants_member"),
                   models.Index(fields=["state", "id"], name="deferred_grants_state")]


class OpsAlert(models.Model):
    """Something an operator must look at (a tier's budget ran out): shown in the admin until
    acknowledged. `key` makes raising it idempotent, e.g. "budget:gold:2027-02"."""

    key = models.CharField(max_length=160)  # unique: see Meta.constraints
    kind = models.CharField(max_length=32)
    subject = models.CharField(max_length=200)
    message = models.TextField()
    created_at = models.DateTimeField()
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.CharField(max_length=100, blank=True)

    class Meta:
        db_table = "ops_alerts"
        constraints = [models.UniqueConstraint(fields=["key"], name="ops_alerts_key_unique")]
        verbose_name = "operator alert"

    def __str__(self) -> str:
        return self.subject


# An order's or action's credit: "" credited as usual; "held" withheld while its member is under
# review (its growth and points stay on the row, in no balance, lot or tier window); "rejected"
# forfeited by the review, never credited nor counted (docs/abuse.md, Holds and review).
HOLD_STATES = ("", "held", "rejected")
REVIEW_STATES = [(s, s) for s in ("open", "approved", "rejected")]


class ReviewCase(models.Model):
    """A member under review. While it is open the member is held (`Member.held_since`), and
    what they earn meanwhile is withheld. An operator closes it once: approved posts the
    withheld credit, rejected forfeits it; who, why and the amounts stay on the row."""

    member = models.ForeignKey(Member, on_delete=models.PROTECT, db_index=False)
    state = models.CharField(max_length=10, choices=REVIEW_STATES, default="open")
    reasons = models.JSONField(default=list, blank=True)  # the flags' reasons, in the order raised
    details = models.JSONField(default=dict, blank=True)  # reason -> what the flag found
    opened_at = models.DateTimeField()
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.CharField(max_length=100, blank=True)
    note = models.TextField(blank=True)
    # At the decision: what was released (approved) or forfeited (rejected).
    growth = models.BigIntegerField(default=0)
    points = models.BigIntegerField(default=0)
    orders = models.IntegerField(default=0)
    actions = models.IntegerField(default=0)

    class Meta:
        db_table = "review_cases"
        indexes = [models.Index(fields=["member", "state"], name="review_cases_member"),
                   models.Index(fields=["state", "opened_at"], name="review_cases_queue")]

    def __str__(self) -> str:
        return f"case {self.pk}"


LINK_KINDS = [(k, k) for k in ("device", "address", "ip")]


class MemberLink(models.Model):
    """A member seen with a device, a delivery-address hash or a client IP. One row per member and
    value, written the first time an event carries it; `seat` is the member's place among the
    members seen with that value (1 for the first), which the members-per-device limit judges."""

    member = models.ForeignKey(Member, on_delete=models.PROTECT, db_index=False)
    kind = models.CharField(max_length=8, choices=LINK_KINDS)
    value = models.CharField(max_length=128)
    seat = models.IntegerField()
    first_seen_at = models.DateTimeField()

    class Meta:
        db_table = "member_links"
        # The unique key leads with (kind, value): it is the index that finds a device's members.
        constraints = [models.UniqueConstraint(fields=["kind", "value", "member"], name="member_links_unique")]
        indexes = [models.Index(fields=["member", "kind"], name="member_links_member")]


class LinkedValue(models.Model):
    """One row per device, address hash or IP that any member was seen with, counting them. It is
    the row a batch locks (after its members, in (kind, value) order) before it gives out seats
    on the value, so two batches never give the same seat or both admit the N+1-th member."""

    kind = models.CharField(max_length=8, choices=LINK_KINDS)
    value = models.CharField(max_length=128)
    members = models.IntegerField(default=0)

    class Meta:
        db_table = "linked_values"
        constraints = [models.UniqueConstraint(fields=["kind", "value"], name="linked_values_unique")]


class RiskScore(models.Model):
    """One member's result of the nightly risk scan as of one moment (docs/abuse.md): the
    detector's score in thousandths, the features it read and the reasons it flagged. Unique per
    (member, as_of): a scan run again for the same moment keeps the first row."""

    member = models.ForeignKey(Member, on_delete=models.PROTECT, db_index=False)
    as_of = models.DateTimeField()
    score_milli = models.BigIntegerField(help_text="The detector's score × 1000, rounded half up.")
    flagged = models.BooleanField(default=False)
    features = models.JSONField(default=dict)
    reasons = models.JSONField(default=list, blank=True)
    computed_at = models.DateTimeField()

    class Meta:
        db_table = "risk_scores"
        constraints = [models.UniqueConstraint(fields=["member", "as_of"], name="risk_scores_once")]
        indexes = [models.Index(fields=["as_of", "flagged"], name="risk_scores_night")]


class MemberCenterView(models.Model):
    """What a member last saw of their member center (services.member_center): the growth and the
    progress bar, the highest tier rank celebrated, the benefits shown. One row per member, written
    on each visit, so that the next visit knows what is new: a growth rise, an upgrade, a benefit."""

    member = models.OneToOneField(Member, on_delete=models.PROTECT, related_name="center_view")
    seen_growth = models.BigIntegerField(default=0)
    seen_progress = models.IntegerField(default=0, help_text="The progress bar as last shown, in permille.")
    celebrated_rank = models.IntegerField(default=0)
    seen_benefits = models.JSONField(default=list, blank=True)  # benefit keys, sorted
    seen_at = models.DateTimeField()

    class Meta:
        db_table = "member_center_views"

    def __str__(self) -> str:
        return f"member center of {self.member_id}"
