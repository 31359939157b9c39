"""Piccolo's configuration module (PICCOLO_CONF=portal.piccolo_conf).

DB is the engine of the current settings; portal.db.configure_database() replaces it at start-up.
"""

from piccolo.conf.apps import AppRegistry

from portal.db import make_engine
from portal.settings import load_settings

DB = make_engine(load_settings())

APP_REGISTRY = AppRegistry(apps=["portal.piccolo_app"])
