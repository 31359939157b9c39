"""«Оплата взносов» in the cabinet (#9): the invoice issued once at signing, the page, its htmx status block, the
invoice PDF as a stored document, the status after a payment and the e-mail when the fees are credited."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import subprocess

from markupsafe import escape

from portal.audit.tables import AuditEvent
from portal.cooperatives.service import operator
from portal.documents.tables import Document
from portal.mail.service import visible_body
from portal.mail.tables import OutboxMessage
from portal.payments import qr, service
from portal.payments.tables import Invoice
from tests.factories import MemberKey as Key, signature_png
from tests.integration.test_join_and_sign import (
    fill_application, give_consent, post_signature, register, sign_page, signed_fields,
)


async def sign_up(client) -> Key:
    """A member whose joining package is signed (as «Подписать» does it)."""
    key = Key()
    await register(client, key)
    await fill_application(client)
    await give_consent(client, key)
    nonce, hashes = await sign_page(client)
    png = signature_png()
    r = await post_signature(client, signed_fields(key, nonce, hashes, png), png)
    assert r.status_code == 303 and r.headers["location"] == "/cabinet?signed=1", r.text
    return key


def text_of(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html).replace("\u00a0", " ").split())


async def credited_mails() -> list[dict]:
    return await OutboxMessage.select().where(OutboxMessage.subject.like("Взносы зачислены%"))


async def test_the_draft_member_has_nothing_to_pay_yet(client):
    await register(client, Key())
    r = await client.get("/cabinet/payment")
    assert r.status_code == 303 and r.headers["location"] == "/cabinet"
    r = await client.get("/cabinet/payment/invoice.pdf")
    assert r.status_code == 303 and r.headers["location"] == "/cabinet"
    assert await Invoice.count() == 0
    assert "/cabinet/payment" not in (await client.get("/cabinet")).text


async def test_the_page_needs_a_login(client):
    r = await client.get("/cabinet/payment")
    assert r.status_code in (302, 303) and "/login" in r.headers["location"]


async def test_signing_issues_one_invoice_and_the_page_says_what_and_how_to_pay(client, settings):
    await sign_up(client)
    invoices = await Invoice.select()
    assert len(invoices) == 1 and invoices[0]["total"] == 400_000 and invoices[0]["status"] == "issued"
    number = invoices[0]["number"]
    # The invoice PDF was rendered and stored with the package: it is among «Мои документы».
    docs = await Document.select().where(Document.package == "invoice")
    assert len(docs) == 1 and docs[0]["title"] == f"Счёт на оплату № {number}" and docs[0]["template_id"] == "invoice"
    cabinet = (await client.get("/cabinet")).text
    assert f'href="/cabinet/documents/{docs[0]["id"]}">Счёт на оплату № {number}' in cabinet
    assert re.search(r'aria-current="step">\s*<span class="step-n">4</span> <a href="/cabinet/payment">Оплата взносов</a>',
                     cabinet)

    r = await client.get("/cabinet/payment")
    assert r.status_code == 200
    text = text_of(r.text)
    assert "Вступительный взнос 1 000,00 ₽" in text and "Минимальный паевой взнос 3 000,00 ₽" in text
    assert "Итого 4 000,00 ₽" in text and "ожидает оплаты" in text
    op = await operator()
    purpose = service.purpose_text(number, op["name_short"])
    assert f'<dd id="payment-purpose">{escape(purpose)}</dd>' in r.text
    for value in (op["settlement_account"], op["bik"], op["corr_account"], op["inn"], op["kpp"]):
        assert value in text
    assert '<svg' in r.text and 'href="/cabinet/payment/invoice.pdf"' in r.text and "Скачать счёт" in text
    assert 'hx-get="/cabinet/payment"' in r.text and 'hx-trigger="every' in r.text
    assert "Оплатить картой" not in text  # ЮKassa is not configured here
    # Visiting again changes nothing: still one invoice, one stored PDF.
    await client.get("/cabinet/payment")
    assert await Invoice.count() == 1 and await Document.count().where(Document.package == "invoice") == 1


async def test_the_qr_on_the_page_is_the_payment_payload(client):
    await sign_up(client)
    invoice = await Invoice.select().first()
    op = await operator()
    r = await client.get("/cabinet/payment")
    expected = qr.qr_svg(qr.payment_payload(op, service.purpose_text(invoice["number"], op["name_short"]), 400_000))
    assert expected.startswith("<svg") and expected in r.text


async def test_the_htmx_poll_gets_the_status_block_only(client):
    await sign_up(client)
    r = await client.get("/cabinet/payment", headers={"HX-Request": "true"})
    assert r.status_code == 200
    assert r.text.lstrip().startswith('<section class="card payment-status" id="payment-status"')
    assert "<html" not in r.text and "Реквизиты получателя" not in r.text and "ожидает оплаты" in r.text


async def test_the_invoice_pdf_downloads_with_its_etag(client, tmp_path):
    await sign_up(client)
    doc = await Document.select().where(Document.package == "invoice").first()
    r = await client.get("/cabinet/payment/invoice.pdf")
    assert r.status_code == 200 and r.headers["content-type"] == "application/pdf"
    assert r.content == doc["pdf"] and r.headers["etag"] == f'"{hashlib.sha256(r.content).hexdigest()}"'
    assert "attachment" in r.headers["content-disposition"]
    again = await client.get("/cabinet/payment/invoice.pdf", headers={"If-None-Match": r.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    # Also downloadable as one of the member's documents, the same bytes.
    assert (await client.get(f"/cabinet/documents/{doc['id']}")).content == r.content
    pdf = tmp_path / "invoice.pdf"
    pdf.write_bytes(r.content)
    text = " ".join(subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True,
                                   check=True).stdout.replace("\u00a0", " ").split())
    invoice = await Invoice.select().first()
    assert f"№ {invoice['number']}" in text and "Потребительский кооператив «Рассвет»" in text
    assert "Четыре тысячи рублей 00 копеек" in text
    # Sealed by the operator (PAdES): pdfsig sees one signature.
    sig = subprocess.run(["pdfsig", str(pdf)], capture_output=True, text=True)
    assert "Signature #1" in sig.stdout and "Signature #2" not in sig.stdout


async def test_a_member_who_signed_before_gets_the_invoice_on_the_first_visit(client):
    await sign_up(client)
    # As if signed before invoices existed: no invoice, no PDF.
    await Document.delete().where(Document.package == "invoice")
    await Invoice.delete().where(Invoice.id > 0)
    r = await client.get("/cabinet/payment")
    assert r.status_code == 200 and await Invoice.count() == 1
    r = await client.get("/cabinet/payment/invoice.pdf")
    assert r.status_code == 200 and r.content.startswith(b"%PDF")
    assert await Document.count().where(Document.package == "invoice") == 1
    assert (await client.get("/cabinet/payment/invoice.pdf")).content == r.content  # rendered once


async def test_the_status_follows_the_payments_and_the_member_is_emailed_once(client):
    await sign_up(client)
    invoice = await Invoice.select().first()
    op = await operator()
    await service.record_payment(op["id"], "statement", "line-1", 100_000, invoice_id=invoice["id"],
                                 paid_on=dt.date(2026, 12, 1))
    text = text_of((await client.get("/cabinet/payment", headers={"HX-Request": "true"})).text)
    assert "оплачено частично: 1 000,00 ₽ из 4 000,00 ₽" in text
    assert await credited_mails() == []  # not paid yet: no mail
    paid = await service.record_payment(op["id"], "statement", "line-2", 300_000, invoice_id=invoice["id"])
    assert paid.created and paid.settlement.status == "paid"
    block = (await client.get("/cabinet/payment", headers={"HX-Request": "true"})).text
    assert re.search(r"оплачено — зачислено \d\d\.\d\d\.\d{4}", text_of(block)) and "частично" not in block
    assert "hx-trigger" not in block  # paid: the polling stops
    page = text_of((await client.get("/cabinet/payment")).text)
    assert "Скачать счёт" not in page and "Взносы зачислены" in page
    # The same payment again, and an over-payment of the paid invoice: no second mail.
    await service.record_payment(op["id"], "statement", "line-2", 300_000, invoice_id=invoice["id"])
    await service.record_payment(op["id"], "manual", "ref-9", 1_000, invoice_id=invoice["id"])
    mails = await credited_mails()
    assert len(mails) == 1 and mails[0]["to_addr"] == "maria@example.org"
    body = visible_body(mails[0]["body_text"])
    assert invoice["number"] in mails[0]["subject"] and "Итого: 4 000,00 ₽" in body.replace("\u00a0", " ")
    assert "ПК «ВОСХОД»" in body and "http://testserver.local/cabinet/payment" in body
    assert await AuditEvent.count().where(AuditEvent.action == "payment.credited") == 3


async def test_the_card_form_shows_only_when_yookassa_is_configured(client, settings):
    import dataclasses

    await sign_up(client)
    app = client._transport.app
    original = app.state.settings
    app.state.settings = dataclasses.replace(original, yookassa_shop_id="123456", yookassa_secret_key="test_key")
    try:
        r = await client.get("/cabinet/payment")
    finally:
        app.state.settings = original
    assert 'action="/cabinet/payment/card"' in r.text and "Оплатить картой" in r.text
    assert 'name="_csrf_token"' in r.text
