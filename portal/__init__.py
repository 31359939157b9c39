"""Портал подключения кооперативов к платформе «Кооперативная экономика»."""

import os

# Piccolo finds its engine and apps through this module (see portal/piccolo_conf.py).
os.environ.setdefault("PICCOLO_CONF", "portal.piccolo_conf")
