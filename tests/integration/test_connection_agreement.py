"""J4 over HTTP: «Подключение» — the form checked at the field, the agreement previewed and signed by the member key,
frozen once signed, replaced only by a newer signed one; the domain taken by one cooperative; staff approve (the
operator's seal countersigns) or return it with a reason."""

from __future__ import annotations

import re
import subprocess

import pytest

from portal.audit.tables import AuditEvent
from portal.connection.tables import Connection, DomainClaim
from portal.documents.tables import Document
from portal.documents.verify import verify_pdf
from portal.mail.tables import OutboxMessage
from tests.conftest import post_form
from tests.factories import form_value
from tests.integration.test_admissions import as_member, as_staff
from tests.support.members import admitted_member

VALID = {"fee_entrance_org": "1 000", "fee_share_org": "3000,50", "fee_entrance_ind": "100",
         "fee_share_ind": "300", "domain": "Кооп-Рассвет.рф", "hosting": "hosted",
         "description": "Закупки продуктов у фермеров для пайщиков и доставка по Твери"}
PUNY = "xn----8sbgmvyaiklao.xn--p1ai"  # idna.encode("кооп-рассвет.рф")


def plain(text: str) -> str:
    return " ".join(text.replace("\u00a0", " ").split())


def pdf_text(pdf: bytes) -> str:
    return plain(subprocess.run(["pdftotext", "-layout", "-", "-"], input=pdf, capture_output=True,
                                check=True).stdout.decode())


async def fill(client, **changes):
    return await post_form(client, "/cabinet/connection", {**VALID, **changes})


async def sign_current_draft(client, member) -> object:
    """What «Подписать соглашение» posts: the page's nonce and hash, signed with the key and the drawn image."""
    page = (await client.get("/cabinet/connection")).text
    nonce, doc_hash = form_value(page, "nonce"), form_value(page, "hash")
    image = re.search(r'data-image-sha256="([0-9a-f]{64})"', page).group(1)
    return await post_form(client, "/cabinet/connection/sign", {
        "nonce": nonce, "hash": doc_hash, "signature": member["key"].sign(f"coopdoc:v1:{doc_hash}:{image}")})


async def test_bad_fees_and_domains_are_refused_at_the_field_and_kept(client):
    await admitted_member(client)
    r = await fill(client, fee_entrance_org="-5", fee_share_org="abc", fee_entrance_ind="0",
                   fee_share_ind="10,555", domain="https://coop.example.ru/", description="ok")
    assert r.status_code == 422
    errors = {name: plain(m) for name, m in re.findall(r'<p class="field-error" id="err-([a-z_]+)">([^<]+)</p>', r.text)}
    assert errors["fee_entrance_org"] == "Сумма должна быть больше нуля."
    assert "цифрами" in errors["fee_share_org"]
    assert errors["fee_entrance_ind"] == "Сумма должна быть больше нуля."
    assert "двух знаков" in errors["fee_share_ind"]
    assert "без https://" in errors["domain"]
    assert "от 10 символов" in errors["description"]
    assert 'data-error-summary' in r.text  # the summary above the form, each line a link to its field
    assert 'value="abc"' in r.text and 'value="https://coop.example.ru/"' in r.text  # nothing typed is lost
    # The operator's own host and a bare name are not a cooperative's domain.
    for domain, message in (("testserver.local", "домен портала ВОСХОДа"), ("localhost", "с зоной"),
                            ("127.0.0.1", "не IP-адрес"), ("-bad-.ru", "дефисом"), ("a..ru", "Две точки")):
        r = await fill(client, domain=domain)
        assert r.status_code == 422 and message in plain(r.text), domain


async def test_the_preview_follows_the_form_over_htmx_with_errors_out_of_band(client):
    await admitted_member(client)
    r = await post_form(client, "/cabinet/connection", {**VALID, "fee_share_ind": ""}, htmx=True)
    assert r.status_code == 422
    assert 'id="err-fee_share_ind" hx-swap-oob="true">Укажите сумму' in r.text
    assert 'id="agreement-waiting"' in r.text and "<html" not in r.text
    r = await post_form(client, "/cabinet/connection", VALID, htmx=True)
    assert r.status_code == 200 and 'id="agreement-frame"' in r.text
    frame = await client.get("/cabinet/connection/preview")
    text = plain(frame.text)
    assert "кооп-рассвет.рф" in text.lower() and "3 000,50" in text
    assert "script-src" not in frame.headers["content-security-policy"]  # the frame runs nothing


async def test_signing_freezes_the_agreement_whose_pdf_shows_the_fees_and_the_domain(client, settings):
    member = await admitted_member(client)
    assert (await fill(client)).status_code == 303
    r = await sign_current_draft(client, member)
    assert r.status_code == 303, r.text
    row = await Connection.select().where(Connection.member == member["id"]).first()
    assert row["status"] == "signed" and row["domain"] == PUNY
    assert (row["fee_entrance_org"], row["fee_share_org"], row["fee_entrance_ind"], row["fee_share_ind"]) == (
        100_000, 300_050, 10_000, 30_000)
    assert await DomainClaim.exists().where((DomainClaim.domain == PUNY) & (DomainClaim.member == member["id"]))
    doc = await Document.select().where(Document.id == row["document"]).first()
    text = pdf_text(doc["pdf"])
    for amount in ("1 000,00 ₽", "3 000,50 ₽", "100,00 ₽", "300,00 ₽"):
        assert amount in text, amount
    assert "кооп-рассвет.рф" in text.lower()
    result = verify_pdf(doc["pdf"], seal_certificates=None)
    assert result.valid, result
    page = await client.get("/cabinet/connection")
    assert "подписано, ждёт одобрения" in page.text and "Состояние DNS" in page.text
    assert 'id="server-ip">127.0.0.1<' in page.text
    assert 'id="nothing-changed"' in page.text  # the draft equals what was signed: nothing to sign again
    assert await OutboxMessage.exists().where(OutboxMessage.to_addr == settings.staff_email)

    # A change is a new agreement: the signed one stays as it was until the new one is signed.
    assert (await fill(client, fee_entrance_org="2000")).status_code == 303
    again = await Connection.select().where(Connection.id == row["id"]).first()
    assert again["status"] == "signed" and again["fee_entrance_org"] == 100_000
    r = await sign_current_draft(client, member)
    assert r.status_code == 303, r.text
    rows = await Connection.select(Connection.id, Connection.status, Connection.fee_entrance_org).where(
        Connection.member == member["id"]).order_by(Connection.id)
    assert [(x["status"], x["fee_entrance_org"]) for x in rows] == [("replaced", 100_000), ("signed", 200_000)]


async def test_a_replayed_or_forged_signature_changes_nothing(client):
    member = await admitted_member(client)
    await fill(client)
    page = (await client.get("/cabinet/connection")).text
    nonce, doc_hash = form_value(page, "nonce"), form_value(page, "hash")
    image = re.search(r'data-image-sha256="([0-9a-f]{64})"', page).group(1)
    forged = await post_form(client, "/cabinet/connection/sign", {
        "nonce": nonce, "hash": doc_hash, "signature": member["key"].sign(f"coopdoc:v1:{'0' * 64}:{image}")})
    assert forged.status_code == 422 and "не сходится с вашим ключом" in forged.text
    assert not await Connection.exists().where(Connection.status == "signed")
    nonce = form_value(forged.text, "nonce")  # the refused page is signed again from what it shows
    good = {"nonce": nonce, "hash": doc_hash, "signature": member["key"].sign(f"coopdoc:v1:{doc_hash}:{image}")}
    assert (await post_form(client, "/cabinet/connection/sign", good)).status_code == 303
    replay = await post_form(client, "/cabinet/connection/sign", good)
    assert replay.status_code == 422 and "устарела" in replay.text
    assert await Connection.count().where(Connection.status == "signed") == 1


async def test_a_second_cooperative_cannot_take_the_same_domain(client):
    first = await admitted_member(client, "first@example.org", "7707083893")
    await fill(client)
    assert (await sign_current_draft(client, first)).status_code == 303
    second = await admitted_member(client, "second@example.org", "7736207543", application={
        "full_name": "Потребительский кооператив «Заря»", "short_name": "ПК «Заря»", "inn": "7736207543",
        "ogrn": "1027700132195", "kpp": "773601001"})
    r = await fill(client, domain=PUNY)  # the same domain typed in punycode
    assert r.status_code == 422 and "уже занят другим кооперативом" in r.text
    # Even if the page was opened before the first signed (a race): signing is refused, the database keeps one.
    await DomainClaim.delete().where(DomainClaim.member == first["id"])
    assert (await fill(client)).status_code == 303
    page = (await client.get("/cabinet/connection")).text
    nonce, doc_hash = form_value(page, "nonce"), form_value(page, "hash")
    image = re.search(r'data-image-sha256="([0-9a-f]{64})"', page).group(1)
    await DomainClaim.insert(DomainClaim(domain=PUNY, member=first["id"], created_at=first["created_at"]))
    r = await post_form(client, "/cabinet/connection/sign", {
        "nonce": nonce, "hash": doc_hash, "signature": second["key"].sign(f"coopdoc:v1:{doc_hash}:{image}")})
    assert r.status_code == 422 and "уже занят" in r.text
    assert not await Connection.exists().where((Connection.member == second["id"]) & (Connection.status == "signed"))


async def test_staff_approve_with_the_operators_seal_or_return_with_a_reason(client, settings):
    member = await admitted_member(client)
    await fill(client)
    await sign_current_draft(client, member)
    row = await Connection.select().where(Connection.status == "signed").first()
    await as_staff(client)
    listing = await client.get("/staff/connections")
    assert "кооп-рассвет.рф" in listing.text and "ждёт одобрения" in listing.text
    console = await client.get("/staff/")
    assert re.search(r'id="count-connections-signed">1<', console.text)

    r = await post_form(client, f"/staff/connections/{row['id']}/return", {"reason": " "})
    assert r.status_code == 422 and 'id="err-reason"' in r.text
    r = await post_form(client, f"/staff/connections/{row['id']}/approve", {})
    assert r.status_code == 303
    approved = await Connection.select().where(Connection.id == row["id"]).first()
    assert approved["status"] == "approved" and approved["approved_document"]
    doc = await Document.select().where(Document.id == approved["approved_document"]).first()
    text = pdf_text(doc["pdf"])
    assert "одобрени" in text.lower() and "staff@voskhod.example" in text
    result = verify_pdf(doc["pdf"], seal_certificates=None)
    assert result.valid, result
    assert await AuditEvent.exists().where(AuditEvent.action == "connection.approved")
    # Looked up by its hash, the agreement is found as it is now: the approved copy (the same document hash).
    found = await client.get(f"/verify?hash={doc['document_hash']}")
    assert "(одобрено оператором)" in found.text
    assert await OutboxMessage.exists().where(OutboxMessage.to_addr == member["email"])
    again = await post_form(client, f"/staff/connections/{row['id']}/approve", {})
    assert again.status_code == 409 and "уже рассмотрено" in again.text or "только подписанное" in again.text

    # The member downloads both copies.
    as_member(client, member)
    page = await client.get("/cabinet/connection")
    assert f'/cabinet/documents/{approved["approved_document"]}' in page.text and "одобрено" in page.text


async def test_a_returned_agreement_shows_the_reason_and_is_signed_anew(client):
    member = await admitted_member(client)
    await fill(client)
    await sign_current_draft(client, member)
    row = await Connection.select().where(Connection.status == "signed").first()
    await as_staff(client)
    r = await post_form(client, f"/staff/connections/{row['id']}/return", {"reason": "Уточните описание деятельности"})
    assert r.status_code == 303
    as_member(client, member)
    page = await client.get("/cabinet/connection")
    assert 'id="return-reason"' in page.text and "Уточните описание деятельности" in page.text
    assert (await fill(client, description="Закупки фермерских продуктов и их доставка пайщикам")).status_code == 303
    assert (await sign_current_draft(client, member)).status_code == 303
    statuses = [x["status"] for x in await Connection.select(Connection.status).where(
        Connection.member == member["id"]).order_by(Connection.id)]
    assert statuses == ["replaced", "signed"]


@pytest.mark.parametrize("settings", ["sqlite"], indirect=True)
async def test_connection_is_for_organizations_admitted_by_the_council(client):
    from tests.factories import INDIVIDUAL_APPLICATION

    await admitted_member(client, "ivan@example.org", application=INDIVIDUAL_APPLICATION)
    r = await client.get("/cabinet/connection")
    assert r.status_code == 403 and "юридические лица" in plain(r.text)
