"""Run `loyalty ARGS` in this process and SIGKILL it as its Nth database statement starts:
`python kill_after.py N ARGS...`. With N = 0 it runs to the end and prints `statements: C` on
stderr, so that a test can choose N in 1..C.

A test-side harness, not part of the product. It counts at the driver, so the plain-SQL paths,
BEGIN, SAVEPOINT and COMMIT count too: SQLite reports every statement it starts to a trace
callback; psycopg's cursor `execute`/`executemany` and connection `commit` are counted on the
way in. The kill is a real SIGKILL: no handler, no cleanup, nothing flushed.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable
from typing import Any


def main() -> int:
    limit, args = int(sys.argv[1]), sys.argv[2:]
    calls = 0

    def tick(*_: Any) -> None:
        nonlocal calls
        calls += 1
        if calls == limit:
            os.kill(os.getpid(), signal.SIGKILL)

    _count_statements(tick)
    from loyalty.cli import main as loyalty

    code = loyalty(args)
    print(f"statements: {calls}", file=sys.stderr)
    return code


def _count_statements(tick: Callable[..., None]) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "loyalty.settings")
    from django.db.backends.signals import connection_created

    def traced(sender: Any, connection: Any, **_: Any) -> None:
        if connection.vendor == "sqlite":
            connection.connection.set_trace_callback(tick)

    connection_created.connect(traced, weak=False)
    try:
        import psycopg
    except ImportError:
        return
    for owner, names in ((psycopg.Cursor, ("execute", "executemany")), (psycopg.Connection, ("commit",))):
        for name in names:
            setattr(owner, name, _counted(getattr(owner, name), tick))


def _counted(method: Callable[..., Any], tick: Callable[..., None]) -> Callable[..., Any]:
    def counted(*args: Any, **kwargs: Any) -> Any:
        tick()
        return method(*args, **kwargs)

    return counted


if __name__ == "__main__":
    sys.exit(main())
