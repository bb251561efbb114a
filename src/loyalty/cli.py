"""The `loyalty` command. Thin: parse arguments, call a service, print the result."""

from __future__ import annotations

import argparse
import csv
import os
import sys
from collections.abc import Sequence
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from loyalty.domain.errors import LoyaltyError, RulesetInvalid


def _setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "loyalty.settings")
    import django

    django.setup()


def _use_demo_database() -> None:
    """The demo builds its own SQLite file under ./var/ afresh, unless a database is named."""
    if "LOYALTY_DATABASE_URL" in os.environ:
        return
    path = Path("var") / "demo.sqlite3"
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        stale.unlink(missing_ok=True)
    os.environ["LOYALTY_DATABASE_URL"] = f"sqlite:///{path.resolve()}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help()
        return 2
    if args.run is cmd_demo:
        _use_demo_database()
    _setup_django()
    try:
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

    cmd = sub.add_parser("serve", help="serve the admin (and the API and pages as they arrive)")
    cmd.add_argument("--host", default="127.0.0.1")
    cmd.add_argument("--port", type=int, default=8000)
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
    cmd.add_argument("--reason", default="")
    cmd.set_defaults(run=cmd_ruleset_publish)
    cmd = ruleset.add_parser("show", help="show the version in force (or --version N)")
    cmd.add_argument("--version", type=int)
    cmd.set_defaults(run=cmd_ruleset_show)

    member = sub.add_parser("member", help="look at a member").add_subparsers(metavar="ACTION")
    cmd = member.add_parser("show", help="tier, balances, progress and the last entries")
    cmd.add_argument("external_id")
    cmd.set_defaults(run=cmd_member_show)

    imports = sub.add_parser("import", help="import history").add_subparsers(metavar="WHAT")
    cmd = imports.add_parser("orders", help="import orders from a CSV file (see README for the columns)")
    cmd.add_argument("file")
    cmd.set_defaults(run=cmd_import_orders)

    cmd = sub.add_parser("demo", help="run the engine over real purchase data (CDNOW) or a synthetic shop")
    cmd.add_argument("--synthetic", type=int, metavar="N", help="generate a shop of N members instead")
    cmd.add_argument("--seed", type=int, default=7)
    cmd.set_defaults(run=cmd_demo)
    return parser


def cmd_migrate(args: argparse.Namespace) -> int:
    from loyalty.store.setup import migrate

    migrate(verbose=True)
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from django.core.management import call_command

    call_command("runserver", f"{args.host}:{args.port}", use_reloader=False)
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
                               actor=args.actor, reason=args.reason)
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


def cmd_import_orders(args: argparse.Namespace) -> int:
    from loyalty import console
    from loyalty.services.imports import parse_rows

    path = Path(args.file)
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        events = parse_rows((index + 2, row) for index, row in enumerate(reader))
    console.run_import(events)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from loyalty.demo.run import run_demo

    run_demo(synthetic=args.synthetic, seed=args.seed)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
