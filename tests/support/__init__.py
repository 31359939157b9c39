"""Helpers for the test suite: PostgreSQL, SMTP sink, CDN scripts from npm, Chromium, ports."""
