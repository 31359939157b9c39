"""Browser tests: a real `portal serve` on loopback, Debian's Chromium driven by Playwright."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest
from playwright.sync_api import expect

from tests.conftest import CACHE_DIR
from tests.support.browser import launch_chromium, route_cdn
from tests.support.cdn import fetch_all
from tests.support.ports import free_port
from tests.support.smtp import SmtpSink

PORTAL = str(Path(sys.executable).with_name("portal"))

# The suite runs one process per core (pytest-xdist): a page may wait for a PDF rendered while another process
# renders too. An expectation waits up to 15 s (Playwright's 5 s was met with nothing to spare on two cores).
expect.set_options(timeout=15_000)


class LiveServer:
    def __init__(self, url: str, data_dir: Path, smtp: SmtpSink, env: dict[str, str]):
        self.url = url
        self.data_dir = data_dir
        self.smtp = smtp
        self.env = env

    def portal(self, *args: str, **kw) -> subprocess.CompletedProcess:
        """Run another `portal` command against the same database."""
        return subprocess.run([PORTAL, *args], env=self.env, capture_output=True, text=True, timeout=120, **kw)


@pytest.fixture(scope="session")
def smtp_sink() -> Iterator[SmtpSink]:
    with SmtpSink() as sink:
        yield sink


@pytest.fixture(scope="session")
def live_server(session_dir: Path, session_site: Path, smtp_sink: SmtpSink) -> Iterator[LiveServer]:
    port = free_port()
    data_dir = session_dir / "live"
    env = {
        **os.environ,
        "PORTAL_ENV": "dev",
        "PORTAL_DATA_DIR": str(data_dir),
        "PORTAL_DATABASE_URL": "",
        "PORTAL_SITE_DIR": str(session_site),
        "PORTAL_BASE_URL": f"http://127.0.0.1:{port}",
        "PORTAL_SMTP_URL": smtp_sink.url,
    }
    log = open(session_dir / "live-server.log", "w")
    proc = subprocess.Popen([PORTAL, "serve", "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=2):
                break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError((session_dir / "live-server.log").read_text())
            time.sleep(0.2)
    yield LiveServer(url, data_dir, smtp_sink, env)
    proc.terminate()
    proc.wait(timeout=20)
    log.close()


@pytest.fixture(scope="session")
def cdn_assets() -> dict[str, bytes]:
    """The pages' CDN scripts (htmx, signature_pad) from the npm registry, checked against the SRI
    hashes the pages carry: URL → bytes."""
    return fetch_all(CACHE_DIR)


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = launch_chromium(pw)
        yield b
        b.close()


@pytest.fixture
def new_page(browser, cdn_assets):
    contexts = []

    def make(width: int = 1280, height: int = 900, **kwargs):
        context = browser.new_context(viewport={"width": width, "height": height}, locale="ru-RU", **kwargs)
        route_cdn(context, cdn_assets)
        contexts.append(context)
        page = context.new_page()
        page.errors = []  # type: ignore[attr-defined]
        page.on("console", lambda m: m.type == "error" and page.errors.append(m.text))
        page.on("pageerror", lambda e: page.errors.append(str(e)))
        return page

    yield make
    for c in contexts:
        c.close()


def staff_page(live_server, new_page, email: str = "e2e-staff@example.org", password: str = "e2e staff password"):
    """A logged-in staff member's page (the account is created with `portal create-staff`)."""
    import re

    r = live_server.portal("create-staff", email, "--password", password)
    assert r.returncode == 0, r.stderr
    page = new_page()
    page.goto(live_server.url + "/staff/login")
    page.fill("#email", email)
    page.fill("#password", password)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r"^http://[^/]+/staff/?$"))
    return page


def wait_for_mail(sink, to: str, subject_part: str, timeout: float = 20):
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for m in sink.messages:
            if m["To"] == to and subject_part in m["Subject"]:
                return m
        time.sleep(0.2)
    raise AssertionError(f"no mail to {to} with {subject_part!r}: {[(m['To'], m['Subject']) for m in sink.messages]}")


def page_width(page) -> int:
    """The page's laid-out width, once it has loaded (after a form's navigation the stylesheet may come later,
    and an unstyled page is as wide as its longest hash)."""
    page.wait_for_load_state("load")
    return page.evaluate("document.documentElement.scrollWidth")


def shot(page, name: str) -> None:
    """A full-page screenshot into $PORTAL_SCREENSHOTS, when set (to look at the pages by eye)."""
    import os

    folder = os.environ.get("PORTAL_SCREENSHOTS")
    if folder:
        page.screenshot(path=f"{folder}/{name}.png", full_page=True)
