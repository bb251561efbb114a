"""The operations console's pages (/ops/): dashboards for staff with at least the viewer role.

Not logged in: to the admin's login, back here after it. Logged in without the role (not staff,
or staff in no role): 403. The analytics pages take the filters of `ops_filters` from the query
string; bad filters answer 400 with what is wrong and no numbers. Every page only reads.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, tzinfo
from functools import wraps
from typing import Any
from urllib.parse import urlencode

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_safe

from loyalty.analytics import report_sections
from loyalty.clock import system_clock
from loyalty.domain.errors import LoyaltyError
from loyalty.services import jobs, operations, rulesets
from loyalty.services.staff import can_open_ops
from loyalty.web import dashboards
from loyalty.web.ops_filters import FilterForm

View = Callable[..., HttpResponse]
PAGES = (  # url name, nav label
    ("ops:tiers", "Tiers"),
    ("ops:retention", "Repurchase and retention"),
    ("ops:revenue", "ARPU and frequency"),
    ("ops:benefits", "Benefit cost"),
    ("ops:abuse", "Abuse queue"),
    ("ops:health", "Jobs and webhooks"),
)


def console_page(view: View) -> View:
    """Staff with the viewer role or above; GET and HEAD only."""
    @wraps(view)
    def guarded(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path(), reverse("admin:login"))
        if not can_open_ops(request.user):
            raise PermissionDenied("The operations console needs a staff role (viewer, operator or admin).")
        with timezone.override(_shop_zone()):  # times shown as the shop reads them
            return view(request, *args, **kwargs)

    return require_safe(guarded)


def _shop_zone() -> tzinfo:
    """The timezone of the ruleset in force (UTC before one is published)."""
    try:
        return rulesets.in_force(system_clock.now()).ruleset.timezone
    except LoyaltyError:
        return UTC


Section = tuple[str, str, str]  # anchor, heading, HTML


def _page(request: HttpRequest, template: str, current: str, context: dict[str, Any],
          status: int = 200) -> HttpResponse:
    nav = [(reverse(name), label, name == current) for name, label in PAGES]
    return render(request, template, {"nav": nav, "title": dict(PAGES)[current], **context}, status=status)


def _analytics_page(request: HttpRequest, current: str,
                    build: Callable[[dashboards.Dashboard], list[Section]]) -> HttpResponse:
    """An analytics page: the filter form, then `build`'s sections (heading, HTML) for the filters."""
    now = system_clock.now()
    try:
        form = FilterForm(request.GET, dashboards.tier_choices(now))
    except LoyaltyError as error:  # no ruleset published yet
        return _page(request, "ops/analytics.html", current, {"problem": error.message})
    if form.is_bound and not form.is_valid():
        return _page(request, "ops/analytics.html", current, {"form": form}, status=400)
    filters = form.filters()
    board = dashboards.dashboard(filters, now)
    return _page(request, "ops/analytics.html", current, {"form": form, "filters": filters, "board": board,
                 "sections": build(board), "filters_query": _given(request)})


def _given(request: HttpRequest) -> str:
    """The filters given, for the nav's links, so that they travel from page to page."""
    return urlencode([(name, request.GET[name]) for name in ("from", "to", "tier") if request.GET.get(name)])


@console_page
def tiers(request: HttpRequest) -> HttpResponse:
    def build(board: dashboards.Dashboard) -> list[Section]:
        m, names = board.metrics, board.tier_names
        return [("tier-distribution", "Tier distribution over time",
                 report_sections.tier_distribution(m["tier_distribution"], names)),
                ("tier-migration", "Tier migration", report_sections.tier_migration(m["tier_migration"], names))]
    return _analytics_page(request, "ops:tiers", build)


@console_page
def retention(request: HttpRequest) -> HttpResponse:
    def build(board: dashboards.Dashboard) -> list[Section]:
        m = board.metrics
        return [("repeat-by-tier", "Repeat purchase by tier",
                 dashboards.retention_by_tier(board.by_tier, board.tier_names)),
                ("repeat-purchase", "Repeat purchase, all selected members",
                 report_sections.repeat_purchase(m["repeat_purchase"], m["repurchase_within"])),
                ("cohort-retention", "Cohort retention", report_sections.cohort_retention(m["cohorts"]))]
    return _analytics_page(request, "ops:retention", build)


@console_page
def revenue(request: HttpRequest) -> HttpResponse:
    def build(board: dashboards.Dashboard) -> list[Section]:
        return [("arpu-frequency", "ARPU and purchase frequency by tier",
                 report_sections.arpu_frequency(board.metrics["by_tier"], board.tier_names))]
    return _analytics_page(request, "ops:revenue", build)


@console_page
def benefits(request: HttpRequest) -> HttpResponse:
    def build(board: dashboards.Dashboard) -> list[Section]:
        m = board.metrics
        return [("coupons-budget", "Coupons and benefit cost against budget",
                 report_sections.coupons_and_budget(m["coupons"], m["benefit_cost"], board.tier_names))]
    return _analytics_page(request, "ops:benefits", build)


@console_page
def abuse(request: HttpRequest) -> HttpResponse:
    scans = operations.risk_scans()
    return _page(request, "ops/abuse.html", "ops:abuse", {
        "queue": operations.review_queue(), "latest_scan": scans[0] if scans else None,
        "scans_chart": dashboards.risk_scans_chart(scans),
        "queue_url": reverse("admin:loyalty_reviewcase_changelist") + "?state__exact=open",
        "scores_url": reverse("admin:loyalty_riskscore_changelist") + "?flagged__exact=1"})


@console_page
def health(request: HttpRequest) -> HttpResponse:
    now = system_clock.now()
    hooks = operations.webhook_health(now)
    return _page(request, "ops/health.html", "ops:health", {
        "now": now, "jobs": jobs.statuses(now), "failed_runs": operations.failed_runs(), "webhooks": hooks,
        "webhooks_chart": dashboards.webhooks_chart(hooks.endpoints),
        "runs_url": reverse("admin:loyalty_jobrun_changelist") + "?state__exact=failed",
        "parked_url": reverse("admin:loyalty_webhookdelivery_changelist") + "?state__exact=parked"})
