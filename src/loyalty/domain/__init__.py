"""The pure rules engine: no Django, no I/O, no clock, no randomness.

Everything a ruleset says is decided here; services load facts, call these functions with
an explicit `as_of`, and save the decisions they return.
"""
