"""Staff /staff/payments on SQLite and PostgreSQL: invoices waiting, «Отметить оплаченным» (double clicks too), a 1C
statement's import (matching, non-matching, repeated payments; the same file twice; a malformed file) and
matching by hand."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re

import pytest

from portal.audit.tables import AuditEvent
from portal.clock import MOSCOW, now
from portal.cooperatives.service import operator
from portal.mail.tables import OutboxMessage
from portal.origin import SYSTEM
from portal.payments import service
from portal.payments.staff import import_statement
from portal.payments.tables import Invoice, Payment
from portal.staff.service import create_staff
from tests.conftest import csrf_token, post_form
from tests.integration.test_payments import new_member
from tests.unit.test_statement import document, statement

EMAIL, PASSWORD = "cashier@voskhod.example", "cashier password 1"
PAYER = "40702810900000012345"


@pytest.fixture
async def staff(client):
    staff_id = await create_staff(EMAIL, PASSWORD)
    r = await post_form(client, "/staff/login", {"email": EMAIL, "password": PASSWORD}, follow_redirects=False)
    assert r.status_code == 303
    return staff_id


async def invoice_for(email: str, applicant_type: str = "organization") -> dict:
    return await service.issue_fees_invoice(await new_member(email), applicant_type, await operator())


async def fresh(invoice: dict) -> dict:
    return await Invoice.select().where(Invoice.id == invoice["id"]).first()


def today() -> str:
    return now().astimezone(MOSCOW).date().isoformat()


async def upload(client, data: bytes, name: str = "kl_to_1c.txt", follow_redirects: bool = True):
    token = await csrf_token(client)
    return await client.post("/staff/payments/statement", data={"_csrf_token": token},
                             files={"statement": (name, data, "text/plain")}, follow_redirects=follow_redirects)


async def test_the_page_needs_staff(client):
    r = await client.get("/staff/payments", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/staff/login?next=/staff/payments")


async def test_invoices_waiting_with_partial_and_over_payments_named(client, staff):
    op = await operator()
    anna = await invoice_for("anna@example.org")
    boris = await invoice_for("boris@example.org", "individual")
    clara = await invoice_for("clara@example.org")
    await service.record_payment(op["id"], "manual", "P-1", 100_000, invoice_id=anna["id"])
    await service.record_payment(op["id"], "manual", "P-2", 500_000, invoice_id=clara["id"])
    r = await client.get("/staff/payments")
    assert r.status_code == 200 and 'href="/staff/payments"' in r.text  # the menu link
    assert "Ожидают оплаты" in r.text and "Загрузить выписку" in r.text

    async def listed(**params) -> str:
        """The invoices' table alone, as htmx asks for it when a filter changes."""
        r = await client.get("/staff/payments", params=params, headers={"HX-Request": "true"})
        assert r.status_code == 200 and r.text.lstrip().startswith('<div id="invoices"') and "<html" not in r.text
        return r.text

    waiting = await listed()
    assert anna["number"] in waiting and boris["number"] in waiting and clara["number"] not in waiting
    assert "Оплачен частично: 1\xa0000,00\xa0₽ из 4\xa0000,00\xa0₽, осталось 3\xa0000,00\xa0₽" in waiting
    assert "Ожидает оплаты" in waiting and "400,00\xa0₽" in waiting
    over = await listed(status="over")
    assert clara["number"] in over and anna["number"] not in over
    assert "Оплачен с переплатой 1\xa0000,00\xa0₽" in over
    found = await listed(status="all", q="BORIS@")
    assert boris["number"] in found and anna["number"] not in found
    partial = await listed(status="partial")
    assert anna["number"] in partial and boris["number"] not in partial
    paid = await listed(status="paid")
    assert clara["number"] in paid and anna["number"] not in paid and boris["number"] not in paid


async def test_mark_paid_credits_the_rest_once(client, staff):
    invoice = await invoice_for("anna@example.org")
    page = await client.get(f"/staff/payments/invoices/{invoice['id']}")
    assert page.status_code == 200 and f'value="{today()}"' in page.text and 'value="4000,00"' in page.text
    form = {"paid_on": today(), "reference": " № 17 ", "amount": "4000,00"}
    r = await post_form(client, f"/staff/payments/invoices/{invoice['id']}/paid", form, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].endswith("?done=paid")
    paid = await fresh(invoice)
    assert (paid["status"], paid["paid_amount"]) == ("paid", 400_000) and paid["paid_at"] is not None
    payment = await Payment.select().first()
    assert (payment["source"], payment["external_id"], payment["status"]) == ("manual", "17", "credited")
    assert payment["paid_on"] == now().astimezone(MOSCOW).date() and payment["invoice"] == invoice["id"]
    event = await AuditEvent.select().where(AuditEvent.action == "payment.credited").first()
    assert (event["actor_type"], event["actor_id"], event["actor_label"]) == ("staff", str(staff), EMAIL)
    # The same form sent again (a double click, or «Назад» and again): nothing more is counted.
    r = await post_form(client, f"/staff/payments/invoices/{invoice['id']}/paid", {**form, "reference": "17"},
                        follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].endswith("?done=repeat")
    r = await client.get(r.headers["location"])
    assert "Платёж с этой ссылкой уже учтён" in r.text and "Оплачен" in r.text
    assert await Payment.count() == 1 and (await fresh(invoice))["paid_amount"] == 400_000


async def test_a_double_click_at_the_same_moment_credits_once(client, staff):
    invoice = await invoice_for("anna@example.org")
    token = await csrf_token(client)
    form = {"paid_on": today(), "reference": "ПП 512", "amount": "4 000,00", "_csrf_token": token}
    answers = await asyncio.gather(*[
        client.post(f"/staff/payments/invoices/{invoice['id']}/paid", data=form, follow_redirects=False)
        for _ in range(2)])
    assert [a.status_code for a in answers] == [303, 303]
    assert sorted(a.headers["location"].rsplit("=", 1)[1] for a in answers) == ["paid", "repeat"]
    assert await Payment.count() == 1
    assert (await fresh(invoice))["paid_amount"] == 400_000
    assert await AuditEvent.count().where(AuditEvent.action == "payment.credited") == 1


async def test_a_paid_invoice_is_refused_and_nothing_changes(client, staff):
    op = await operator()
    invoice = await invoice_for("anna@example.org")
    await service.record_payment(op["id"], "statement", "line-1", 400_000, invoice_id=invoice["id"])
    r = await post_form(client, f"/staff/payments/invoices/{invoice['id']}/paid",
                        {"paid_on": today(), "reference": "99", "amount": "4000"})
    assert r.status_code == 422 and "уже оплачен" in r.text and "отмечать его оплаченным не нужно" in r.text
    assert await Payment.count() == 1 and (await fresh(invoice))["paid_amount"] == 400_000


async def test_a_reference_used_for_another_invoice_is_refused_at_the_field(client, staff):
    first, second = await invoice_for("anna@example.org"), await invoice_for("boris@example.org")
    r = await post_form(client, f"/staff/payments/invoices/{first['id']}/paid",
                        {"paid_on": today(), "reference": "77", "amount": "4000"}, follow_redirects=False)
    assert r.status_code == 303
    r = await post_form(client, f"/staff/payments/invoices/{second['id']}/paid",
                        {"paid_on": today(), "reference": "№77", "amount": "4000"})
    assert r.status_code == 422
    error = re.search(r'<p class="field-error" id="err-reference">([^<]*)</p>', r.text).group(1)
    assert error.startswith("Платёж с этой ссылкой уже учтён") and first["number"] in error
    assert (await fresh(second))["paid_amount"] == 0 and await Payment.count() == 1


async def test_bad_input_is_shown_at_its_field_and_kept(client, staff):
    invoice = await invoice_for("anna@example.org")
    tomorrow = (now().astimezone(MOSCOW).date() + dt.timedelta(days=1)).isoformat()
    r = await post_form(client, f"/staff/payments/invoices/{invoice['id']}/paid",
                        {"paid_on": tomorrow, "reference": "  ", "amount": "4 000,0x"})
    assert r.status_code == 422
    assert "Дата оплаты не может быть в будущем" in r.text and f'value="{tomorrow}"' in r.text
    assert 'id="err-reference">Укажите ссылку банка' in r.text
    assert 'id="err-amount">Сумма «4 000,0x» не число.' in r.text and 'value="4 000,0x"' in r.text
    r = await post_form(client, f"/staff/payments/invoices/{invoice['id']}/paid",
                        {"paid_on": "31.02.2026", "reference": "1", "amount": "0"}, htmx=True)
    assert r.status_code == 422 and r.text.lstrip().startswith('<section id="mark"')
    assert "не распознана" in r.text and "больше нуля" in r.text
    assert await Payment.count() == 0 and (await fresh(invoice))["paid_amount"] == 0
    r = await post_form(client, "/staff/payments/invoices/999999/paid",
                        {"paid_on": today(), "reference": "1", "amount": "1"})
    assert r.status_code == 404 and "Такого счёта нет" in r.text


async def test_a_partial_sum_typed_by_hand_leaves_the_invoice_waiting(client, staff):
    invoice = await invoice_for("anna@example.org")
    r = await post_form(client, f"/staff/payments/invoices/{invoice['id']}/paid",
                        {"paid_on": today(), "reference": "5", "amount": "1 000"}, follow_redirects=False)
    assert r.status_code == 303
    after = await fresh(invoice)
    assert (after["status"], after["paid_amount"]) == ("issued", 100_000)
    r = await client.get(r.headers["location"])
    assert "Оплачен частично" in r.text and 'value="3000,00"' in r.text


def mixed_statement(account: str, anna: dict, boris: dict, clara: dict) -> bytes:
    """anna's invoice paid exactly (twice in the file: the same payment order); boris's in part; clara
    (individual, 400 ₽) over-paid; a payment naming no invoice, one naming an invoice that is not ours, and the
    bank's commission going out."""
    text = statement(
        document("101", "4000.00", purpose=f"Вступительный и паевой взносы по счёту № {anna['number']}. Без НДС"),
        document("102", "1 000,00", purpose=f"Частичная оплата по сч. {boris['number']}", payer="ИП Борисов"),
        document("103", "500.00", purpose="Оплата по договору 12", payer="ООО Лютик"),
        document("104", "4000.00", purpose="Оплата счёта В-2026-999999"),
        document("105", "500", purpose=f"Оплата по счёту {clara['number'].replace('В', 'B')}"),  # Latin «B»
        document("101", "4000.00", purpose=f"Вступительный и паевой взносы по счёту № {anna['number']}. Без НДС"),
        document("9", "150.00", payer_account=account, recipient_account=PAYER, purpose="Комиссия банка"),
        account=account)
    return text.replace("\n", "\r\n").encode("cp1251")


async def test_a_statement_credits_exactly_the_matching_payments_once(client, staff):
    op = await operator()
    anna = await invoice_for("anna@example.org")
    boris = await invoice_for("boris@example.org")
    clara = await invoice_for("clara@example.org", "individual")
    data = mixed_statement(op["settlement_account"], anna, boris, clara)

    r = await upload(client, data, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/staff/payments/import"
    r = await client.get("/staff/payments/import")
    summary = dict(re.findall(r'<dd id="sum-(\w+)">(\d+)</dd>', r.text))
    assert summary == {"credited": "1", "unmatched": "4", "partial": "1", "over": "1", "repeat": "1"}
    assert "Частичная оплата счёта" in r.text and "Переплата по счёту" in r.text

    assert ((await fresh(anna))["status"], (await fresh(anna))["paid_amount"]) == ("paid", 400_000)
    assert (await fresh(boris))["paid_amount"] == 0 and (await fresh(clara))["paid_amount"] == 0
    payments = await Payment.select().order_by(Payment.id)
    assert [(p["reference"], p["amount"], p["status"]) for p in payments] == [
        ("101", 400_000, "credited"), ("102", 100_000, "unmatched"), ("103", 50_000, "unmatched"),
        ("104", 400_000, "unmatched"), ("105", 50_000, "unmatched")]
    assert payments[0]["invoice"] == anna["id"] and payments[0]["source"] == "statement"
    assert payments[1]["payer"] == "ИП Борисов" and payments[1]["payer_inn"] == "7707083893"
    assert await AuditEvent.count().where(AuditEvent.action == "payment.credited") == 1
    assert await AuditEvent.count().where(AuditEvent.action == "payment.unmatched") == 4

    page = (await client.get("/staff/payments")).text
    hints = dict(re.findall(r'<tr id="payment-(\d+)">.*?data-hint="(\w+)"', page, re.S))
    assert hints == {str(payments[1]["id"]): "partial", str(payments[2]["id"]): "no_number",
                     str(payments[3]["id"]): "unknown", str(payments[4]["id"]): "over"}
    assert "Счёта № В-2026-999999 у кооператива нет" in page

    # The same file again, and the same file twice at the same moment: nothing more.
    r = await upload(client, data)
    summary = dict(re.findall(r'<dd id="sum-(\w+)">(\d+)</dd>', r.text))
    assert summary == {"credited": "0", "unmatched": "0", "partial": "0", "over": "0", "repeat": "6"}
    cashier = {"id": staff, "email": EMAIL}
    summaries = await asyncio.gather(*[import_statement(op, data, cashier, SYSTEM) for _ in range(2)])
    assert [(s["credited"], s["unmatched"], s["repeat"]) for s in summaries] == [(0, 0, 6), (0, 0, 6)]
    assert await Payment.count() == 5
    assert (await fresh(anna))["paid_amount"] == 400_000 and (await fresh(boris))["paid_amount"] == 0
    assert await AuditEvent.count().where(AuditEvent.action.like("payment.%")) == 5


async def test_a_second_statement_pays_the_rest_exactly(client, staff):
    op = await operator()
    boris = await invoice_for("boris@example.org")
    await service.record_payment(op["id"], "manual", "1", 100_000, invoice_id=boris["id"])
    data = statement(document("7", "3000.00", purpose=f"Доплата по счёту {boris['number']}"),
                     account=op["settlement_account"]).encode("utf-8")
    r = await upload(client, data)
    assert 'id="sum-credited">1<' in r.text
    assert ((await fresh(boris))["status"], (await fresh(boris))["paid_amount"]) == ("paid", 400_000)


async def test_a_malformed_statement_is_refused_with_its_line_and_nothing_is_stored(client, staff):
    op = await operator()
    anna = await invoice_for("anna@example.org")
    text = statement(document("1", "4000.00", purpose=f"По счёту {anna['number']}"), document("2", "4 000,0x"),
                     account=op["settlement_account"])
    line = next(i for i, s in enumerate(text.splitlines(), 1) if "4 000,0x" in s)
    r = await upload(client, text.encode("cp1251"), name="выписка.txt")
    assert r.status_code == 422
    assert f"Строка {line}: сумма «4 000,0x» не число" in r.text and "ничего не зачтено" in r.text
    assert 'id="err-statement"' in r.text
    assert await Payment.count() == 0 and (await fresh(anna))["paid_amount"] == 0
    assert await AuditEvent.count().where(AuditEvent.action.like("payment.%")) == 0
    r = await upload(client, statement(document("1", "1.00"), account=op["settlement_account"],
                                       end=False).encode("utf-8"))
    assert r.status_code == 422 and "КонецФайла" in r.text
    r = await upload(client, b"%PDF-1.7 not a statement")
    assert r.status_code == 422 and "1CClientBankExchange" in r.text
    token = await csrf_token(client)
    r = await client.post("/staff/payments/statement", data={"_csrf_token": token},
                          files={"other": ("x.txt", b"", "text/plain")})
    assert r.status_code == 422 and "Выберите файл выписки" in r.text
    assert await Payment.count() == 0


async def test_an_unmatched_payment_is_matched_by_hand_once(client, staff):
    op = await operator()
    anna = await invoice_for("anna@example.org")
    boris = await invoice_for("boris@example.org")
    await service.record_payment(op["id"], "statement", "x-1", 400_000, invoice_id=boris["id"])  # boris paid
    lost = await service.record_payment(op["id"], "statement", "x-2", 400_000, invoice_id=None,
                                        purpose="Взнос за ООО Анна", payer="ООО Анна")
    pid = lost.payment["id"]
    page = (await client.get("/staff/payments")).text
    select = re.search(rf'<select id="f-invoice-{pid}".*?</select>', page, re.S).group(0)
    assert anna["number"] in select and boris["number"] not in select  # only invoices still open

    r = await post_form(client, f"/staff/payments/{pid}/match", {"invoice": ""})
    assert r.status_code == 422 and "Выберите счёт" in r.text
    r = await post_form(client, f"/staff/payments/{pid}/match", {"invoice": str(boris["id"])})
    assert r.status_code == 422 and "уже оплачен" in r.text
    assert (await fresh(boris))["paid_amount"] == 400_000

    token = await csrf_token(client)
    answers = await asyncio.gather(*[
        client.post(f"/staff/payments/{pid}/match", data={"invoice": str(anna["id"]), "_csrf_token": token},
                    follow_redirects=False) for _ in range(2)])
    assert sorted(a.status_code for a in answers) == [303, 422]
    # The loser is told either that the payment is already credited or (when it read after the winner's credit
    # reached the invoice — PostgreSQL lets both read first) that the invoice is already paid: both say it truly.
    loser = next(a for a in answers if a.status_code == 422).text
    assert "Платёж уже зачтён" in loser or f"Счёт № {anna['number']} уже оплачен" in loser
    after = await fresh(anna)
    assert (after["status"], after["paid_amount"]) == ("paid", 400_000)
    payment = await Payment.select().where(Payment.id == pid).first()
    assert (payment["status"], payment["invoice"]) == ("credited", anna["id"])
    event = await AuditEvent.select().where(AuditEvent.action == "payment.matched").first()
    details = json.loads(event["details"]) if isinstance(event["details"], str) else event["details"]
    assert event["object_id"] == str(pid) and details["invoice"] == anna["number"]
    assert await AuditEvent.count().where(AuditEvent.action == "payment.matched") == 1
    # The member is told once that the fees are credited (the same e-mail as when a payment is recorded).
    mails = await OutboxMessage.select().where(OutboxMessage.to_addr == "anna@example.org")
    assert len(mails) == 1 and "Взносы зачислены" in mails[0]["subject"] and anna["number"] in mails[0]["subject"]
    r = await client.get(f"/staff/payments?matched={pid}")
    assert "Платёж зачтён" in r.text and f'id="payment-{pid}"' not in r.text
    r = await post_form(client, "/staff/payments/999999/match", {"invoice": str(anna["id"])})
    assert r.status_code == 404


async def test_one_statement_imported_twice_at_the_same_moment_credits_once(client, staff):
    op = await operator()
    anna = await invoice_for("anna@example.org")
    data = statement(document("1", "4000.00", purpose=f"По счёту {anna['number']}"),
                     document("2", "10.00", purpose="Пожертвование"), account=op["settlement_account"]).encode()
    cashier = {"id": staff, "email": EMAIL}
    summaries = await asyncio.gather(*[import_statement(op, data, cashier, SYSTEM) for _ in range(2)])
    assert sum(s["credited"] for s in summaries) == 1 and sum(s["unmatched"] for s in summaries) == 1
    assert sum(s["repeat"] for s in summaries) == 2
    assert await Payment.count() == 2 and (await fresh(anna))["paid_amount"] == 400_000


async def test_the_console_counts_invoices_waiting_and_payments_without_an_invoice(client, staff):
    from portal.cooperatives.service import operator

    op = await operator()
    await invoice_for("anna@example.org")
    paid = await invoice_for("boris@example.org")
    await service.record_payment(op["id"], "manual", "p-1", paid["total"], invoice_id=paid["id"])
    await service.record_payment(op["id"], "statement", "s-1", 12_345, invoice_id=None, purpose="без номера")
    page = (await client.get("/staff/")).text
    assert 'id="count-invoices-issued">1<' in page and 'id="count-payments-unmatched">1<' in page
    assert "Оплачено счетов: 1" in page
