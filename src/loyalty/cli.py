"""The `loyalty` command. Thin: parse arguments, call a service, print the result."""

from __future__ import annotations

import argparse
import csv
import os
import sys
from collections.abc import Sequence
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from loyalty.domain.errors import LoyaltyError, RulesetInvalid

if TYPE_CHECKING:
    from loyalty.services.jobs import Outcome


def _setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "loyalty.settings")
    import django

    django.setup()


DEMO_DATABASE = Path("var") / "demo.sqlite3"


def _use_demo_database(*, fresh: bool) -> None:
    """The demo builds its own SQLite file under ./var/ afresh (`fresh`), and `serve --demo` serves
    that file, unless a database is named."""
    if "LOYALTY_DATABASE_URL" in os.environ:
        return
    path = DEMO_DATABASE
    if fresh:
        path.parent.mkdir(parents=True, exist_ok=True)
        for stale in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
            stale.unlink(missing_ok=True)
    elif not path.exists():
        raise LoyaltyError(f"there is no demo database ({path}) yet: run `loyalty demo` first")
    os.environ["LOYALTY_DATABASE_URL"] = f"sqlite:///{path.resolve()}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help()
        return 2
    try:
        if args.run is cmd_demo or getattr(args, "demo", False):
            _use_demo_database(fresh=args.run is cmd_demo)
        _setup_django()
        return int(args.run(args) or 0)
    except RulesetInvalid as error:
        for problem in error.problems:
            print(f"error: {problem}", file=sys.stderr)
        return 1
    except LoyaltyError as error:
        print(f"error [{error.code}]: {error.message}", file=sys.stderr)
        return 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="loyalty", description="A membership-growth engine for shops.")
    sub = parser.add_subparsers(metavar="COMMAND")

    cmd = sub.add_parser("migrate", help="create or upgrade the database schema")
    cmd.set_defaults(run=cmd_migrate)

    cmd = sub.add_parser("serve", help="serve the API, the admin and /healthz (gunicorn; SIGTERM stops gracefully)")
    cmd.add_argument("--host", default="127.0.0.1")
    cmd.add_argument("--port", type=int, default=8000)
    # One process per CPU, four threads each: measured on 2 cores, it kept a status read's p99 at
    # 32 connections near 38 ms where 5 single-threaded workers let it reach 55–70 ms (keep-alive
    # connections pile up unevenly on more processes); threads also cover a remote database's waits.
    cmd.add_argument("--workers", type=_positive, default=max(2, _cpus()),
                     help="worker processes (default: one per CPU, at least 2: %(default)s here)")
    cmd.add_argument("--threads", type=_positive, default=4, help="threads per worker (default: %(default)s)")
    cmd.add_argument("--access-log", action="store_true", help="log every request to stdout (off by default)")
    cmd.add_argument("--demo", action="store_true", help=f"serve the database `loyalty demo` built ({DEMO_DATABASE}); "
                     "the only way, with LOYALTY_DEBUG=1, to serve without LOYALTY_SECRET_KEY")
    cmd.set_defaults(run=cmd_serve)

    ruleset = sub.add_parser("ruleset", help="validate, publish and show rulesets").add_subparsers(metavar="ACTION")
    cmd = ruleset.add_parser("validate", help="check a ruleset file and list every problem")
    cmd.add_argument("file")
    cmd.set_defaults(run=cmd_ruleset_validate)
    cmd = ruleset.add_parser("publish", help="store a ruleset file as the next version")
    cmd.add_argument("file")
    cmd.add_argument("--effective-from", required=True, help="YYYY-MM-DD (midnight in the ruleset's timezone) "
                                                             "or an ISO time with an offset")
    cmd.add_argument("--actor", default=os.environ.get("USER", "operator"))
    cmd.add_argument("--reason", default="", help="why; required with --force")
    cmd.add_argument("--force", action="store_true",
                     help="publish a version that makes tiers harder inside the notice period (publishing.notice_days)")
    cmd.set_defaults(run=cmd_ruleset_publish)
    cmd = ruleset.add_parser("show", help="show the version in force (or --version N)")
    cmd.add_argument("--version", type=int)
    cmd.set_defaults(run=cmd_ruleset_show)

    member = sub.add_parser("member", help="look at a member").add_subparsers(metavar="ACTION")
    cmd = member.add_parser("show", help="tier, balances, progress and the last entries")
    cmd.add_argument("external_id")
    cmd.set_defaults(run=cmd_member_show)

    apikey = sub.add_parser("apikey", help="create, list and revoke API keys").add_subparsers(metavar="ACTION")
    cmd = apikey.add_parser("create", help="create a key (printed once; only its hash is kept)")
    cmd.add_argument("name")
    cmd.add_argument("--scope", action="append", required=True, metavar="SCOPE",
                     help="repeat for several: events:write members:read members:write coupons:write "
                          "rulesets:write reports:read points:write")
    cmd.add_argument("--rate", type=int, default=6000, metavar="PER_MINUTE", help="requests a minute (default 6000)")
    cmd.set_defaults(run=cmd_apikey_create)
    cmd = apikey.add_parser("list", help="every key: prefix, name, scopes, revoked or not")
    cmd.set_defaults(run=cmd_apikey_list)
    cmd = apikey.add_parser("revoke", help="revoke a key by its prefix")
    cmd.add_argument("prefix")
    cmd.set_defaults(run=cmd_apikey_revoke)

    staff = sub.add_parser("staff", help="staff accounts for the admin and the operations console"
                           ).add_subparsers(metavar="ACTION")
    cmd = staff.add_parser("create", help="create a staff user with a role (docs/web.md: the roles matrix)")
    cmd.add_argument("username")
    cmd.add_argument("--role", required=True, choices=("viewer", "operator", "admin"))
    cmd.add_argument("--password-stdin", action="store_true",
                     help="read the password from the first line of stdin (default: prompt for it twice)")
    cmd.set_defaults(run=cmd_staff_create)

    webhooks = sub.add_parser("webhooks", help="add endpoints, deliver the outbox, replay parked deliveries"
                              ).add_subparsers(metavar="ACTION")
    cmd = webhooks.add_parser("add", help="add an endpoint (its signing secret is printed once)")
    cmd.add_argument("url")
    cmd.add_argument("--event", action="append", default=[], metavar="TYPE",
                     help="repeat for several (default: every type): member.tier_changed member.downgrade_warning "
                          "coupon.issued points.expiring points.adjusted")
    cmd.add_argument("--description", default="")
    cmd.set_defaults(run=cmd_webhooks_add)
    cmd = webhooks.add_parser("dispatch", help="fan out new events and send due deliveries")
    cmd.add_argument("--limit", type=_positive, default=1000, metavar="N", help="events and deliveries per run")
    cmd.add_argument("--loop", type=float, metavar="SECONDS", help="run until stopped, pausing when idle")
    cmd.set_defaults(run=cmd_webhooks_dispatch)
    cmd = webhooks.add_parser("replay", help="send parked (or delivered) deliveries again, now")
    cmd.add_argument("delivery_id", type=int, nargs="+")
    cmd.set_defaults(run=cmd_webhooks_replay)

    imports = sub.add_parser("import", help="import history").add_subparsers(metavar="WHAT")
    cmd = imports.add_parser("orders", help="import orders from a CSV file (see README for the columns)")
    cmd.add_argument("file")
    cmd.set_defaults(run=cmd_import_orders)

    jobs = sub.add_parser("jobs", help="scheduled jobs: run what is due (cron it), list them"
                          ).add_subparsers(metavar="ACTION")
    cmd = jobs.add_parser("run-due", help="run every job due since its last run, each due moment once, in order")
    cmd.add_argument("--now", type=_aware_time, metavar="TIME",
                     help="act as of TIME (ISO 8601 with an offset), also the time every write records")
    cmd.add_argument("--dry-run", action="store_true", help="write nothing; show what would run and its counts")
    cmd.set_defaults(run=cmd_jobs_run_due)
    cmd = jobs.add_parser("list", help="every job: schedule, last run, due moments pending, next due")
    cmd.add_argument("--now", type=_aware_time, metavar="TIME", help="as of TIME (ISO 8601 with an offset)")
    cmd.set_defaults(run=cmd_jobs_list)

    report_cmd = sub.add_parser("report", help="the analytics report (HTML or JSON), or a report for accounting "
                                               "(docs/reports.md)",
                                description="Without WHAT: the analytics report of the shop's metrics and "
                                            "customer-base models (docs/reports.md).")
    report_cmd.add_argument("--format", choices=("html", "json"), default="html")
    report_cmd.add_argument("--output", metavar="FILE",
                            help=f"write here; '-' is standard output (default: {ANALYTICS_REPORT} for html, "
                                 "standard output for json)")
    report_cmd.add_argument("--from", dest="first_day", type=_day, metavar="DATE",
                            help="first business date of the purchases counted (YYYY-MM-DD); default: the beginning")
    report_cmd.add_argument("--to", dest="last_day", type=_day, metavar="DATE",
                            help="last business date counted; default: the end")
    report_cmd.add_argument("--tier", dest="tiers", action="append", metavar="CODE",
                            help="only members who held this tier at --from (else now); repeat for several")
    report_cmd.add_argument("--as-of", dest="as_of", type=_day_or_time, metavar="DATE|TIME",
                            help="judge as of this moment: an ISO 8601 time with an offset, or a date (its end in the "
                                 "ruleset's timezone); default: the end of --to, else now, or the end of the "
                                 "recorded history when it stops earlier")
    report_cmd.add_argument("--demo", action="store_true", help=f"report on the database `loyalty demo` built "
                                                                f"({DEMO_DATABASE})")
    report_cmd.add_argument("--horizon", dest="horizon_days", type=_positive, default=90, metavar="DAYS",
                            help="the models' forecast horizon (default: %(default)s days)")
    report_cmd.set_defaults(run=cmd_report_analytics)
    report = report_cmd.add_subparsers(metavar="WHAT")
    cmd = report.add_parser("liability", help="points earned, redeemed, reversed, expired, adjusted, written off and "
                                              "outstanding per day or month")
    cmd.add_argument("--by", choices=("day", "month"), default="day")
    cmd.add_argument("--format", choices=("csv", "json"), default="csv")
    cmd.add_argument("--from", dest="first_day", type=_day, metavar="DATE",
                     help="first business date (YYYY-MM-DD, in the ruleset's timezone); default: the beginning")
    cmd.add_argument("--to", dest="last_day", type=_day, metavar="DATE", help="last business date; default: the end")
    cmd.add_argument("--output", metavar="FILE", help="write here instead of to stdout")
    cmd.set_defaults(run=cmd_report_liability)
    cmd = report.add_parser("budgets", help="benefit budget per tier against what was issued, redeemed and deferred "
                                            "in a month (docs/benefits.md, Budgets)")
    cmd.add_argument("--month", metavar="YYYY-MM", help="the local month; default: the current one")
    cmd.add_argument("--format", choices=("csv", "json"), default="csv")
    cmd.add_argument("--output", metavar="FILE", help="write here instead of to stdout")
    cmd.set_defaults(run=cmd_report_budgets)
    cmd = report.add_parser("churn", help="members who bought on two days or more and are probably gone, the largest "
                                          "value at risk first: the recall list (docs/models.md)")
    cmd.add_argument("--as-of", dest="as_of", type=_day_or_time, metavar="DATE|TIME",
                     help="fit on the purchases before this moment: an ISO 8601 time with an offset, or a date (its "
                          "end in the ruleset's timezone); default: now")
    cmd.add_argument("--horizon", type=_positive, default=90, metavar="DAYS",
                     help="days ahead for the expected purchases and value (default: %(default)s)")
    cmd.add_argument("--threshold", type=_probability, default=0.5, metavar="P",
                     help="list members whose probability of being alive is below P (default: %(default)s)")
    cmd.add_argument("--format", choices=("csv", "json"), default="csv")
    cmd.add_argument("--output", metavar="FILE", help="write here instead of to stdout")
    cmd.set_defaults(run=cmd_report_churn)

    budgets = sub.add_parser("budgets", help="benefit budgets: release deferred grants").add_subparsers(
        metavar="ACTION")
    cmd = budgets.add_parser("release", help="issue the grants a budget deferred where it now allows them; "
                                             "lapse those past their validity")
    cmd.add_argument("--now", type=_aware_time, metavar="TIME",
                     help="as of TIME (ISO 8601 with an offset): the issue time the coupons record")
    cmd.add_argument("--dry-run", action="store_true", help="write nothing; show what would be released")
    cmd.set_defaults(run=cmd_budgets_release)

    risk = sub.add_parser("risk", help="abuse detection: the rules that flag and the detector (docs/abuse.md)"
                          ).add_subparsers(metavar="ACTION")
    cmd = risk.add_parser("scan", help="score members active in the window; store scores; hold the newly flagged")
    cmd.add_argument("--as-of", dest="as_of", type=_day_or_time, metavar="DATE|TIME",
                     help="a date (scan at its 03:00 in the ruleset's timezone, as the nightly job does) or an "
                          "ISO 8601 time with an offset; default: now")
    cmd.add_argument("--dry-run", action="store_true", help="write nothing and hold nobody; show the counts")
    cmd.set_defaults(run=cmd_risk_scan)

    review = sub.add_parser("review", help="the review queue: held members (docs/abuse.md)").add_subparsers(
        metavar="ACTION")
    cmd = review.add_parser("list", help="open cases: member, reasons, opened, what is withheld")
    cmd.add_argument("--all", action="store_true", help="decided cases too")
    cmd.set_defaults(run=cmd_review_list)
    for verb, what in (("approve", "post the withheld credit"), ("reject", "forfeit the withheld credit")):
        cmd = review.add_parser(verb, help=f"{what} and release the hold")
        cmd.add_argument("case", type=int)
        cmd.add_argument("--by", required=True, help="who decides")
        cmd.add_argument("--note", required=True, help="why")
        cmd.set_defaults(run=cmd_review_decide, verb=verb)

    cmd = sub.add_parser("simulate", help="replay the history under a candidate ruleset beside the published one; "
                                          "writes nothing (docs/backtest.md)")
    cmd.add_argument("--ruleset", required=True, metavar="FILE", help="the candidate ruleset (YAML or JSON)")
    cmd.add_argument("--baseline", default="published", metavar="published|FILE",
                     help="what to compare with: the version in force now (default) or a ruleset file")
    source = cmd.add_mutually_exclusive_group()
    source.add_argument("--orders", metavar="FILE", help="an orders CSV in the import format instead of the database")
    source.add_argument("--from-db", action="store_true", help="the database's history (the default)")
    cmd.add_argument("--months", type=int, metavar="N", help="show the last N months (the replay still starts at "
                                                             "the beginning of the history)")
    cmd.add_argument("--delivery-fee", default="0", metavar="YUAN", help="what a free delivery costs the shop")
    cmd.add_argument("--format", choices=("text", "json"), default="text")
    cmd.add_argument("--output", metavar="FILE", help="write JSON here instead of to stdout")
    cmd.add_argument("--demo", action="store_true", help=f"the history of the database `loyalty demo` built "
                                                         f"({DEMO_DATABASE})")
    cmd.set_defaults(run=cmd_simulate)

    cmd = sub.add_parser("demo", help="run the engine over real purchase data (CDNOW) or a synthetic shop")
    cmd.add_argument("--synthetic", type=int, metavar="N", help="generate a shop of N members instead")
    cmd.add_argument("--seed", type=int, default=7)
    cmd.set_defaults(run=cmd_demo)
    return parser


def cmd_migrate(args: argparse.Namespace) -> int:
    from loyalty.store.setup import migrate

    migrate(verbose=True)
    return 0


def _cpus() -> int:
    """The CPUs this process may run on (a container's or taskset's limit, not the host's count)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {value}")
    return value


def _probability(text: str) -> float:
    value = float(text)
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"must be above 0 and at most 1, not {text}")
    return value


def _aware_time(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}") from None
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} has no UTC offset; write e.g. 2027-02-01T00:00:00+08:00")
    return moment


def _settle_worker(worker: object) -> None:
    """Load the URL routes (the API and its schemas) now, then move everything loaded so far out
    of the garbage collector's view: its full collections otherwise walk Django's hundreds of
    thousands of long-lived objects every so often, a pause of milliseconds that some request
    pays for (the p99 latency)."""
    import gc

    from django.urls import get_resolver

    get_resolver().url_patterns  # noqa: B018 (imports loyalty.urls and the API)
    gc.collect()
    gc.freeze()


def cmd_serve(args: argparse.Namespace) -> int:
    """Run `loyalty.wsgi:application` under gunicorn: a master process and `--workers` forked
    workers (each with its own database connection) of `--threads` threads each. SIGTERM stops
    gracefully: the master stops listening, requests in flight finish (up to 30 s), exit 0.
    Refuses to start on the public development SECRET_KEY unless --demo or LOYALTY_DEBUG=1."""
    from django.conf import settings
    from gunicorn.app.base import BaseApplication

    if settings.SECRET_KEY == settings.INSECURE_SECRET_KEY and not (args.demo or settings.DEBUG):
        raise LoyaltyError(
            "LOYALTY_SECRET_KEY is not set, and the development default is public: anyone could sign member "
            "tokens and admin sessions. Set it to a long random secret, kept across restarts (python3 -c "
            "'import secrets; print(secrets.token_urlsafe(50))'); to try the server out, use "
            "`loyalty serve --demo` or LOYALTY_DEBUG=1.",
            code="secret_key_unset")

    host = f"[{args.host}]" if ":" in args.host else args.host
    options = {
        "bind": [f"{host}:{args.port}"],
        "workers": args.workers,
        "threads": args.threads,
        # gthread, not gunicorn's default `sync` worker, which closes the connection after every
        # response: clients and load balancers keep theirs open.
        "worker_class": "gthread",
        "keepalive": 5,
        "graceful_timeout": 30,
        "accesslog": "-" if args.access_log else None,
        # IMPORTANT: otherwise every instance on the machine claims ~/.gunicorn/gunicorn.ctl.
        "control_socket_disable": True,
        "proc_name": "loyalty",
        "post_worker_init": _settle_worker,
    }

    class Server(BaseApplication):
        def load_config(self) -> None:
            for key, value in options.items():
                self.cfg.set(key, value)

        def load(self) -> object:
            from loyalty.wsgi import application

            return application

    Server().run()  # returns only by SystemExit, with gunicorn's status
    return 0


def cmd_ruleset_validate(args: argparse.Namespace) -> int:
    from loyalty.services import rulesets

    ruleset = rulesets.validate(rulesets.read_document(args.file))
    print(f"ok: {ruleset.name}: {len(ruleset.tiers)} tiers ({', '.join(t.code for t in ruleset.tiers)}), "
          f"timezone {ruleset.timezone.key}")
    return 0


def parse_effective_from(text: str, zone: ZoneInfo) -> datetime:
    if len(text) == 10:
        return datetime.combine(date.fromisoformat(text), datetime.min.time(), tzinfo=zone)
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise LoyaltyError("--effective-from needs a date or a time with an offset", field="effective_from")
    return moment


def cmd_ruleset_publish(args: argparse.Namespace) -> int:
    from loyalty.services import rulesets

    document = rulesets.read_document(args.file)
    ruleset = rulesets.validate(document)
    version = rulesets.publish(document, effective_from=parse_effective_from(args.effective_from, ruleset.timezone),
                               actor=args.actor, reason=args.reason, force=args.force)
    print(f"published {ruleset.name} as version {version.version}, in force from {version.effective_from.isoformat()}")
    return 0


def cmd_ruleset_show(args: argparse.Namespace) -> int:
    from loyalty import console

    print(console.ruleset_text(args.version))
    return 0


def cmd_member_show(args: argparse.Namespace) -> int:
    from loyalty import console

    console.print_member(args.external_id)
    return 0


def cmd_apikey_create(args: argparse.Namespace) -> int:
    from loyalty.services.apikeys import create_key

    made = create_key(args.name, [scope for given in args.scope for scope in given.split(",") if scope],
                      rate_per_minute=args.rate)
    print(made.plaintext)
    print(f"# {made.key.name}: scopes {', '.join(made.key.scopes)}; prefix {made.key.prefix}. "
          "Keep the key now: it is not shown again.", file=sys.stderr)
    return 0


def cmd_apikey_list(args: argparse.Namespace) -> int:
    from loyalty.store.models import ApiKey

    for key in ApiKey.objects.order_by("id"):
        state = f"revoked {key.revoked_at:%Y-%m-%d}" if key.revoked_at else "live"
        print(f"{key.prefix}  {key.name}  {','.join(key.scopes)}  {state}")
    return 0


def cmd_apikey_revoke(args: argparse.Namespace) -> int:
    from loyalty.services.apikeys import revoke

    key = revoke(args.prefix)
    print(f"revoked {key.prefix} ({key.name})")
    return 0


def cmd_staff_create(args: argparse.Namespace) -> int:
    from loyalty.services.staff import create_staff

    user = create_staff(args.username, _read_password(from_stdin=args.password_stdin), args.role)
    print(f"created {user.get_username()} ({args.role}): log in at /admin/ and /ops/", file=sys.stderr)
    return 0


def _read_password(*, from_stdin: bool) -> str:
    """Never from the command line, where `ps` and the shell's history would keep it."""
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    import getpass

    password = getpass.getpass("Password: ")
    if password != getpass.getpass("Password (again): "):
        raise LoyaltyError("the two passwords differ: nothing was created", field="password")
    return password


def cmd_webhooks_add(args: argparse.Namespace) -> int:
    from loyalty.services.webhooks import create_endpoint

    endpoint = create_endpoint(args.url, args.event, args.description)
    print(endpoint.secret)
    print(f"# endpoint {endpoint.id}: {endpoint.url}, events {', '.join(endpoint.events) or 'all'}. "
          "Give the secret to the receiver now: it verifies the Loyalty-Signature header.", file=sys.stderr)
    return 0


def cmd_webhooks_dispatch(args: argparse.Namespace) -> int:
    """One run, or with --loop a run after another: at once while a run fills its limit, else after
    a pause. Ctrl-C (or SIGINT) stops between runs."""
    import time

    from loyalty.services.webhooks import dispatch

    try:
        while True:
            counts = dispatch(limit=args.limit)
            busy = counts.fanned_out >= args.limit or counts.attempted >= args.limit
            if args.loop is None or counts.fanned_out or counts.attempted:
                print(f"fanned out {counts.fanned_out}, delivered {counts.delivered}, failed {counts.failed}, "
                      f"parked {counts.parked}", flush=True)
            if args.loop is None:
                return 0
            if not busy:
                time.sleep(args.loop)
    except KeyboardInterrupt:
        return 0


def cmd_webhooks_replay(args: argparse.Namespace) -> int:
    from loyalty.services.webhooks import replay

    print(f"{replay(args.delivery_id)} of {len(args.delivery_id)} deliveries queued again")
    return 0


def cmd_import_orders(args: argparse.Namespace) -> int:
    from loyalty import console
    from loyalty.services.imports import parse_rows

    path = Path(args.file)
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        events = parse_rows((index + 2, row) for index, row in enumerate(reader))
    console.run_import(events)
    return 0


def cmd_jobs_run_due(args: argparse.Namespace) -> int:
    """One line per due moment run (or, with --dry-run, that would run); exit 1 when one failed."""
    from loyalty.clock import FixedClock, system_clock
    from loyalty.services.jobs import run_due

    clock = FixedClock(args.now) if args.now else system_clock

    def show(outcome: Outcome) -> None:
        print(_outcome_line(outcome), flush=True)
        if outcome.error:
            kept = "" if args.dry_run else " (recorded in job_runs; the next run retries it first)"
            print(f"error: {outcome.job} for {outcome.due_at.isoformat()} failed: {outcome.error}{kept}",
                  file=sys.stderr)

    report = run_due(clock.now(), clock=clock, dry_run=args.dry_run, progress=show)
    if report.busy:
        print("another `loyalty jobs run-due` is running: nothing done")
    elif not report.outcomes:
        print("nothing is due")
    return 1 if report.failed else 0


def _outcome_line(outcome: Outcome) -> str:
    state = {"planned": "would resume" if outcome.resumed else "would run"}.get(outcome.state, outcome.state)
    if outcome.attempt > 1:
        state += f" (attempt {outcome.attempt})"
    counts = " ".join(f"{name}={value}" for name, value in outcome.counts.items())
    if outcome.state == "planned" and not outcome.counts:
        counts = "(no estimate)"
    return f"{outcome.due_at.isoformat()}  {outcome.job}  {state}  {counts}".rstrip()


def cmd_jobs_list(args: argparse.Namespace) -> int:
    from loyalty.clock import system_clock
    from loyalty.services.jobs import statuses

    for job in statuses(args.now or system_clock.now()):
        last = f"{job.last_due_at.isoformat()} {job.last_state}" if job.last_due_at else "never"
        upcoming = job.next_due_at.isoformat() if job.next_due_at else "-"
        print(f"{job.name}: {job.schedule}; last run {last}; pending {job.pending}; next due {upcoming}")
        print(f"    {job.description}")
    return 0


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date: {text!r}; write e.g. 2027-01-31") from None


def _day_or_time(text: str) -> date | datetime:
    return _day(text) if len(text) == 10 else _aware_time(text)


ANALYTICS_REPORT = Path("var") / "report.html"


def cmd_report_analytics(args: argparse.Namespace) -> int:
    """`loyalty report`: the analytics report as one self-contained HTML page or as JSON."""
    import json

    from loyalty.analytics.report import build_report, data_as_of, end_of_day, render_html
    from loyalty.clock import system_clock

    if args.first_day and args.last_day and args.first_day > args.last_day:
        raise LoyaltyError(f"--from ({args.first_day}) is after --to ({args.last_day})", field="from")
    as_of = args.as_of if args.as_of is not None else args.last_day
    if as_of is None:
        as_of = data_as_of(system_clock.now())
    elif not isinstance(as_of, datetime):
        as_of = end_of_day(as_of)
    document = build_report(as_of=as_of, start=args.first_day, end=args.last_day, tiers=args.tiers,
                            horizon_days=args.horizon_days)
    text = render_html(document) if args.format == "html" else json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    output = args.output or (str(ANALYTICS_REPORT) if args.format == "html" else "-")
    if output == "-":
        sys.stdout.write(text)
        return 0
    path = Path(output)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    print(f"wrote {path} ({len(text.encode()) // 1024} KB)", file=sys.stderr)
    return 0


def cmd_report_liability(args: argparse.Namespace) -> int:
    """The report as CSV or JSON; exit 1, after writing it, when the ledger disagrees with lots − debts."""
    from loyalty.services.reports import LIABILITY_COLUMNS, points_liability

    report = points_liability(by=args.by, first_day=args.first_day, last_day=args.last_day)
    _write_report(args, report.as_json(), LIABILITY_COLUMNS, [row.as_dict() for row in report.rows])
    check = report.check
    if not check.agrees:
        print(f"warning: the points ledger sums to {check.ledger_total}, but lots − debts = "
              f"{check.lots_remaining} − {check.debts_remaining}", file=sys.stderr)
        return 1
    return 0


def cmd_report_budgets(args: argparse.Namespace) -> int:
    from loyalty.services.budget_report import BUDGET_COLUMNS, budget_report

    report = budget_report(args.month)
    _write_report(args, report.as_json(), BUDGET_COLUMNS, [row.as_dict() for row in report.rows])
    return 0


def cmd_report_churn(args: argparse.Namespace) -> int:
    from loyalty.analytics.clv import CHURN_COLUMNS, churn_report
    from loyalty.analytics.report import data_as_of, end_of_day
    from loyalty.clock import system_clock

    as_of = args.as_of if args.as_of is not None else data_as_of(system_clock.now())
    report = churn_report(as_of if isinstance(as_of, datetime) else end_of_day(as_of), horizon_days=args.horizon,
                          threshold=args.threshold)
    _write_report(args, report, CHURN_COLUMNS, report["rows"])
    return 0


def _write_report(args: argparse.Namespace, as_json: Any, columns: Sequence[str], rows: list[dict[str, Any]]) -> None:
    """A report as JSON or CSV (`--format`), to `--output` or standard output."""
    import io
    import json

    out = io.StringIO()
    if args.format == "json":
        json.dump(as_json, out, indent=2, ensure_ascii=False)
        out.write("\n")
    else:
        writer = csv.DictWriter(out, fieldnames=list(columns), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    if args.output:
        Path(args.output).write_text(out.getvalue(), encoding="utf-8")
    else:
        sys.stdout.write(out.getvalue())


def cmd_budgets_release(args: argparse.Namespace) -> int:
    from loyalty.clock import FixedClock, system_clock
    from loyalty.services.deferrals import release_deferred

    clock = FixedClock(args.now) if args.now else system_clock
    counts = release_deferred(clock.now(), clock=clock, dry_run=args.dry_run)
    print(("would release " if args.dry_run else "") + " ".join(f"{name}={value}" for name, value in counts.items()))
    return 0


def cmd_risk_scan(args: argparse.Namespace) -> int:
    from loyalty.clock import system_clock
    from loyalty.services.risk import scan, scan_moment

    if args.as_of is None:
        as_of = system_clock.now()
    else:
        as_of = args.as_of if isinstance(args.as_of, datetime) else scan_moment(args.as_of)
    result = scan(as_of, dry_run=args.dry_run)
    print(f"{'would flag' if args.dry_run else 'flagged'} {result.flagged} of {result.scored} members scored "
          f"({result.rate:.2%}) as of {as_of.isoformat()}; newly flagged {result.newly_flagged}, "
          f"held {result.held}")
    return 0


def cmd_review_list(args: argparse.Namespace) -> int:
    from loyalty.services.holds import held_totals
    from loyalty.store.models import ReviewCase

    cases = ReviewCase.objects.select_related("member").order_by("opened_at", "id")
    for case in cases if args.all else cases.filter(state="open"):
        amounts = held_totals(case.member_id) if case.state == "open" else case
        decided = f"  by {case.decided_by}: {case.note}" if case.state != "open" else ""
        print(f"{case.id}  {case.member.external_id}  {case.state}  {','.join(case.reasons)}  "
              f"{case.opened_at.isoformat()}  growth {amounts.growth} points {amounts.points} "
              f"orders {amounts.orders} actions {amounts.actions}{decided}")
    return 0


def cmd_review_decide(args: argparse.Namespace) -> int:
    from loyalty.services import holds

    decision = (holds.approve if args.verb == "approve" else holds.reject)(args.case, by=args.by, note=args.note)
    print(f"case {decision.case_id} {decision.decision}: member {decision.member}, growth {decision.growth}, "
          f"points {decision.points} ({decision.orders} orders, {decision.actions} actions)")
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    import json

    from loyalty.analytics import backtest
    from loyalty.clock import system_clock
    from loyalty.console import console, print_backtest
    from loyalty.domain.money import parse_yuan

    if args.months is not None and args.months < 1:
        raise LoyaltyError("--months must be at least 1", field="months")
    try:
        fee = parse_yuan(args.delivery_fee, field="delivery_fee", allow_zero=True)
    except LoyaltyError as error:
        raise LoyaltyError(f"--delivery-fee {args.delivery_fee!r}: yuan at or above 0, e.g. 6 or 6.50",
                           field="delivery_fee") from error
    candidate = backtest.ruleset_named(args.ruleset, system_clock.now())
    baseline = backtest.ruleset_named(args.baseline, system_clock.now())
    with console.status("replaying the history under both rulesets"):
        history = backtest.history_from_csv(args.orders) if args.orders else backtest.history_from_db()
        document = backtest.simulate(candidate, baseline, history, months=args.months, delivery_fee_fen=fee)
    if args.format == "json":
        text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
        if args.output:
            Path(args.output).write_text(text, encoding="utf-8")
        else:
            sys.stdout.write(text)
    else:
        print_backtest(document)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from rich.console import Console

    from loyalty.demo.links import DEMO_BASE, demo_links, print_links
    from loyalty.demo.run import run_demo
    from loyalty.web.member import member_center_url

    run_demo(synthetic=args.synthetic, seed=args.seed)
    links = demo_links(DEMO_DATABASE.parent / "demo-operator.txt", lambda m: member_center_url(m, base=DEMO_BASE))
    print_links(Console(), links)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
