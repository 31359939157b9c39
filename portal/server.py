"""`portal serve`: granian with N worker processes, and one mail sender beside them.

Each worker builds the app with serve_app() (a granian factory) from the same environment; the trusted
proxies' X-Forwarded-For gives the client address. The outbox is sent by one child process
(`python -m portal worker`), not by every worker.
"""

from __future__ import annotations

import os
import subprocess
import sys

from portal.settings import Settings, load_settings

LOG_CONFIG = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "generic": {"()": "logging.Formatter", "fmt": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
        "access": {"()": "logging.Formatter", "fmt": "%(message)s"},
    },
    "handlers": {
        "console": {"formatter": "generic", "class": "logging.StreamHandler", "stream": "ext://sys.stderr"},
        "access": {"formatter": "access", "class": "logging.StreamHandler", "stream": "ext://sys.stdout"},
    },
    "root": {"handlers": ["console"], "level": "INFO"},
    "loggers": {
        "_granian": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "granian.access": {"handlers": ["access"], "level": "INFO", "propagate": False},
        "weasyprint": {"level": "WARNING"},
        "fontTools": {"level": "WARNING"},
        "pyhanko": {"level": "WARNING"},
        "piccolo": {"level": "WARNING"},
    },
}


def serve_app():
    """The ASGI app of one worker process."""
    from granian.utils.proxies import wrap_asgi_with_proxy_headers

    from portal.app import create_app

    settings = load_settings()
    return wrap_asgi_with_proxy_headers(create_app(settings, run_mail_sender=False),
                                        trusted_hosts=list(settings.trusted_proxies))


def default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


def run(settings: Settings, host: str, port: int, workers: int) -> None:
    """Serve until SIGINT/SIGTERM; the workers finish their requests and run the app's shutdown."""
    from granian import Granian
    from granian.constants import Interfaces

    sender = subprocess.Popen([sys.executable, "-m", "portal", "worker"], env=os.environ.copy())
    try:
        Granian(
            "portal.server:serve_app",
            factory=True,
            interface=Interfaces.ASGI,
            address=host,
            port=port,
            workers=workers,
            log_access=settings.access_log,
            log_dictconfig=LOG_CONFIG,
            workers_kill_timeout=10,  # a worker still starting up can miss SIGTERM: killed after 10 s
        ).serve()
    finally:
        sender.terminate()
        try:
            sender.wait(timeout=15)
        except subprocess.TimeoutExpired:
            sender.kill()
