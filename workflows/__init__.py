"""Deterministic workflow code only: no I/O, no clocks, no user content in history."""
