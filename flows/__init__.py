"""Prefect flows and the ``astroflow`` command line."""
