"""Helpers for the test suite: PostgreSQL, SMTP sink, htmx, Chromium, ports."""
