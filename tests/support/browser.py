"""Headless Chromium for the end-to-end tests (sync Playwright, Debian's chromium).

    from playwright.sync_api import sync_playwright
    with sync_playwright() as pw:
        browser = launch_chromium(pw)
        context = browser.new_context()
        route_cdn(context, fetch_all(cache_dir))
        page = context.new_page()
        page.goto("http://127.0.0.1:8123/")

``playwright install`` cannot download browsers here, so we drive the system
Chromium (/usr/bin/chromium, installed by ``make test``). The closed network makes
Chromium's background connections fail noisily, hence the flags below; every
request that is not for loopback (or a pinned CDN script, served from local bytes)
is aborted, so the tests never depend on the internet.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

__all__ = ["CHROMIUM_ARGS", "chromium_executable", "launch_chromium", "route_cdn", "is_loopback_url"]

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--disable-dev-shm-usage",
]


def chromium_executable() -> str:
    """Path of the system Chromium (``PORTAL_TEST_CHROMIUM`` overrides)."""
    override = os.environ.get("PORTAL_TEST_CHROMIUM")
    if override:
        return override
    if os.path.exists("/usr/bin/chromium"):
        return "/usr/bin/chromium"
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    raise RuntimeError("Chromium not found: install Debian's 'chromium' package (make test does it)")


def launch_chromium(playwright: Any, *, extra_args: Iterable[str] = (), **kwargs: Any) -> Any:
    """``playwright.chromium.launch`` on the system Chromium, headless, with CHROMIUM_ARGS.

    ``extra_args`` are appended (e.g. ``--host-resolver-rules=MAP coop.example 127.0.0.1``);
    other keyword arguments go to ``launch`` unchanged.
    """
    kwargs.setdefault("executable_path", chromium_executable())
    kwargs.setdefault("headless", True)
    kwargs.setdefault("timeout", 60_000)
    args = [*CHROMIUM_ARGS, *extra_args, *kwargs.pop("args", [])]
    return playwright.chromium.launch(args=args, **kwargs)


def is_loopback_url(url: str, allow_hosts: Iterable[str] = ()) -> bool:
    parts = urlsplit(url)
    if parts.scheme in ("data", "blob", "about"):
        return True
    host = (parts.hostname or "").lower()
    if host in {h.lower() for h in allow_hosts}:
        return True
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def route_cdn(context_or_page: Any, assets: Mapping[str, bytes], *, allow_hosts: Iterable[str] = ()) -> None:
    """Serve each CDN URL in ``assets`` (URL → bytes: ``tests.support.cdn.fetch_all``) from its
    bytes; let loopback through; abort everything else.

    Works on a BrowserContext or a Page. The responses carry
    ``Access-Control-Allow-Origin: *`` because the script tags are ``crossorigin="anonymous"``
    (with SRI); Chromium still checks the integrity hashes against these bytes.
    ``allow_hosts`` lets extra host names through (e.g. ones mapped to 127.0.0.1).
    """
    allowed = tuple(allow_hosts)

    def handler(route: Any) -> None:
        url = route.request.url
        body = assets.get(url.split("#", 1)[0])
        if body is not None:
            route.fulfill(
                status=200,
                body=body,
                headers={
                    "Content-Type": "application/javascript; charset=utf-8",
                    "Access-Control-Allow-Origin": "*",
                    "Cache-Control": "public, max-age=31536000, immutable",
                },
            )
        elif is_loopback_url(url, allowed):
            route.continue_()
        else:
            route.abort("blockedbyclient")

    context_or_page.route("**/*", handler)
