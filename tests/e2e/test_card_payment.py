"""J2 by bank card in a real browser: a portal configured for ЮKassa (the local server answering as its API), a signed
member clicks «Оплатить картой», passes the pages' CSP on the way to ЮKassa's checkout page, pays, comes back, and
the fees are credited once although ЮKassa notifies twice."""

from __future__ import annotations

import os
import re
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import PORTAL, LiveServer
from tests.e2e.test_join_flow import draw_signature
from tests.e2e.test_mobile_signing import DESKTOP, on_the_signing_page, sign_with
from tests.support.ports import free_port
from tests.support.smtp import SmtpSink
from tests.support.yookassa import FakeYooKassa

CASE = {"inn": "7736050010", "email": "card@example.org", "coop": "Потребительский кооператив «Карта»"}


@pytest.fixture(scope="module")
def yookassa_api() -> Iterator[FakeYooKassa]:
    fake = FakeYooKassa(notify_times=2).start()  # ЮKassa repeats a notification: the shop must count it once
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def live_server(session_dir: Path, session_site: Path, smtp_sink: SmtpSink,
                yookassa_api: FakeYooKassa) -> Iterator[LiveServer]:
    """`portal serve` with ЮKassa configured (this module's own server: the others run without it)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    data_dir = session_dir / "live-card"
    env = {
        **os.environ, "PORTAL_ENV": "dev", "PORTAL_DATA_DIR": str(data_dir), "PORTAL_DATABASE_URL": "",
        "PORTAL_SITE_DIR": str(session_site), "PORTAL_BASE_URL": url, "PORTAL_SMTP_URL": smtp_sink.url,
        "PORTAL_YOOKASSA_SHOP_ID": yookassa_api.shop_id, "PORTAL_YOOKASSA_SECRET_KEY": yookassa_api.secret_key,
        "PORTAL_YOOKASSA_API_URL": yookassa_api.url,
    }
    yookassa_api.notify_url = f"{url}/api/v1/yookassa/notifications"
    log = open(session_dir / "live-card-server.log", "w")
    proc = subprocess.Popen([PORTAL, "serve", "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=2):
                break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError((session_dir / "live-card-server.log").read_text())
            time.sleep(0.2)
    yield LiveServer(url, data_dir, smtp_sink, env)
    proc.terminate()
    proc.wait(timeout=20)
    log.close()


def test_signed_member_pays_the_fees_by_card(live_server, new_page, yookassa_api):
    page, key = on_the_signing_page(live_server, new_page, CASE, DESKTOP)
    page.context.set_default_timeout(30_000)
    draw_signature(page, touch=False)
    sign_with(page, key)
    page.goto(live_server.url + "/cabinet/payment")
    page.errors.clear()  # from here on, nothing fails in the browser (a CSP refusal would be one)
    card = page.locator("#pay-by-card")
    expect(card).to_be_visible()
    card.get_by_role("button", name="Оплатить картой").click()

    # ЮKassa's checkout page (the local server's): the payment is for the invoice's 4 000 ₽.
    page.wait_for_url(re.compile(re.escape(yookassa_api.origin) + r"/checkout/"))
    expect(page.locator("h1")).to_contain_text("4000.00")
    payment = yookassa_api.only_payment()
    assert payment["amount"] == {"value": "4000.00", "currency": "RUB"}
    page.locator("#pay").click()

    # Back in the cabinet: credited (by the notification or by the return, whichever came first), once.
    page.wait_for_url(live_server.url + "/cabinet/payment")
    expect(page.locator("#payment-status-text")).to_contain_text(re.compile(r"^оплачено — зачислено \d\d\.\d\d\.\d{4}"))
    assert yookassa_api.deliveries == [("payment.succeeded", 200), ("payment.succeeded", 200)]
    assert len(yookassa_api.payments) == 1 and len(yookassa_api.creations) == 1
    assert not page.errors, page.errors
