"""J4 + J5 in a real browser, continuing the journey of test_admission_journey from «Подключение» (issue #10,
«Accepted when»): the form refuses a bad fee at its field, the agreement is previewed live and signed with the
member key; its PDF shows the four fees and the domain; staff approve it; the `.localhost` domain is delegated by
RFC 6761, provisioning runs in the worker with its stages on the page, and the domain answers with the
cooperative's site."""

from __future__ import annotations

import re
import subprocess
from urllib.parse import urlsplit

from playwright.sync_api import expect

from tests.e2e.conftest import shot, wait_for_mail

FEES = {"fee_entrance_org": "1 500", "fee_share_org": "5 000", "fee_entrance_ind": "150", "fee_share_ind": "500,50"}
SHOWN = ("1 500,00 ₽", "5 000,00 ₽", "150,00 ₽", "500,50 ₽")
DESCRIPTION = "Совместные закупки продуктов у фермеров Подмосковья для семей пайщиков"


def plain(text: str) -> str:
    return " ".join(text.replace("\u00a0", " ").split())


def connect_and_provision(live_server, page, staff, tmp_path, key, *, domain: str, coop_name: str,
                          email: str) -> None:
    from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

    from portal.documents.verify import verify_pdf

    page.context.set_default_timeout(30_000)
    # The form: a bad fee is refused at its field as it is typed (htmx), the preview waits for valid values.
    page.fill("#f-fee_entrance_org", "-100")
    expect(page.locator("#err-fee_entrance_org")).to_have_text("Сумма должна быть больше нуля.")
    expect(page.locator("#agreement-waiting")).to_be_visible()
    for name, value in FEES.items():
        page.fill(f"#f-{name}", value)
    page.fill("#f-domain", domain)
    page.fill("#f-description", DESCRIPTION)
    page.locator("#f-description").blur()
    expect(page.locator("#err-fee_entrance_org")).to_be_hidden()
    frame = page.frame_locator("#agreement-frame")
    expect(frame.locator("body")).to_contain_text(domain)
    expect(frame.locator("body")).to_contain_text("500,50")
    shot(page, "connection-form")

    # «Подписать соглашение»: this browser does not keep the key (it was pasted when joining) — asked for, pasted,
    # the agreement is signed; the values are frozen.
    page.click("button:has-text('Подписать соглашение')")
    expect(page.locator("#agreement [data-key-error]")).to_contain_text("Укажите ключ пайщика")
    seed = key.private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption()).hex()
    page.fill("#key-paste", "-".join(seed[i:i + 4] for i in range(0, 64, 4)))
    page.click("button:has-text('Подписать соглашение')")
    page.wait_for_url("**/cabinet/connection?signed=1*")
    expect(page.locator("#connection-status")).to_have_text("подписано, ждёт одобрения")
    expect(page.locator("#server-ip")).to_have_text("127.0.0.1")
    page.click("#status button:has-text('Проверить сейчас')")
    expect(page.locator("#dns-status")).to_have_text("делегирован")
    shot(page, "connection-signed")
    with page.expect_download() as dl:
        page.click("a:has-text('Подписанное соглашение (PDF)')")
    signed_pdf = tmp_path / "agreement.pdf"
    dl.value.save_as(signed_pdf)
    text = plain(subprocess.run(["pdftotext", "-layout", str(signed_pdf), "-"], capture_output=True, text=True,
                                check=True).stdout)
    for amount in SHOWN:
        assert amount in text, amount
    assert domain in text and DESCRIPTION[:40] in text
    assert verify_pdf(signed_pdf.read_bytes(), seal_certificates=None).valid

    # Staff approve the connection: the operator's seal countersigns, provisioning starts (the domain points here).
    staff.goto(live_server.url + "/staff/connections?status=signed")
    staff.click(f"#connections a:has-text('{domain}')")
    expect(staff.locator("#connection-status")).to_contain_text("ждёт одобрения")
    expect(staff.locator("#dns-status")).to_have_text("делегирован")
    staff.click("button:has-text('Одобрить подключение')")
    staff.wait_for_url(re.compile(r".*/staff/connections/\d+\?done=approved"))
    expect(staff.locator("#connection-status")).to_contain_text("одобрено")
    shot(staff, "staff-connection-approved")
    wait_for_mail(live_server.smtp, email, "Подключение одобрено")

    # The member's page, never reloaded, follows provisioning (htmx polling) until the site is open.
    expect(page.locator("#site-ready")).to_be_visible(timeout=60_000)
    expect(page.locator("#connection-status")).to_have_text("одобрено")
    expect(page.locator("#agreement-current a:has-text('одобренное оператором')")).to_have_count(1)
    expect(page.locator("#provision")).to_contain_text("4 из 4")
    shot(page, "connection-provisioned")
    mail = wait_for_mail(live_server.smtp, email, "готов")
    port = urlsplit(live_server.url).port
    site = f"http://{domain}:{port}/"
    assert site in mail.get_content()

    # The domain answers with the cooperative's own site (Chromium resolves *.localhost to loopback itself).
    page.goto(site)
    expect(page.locator("h1")).to_contain_text(coop_name)
    expect(page.locator("main")).to_contain_text(DESCRIPTION)
    expect(page.locator(".site-nav a[href='/connect']")).to_have_count(0)
    shot(page, "cooperative-site")
    # The member is logged in on the operator's site, not here: no cabinet, no «Выйти» on the cooperative's site.
    expect(page.locator(".site-nav a[href='/cabinet']")).to_have_count(0)
    expect(page.locator(".whoami")).to_have_count(0)
