"""A named lock that one process holds while it works, and that dies with it.

`hold("jobs")` answers True to the one holder, False at once to anyone else. It is released on
exit, and also when the holder dies in any way (SIGKILL included), without anyone cleaning up:
  * PostgreSQL: a session advisory lock (per database), gone with the connection;
  * MariaDB/MySQL: GET_LOCK, named after the database (its names are server-wide), likewise;
  * SQLite: flock on a file beside the database (`<database>-NAME.lock`), which the kernel
    releases with the process; an in-memory database is private to its process, so a lock in
    the process's memory does.
So "a run is marked running, but nobody holds the lock" reliably means that run crashed.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress

from django.db import Error

from loyalty.store import raw

_memory_locks: dict[str, threading.Lock] = {}
_memory_guard = threading.Lock()


@contextmanager
def hold(name: str) -> Iterator[bool]:
    db = raw.database()
    holder = {"postgresql": _postgres, "mysql": _mysql}.get(db.vendor, _sqlite)
    with holder(name) as held:
        yield held


def _advisory_key(name: str) -> int:
    """A stable signed 64-bit number for the name (PostgreSQL's advisory locks take a bigint)."""
    return int.from_bytes(hashlib.sha256(f"loyalty:{name}".encode()).digest()[:8], "big", signed=True)


@contextmanager
def _postgres(name: str) -> Iterator[bool]:
    key = _advisory_key(name)
    held = bool(raw.fetch("SELECT pg_try_advisory_lock(%s)", [key])[0][0])
    try:
        yield held
    finally:
        if held:
            with suppress(Error):  # a broken connection has released it already
                raw.fetch("SELECT pg_advisory_unlock(%s)", [key])


@contextmanager
def _mysql(name: str) -> Iterator[bool]:
    lock = f"SHA1(CONCAT(DATABASE(), ':loyalty:{name}'))"  # lock names are at most 64 characters
    held = raw.fetch(f"SELECT GET_LOCK({lock}, 0)", [])[0][0] == 1
    try:
        yield held
    finally:
        if held:
            with suppress(Error):  # a broken connection has released it already
                raw.fetch(f"SELECT RELEASE_LOCK({lock})", [])


@contextmanager
def _sqlite(name: str) -> Iterator[bool]:
    database = str(raw.database().settings_dict["NAME"])
    if database == ":memory:" or "mode=memory" in database:
        with _memory_lock(f"{database}:{name}") as held:
            yield held
        return
    import fcntl

    # IMPORTANT: a file of its own, never the database file: closing any descriptor of the
    # database would drop the POSIX locks SQLite holds on it in this process.
    descriptor = os.open(f"{database}-{name}.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(descriptor)  # releases the flock


@contextmanager
def _memory_lock(key: str) -> Iterator[bool]:
    with _memory_guard:
        lock = _memory_locks.setdefault(key, threading.Lock())
    held = lock.acquire(blocking=False)
    try:
        yield held
    finally:
        if held:
            lock.release()
