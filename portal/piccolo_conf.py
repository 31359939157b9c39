"""Piccolo's configuration module (PICCOLO_CONF=portal.piccolo_conf, set in portal/__init__.py).

Importing it touches nothing on disk and reads no settings. The engine, DB, is set by
portal.db.configure_database(settings) when a command starts (serve, migrate, worker, the tests).
Only when something asks for DB before that — Piccolo's own command line, e.g.
``PICCOLO_CONF=portal.piccolo_conf piccolo migrations new portal --auto`` — is it made from the
environment's settings (PORTAL_DATABASE_URL, PORTAL_DATA_DIR), the same database `portal migrate` uses.
"""

from __future__ import annotations

from typing import Any

from piccolo.conf.apps import AppRegistry

APP_REGISTRY = AppRegistry(apps=["portal.piccolo_app"])


def __getattr__(name: str) -> Any:  # PEP 562: DB exists once configured, or is configured on first use
    if name == "DB":
        from portal.db import configure_database
        from portal.settings import load_settings

        return configure_database(load_settings())  # also sets DB in this module
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
