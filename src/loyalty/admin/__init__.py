"""The operators' console: the Django admin, read-only over the ledger.

Entries, lots and debts are never edited by hand: a correction is an adjustment, made through
the adjustment service (with its reason and actor), so the admin shows the ledger and changes
nothing in it. Every operator action goes through its service, as the logged-in operator:
inviting members into the invitation-only tiers, revoking coupons, reversing redemptions,
releasing deferred grants, acknowledging alerts, approving or rejecting review cases, adjusting
a member with a reason and publishing a ruleset version (after its diff; docs/web.md).
"""

from loyalty.admin import abuse, benefits, members, platform, rulesets  # noqa: F401  (each registers its pages)
