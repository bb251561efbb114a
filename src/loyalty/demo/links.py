"""What `loyalty demo` prints last: where to look at the demo's data once `make serve` runs (the
member center of its best member, the operations console, the admin) and how to log in.

The login is a local demo operator, `demo-operator`, in the admin role. Its password is drawn once
and kept in var/demo-operator.txt, so every demo run over the same var/ (the demo rebuilds its
database each time) logs in with the same one. It is a local demo database only: never run a
shop with this account.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from django.contrib.auth.models import User
from rich.console import Console

from loyalty.clock import system_clock
from loyalty.domain.errors import Conflict
from loyalty.services import rulesets
from loyalty.services.staff import create_staff
from loyalty.store.models import Member

DEMO_OPERATOR = "demo-operator"
DEMO_BASE = "http://127.0.0.1:8000"


@dataclass(frozen=True)
class DemoLinks:
    member: str | None
    tier: str | None
    member_url: str | None
    ops_url: str
    admin_url: str
    username: str
    password: str
    password_file: Path


def demo_password(password_file: Path) -> str:
    """The demo operator's password: the one kept in `password_file`, or a new one kept there."""
    if password_file.exists() and (kept := password_file.read_text("utf-8").strip()):
        return kept
    password = secrets.token_urlsafe(12)
    password_file.parent.mkdir(parents=True, exist_ok=True)
    password_file.write_text(password + "\n", "utf-8")
    password_file.chmod(0o600)
    return password


def ensure_demo_operator(password: str) -> None:
    """The admin-role staff user `demo-operator` with this password, whether it exists yet or not."""
    try:
        create_staff(DEMO_OPERATOR, password, "admin")
    except Conflict:  # a second run over the same database
        user = User.objects.get(username=DEMO_OPERATOR)
        user.set_password(password)
        user.save(update_fields=["password"])


def showcase_member() -> tuple[str, str] | None:
    """(external id, tier) of the member in the highest tier anyone holds: the most growth in it,
    then the first registered. None before anyone registered."""
    tiers = rulesets.in_force(system_clock.now()).ruleset.tiers
    for tier in reversed(tiers):
        found = Member.objects.filter(tier=tier.code).order_by("-growth_balance", "id").values_list(
            "external_id", flat=True).first()
        if found is not None:
            return found, tier.code
    return None


def demo_links(password_file: Path, member_url: Callable[[str], str], *, base: str = DEMO_BASE) -> DemoLinks:
    """Make sure the demo operator exists, and gather the pages to open. `member_url` signs the
    member-center link (the web layer's `member_center_url`, passed in by the command)."""
    password = demo_password(password_file)
    ensure_demo_operator(password)
    showcase = showcase_member()
    member, tier = showcase if showcase else (None, None)
    return DemoLinks(member, tier, member_url(member) if member else None, f"{base}/ops/", f"{base}/admin/",
                     DEMO_OPERATOR, password, password_file)


def print_links(console: Console, links: DemoLinks) -> None:
    # soft_wrap: a long link stays on one line, so it can be copied whole; no markup in data.
    def say(text: str) -> None:
        console.print(text, soft_wrap=True, markup=False, highlight=False)

    console.print("[bold]open the demo[/] (run [bold]make serve[/] to open them):")
    if links.member_url:
        say(f"  member center of {links.member} ({links.tier}; the link is valid for a day):")
        say(f"    {links.member_url}")
    say(f"  operations console: {links.ops_url}")
    say(f"  admin:              {links.admin_url}")
    say(f"  log in as {links.username}, password {links.password} (admin role, this demo database only; "
        f"kept in {links.password_file})")
