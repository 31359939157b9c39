"""J1 over HTTP: registration by link with a member key, the application, signing the package, documents."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from portal.accounts.tables import Member, MemberKey, PepAcceptance, PepAcceptancePending
from portal.applications.service import CONSENT, JOIN_PACKAGE
from portal.applications.tables import Application
from portal.audit.tables import AuditEvent
from portal.connect import service as connect
from portal.connect.tables import RegistrationLink
from portal.cooperatives.tables import Cooperative
from portal.documents.tables import Document, Signature, SignatureImage
from tests.conftest import csrf_token, post_form
from tests.factories import ORG_APPLICATION, MemberKey as Key, form_value, signature_png
from tests.integration.test_connect import VALID

PORTAL = str(Path(sys.executable).with_name("portal"))


async def invite(client, email: str = "maria@example.org", inn: str = "7707083893") -> str:
    await post_form(client, "/connect", {**VALID, "email": email, "inn": inn})
    row = await connect.list_requests("new")
    settings = client._transport.app.state.settings
    return await connect.send_registration_link(settings, row[0]["id"], {"id": 0, "email": "staff@x"})


def join_fields(key: Key, link_email: str, **changes: str) -> dict[str, str]:
    """What the registration form posts: the e-mail and the new key (the offer was accepted before, on its own)."""
    return {"email": link_email, "public_key": key.public_b64, "key_proof": key.proof(link_email), "saved": "on",
            **changes}


def offer_fields(page: str, **changes: str) -> dict[str, str]:
    """What «Принять оферту» posts: the ticked box and what the page showed (the text's and the values' SHA-256)."""
    return {"pep_offer": "on", "offer_sha256": form_value(page, "offer_sha256"),
            "offer_context_sha256": form_value(page, "offer_context_sha256"), **changes}


async def accept_offer(client, token: str, page: str | None = None, *, htmx: bool = False, **headers):
    if page is None:
        page = (await client.get(f"/join/{token}")).text
    if htmx:
        headers["HX-Request"] = "true"
    return await client.post(f"/join/{token}/offer", data={**offer_fields(page), "_csrf_token": await csrf_token(client)},
                             headers=headers)


async def register(client, key: Key, email: str = "maria@example.org", inn: str = "7707083893", **headers):
    token = await invite(client, email, inn)
    r = await client.get(f"/join/{token}")
    assert r.status_code == 200 and "Создать ключ пайщика" in r.text
    r = await accept_offer(client, token, r.text, **headers)
    assert r.status_code == 303 and r.headers["location"] == f"/join/{token}#key", r.text
    page = (await client.get(f"/join/{token}")).text
    assert 'id="offer-accepted"' in page and not re.search(r'data-action="create-key"\s+disabled', page)
    fields = join_fields(key, email, email=email.upper())
    r = await client.post(f"/join/{token}", data={**fields, "_csrf_token": await csrf_token(client)}, headers=headers)
    assert r.status_code == 303, r.text
    assert r.headers["location"] == "/cabinet/application"
    return token


async def fill_application(client, data=ORG_APPLICATION):
    r = await post_form(client, "/cabinet/application", data)
    assert r.status_code == 303, r.text
    assert r.headers["location"] == "/cabinet/sign"


async def sign_page(client) -> tuple[str, dict[str, str]]:
    """The nonce and the hashes of the package (the consent given before)."""
    r = await client.get("/cabinet/sign")
    assert r.status_code == 200, r.text
    hashes = {t: form_value(r.text, f"hash_{t}") for t in JOIN_PACKAGE}
    return form_value(r.text, "nonce"), hashes


async def consent_page(client) -> tuple[str, str]:
    """The nonce and the hash of the personal-data consent on the signing page."""
    r = await client.get("/cabinet/sign")
    assert r.status_code == 200, r.text
    return form_value(r.text, "nonce"), form_value(r.text, f"hash_{CONSENT}")


async def post_consent(client, key: Key, png: bytes, *, ticked: bool = True, nonce: str | None = None,
                       consent_hash: str | None = None):
    """«Дать согласие»: its own ticked box and its own signature of the consent."""
    if nonce is None:
        nonce, consent_hash = await consent_page(client)
    fields = signed_fields(key, nonce, {CONSENT: consent_hash}, png)
    if ticked:
        fields["consent"] = "on"
    token = await csrf_token(client)
    return await client.post("/cabinet/consent", data={**fields, "_csrf_token": token},
                             files={"signature_png": ("signature.png", png, "image/png")})


async def give_consent(client, key: Key, png: bytes | None = None) -> None:
    r = await post_consent(client, key, png or signature_png())
    assert r.status_code == 303 and r.headers["location"] == "/cabinet/sign#package", r.text


def signed_fields(key: Key, nonce: str, hashes: dict[str, str], png: bytes) -> dict[str, str]:
    import hashlib

    image_hash = hashlib.sha256(png).hexdigest()
    fields = {"nonce": nonce}
    for t, h in hashes.items():
        fields[f"hash_{t}"] = h
        fields[f"sig_{t}"] = key.sign(f"coopdoc:v1:{h}:{image_hash}")
    return fields


async def post_signature(client, fields: dict[str, str], png: bytes, content_type="image/png"):
    token = await csrf_token(client)
    return await client.post("/cabinet/sign", data={**fields, "_csrf_token": token},
                              files={"signature_png": ("signature.png", png, content_type)})


async def nothing_signed() -> bool:
    """Nothing of the package was stored (the consent given before stays, alone)."""
    return (await Document.count().where(Document.package == "join") == 0
            and await Signature.count() == await Document.count() <= 1 and await SignatureImage.count() <= 1
            and (await Application.select(Application.status).first())["status"] == "draft")


@pytest.fixture
async def member(client):
    """A registered member (the offer accepted) with the application filled in and the consent given."""
    key = Key()
    await register(client, key)
    await fill_application(client)
    await give_consent(client, key)
    return key


async def test_join_link_registers_the_member_and_uses_up_the_link(client):
    key = Key()
    token = await register(client, key)
    m = await Member.select().first()
    assert m["email"] == "maria@example.org"
    [k] = await MemberKey.select()
    assert k["public_key"] == key.public_b64 and k["revoked_at"] is None
    assert (await connect.check_link(token)).state == "used"
    r = await client.get(f"/join/{token}")
    assert r.status_code == 410
    assert await AuditEvent.count().where(AuditEvent.action == "member.registered") == 1
    r = await client.get("/cabinet")
    assert r.status_code == 200 and "Кабинет пайщика" in r.text


async def test_join_refuses_wrong_email_and_missing_proof_and_keeps_the_link(client):
    key = Key()
    token = await invite(client)
    assert (await accept_offer(client, token)).status_code == 303
    email = "maria@example.org"
    r = await post_form(client, f"/join/{token}", join_fields(key, email, email="other@example.org"))
    assert r.status_code == 422 and "не тот адрес" in r.text and 'value="other@example.org"' in r.text
    r = await post_form(client, f"/join/{token}", join_fields(key, email, key_proof=Key().proof(email)))
    assert r.status_code == 422 and "владение ключом" in r.text
    # The offer stays accepted (the server's record), the key already shown is kept.
    assert 'id="offer-accepted"' in r.text and "data-restore" in r.text
    r = await post_form(client, f"/join/{token}", join_fields(key, email, saved=""))
    assert r.status_code == 422 and "сохранили ключ" in r.text
    assert await Member.count() == 0 and (await connect.check_link(token)).state == "valid"
    assert await PepAcceptance.count() == 0 and await PepAcceptancePending.count() == 1


async def test_the_offer_is_shown_in_full_and_the_key_waits_for_its_acceptance(client):
    from portal.documents.templates import get_template

    offer = get_template("pep_agreement")
    token = await invite(client)
    r = await client.get(f"/join/{token}")
    page = r.text
    # The offer comes before the key: readable in a frame and as a PDF, an unticked box, the key button disabled.
    assert page.index('id="pep-offer"') < page.index('id="accept-offer"') < page.index('data-action="create-key"')
    assert f'src="/join/{token}/offer"' in page and f'href="/join/{token}/offer.pdf"' in page
    box = page.split('id="pep-offer"')[1].split(">")[0]
    assert "checked" not in box and 'form="offer-form"' in page.split('id="pep-offer"')[0].rsplit("<input", 1)[1]
    assert re.search(r'data-action="create-key"\s+disabled', page) and 'id="key-gate-hint"' in page
    assert form_value(page, "offer_sha256") == offer.sha256
    assert re.fullmatch(r"[0-9a-f]{64}", form_value(page, "offer_context_sha256"))
    assert f'action="/join/{token}/offer"' in page and f'hx-post="/join/{token}/offer"' in page
    r = await client.get(f"/join/{token}/offer")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "frame-ancestors 'self'" in r.headers["content-security-policy"] and "<script" not in r.text
    assert "простой электронной подписи" in r.text.lower()
    r = await client.get(f"/join/{token}/offer.pdf")
    assert r.status_code == 200 and r.content.startswith(b"%PDF") and r.headers["content-type"] == "application/pdf"
    assert f'filename="oferta-pep-v{offer.version}.pdf"' in r.headers["content-disposition"]
    assert (await client.get("/join/not-a-token/offer")).status_code == 404

    # «Принять оферту» without the box ticked: refused at the box, nothing recorded.
    r = await post_form(client, f"/join/{token}/offer", {k: v for k, v in offer_fields(page).items() if k != "pep_offer"})
    assert r.status_code == 422 and "Отметьте" in r.text.split('id="err-pep_offer"')[1].split("</p>")[0]
    assert await PepAcceptancePending.count() == 0


async def test_registration_without_a_prior_acceptance_is_refused(client):
    key = Key()
    token = await invite(client)
    email = "maria@example.org"
    # The box ticked in the registration form is not an acceptance: only «Принять оферту» is.
    r = await post_form(client, f"/join/{token}", join_fields(key, email, pep_offer="on"))
    assert r.status_code == 422
    error = r.text.split('id="err-pep_offer"')[1].split("</p>")[0]
    assert "Примите оферту" in error
    assert 'value="maria@example.org"' in r.text  # the e-mail is kept
    assert "data-restore" not in r.text  # a key made before the acceptance is not kept: it is made after it
    assert re.search(r'data-action="create-key"\s+disabled', r.text)
    assert await Member.count() == 0 and await PepAcceptance.count() == 0 and await PepAcceptancePending.count() == 0
    assert (await connect.check_link(token)).state == "valid"


async def test_the_acceptance_is_refused_when_the_text_or_the_values_changed_after_display(client):
    token = await invite(client)
    page = (await client.get(f"/join/{token}")).text
    # Another text than the current one (the offer changed while the page was open).
    r = await post_form(client, f"/join/{token}/offer", offer_fields(page, offer_sha256="0" * 64))
    assert r.status_code == 422 and "Текст оферты обновился" in r.text.split('id="err-pep_offer"')[1]
    assert 'name="pep_offer" value="on" checked' in r.text  # the box stays ticked
    # The cooperative's values changed after the page was shown (another phone): refused too.
    await Cooperative.update({Cooperative.phone: "+74950000000"}).where(Cooperative.is_operator == True)  # noqa: E712
    r = await post_form(client, f"/join/{token}/offer", offer_fields(page))
    assert r.status_code == 422
    assert "Реквизиты кооператива в оферте изменились" in r.text.split('id="err-pep_offer"')[1].split("</p>")[0]
    assert await PepAcceptancePending.count() == 0
    # The page shown again carries the new values: accepted.
    assert form_value(r.text, "offer_context_sha256") != form_value(page, "offer_context_sha256")
    r = await post_form(client, f"/join/{token}/offer", offer_fields(r.text))
    assert r.status_code == 303
    [row] = await PepAcceptancePending.select()
    assert "+74950000000" in str(row["offer_context"])

    # Accepted, then the values change before the registration: the registration asks for it again.
    await Cooperative.update({Cooperative.phone: "+74951111111"}).where(Cooperative.is_operator == True)  # noqa: E712
    r = await post_form(client, f"/join/{token}", join_fields(Key(), "maria@example.org"))
    assert r.status_code == 422 and "ещё раз" in r.text.split('id="err-pep_offer"')[1].split("</p>")[0]
    assert 'id="offer-accepted"' not in r.text and await Member.count() == 0


async def test_the_acceptance_is_recorded_with_time_ip_and_user_agent_before_the_key(client):
    from portal.documents.templates import get_template

    before = dt.datetime.now(dt.timezone.utc)
    token = await invite(client)
    page = (await client.get(f"/join/{token}")).text
    r = await accept_offer(client, token, page, **{"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) TestBrowser/1.0"})
    assert r.status_code == 303 and r.headers["location"] == f"/join/{token}#key"
    [pending] = await PepAcceptancePending.select()
    link = await RegistrationLink.select().first()
    assert pending["registration_link"] == link["id"] and pending["email"] == "maria@example.org"
    assert pending["context_sha256"] == form_value(page, "offer_context_sha256")
    # The acceptance is in the audit log at once, before any key exists.
    [event] = await AuditEvent.select().where(AuditEvent.action == "member.pep_offer_accepted")
    assert (event["actor_type"], event["object_type"], event["object_id"]) == (
        "visitor", "registration_link", str(link["id"]))
    assert event["ip"] == "127.0.0.1" and "TestBrowser/1.0" in event["user_agent"]
    # Accepting again (the same page, a second click) changes nothing.
    assert (await accept_offer(client, token, page)).status_code == 303
    assert await PepAcceptancePending.count() == 1

    # The registration, from another browser: the acceptance keeps its own time, IP and user agent.
    key = Key()
    r = await client.post(f"/join/{token}", data={**join_fields(key, "maria@example.org"),
                                                  "_csrf_token": await csrf_token(client)},
                          headers={"User-Agent": "OtherBrowser/3.0"})
    assert r.status_code == 303, r.text
    member = await Member.select().first()
    [row] = await PepAcceptance.select()
    offer = get_template("pep_agreement")
    assert row["member"] == member["id"] and row["cooperative"] == member["cooperative"]
    assert (row["template_id"], row["template_version"], row["template_sha256"]) == (
        "pep_agreement", offer.version, offer.sha256)
    assert row["ip"] == "127.0.0.1" and row["user_agent"] == "Mozilla/5.0 (X11; Linux x86_64) TestBrowser/1.0"
    assert row["email"] == "maria@example.org"
    assert row["accepted_at"] == pending["accepted_at"]
    assert before <= row["accepted_at"] <= dt.datetime.now(dt.timezone.utc)
    key_row = await MemberKey.select().first()
    assert row["accepted_at"] < key_row["created_at"]  # strictly before the key
    registered = await AuditEvent.select().where(AuditEvent.action == "member.registered").first()
    assert event["id"] < registered["id"]
    details = registered["details"] if isinstance(registered["details"], dict) else json.loads(registered["details"])
    assert details["pep_acceptance"] == row["id"]
    assert await PepAcceptancePending.count() == 0


async def test_the_htmx_answer_is_the_offer_and_key_block_only(client):
    token = await invite(client)
    page = (await client.get(f"/join/{token}")).text
    fields = offer_fields(page)
    del fields["pep_offer"]
    r = await post_form(client, f"/join/{token}/offer", fields, htmx=True)
    assert r.status_code == 422
    assert r.text.lstrip().startswith('<div id="offer-key"') and "<html" not in r.text
    assert 'id="err-pep_offer"' in r.text and 'id="email"' not in r.text and "Продолжить: заявление" not in r.text
    assert re.search(r'data-action="create-key"\s+disabled', r.text)
    r = await accept_offer(client, token, page, htmx=True)
    assert r.status_code == 200
    assert r.text.lstrip().startswith('<div id="offer-key"') and r.text.rstrip().endswith("</div>")
    assert "<html" not in r.text and 'id="email"' not in r.text
    assert 'id="offer-accepted"' in r.text and "Оферта принята" in r.text
    assert 'data-action="create-key"' in r.text and not re.search(r'data-action="create-key"\s+disabled', r.text)
    assert 'id="pep-offer"' not in r.text and await PepAcceptancePending.count() == 1


async def test_the_acceptance_on_a_used_or_expired_link_is_refused(client):
    # Used: registered with it.
    token = await register(client, Key())
    stale = 'name="offer_sha256" value="0" name="offer_context_sha256" value="0"'  # the page opened before
    r = await accept_offer(client, token, stale)
    assert r.status_code == 410 and "уже зарегистрировались" in r.text
    assert await PepAcceptancePending.count() == 0
    # Expired: the link's week is over (the page was opened before).
    token = await invite(client, "petr@example.org", "7736050003")
    page = (await client.get(f"/join/{token}")).text
    await RegistrationLink.update({RegistrationLink.expires_at: dt.datetime.now(dt.timezone.utc)
                                   - dt.timedelta(minutes=1)}).where(RegistrationLink.email == "petr@example.org")
    r = await accept_offer(client, token, page)
    assert r.status_code == 410 and "Срок действия ссылки истёк" in r.text
    # From htmx: the page reloads and says so.
    r = await accept_offer(client, token, page, htmx=True)
    assert r.status_code == 410 and r.headers.get("hx-refresh") == "true"
    assert await PepAcceptancePending.count() == 0
    assert (await post_form(client, "/join/not-a-token/offer", offer_fields(page))).status_code == 404


async def test_cabinet_needs_login(client):
    r = await client.get("/cabinet", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login")


async def test_application_errors_stay_at_the_field_and_draft_is_kept(client):
    await register(client, Key())
    r = await post_form(client, "/cabinet/application", {**ORG_APPLICATION, "inn": "7707083894",
                                                         "settlement_account": "40702810938000000002"})
    # Refused: the draft is saved and the errors are shown by a GET (a reload posts nothing again).
    assert r.status_code == 303 and r.headers["location"] == "/cabinet/application?check=1#errors"
    r = await client.get("/cabinet/application?check=1")
    assert r.status_code == 200
    assert 'id="err-inn"' in r.text and 'id="err-settlement_account"' in r.text
    # The summary names each field and links to it.
    summary = r.text.split("data-error-summary")[1].split("</div>")[0]
    assert 'href="#f-inn"' in summary and "ИНН" in summary and 'href="#f-settlement_account"' in summary
    assert "БИК" in r.text.split('id="err-settlement_account">')[1].split("</p>")[0]
    assert 'value="Потребительский кооператив «Рассвет»"' in r.text
    # The draft survives: the next visit shows what was typed, the bad value included.
    r = await client.get("/cabinet/application")
    assert 'value="7707083894"' in r.text and 'value="ПК «Рассвет»"' in r.text
    r = await client.get("/cabinet/sign", follow_redirects=False)
    assert r.headers["location"] == "/cabinet/application"


async def test_a_reload_after_a_refused_submit_keeps_the_corrections(client):
    """The inline check saved a corrected ИНН; reloading the error page must not bring the old value back."""
    await register(client, Key())
    r = await post_form(client, "/cabinet/application", {**ORG_APPLICATION, "inn": "7707083894"})
    location = r.headers["location"]
    r = await post_form(client, "/cabinet/application/field/inn", {"applicant_type": "organization",
                                                                   "inn": "7707083893"}, htmx=True)
    assert r.status_code == 200 and 'id="err-inn"' not in r.text
    r = await client.get(location)  # the reload
    assert r.status_code in (200, 303)
    from portal.applications.service import draft_of

    assert draft_of(await Application.select().first())["inn"] == "7707083893"


async def test_inline_field_check_saves_the_draft(client):
    await register(client, Key())
    r = await post_form(client, "/cabinet/application/field/ogrn", {"applicant_type": "organization",
                                                                    "ogrn": "1027700132196"}, htmx=True)
    assert r.status_code == 200
    assert r.text.lstrip().startswith('<div class="field invalid" id="fld-ogrn"') and "ОГРН" in r.text
    r = await post_form(client, "/cabinet/application/field/ogrn", {"applicant_type": "organization",
                                                                    "ogrn": "1027700132195"}, htmx=True)
    assert "field-error" not in r.text
    draft = (await Application.select().first())["draft"]
    assert "1027700132195" in str(draft)


async def test_switching_type_keeps_what_was_typed(client):
    await register(client, Key())
    r = await post_form(client, "/cabinet/application/type", {"applicant_type": "individual",
                                                              "phone": "+7 900 000-00-01"}, htmx=True)
    assert 'name="birth_date"' in r.text and 'value="+7 900 000-00-01"' in r.text and "<html" not in r.text


async def test_signing_the_package_stores_the_signed_pdfs(client, member):
    nonce, hashes = await sign_page(client)
    png = signature_png()
    r = await post_signature(client, signed_fields(member, nonce, hashes, png), png)
    assert r.status_code == 303, r.text
    docs = await Document.select().where(Document.package == "join").order_by(Document.id)
    assert [d["template_id"] for d in docs] == list(JOIN_PACKAGE) == ["join_application", "user_agreement"]
    assert [d["document_hash"] for d in docs] == [hashes[t] for t in JOIN_PACKAGE]
    # The same drawing signed the consent and the package: stored once.
    assert await SignatureImage.count() == 1 and await Signature.count() == 3
    assert (await Application.select().first())["status"] == "signed"
    r = await client.get("/cabinet")
    assert "Мои документы" in r.text and "Заявление о вступлении" in r.text
    # Download serves the stored bytes.
    r = await client.get(f"/cabinet/documents/{docs[0]['id']}")
    assert r.status_code == 200 and r.headers["content-type"] == "application/pdf"
    assert r.content == docs[0]["pdf"] and r.content.startswith(b"%PDF")
    import hashlib

    assert hashlib.sha256(r.content).hexdigest() == docs[0]["pdf_sha256"]
    # Replaying the same request is refused: the application is signed, nothing more is stored.
    r = await post_signature(client, signed_fields(member, nonce, hashes, png), png)
    assert r.status_code == 303 and r.headers["location"] == "/cabinet"
    assert await Document.count() == 4  # the consent, the package and the fees invoice issued with it


async def test_a_nonce_is_used_once_even_by_concurrent_requests(client, member, settings):
    """The second of two requests with the same nonce (both passed the first checks) stores nothing."""
    from portal.applications import service

    nonce, hashes = await sign_page(client)
    png = signature_png()
    fields = signed_fields(member, nonce, hashes, png)
    m = await Member.select().first()
    app_row = await Application.select().first()  # read once: both requests saw the application as a draft
    sigs = {t: fields[f"sig_{t}"] for t in JOIN_PACKAGE}
    first = service.sign_package(settings, m, app_row, nonce=nonce, image_png=png, hashes=hashes, signatures=sigs)
    second = service.sign_package(settings, m, app_row, nonce=nonce, image_png=png, hashes=hashes, signatures=sigs)
    results = await asyncio.gather(first, second, return_exceptions=True)
    errors = [r for r in results if isinstance(r, Exception)]
    assert len(errors) == 1 and "уже обработан" in str(errors[0])
    assert await Document.count() == 4 and await Signature.count() == 3  # + the fees invoice, issued once


async def test_forged_signature_is_refused_and_nothing_stored(client, member):
    nonce, hashes = await sign_page(client)
    png = signature_png()
    r = await post_signature(client, signed_fields(Key(), nonce, hashes, png), png)
    assert r.status_code == 422 and "не сходится с вашим ключом" in r.text
    assert await nothing_signed()


async def test_tampered_hash_is_refused(client, member):
    nonce, hashes = await sign_page(client)
    hashes = {**hashes, "user_agreement": "0" * 64}
    png = signature_png()
    r = await post_signature(client, signed_fields(member, nonce, hashes, png), png)
    assert r.status_code == 422 and "изменился" in r.text
    assert await nothing_signed()


async def test_signature_of_another_image_is_refused(client, member):
    nonce, hashes = await sign_page(client)
    r = await post_signature(client, signed_fields(member, nonce, hashes, signature_png(seed=1)),
                             signature_png(seed=2))
    assert r.status_code == 422 and await nothing_signed()


@pytest.mark.parametrize("image,message", [
    (b"GIF89a not a png at all", "PNG"),
    (b"\x89PNG\r\n\x1a\n" + b"\x00" * 300_000, "200 КБ"),
    ("wide", "2000"),
])
async def test_bad_images_are_refused(client, member, image, message):
    if image == "wide":
        image = signature_png(size=(2400, 300))
    nonce, hashes = await sign_page(client)
    r = await post_signature(client, signed_fields(member, nonce, hashes, image), image)
    assert r.status_code == 422
    assert message in r.text.split('id="sign-error">')[1].split("</p>")[0]
    assert await nothing_signed()


async def test_old_nonce_is_refused(client, member):
    nonce, hashes = await sign_page(client)
    await sign_page(client)  # a newer page replaces the nonce
    png = signature_png()
    r = await post_signature(client, signed_fields(member, nonce, hashes, png), png)
    assert r.status_code == 422 and "устарела" in r.text and await nothing_signed()


async def test_another_members_document_is_404(client, member, settings):
    nonce, hashes = await sign_page(client)
    png = signature_png()
    await post_signature(client, signed_fields(member, nonce, hashes, png), png)
    doc_id = (await Document.select(Document.id).first())["id"]
    # A second member in a fresh session.
    await post_form(client, "/logout", {})
    client.cookies.clear()
    await register(client, Key(), email="petr@example.org", inn="7736050003")
    r = await client.get(f"/cabinet/documents/{doc_id}")
    assert r.status_code == 404
    assert (await client.get("/cabinet/documents/999999")).status_code == 404


async def test_login_with_key_and_refusals(client, member):
    await post_form(client, "/logout", {})
    r = await client.get("/login")
    nonce = form_value(r.text, "nonce")
    # A wrong key.
    other = Key()
    r = await post_form(client, "/login", {"email": "maria@example.org", "nonce": nonce,
                                           "public_key": other.public_b64, "signature": other.sign(f"coopauth:v1:{nonce}")})
    assert r.status_code == 422 and "Ключ не подходит" in r.text
    # The nonce was used up: the right key with the same nonce is refused too.
    r = await post_form(client, "/login", {"email": "maria@example.org", "nonce": nonce,
                                           "public_key": member.public_b64, "signature": member.sign(f"coopauth:v1:{nonce}")})
    assert r.status_code == 422 and "устарела" in r.text
    nonce = form_value(r.text, "nonce")
    r = await post_form(client, "/login", {"email": "maria@example.org", "nonce": nonce,
                                           "public_key": member.public_b64, "signature": member.sign(f"coopauth:v1:{nonce}")},
                        follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/cabinet"


async def test_recovery_replaces_the_key_and_old_signatures_stay_verifiable(client, member, settings):

    nonce, hashes = await sign_page(client)
    png = signature_png()
    await post_signature(client, signed_fields(member, nonce, hashes, png), png)
    old_session = dict(client.cookies)  # e.g. a session left open on a lost phone
    client.cookies.clear()
    from portal.mail.tables import OutboxMessage

    await OutboxMessage.delete(force=True)
    r = await post_form(client, "/recover", {"email": "maria@example.org"})
    assert r.status_code == 200 and "отправлено письмо" in r.text
    r = await post_form(client, "/recover", {"email": "nobody@example.org"})
    assert r.status_code == 200 and "отправлено письмо" in r.text  # says the same
    [mail] = await OutboxMessage.select()
    token = re.search(r"/recover/([A-Za-z0-9_-]+)", mail["body_text"]).group(1)
    r = await post_form(client, f"/recover/{token}", {"public_key": member.public_b64,
                                                      "key_proof": member.proof("maria@example.org"), "saved": "on"})
    assert r.status_code == 422 and "прежний ключ" in r.text
    new = Key()
    r = await post_form(client, f"/recover/{token}", {"public_key": new.public_b64,
                                                      "key_proof": new.proof("maria@example.org"), "saved": "on"},
                        follow_redirects=False)
    assert r.status_code == 303
    keys = await MemberKey.select().order_by(MemberKey.id)
    assert keys[0]["revoked_at"] is not None and keys[1]["public_key"] == new.public_b64
    assert (await client.get(f"/recover/{token}")).status_code == 410
    assert (await client.get("/cabinet")).status_code == 200  # the new session
    new_session = dict(client.cookies)
    client.cookies.clear()
    client.cookies.update(old_session)
    r = await client.get("/cabinet", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login")  # the old key's session ended
    client.cookies.clear()
    client.cookies.update(new_session)
    assert await AuditEvent.count().where(AuditEvent.action == "member.key_replaced") == 1
    # The documents signed with the old key still verify (the PDF carries the old public key).
    from portal.documents.verify import verify_pdf

    doc = await Document.select().first()
    assert verify_pdf(doc["pdf"]).valid


async def test_staff_see_applications_and_download_pdfs(client, member):
    from portal.staff.service import create_staff

    nonce, hashes = await sign_page(client)
    png = signature_png()
    await post_signature(client, signed_fields(member, nonce, hashes, png), png)
    r = await client.get("/staff/applications", follow_redirects=False)
    assert r.status_code == 403  # a member is not staff
    await post_form(client, "/logout", {})
    await create_staff("s@voskhod.example", "staff password 1")
    await post_form(client, "/staff/login", {"email": "s@voskhod.example", "password": "staff password 1"})
    r = await client.get("/staff/")
    assert 'id="count-applications-signed">1<' in r.text
    r = await client.get("/staff/applications")
    assert "ПК «Рассвет»" in r.text and "Подписано" in r.text
    app_id = (await Application.select(Application.id).first())["id"]
    r = await client.get(f"/staff/applications/{app_id}")
    ids = re.findall(r'/staff/documents/(\d+)"', r.text)
    assert len(ids) == 4 and "Иванова Мария Петровна" in r.text  # the consent, the application, the user agreement, the invoice
    # The new fields, named with their group; the acceptance of the offer.
    assert "<dt>Паспорт представителя: Кем выдан</dt><dd>ГУ МВД России по г. Москве</dd>" in r.text
    assert "<dt>Решение о вступлении в кооператив: Дата решения</dt><dd>20.11.2025</dd>" in r.text
    assert "общее собрание пайщиков" in r.text
    assert "принята" in r.text.split('id="pep-acceptance">')[1].split("</dd>")[0]
    # Values in words, not codes: «Устав», «да», not «charter», «on».
    props = r.text.split('class="props"')[1].split("</dl>")[0]
    assert "<dd>Устав</dd>" in props and "<dd>да</dd>" in props
    assert "charter" not in props and "<dd>on</dd>" not in props
    r = await client.get(f"/staff/documents/{ids[0]}")
    assert r.status_code == 200 and r.content.startswith(b"%PDF")
    # Personal: cached only by the browser, revalidated by the PDF's SHA-256.
    sha = (await Document.select(Document.pdf_sha256).where(Document.id == int(ids[0])).first())["pdf_sha256"]
    assert r.headers["etag"] == f'"{sha}"' and r.headers["cache-control"] == "private, no-cache"
    r = await client.get(f"/staff/documents/{ids[0]}", headers={"If-None-Match": f'"{sha}"'})
    assert r.status_code == 304 and r.content == b""
    r = await client.get(f"/staff/documents/{ids[0]}", headers={"If-None-Match": '"0000"'})
    assert r.status_code == 200 and r.content.startswith(b"%PDF")


async def test_verify_page_and_command(client, member, tmp_path, settings):
    nonce, hashes = await sign_page(client)
    png = signature_png()
    await post_signature(client, signed_fields(member, nonce, hashes, png), png)
    doc = await Document.select().where(Document.template_id == "join_application").first()
    token = await csrf_token(client)
    r = await client.post("/verify", data={"_csrf_token": token}, files={"file": ("a.pdf", doc["pdf"], "application/pdf")})
    assert r.status_code == 200 and "Документ действителен" in r.text and "зарегистрирован на портале" in r.text
    assert doc["document_hash"] in r.text
    broken = bytearray(doc["pdf"])
    broken[len(broken) // 3] ^= 0x01
    r = await client.post("/verify", data={"_csrf_token": token}, files={"file": ("b.pdf", bytes(broken), "application/pdf")})
    assert r.status_code == 200 and "не прошёл проверку" in r.text
    r = await client.get("/verify", params={"hash": doc["document_hash"].upper()})
    assert "зарегистрирован на портале" in r.text and "Заявление о вступлении" in r.text
    from portal.documents.seal import certificate_sha256_in

    r = await client.get("/verify")
    body = r.text.split("<main", 1)[1]
    assert f'id="seal-sha256">{certificate_sha256_in(settings.data_dir)}<' in body  # the published fingerprint
    assert "<section" not in r.text.split("<title>", 1)[1].split("</title>", 1)[0]
    r = await client.get("/verify", params={"hash": "xyz"})
    assert r.status_code == 422 and "64 шестнадцатеричных" in r.text
    r = await client.post("/verify", data={"_csrf_token": token}, files={"file": ("e.pdf", b"", "application/pdf")})
    assert r.status_code == 422 and "Выберите PDF" in r.text
    # Offline, with the command.
    good = tmp_path / "good.pdf"
    good.write_bytes(doc["pdf"])
    bad = tmp_path / "bad.pdf"
    bad.write_bytes(bytes(broken))
    env = {**os.environ, "PORTAL_DATA_DIR": str(settings.data_dir)}  # this portal's seal certificate
    ok = subprocess.run([PORTAL, "verify", str(good)], capture_output=True, text=True, timeout=60, env=env)
    assert ok.returncode == 0 and "ДЕЙСТВИТЕЛЕН" in ok.stdout and doc["document_hash"] in ok.stdout
    assert "сертификат сверен" in ok.stdout
    # Elsewhere (no data dir) and no published fingerprint given: not verified, never «valid» …
    elsewhere = {**os.environ, "PORTAL_DATA_DIR": str(tmp_path / "nothing")}
    r = subprocess.run([PORTAL, "verify", str(good)], capture_output=True, text=True, timeout=60, env=elsewhere)
    assert r.returncode == 3 and "НЕ ПРОВЕРЕН" in r.stderr and "ДЕЙСТВИТЕЛЕН" not in r.stdout
    assert not (tmp_path / "nothing").exists()  # verifying creates nothing
    # … with the published fingerprint (as a setting of another installation): valid.
    published = {**elsewhere, "PORTAL_SEAL_SHA256": "0" * 64 + "," + certificate_sha256_in(settings.data_dir)}
    r = subprocess.run([PORTAL, "verify", str(good)], capture_output=True, text=True, timeout=60, env=published)
    assert r.returncode == 0 and "сертификат сверен" in r.stdout
    # … and a seal made with another certificate is refused when the operator's one is given.
    r = subprocess.run([PORTAL, "verify", str(good), "--seal-sha256", "ab" * 32], capture_output=True, text=True,
                       timeout=60, env=elsewhere)
    assert r.returncode != 0 and "НЕДЕЙСТВИТЕЛЕН" in r.stderr
    no = subprocess.run([PORTAL, "verify", str(bad)], capture_output=True, text=True, timeout=60, env=env)
    assert no.returncode != 0 and len(no.stderr.strip().splitlines()) == 1
    missing = subprocess.run([PORTAL, "verify", str(tmp_path / "none.pdf")], capture_output=True, text=True, timeout=60)
    assert missing.returncode != 0


@pytest.mark.parametrize("kind", ["individual", "entrepreneur"])
async def test_individual_and_entrepreneur_sign_with_their_own_fees(client, kind, tmp_path):
    from tests.factories import ENTREPRENEUR_APPLICATION, INDIVIDUAL_APPLICATION

    data = INDIVIDUAL_APPLICATION if kind == "individual" else ENTREPRENEUR_APPLICATION
    key = Key()
    await register(client, key)
    await fill_application(client, data)
    await give_consent(client, key)
    nonce, hashes = await sign_page(client)
    png = signature_png()
    r = await post_signature(client, signed_fields(key, nonce, hashes, png), png)
    assert r.status_code == 303, r.text
    doc = await Document.select().where(Document.template_id == "join_application").first()
    pdf = tmp_path / "a.pdf"
    pdf.write_bytes(doc["pdf"])
    text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    flat = " ".join(text.split())
    assert "Кузнецов" in flat and "Иван" in flat
    assert "100,00 ₽" in flat and "300,00 ₽" in flat  # the fees of individuals and ИП, from settings
    if kind == "entrepreneur":
        assert "500100732259" in flat and "304500116000157" in flat
    member = await Member.select().first()
    assert member["display_name"].startswith("ИП Кузнецов" if kind == "entrepreneur" else "Кузнецов")


async def test_documents_keep_the_date_they_were_shown_with(client, member):
    """A page opened before midnight and signed after it: the documents keep the date shown."""
    import datetime as dt
    import json

    from portal.applications import service

    nonce, hashes = await sign_page(client)
    yesterday = (dt.date.fromisoformat(nonce.split(".")[0]) - dt.timedelta(days=1)).isoformat()
    old_nonce = f"{yesterday}.{nonce.split('.', 1)[1]}"
    await Application.update({Application.signing_nonce: old_nonce}).where(Application.id > 0)
    m = await Member.select().first()
    package = await service.prepare(m, await Application.select().first(), today=yesterday)
    old_hashes = {d.template_id: d.hash for d in package.documents}
    assert old_hashes != hashes
    png = signature_png()
    r = await post_signature(client, signed_fields(member, old_nonce, old_hashes, png), png)
    assert r.status_code == 303, r.text
    doc = await Document.select().where(Document.template_id == "join_application").first()
    assert json.loads(doc["canonical_json"])["data"]["data"]["document_date"] == yesterday


async def test_member_logs_out_everywhere(client, member):
    """A session left open elsewhere (another browser) ends when the member chooses «Выйти на всех устройствах»."""
    import httpx

    async with httpx.AsyncClient(transport=client._transport, base_url=str(client.base_url)) as phone:
        nonce = form_value((await phone.get("/login")).text, "nonce")  # the same member logs in on a phone
        r = await post_form(phone, "/login", {"email": "maria@example.org", "nonce": nonce, "public_key": member.public_b64,
                                              "signature": member.sign(f"coopauth:v1:{nonce}")}, follow_redirects=False)
        assert r.status_code == 303
        assert phone.cookies["portal_session"] != client.cookies["portal_session"]
        assert (await phone.get("/cabinet")).status_code == 200
        html = (await client.get("/cabinet")).text
        assert "ПК «Рассвет»" in html  # the cabinet names whom the member represents
        assert 'action="/logout/all"' in html and "maria@example.org" in html
        r = await post_form(client, "/logout/all", {}, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/login?ended=all"
        assert (await phone.get("/cabinet", follow_redirects=False)).status_code == 303
        assert (await client.get("/cabinet", follow_redirects=False)).status_code == 303
        assert "Вы вышли на всех устройствах" in (await client.get("/login?ended=all")).text
        # An ended session cannot keep logging the member out of the sessions opened after.
        r = await post_form(phone, "/logout/all", {}, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].startswith("/login?next=")


def attached_document(pdf: bytes) -> dict:
    """The canonical document attached to a signed PDF (document.json)."""
    import io
    import json

    from pypdf import PdfReader

    return json.loads(PdfReader(io.BytesIO(pdf)).attachments["document.json"][0])


async def test_the_consent_is_its_own_act_before_the_package(client):
    from portal.audit.tables import AuditEvent
    from portal.documents.templates import get_template

    key = Key()
    await register(client, key, **{"User-Agent": "TestBrowser/2.0 (consent)"})
    await fill_application(client)
    page = (await client.get("/cabinet/sign")).text
    # Its own section, its own unticked box, its own button — before the package and its «Подписать».
    consent = page.split('id="consent"')[1].split('id="package"')[0]
    assert 'action="/cabinet/consent"' in consent and "Дать согласие" in consent and "Подписать" not in consent
    assert "checked" not in consent.split('id="consent-box"')[1].split(">")[0]
    assert f'src="/cabinet/sign/preview/{CONSENT}"' in consent
    package = page.split('id="package"')[1]
    assert 'action="/cabinet/sign"' in package and f"hash_{CONSENT}" not in package
    assert "pep_agreement" not in page  # the ПЭП agreement is an offer accepted at registration, not signed here
    assert (await client.get(f"/cabinet/sign/preview/{CONSENT}")).status_code == 200

    # The package first: refused, nothing stored.
    png = signature_png()
    nonce, hashes = await sign_page(client)
    r = await post_signature(client, signed_fields(key, nonce, hashes, png), png)
    assert r.status_code == 422 and "Сначала дайте согласие" in r.text.split('id="sign-error">')[1].split("</p>")[0]
    assert await Document.count() == 0
    # The consent without its box ticked: refused at the box.
    r = await post_consent(client, key, png, ticked=False)
    assert r.status_code == 422 and "Отметьте" in r.text.split('id="err-consent"')[1].split("</p>")[0]
    assert await Document.count() == 0
    # Given: a signed document of its own.
    await give_consent(client, key, png)
    [doc] = await Document.select()
    assert (doc["package"], doc["template_id"]) == (CONSENT, CONSENT)
    assert await AuditEvent.count().where(AuditEvent.action == "application.pd_consent_given") == 1
    page = (await client.get("/cabinet/sign")).text
    assert 'id="consent-given"' in page and 'action="/cabinet/consent"' not in page
    assert 'data-consent-given="yes"' in page
    # Given once: again is refused.
    r = await post_consent(client, key, png, nonce=form_value(page, "nonce"), consent_hash=doc["document_hash"])
    assert r.status_code == 422 and "уже дано" in r.text and await Document.count() == 1

    # Then the package.
    nonce, hashes = await sign_page(client)
    r = await post_signature(client, signed_fields(key, nonce, hashes, png), png)
    assert r.status_code == 303, r.text
    docs = await Document.select().where(Document.package != "invoice").order_by(Document.id)  # the signed ones
    assert [d["template_id"] for d in docs] == [CONSENT, "join_application", "user_agreement"]
    # Every signed document carries the acceptance of the offer, in the PDF's document.json too.
    [acceptance] = await PepAcceptance.select()
    offer = get_template("pep_agreement")
    expected = {"template_id": "pep_agreement", "template_version": offer.version, "template_sha256": offer.sha256,
                "accepted_at": acceptance["accepted_at"].astimezone(dt.timezone.utc).isoformat(
                    timespec="seconds").replace("+00:00", "Z"),
                "ip": "127.0.0.1", "user_agent": "TestBrowser/2.0 (consent)", "email": "maria@example.org"}
    for d in docs:
        document = attached_document(d["pdf"])
        assert document["data"]["pep_offer"] == expected, d["template_id"]
        assert document["template_id"] == d["template_id"]

    # «Мои документы»: the accepted offer (a PDF with the acceptance) and the consent.
    r = await client.get("/cabinet")
    listed = r.text.split('class="documents"')[1].split("</ul>")[0]
    assert 'href="/cabinet/offer.pdf"' in listed and offer.title in listed
    assert f'href="/cabinet/documents/{docs[0]["id"]}"' in listed and "Согласие на обработку" in listed
    r = await client.get("/cabinet/offer.pdf")
    assert r.status_code == 200 and r.content.startswith(b"%PDF") and b"pdfaid" in r.content
    r = await client.get("/cabinet/offer")
    assert r.status_code == 200 and "<script" not in r.text


async def test_a_consent_given_for_other_data_is_given_again(client):
    key = Key()
    await register(client, key)
    await fill_application(client)
    await give_consent(client, key)
    # The application changes (another passport of the representative): the consent covers other data.
    await fill_application(client, {**ORG_APPLICATION, "rep_passport_number": "654321"})
    page = (await client.get("/cabinet/sign")).text
    assert "Дайте согласие заново" in page and 'action="/cabinet/consent"' in page
    png = signature_png()
    nonce, hashes = await sign_page(client)
    r = await post_signature(client, signed_fields(key, nonce, hashes, png), png)
    assert r.status_code == 422 and "Сначала дайте согласие" in r.text
    await give_consent(client, key, png)
    nonce, hashes = await sign_page(client)
    r = await post_signature(client, signed_fields(key, nonce, hashes, png), png)
    assert r.status_code == 303, r.text
    consents = await Document.select().where(Document.package == CONSENT).order_by(Document.id)
    assert len(consents) == 2
    assert attached_document(consents[1]["pdf"])["data"]["data"]["rep_passport_number"] == "654321"


async def test_a_consent_given_before_the_processors_changed_is_given_again(client):
    """The consent names those entrusted with the data: when the cooperative's list changes, it covers other
    processing and is asked for again (the package is refused until then)."""
    import json

    from portal.cooperatives.tables import Cooperative

    key = Key()
    await register(client, key)
    await fill_application(client)
    await give_consent(client, key)
    processors = [{"name": "ООО «Хостинг»", "address": "г. Москва, ул. Серверная, д. 1", "purpose": "хостинг"}]
    await Cooperative.update({Cooperative.processors: json.dumps(processors, ensure_ascii=False)}).where(
        Cooperative.is_operator == True)  # noqa: E712
    page = (await client.get("/cabinet/sign")).text
    assert "Дайте согласие заново" in page
    png = signature_png()
    nonce, hashes = await sign_page(client)
    r = await post_signature(client, signed_fields(key, nonce, hashes, png), png)
    assert r.status_code == 422 and "Сначала дайте согласие" in r.text
    await give_consent(client, key, png)
    nonce, hashes = await sign_page(client)
    r = await post_signature(client, signed_fields(key, nonce, hashes, png), png)
    assert r.status_code == 303, r.text
    consents = await Document.select().where(Document.package == CONSENT).order_by(Document.id)
    assert attached_document(consents[-1]["pdf"])["data"]["cooperative"]["processors"] == processors


async def test_a_member_registered_before_the_offer_accepts_it_before_signing(client):
    from portal.audit.tables import AuditEvent

    key = Key()
    await register(client, key)
    await fill_application(client)
    await PepAcceptance.delete(force=True)  # registered before acceptance was asked for
    page = (await client.get("/cabinet/sign")).text
    assert 'action="/cabinet/offer"' in page and 'src="/cabinet/offer"' in page
    assert page.index('action="/cabinet/offer"') < page.index('id="consent"')
    assert re.search(r'<button class="button" type="submit" disabled>Дать согласие', page)
    # Nothing can be signed before.
    r = await post_consent(client, key, signature_png())
    assert r.status_code == 422 and "Сначала примите условия оферты" in r.text.split('id="consent-error">')[1]
    assert await Document.count() == 0
    shown = {k: v for k, v in offer_fields(page).items() if k != "pep_offer"}
    r = await post_form(client, "/cabinet/offer", shown)
    assert r.status_code == 422 and "Примите условия оферты" in r.text.split('id="err-pep_offer"')[1]
    assert await PepAcceptance.count() == 0
    # The same check of what the page showed: another text, other values of the cooperative — refused.
    r = await post_form(client, "/cabinet/offer", {**shown, "pep_offer": "on", "offer_sha256": "0" * 64})
    assert r.status_code == 422 and "Текст оферты обновился" in r.text.split('id="err-pep_offer"')[1]
    await Cooperative.update({Cooperative.phone: "+74950000000"}).where(Cooperative.is_operator == True)  # noqa: E712
    r = await post_form(client, "/cabinet/offer", {**shown, "pep_offer": "on"})
    assert r.status_code == 422 and "Реквизиты кооператива" in r.text.split('id="err-pep_offer"')[1]
    assert await PepAcceptance.count() == 0
    page = r.text
    r = await client.post("/cabinet/offer", data={**offer_fields(page), "_csrf_token": await csrf_token(client)},
                          headers={"User-Agent": "OldMember/1.0"})
    assert r.status_code == 303 and r.headers["location"] == "/cabinet/sign#consent"
    [row] = await PepAcceptance.select()
    assert row["ip"] == "127.0.0.1" and row["user_agent"] == "OldMember/1.0"
    assert await AuditEvent.count().where(AuditEvent.action == "member.pep_offer_accepted") == 2
    await give_consent(client, key)
    nonce, hashes = await sign_page(client)
    png = signature_png()
    r = await post_signature(client, signed_fields(key, nonce, hashes, png), png)
    assert r.status_code == 303, r.text
    for d in await Document.select().where(Document.package != "invoice"):  # the signed documents
        assert attached_document(d["pdf"])["data"]["pep_offer"]["user_agent"] == "OldMember/1.0"
        # The signature sheet prints the acceptance (its browser differs from the one that signed).
        text = subprocess.run(["pdftotext", "-", "-"], input=d["pdf"], capture_output=True, check=True).stdout
        assert "OldMember/1.0" in " ".join(text.decode().split()), d["template_id"]


def test_drafts_saved_before_the_fields_were_split_keep_what_was_typed():
    from portal.applications.service import draft_of

    draft = draft_of({"draft": {"passport": "4510 123456", "rep_poa_number_date": "№ 12 от 5.01.2025"}})
    assert (draft["passport_series"], draft["passport_number"]) == ("4510", "123456")
    assert (draft["rep_poa_number"], draft["rep_poa_date"]) == ("12", "2025-01-05")
    # What was typed in the new fields wins.
    draft = draft_of({"draft": {"passport": "4510 123456", "passport_series": "6510", "passport_number": ""}})
    assert (draft["passport_series"], draft["passport_number"]) == ("6510", "")


async def test_acceptances_of_links_that_expired_or_were_used_are_cleaned_up(client):
    """The worker's housekeeping deletes pending acceptances whose link can no longer register anyone."""
    from portal.accounts.offer import delete_stale_pending
    from portal.accounts.tables import PepAcceptancePending
    from portal.connect.tables import RegistrationLink

    first = await invite(client, "first@example.org", "7707083893")
    second = await invite(client, "second@example.org", "7736050003")
    for token in (first, second):
        assert (await accept_offer(client, token)).status_code == 303
    assert await delete_stale_pending() == 0  # both links still work: nothing to clean
    link = await PepAcceptancePending.select(PepAcceptancePending.registration_link).where(
        PepAcceptancePending.email == "first@example.org").first()
    await RegistrationLink.update({RegistrationLink.expires_at: dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc)}).where(
        RegistrationLink.id == link["registration_link"])
    assert await delete_stale_pending() == 1
    left = await PepAcceptancePending.select(PepAcceptancePending.email)
    assert [row["email"] for row in left] == ["second@example.org"]
