"""J2 in a real browser: after signing, the cabinet leads to «Оплата взносов»; the invoice downloads (its QR code
read back with zbar); a payment recorded meanwhile (here, in the test's process, as the staff import or ЮKassa
would) turns the status into «оплачено» by htmx polling, without a reload; the member gets the e-mail."""

from __future__ import annotations

import asyncio
import concurrent.futures
import re
import shutil
import subprocess

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import shot, wait_for_mail
from tests.e2e.test_join_flow import draw_signature
from tests.e2e.test_mobile_signing import DESKTOP, on_the_signing_page, sign_with
from tests.unit.test_invoice import decode_qr

CASE = {"inn": "7736050003", "email": "fees@example.org", "coop": "Потребительский кооператив «Взнос»"}


def record_payment(live_server, email: str, amount: int, external_id: str) -> dict:
    """Credit a payment to the member's invoice in the live server's database (from this process)."""
    from portal import db
    from portal.accounts.tables import Member
    from portal.payments import service
    from portal.settings import load_settings

    settings = load_settings(live_server.env)

    async def run() -> dict:
        db.configure_database(settings)
        await db.start(settings)
        try:
            member = await Member.select().where(Member.email == email).first()
            invoice = await service.open_fees_invoice(member["id"])
            credited = await service.record_payment(invoice["cooperative"], "manual", external_id, amount,
                                                    invoice_id=invoice["id"], reference=external_id)
            return credited.invoice
        finally:
            await db.stop(settings)

    # Playwright's sync API runs a loop in this thread: the database work gets a thread of its own.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, run()).result()


@pytest.mark.skipif(shutil.which("zbarimg") is None, reason="zbar-tools: scripts/ensure-system-packages.sh test")
def test_signed_member_pays_the_fees(live_server, new_page, tmp_path):
    page, key = on_the_signing_page(live_server, new_page, CASE, DESKTOP)
    page.context.set_default_timeout(30_000)
    draw_signature(page, touch=False)
    sign_with(page, key)

    # The cabinet: «Оплата взносов» is the current step, with a link; the invoice is among «Мои документы».
    current = page.locator(".stepper li[aria-current=step]")
    expect(current).to_contain_text("Оплата взносов")
    expect(page.locator(".documents")).to_contain_text("Счёт на оплату № В-")
    page.click(".next-step a:has-text('Оплата взносов')")
    page.wait_for_url("**/cabinet/payment")
    expect(page.locator("h1")).to_contain_text("Оплата взносов")
    expect(page.locator("#payment-status-text")).to_have_text("ожидает оплаты")
    expect(page.locator(".invoice-lines")).to_contain_text("Вступительный взнос")
    expect(page.locator(".invoice-lines tfoot")).to_contain_text("4\u00a0000,00\u00a0₽")
    expect(page.locator("#pay-by-transfer svg")).to_be_visible()
    expect(page.locator("#pay-by-card")).to_have_count(0)
    number = re.search(r"В-\d{4}-\d{6}", page.locator("#payment-status").inner_text()).group(0)
    shot(page, "payment-waiting")

    # «Скачать счёт»: the PDF, its QR code decoded by zbar — the payee, the sum and the invoice number.
    with page.expect_download() as dl:
        page.click("text=Скачать счёт")
    pdf = tmp_path / "invoice.pdf"
    dl.value.save_as(pdf)
    text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    assert number in text and "Взнос" in text
    from portal.payments.qr import parse_payload

    codes = decode_qr(pdf)
    assert len(codes) == 1
    fields = parse_payload(codes[0])
    assert fields["Sum"] == "400000" and number in fields["Purpose"] and fields["Name"] == "Потребительский кооператив «ВОСХОД»"

    # Part of the money arrives: the page (not reloaded) says so by itself, then the rest: «оплачено».
    page.evaluate("window.__not_reloaded = true")
    record_payment(live_server, CASE["email"], 100_000, "e2e-part")
    expect(page.locator("#payment-status-text")).to_contain_text("оплачено частично", timeout=20_000)
    record_payment(live_server, CASE["email"], 300_000, "e2e-rest")
    expect(page.locator("#payment-status-text")).to_contain_text(re.compile(r"^оплачено — зачислено \d\d\.\d\d\.\d{4}"),
                                                                  timeout=20_000)
    assert page.evaluate("window.__not_reloaded") is True
    expect(page.locator("#payment-status")).not_to_have_attribute("hx-trigger", re.compile(".+"))
    shot(page, "payment-paid")
    mail = wait_for_mail(live_server.smtp, CASE["email"], "Взносы зачислены")
    assert number in mail["Subject"] and "4 000,00 ₽" in mail.get_content().replace("\u00a0", " ")
    assert [e for e in page.errors if "status of 422" not in e] == []
