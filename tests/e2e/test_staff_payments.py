"""Staff in a real browser: a malformed statement is refused with its line, a 1C statement uploaded from
«Платежи» credits the invoice it names (and only that), the same file again credits nothing, the payment nobody
matched is credited by hand with «Зачесть»."""

from __future__ import annotations

import asyncio
import concurrent.futures
import re

from playwright.sync_api import expect

from tests.e2e.conftest import shot, staff_page, page_width
from tests.unit.test_statement import document, statement


def in_database(live_server, work):
    """Run ``work()`` (a coroutine function) against the live server's database, from this process."""
    from portal import db
    from portal.settings import load_settings

    settings = load_settings(live_server.env)

    async def run():
        db.configure_database(settings)
        await db.start(settings)
        try:
            return await work()
        finally:
            await db.stop(settings)

    # Playwright's sync API runs a loop in this thread: the database work gets a thread of its own.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, run()).result()


def new_invoice(live_server, email: str, applicant_type: str) -> tuple[dict, str]:
    """A member with a fees invoice; the invoice and the cooperative's settlement account."""

    async def work():
        from portal.accounts.tables import Member
        from portal.clock import now
        from portal.cooperatives.service import operator
        from portal.payments import service

        op = await operator()
        rows = await Member.insert(Member(cooperative=op["id"], email=email, email_confirmed_at=now(),
                                          created_at=now(), display_name=f"Пайщик {email}")).returning(Member.id)
        member = await Member.select().where(Member.id == rows[0]["id"]).first()
        return await service.issue_fees_invoice(member, applicant_type, op), op["settlement_account"]

    return in_database(live_server, work)


def test_staff_import_a_statement_and_match_the_rest_by_hand(live_server, new_page, tmp_path):
    org, account = new_invoice(live_server, "statement-org@example.org", "organization")
    ind, _ = new_invoice(live_server, "statement-ind@example.org", "individual")
    text = statement(
        document("311", "4 000,00", purpose=f"Взносы по счёту № {org['number']}. Без НДС"),
        document("312", "400.00", purpose="Вступительный взнос, счёт потерял", payer="ИП Иванов"),
        document("313", "150.00", payer_account=account, recipient_account="40702810900000012345",
                 purpose="Комиссия банка"),
        account=account)
    good = tmp_path / "kl_to_1c.txt"
    good.write_bytes(text.replace("\n", "\r\n").encode("cp1251"))
    bad = tmp_path / "broken.txt"
    bad.write_bytes(text.replace("Сумма=400.00", "Сумма=4OO.00").encode("cp1251"))
    bad_line = next(i for i, s in enumerate(text.splitlines(), 1) if s == "Сумма=400.00")

    page = staff_page(live_server, new_page, "cashier-e2e@example.org", "cashier e2e password")
    page.click(".staff-bar >> text=Платежи")
    page.wait_for_url("**/staff/payments")
    expect(page.locator(f"#invoices tr[data-invoice='{org['number']}']")).to_contain_text("Ожидает оплаты")

    # A malformed file: refused with its line, nothing credited.
    page.set_input_files("#f-statement", str(bad))
    page.click("button:has-text('Загрузить выписку')")
    expect(page.locator("#err-statement")).to_contain_text(f"Строка {bad_line}: сумма «4OO.00» не число")
    expect(page.locator(f"#invoices tr[data-invoice='{org['number']}']")).to_contain_text("Ожидает оплаты")

    page.set_input_files("#f-statement", str(good))
    page.click("button:has-text('Загрузить выписку')")
    page.wait_for_url("**/staff/payments/import")
    expect(page.locator("#sum-credited")).to_have_text("1")
    expect(page.locator("#sum-unmatched")).to_have_text("1")
    expect(page.locator("#sum-repeat")).to_have_text("0")
    expect(page.locator("a:has-text('Сопоставить вручную (1)')")).to_have_attribute("href", "/staff/payments#unmatched")
    expect(page.locator("#import-rows tr[data-outcome=credited]")).to_contain_text(org["number"])
    shot(page, "staff-payments-import")

    # The same file again: nothing new.
    page.goto(live_server.url + "/staff/payments")
    page.set_input_files("#f-statement", str(good))
    page.click("button:has-text('Загрузить выписку')")
    page.wait_for_url("**/staff/payments/import")
    expect(page.locator("#sum-credited")).to_have_text("0")
    expect(page.locator("#sum-repeat")).to_have_text("2")

    # The invoice is paid; the individual's payment waits among «Платежи без счёта» and is credited by hand.
    page.click(".staff-bar >> text=Платежи")
    page.wait_for_url(re.compile(r"/staff/payments$"))
    row = page.locator("#unmatched-list tr", has_text="ИП Иванов")
    expect(row).to_contain_text("В назначении нет номера счёта")
    expect(row.locator("select")).to_contain_text(f"{ind['number']} · Пайщик statement-ind@example.org")
    row.locator("select").select_option(value=str(ind["id"]))
    row.locator("button:has-text('Зачесть')").click()
    expect(page.locator("#matched-notice")).to_contain_text("Платёж зачтён")
    page.select_option("#status", "paid")
    expect(page.locator(f"#invoices tr[data-invoice='{org['number']}']")).to_contain_text("Оплачен")
    expect(page.locator(f"#invoices tr[data-invoice='{ind['number']}']")).to_contain_text("Оплачен")
    page.click(f"#invoices a:has-text('{org['number']}')")
    expect(page.locator("#invoice-state")).to_have_text("Оплачен")
    expect(page.locator("#invoice-payments")).to_contain_text("311")
    shot(page, "staff-payments-invoice")
    page.set_viewport_size({"width": 375, "height": 800})  # on a phone: wide tables scroll, the page does not
    page.goto(live_server.url + "/staff/payments?status=all")
    assert page_width(page) <= 375
    assert [e for e in page.errors if "status of 422" not in e] == []
