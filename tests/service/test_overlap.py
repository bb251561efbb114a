"""`overlapped` is the plain loop `for batch in batches: write(prepare(batch))`, whether it prepares
in a helper thread (on PostgreSQL and MariaDB) or not (on SQLite): same order, same results, and
an error in either stage stops the loop and reaches the caller. The service suites run on every
backend, so both routes are exercised."""

from __future__ import annotations

import threading

import pytest

from loyalty.services.overlap import overlapped


def test_every_batch_is_prepared_then_written_in_order(db):
    written: list[tuple[int, int]] = []
    overlapped(range(7), lambda n: (n, n * n), written.append)
    assert written == [(n, n * n) for n in range(7)]


def test_nothing_to_do_writes_nothing(db):
    written: list[int] = []
    overlapped([], lambda n: n, written.append)
    assert written == []


def test_the_writing_stays_in_the_calling_thread(db):
    writers: set[int] = set()
    overlapped(range(5), lambda n: n, lambda _: writers.add(threading.get_ident()))
    assert writers == {threading.get_ident()}


def test_an_error_while_preparing_stops_the_loop_and_is_raised(db):
    written: list[int] = []

    def prepare(n: int) -> int:
        if n == 3:
            raise ValueError("batch 3 is malformed")
        return n

    with pytest.raises(ValueError, match="batch 3"):
        overlapped(range(6), prepare, written.append)
    assert written == [0, 1, 2]


def test_an_error_while_writing_stops_the_loop_and_is_raised(db):
    written: list[int] = []

    def write(n: int) -> None:
        if n == 2:
            raise RuntimeError("the database refused batch 2")
        written.append(n)

    with pytest.raises(RuntimeError, match="batch 2"):
        overlapped(range(6), lambda n: n, write)
    assert written == [0, 1]
