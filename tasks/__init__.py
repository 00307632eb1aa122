"""Thin Prefect tasks: read, call a pure function, write, return a small reference."""
