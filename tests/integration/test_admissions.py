"""J3 over HTTP: staff see the applicants whose fees are paid and decide once — admitted (the council's decision
issued, numbered, sealed, among «Мои документы», «Подключение» in the cabinet) or refused with a reason (the
fees to be returned on the page and in the e-mail)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re

import pytest

from portal.accounts.tables import Member
from portal.admissions.tables import AdmissionDecision
from portal.applications.tables import Application
from portal.audit.tables import AuditEvent
from portal.cooperatives.tables import Cooperative
from portal.documents.seal import certificate_sha256_in
from portal.documents.tables import Document
from portal.documents.verify import verify_pdf
from portal.mail.service import unpack_body
from portal.mail.tables import OutboxMessage
from portal.payments import service as payments
from portal.staff.service import create_staff
from portal.staff.tables import StaffUser
from tests.conftest import csrf_token, post_form
from tests.factories import MemberKey as Key, signature_png
from tests.integration.test_join_and_sign import (
    fill_application, give_consent, post_signature, register, sign_page, signed_fields,
)

STAFF = ("staff@voskhod.example", "staff password 1")


def plain(text: str) -> str:
    return " ".join(text.replace("\u00a0", " ").split())


async def signed_member(client, email: str, inn: str) -> dict:
    """A member who registered, filled in the application and signed the joining package (own session)."""
    client.cookies.clear()
    key = Key()
    await register(client, key, email, inn)
    await fill_application(client)
    await give_consent(client, key)
    nonce, hashes = await sign_page(client)
    png = signature_png()
    r = await post_signature(client, signed_fields(key, nonce, hashes, png), png)
    assert r.status_code == 303, r.text
    member = await Member.select().where(Member.email == email).first()
    member["cookies"] = dict(client.cookies)
    return member


async def fees_invoice(member: dict, *, paid: bool) -> dict:
    cooperative = await Cooperative.select().where(Cooperative.id == member["cooperative"]).first()
    application = await Application.select().where(Application.member == member["id"]).first()
    invoice = await payments.issue_fees_invoice(member, application["applicant_type"], cooperative)
    if paid:
        credited = await payments.record_payment(cooperative["id"], "manual", f"pp-{member['id']}", invoice["total"],
                                                 invoice_id=invoice["id"], paid_on=dt.date(2026, 11, 30),
                                                 reference="п/п 17")
        assert credited.invoice["status"] == "paid"
    return await payments.open_fees_invoice(member["id"])


async def as_staff(client) -> None:
    client.cookies.clear()
    if not await StaffUser.exists().where(StaffUser.email == STAFF[0]):
        await create_staff(*STAFF)
    r = await post_form(client, "/staff/login", {"email": STAFF[0], "password": STAFF[1]})
    assert r.status_code in (200, 303), r.text


def as_member(client, member: dict) -> None:
    client.cookies.clear()
    client.cookies.update(member["cookies"])


async def application_of(member: dict) -> int:
    return (await Application.select(Application.id).where(Application.member == member["id"]).first())["id"]


@pytest.fixture
async def paid(client) -> dict:
    """A signed member whose fees invoice is paid, and another signed one whose invoice is not."""
    unpaid = await signed_member(client, "ivan@example.org", "5024002119")
    await fees_invoice(unpaid, paid=False)
    member = await signed_member(client, "maria@example.org", "7707083893")
    member["invoice"] = await fees_invoice(member, paid=True)
    member["unpaid"] = unpaid
    await OutboxMessage.delete(force=True)  # registration links etc.: only the decisions' mail is counted below
    return member


async def test_staff_admit_a_paid_applicant_and_the_sealed_decision_reaches_the_cabinet(client, settings, paid):
    await as_staff(client)
    r = await client.get("/staff/admissions")
    assert r.status_code == 200 and "Приём в пайщики" in r.text and 'href="/staff/admissions"' in r.text
    application_id = await application_of(paid)
    assert f'id="applicant-{application_id}"' in r.text and paid["email"] in r.text
    assert "ivan@example.org" not in r.text  # signed, invoice not paid: not here
    assert paid["invoice"]["number"] in r.text
    for doc in await Document.select().where(Document.member == paid["id"]):
        assert f'href="/staff/documents/{doc["id"]}"' in r.text

    r = await post_form(client, f"/staff/admissions/{application_id}/admit", {})
    assert r.status_code == 303 and r.headers["location"] == "/staff/admissions?done=admitted", r.text

    [decision] = await AdmissionDecision.select()
    year = dt.datetime.now(dt.timezone.utc).year
    assert decision["decision"] == "admitted" and decision["number"] == f"Р-{year}-0001"
    assert decision["member"] == paid["id"] and decision["invoice"] == paid["invoice"]["id"]
    [doc] = await Document.select().where(Document.package == "admission")
    assert doc["id"] == decision["document"] and doc["member"] == paid["id"]
    assert doc["template_id"] == "admission_decision" and doc["template_version"] == 1
    canonical = json.loads(doc["canonical_json"])
    assert canonical["data"]["data"]["decision_number"] == decision["number"]
    assert canonical["data"]["data"]["fees"] == {"entrance": 100_000, "share": 300_000, "total": 400_000}
    assert canonical["data"]["data"]["paid_on"] == "2026-11-30"
    result = verify_pdf(bytes(doc["pdf"]), seal_certificates=[certificate_sha256_in(settings.data_dir)])
    assert result.valid and result.document_hash == doc["document_hash"], result.reason

    [mail] = await OutboxMessage.select().where(OutboxMessage.to_addr == paid["email"])
    body = unpack_body(mail["body_text"])[0]
    assert "приняты в пайщики" in mail["subject"] and decision["number"] in body and "/cabinet" in body
    [event] = await AuditEvent.select().where(AuditEvent.action == "admission.admitted")
    assert event["object_id"] == str(application_id) and event["actor_label"] == STAFF[0]

    r = await client.get("/staff/admissions?done=admitted")
    assert f'id="applicant-{application_id}"' not in r.text and "Решение о приёме принято" in r.text
    assert decision["number"] in r.text.split('id="decisions"')[1]
    r = await client.get(f"/staff/documents/{doc['id']}")
    assert r.status_code == 200 and r.content == bytes(doc["pdf"])
    token = await csrf_token(client, "/verify")  # /verify, as anyone checks it: valid, issued by the cooperative
    r = await client.post("/verify", data={"_csrf_token": token},
                          files={"file": ("decision.pdf", bytes(doc["pdf"]), "application/pdf")})
    assert r.status_code == 200 and "выдан кооперативом" in r.text, r.text

    as_member(client, paid)
    r = await client.get("/cabinet")
    assert r.status_code == 200
    assert 'href="/cabinet/connection"' in r.text and "Подключение" in r.text
    assert re.search(r'aria-current="step">\s*<span class="step-n">6</span>', r.text)  # «Подключение»
    assert f'href="/cabinet/documents/{doc["id"]}"' in r.text and "Решение Совета о приёме в пайщики" in r.text
    assert "скреплено печатью кооператива" in r.text
    r = await client.get(f"/cabinet/documents/{doc['id']}")
    assert r.status_code == 200 and r.content == bytes(doc["pdf"])
    r = await client.get("/cabinet/connection")
    assert r.status_code == 200 and decision["number"] in r.text and "Подписать соглашение" not in r.text
    assert 'id="agreement-form"' in r.text

    as_member(client, paid["unpaid"])  # not decided: no «Подключение»
    r = await client.get("/cabinet")
    assert 'href="/cabinet/connection"' not in r.text
    assert (await client.get("/cabinet/connection")).status_code == 403


async def test_refusal_needs_a_reason_and_the_mail_lists_the_fees_to_return(client, paid):
    await as_staff(client)
    application_id = await application_of(paid)
    r = await client.get("/staff/admissions")
    page = plain(r.text.split(f'id="applicant-{application_id}"')[1])
    assert "Вступительный взнос — 1 000,00 ₽" in page and "Минимальный паевой взнос — 3 000,00 ₽" in page
    assert "Всего — 4 000,00 ₽" in page

    for reason in ("", "   ", "нет"):
        r = await post_form(client, f"/staff/admissions/{application_id}/refuse", {"reason": reason})
        assert r.status_code == 422, r.text
        assert f'id="err-reason-{application_id}"' in r.text and "Укажите причину отказа" in r.text
        assert 'aria-invalid="true"' in r.text
    assert await AdmissionDecision.count() == 0 and await OutboxMessage.count() == 0

    reason = "Заявитель не состоит в Союзе потребительских обществ «РУСЬ»"
    r = await post_form(client, f"/staff/admissions/{application_id}/refuse", {"reason": f"  {reason} "})
    assert r.status_code == 303 and r.headers["location"] == "/staff/admissions?done=refused", r.text
    [decision] = await AdmissionDecision.select()
    assert decision["decision"] == "refused" and decision["refusal_reason"] == reason and decision["number"] == ""
    assert decision["document"] is None and await Document.count().where(Document.package == "admission") == 0
    [mail] = await OutboxMessage.select().where(OutboxMessage.to_addr == paid["email"])
    body = plain(unpack_body(mail["body_text"])[0])
    assert reason in body and paid["invoice"]["number"] in body
    assert "Вступительный взнос: 1 000,00 ₽" in body and "Минимальный паевой взнос: 3 000,00 ₽" in body
    assert "Всего к возврату: 4 000,00 ₽ (четыре тысячи рублей 00 копеек)" in body
    assert await AuditEvent.count().where(AuditEvent.action == "admission.refused") == 1

    # Decided: admitting now changes nothing.
    r = await post_form(client, f"/staff/admissions/{application_id}/admit", {})
    assert r.status_code == 409 and "уже принято" in r.text
    assert await AdmissionDecision.count() == 1 and await OutboxMessage.count() == 1

    as_member(client, paid)
    r = await client.get("/cabinet")
    assert 'href="/cabinet/connection"' not in r.text and 'id="refused"' in r.text and reason in r.text
    assert (await client.get("/cabinet/connection")).status_code == 403


async def test_a_double_click_admits_once(client, paid):
    await as_staff(client)
    application_id = await application_of(paid)
    path = f"/staff/admissions/{application_id}/admit"
    first, second = await asyncio.gather(post_form(client, path, {}), post_form(client, path, {}))
    assert sorted([first.status_code, second.status_code]) == [303, 409], (first.text, second.text)
    again = await post_form(client, path, {})
    assert again.status_code == 409 and "уже принято" in again.text
    refused = await post_form(client, f"/staff/admissions/{application_id}/refuse", {"reason": "передумали мы"})
    assert refused.status_code == 409
    assert await AdmissionDecision.count() == 1
    assert await Document.count().where(Document.package == "admission") == 1
    assert await OutboxMessage.count().where(OutboxMessage.to_addr == paid["email"]) == 1
    assert await AuditEvent.count().where(AuditEvent.action == "admission.admitted") == 1


async def test_unpaid_or_unknown_applicants_cannot_be_decided(client, paid):
    await as_staff(client)
    unpaid_id = await application_of(paid["unpaid"])
    r = await post_form(client, f"/staff/admissions/{unpaid_id}/admit", {})
    assert r.status_code == 422 and "взносы не оплачены" in r.text
    r = await post_form(client, "/staff/admissions/999999/admit", {})
    assert r.status_code == 422 and "Такого заявления нет" in r.text
    assert await AdmissionDecision.count() == 0


async def test_admissions_are_for_staff_only(client, paid):
    as_member(client, paid)
    r = await client.get("/staff/admissions", follow_redirects=False)
    assert r.status_code == 403
    client.cookies.clear()
    r = await client.get("/staff/admissions", follow_redirects=False)
    assert r.status_code == 303 and "/staff/login" in r.headers["location"]


async def test_two_applicants_admitted_at_once_get_consecutive_numbers(client, paid, monkeypatch):
    """Both decisions rendered at the same moment with the same next number: one takes it, the other is rendered
    again with the next one — numbers stay unique and without gaps within the cooperative."""
    other = paid["unpaid"]
    invoice = await payments.open_fees_invoice(other["id"])
    await payments.record_payment(other["cooperative"], "manual", "pp-other", invoice["total"],
                                  invoice_id=invoice["id"], paid_on=dt.date(2026, 12, 1))
    from portal.admissions import decision as issued

    renders = []
    real_render = issued.render_sealed

    async def counting_render(*args, **kwargs):
        renders.append(args[1]["data"]["data"]["decision_number"])
        return await real_render(*args, **kwargs)

    monkeypatch.setattr(issued, "render_sealed", counting_render)
    await as_staff(client)
    ids = [await application_of(paid), await application_of(other)]
    responses = await asyncio.gather(*(post_form(client, f"/staff/admissions/{i}/admit", {}) for i in ids))
    assert [r.status_code for r in responses] == [303, 303], [r.text for r in responses]
    year = dt.datetime.now(dt.timezone.utc).year
    rows = await AdmissionDecision.select().order_by(AdmissionDecision.number)
    assert [r["number"] for r in rows] == [f"Р-{year}-0001", f"Р-{year}-0002"]
    assert {r["application"] for r in rows} == set(ids)
    # Rendered at once, both asked for the first number; the one that lost it was rendered again with the next.
    assert sorted(renders) == [f"Р-{year}-0001", f"Р-{year}-0001", f"Р-{year}-0002"], renders
    for row in rows:  # each PDF prints the number its decision has
        doc = await Document.select().where(Document.id == row["document"]).first()
        assert json.loads(doc["canonical_json"])["data"]["data"]["decision_number"] == row["number"]
