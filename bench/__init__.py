"""Benchmarks: each service path against the same rows written with the stdlib `sqlite3` module.

Every benchmark is a module runnable on its own (`python -m bench.record_order`) and runs in its
own process on its own temporary SQLite file, because Django reads its settings once per
process. `python -m bench` runs them all and prints a summary; `python -m bench.hotspots`
profiles the service paths. Figures are medians of several runs; nothing here asserts a time.
"""
