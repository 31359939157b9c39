"""J7 over HTTP on the cooperative's own site (rassvet.localhost), on SQLite and on PostgreSQL: the council members
come by their invitations (a reused, expired or voided one refused), accept this cooperative's ПЭП offer, make
their keys and sign the four regulations as one package, each from their own cookie jar; every signature re-issues
every regulation's PDF with the signatures so far and the names still missing, sealed by the cooperative's own
seal that the operator's one fingerprint verifies; the last signature activates the cooperative once, with the
mails. A forged signature stores nothing; a member of another cooperative reaches none of these documents."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import secrets
import subprocess
from contextlib import asynccontextmanager

import httpx
import pytest

from portal.accounts.tables import Member, PepAcceptance
from portal.clock import now
from portal.connection import provision
from portal.connection.background import tick
from portal.cooperatives.tables import Cooperative
from portal.documents.seal import check_seal
from portal.documents.store import operator_certificate_sha256
from portal.documents.tables import Document, Signature
from portal.documents.verify import verify_pdf
from portal.installation.service import REGULATIONS
from portal.installation.tables import CouncilMember, Installation, Invitation
from portal.mail.service import unpack_body
from portal.mail.tables import OutboxMessage
from tests.conftest import csrf_token
from tests.factories import MemberKey as Key
from tests.factories import form_value, signature_png
from tests.integration.test_provisioning import make_connection, settings_of
from tests.support.members import admitted_member
from tests.unit.test_pdfa import findings

DOMAIN = "rassvet.localhost"
COUNCIL = [
    ("chairman", "Петров", "Пётр", "Петрович", "petrov@rassvet.example"),
    ("member", "Сидорова", "Анна", "Ивановна", "sidorova@rassvet.example"),
    ("member", "Кузнецов", "Илья", "", "kuznetsov@rassvet.example"),
]


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def invitation(person_id: int, **values) -> str:
    token = secrets.token_urlsafe(32)
    t = now()
    await Invitation.insert(Invitation(council_member=person_id, token_hash=token_hash(token),
                                       expires_at=t + dt.timedelta(hours=24), created_at=t, **values))
    return token


async def provisioned(client, domain: str = DOMAIN, email: str = "chair@rassvet.example", inn: str = "7707083893",
                      council: list[tuple] = COUNCIL) -> dict:
    """The representative's cooperative provisioned on rassvet.localhost, its installation with the invitations
    out (made here directly: the wizard is tested on its own), one token per council member."""
    representative = await admitted_member(client, email=email, inn=inn, application={"inn": inn})
    settings = settings_of(client)
    connection_id = await make_connection(representative, domain)
    await provision.enqueue(settings, connection_id)
    await tick(settings)
    cooperative = await Cooperative.select().where(Cooperative.domain == domain).first()
    assert cooperative is not None and cooperative["status"] != "active"
    t = now()
    rows = await Installation.insert(Installation(
        cooperative=cooperative["id"], connection=connection_id, representative=representative["id"],
        status="invited", key_proved_at=t, invitations_sent_at=t, created_at=t, updated_at=t)).returning(
        Installation.id)
    installation_id = rows[0]["id"]
    people = []
    for position, (role, last, first, patronymic, email) in enumerate(council):
        rows = await CouncilMember.insert(CouncilMember(
            installation=installation_id, position=position, role=role, last_name=last, first_name=first,
            patronymic=patronymic, birth_date="1980-05-17", email=email, phone="+79123456789", created_at=t,
        )).returning(CouncilMember.id)
        people.append({"id": rows[0]["id"], "email": email, "name": " ".join(p for p in (last, first, patronymic) if p),
                       "token": await invitation(rows[0]["id"]), "key": Key()})
    return {"representative": representative, "cooperative": cooperative, "installation": installation_id,
            "people": people, "settings": settings}


@asynccontextmanager
async def browser(client, domain: str = DOMAIN):
    """A separate cookie jar on the cooperative's site, as another person's browser."""
    async with httpx.AsyncClient(transport=client._transport, base_url=f"http://{domain}") as other:
        yield other


async def accept_offer(jar, token: str):
    page = (await jar.get(f"/install/invite/{token}")).text
    return await jar.post(f"/install/invite/{token}/offer", data={
        "pep_offer": "on", "offer_sha256": form_value(page, "offer_sha256"),
        "offer_context_sha256": form_value(page, "offer_context_sha256"),
        "_csrf_token": await csrf_token(jar, f"/install/invite/{token}")})


async def make_key(jar, person: dict, *, saved: bool = True):
    key = person["key"]
    fields = {"public_key": key.public_b64, "key_proof": key.proof(person["email"])}
    if saved:
        fields["saved"] = "on"
    return await jar.post(f"/install/invite/{person['token']}", data={
        **fields, "_csrf_token": await csrf_token(jar, f"/install/invite/{person['token']}")})


async def join_council(jar, person: dict) -> None:
    r = await jar.get(f"/install/invite/{person['token']}")
    assert r.status_code == 200 and person["name"] in r.text, r.text
    assert 'data-action="create-key" disabled' in r.text  # the key only after the offer
    r = await make_key(jar, person)
    assert r.status_code == 422 and "Примите оферту" in r.text
    r = await accept_offer(jar, person["token"])
    assert r.status_code == 303, r.text
    page = (await jar.get(f"/install/invite/{person['token']}")).text
    assert 'id="offer-accepted"' in page and 'data-action="create-key" disabled' not in page
    r = await make_key(jar, person)
    assert r.status_code == 303 and r.headers["location"] == "/install/regulations", r.text


def package_fields(page: str, key: Key, png: bytes) -> dict[str, str]:
    image_hash = hashlib.sha256(png).hexdigest()
    fields = {}
    for template_id in REGULATIONS:
        doc_hash = form_value(page, f"hash_{template_id}")
        fields[f"hash_{template_id}"] = doc_hash
        fields[f"sig_{template_id}"] = key.sign(f"coopdoc:v1:{doc_hash}:{image_hash}")
    return fields


async def post_package(jar, fields: dict[str, str], png: bytes):
    return await jar.post("/install/regulations", data={**fields, "_csrf_token": await csrf_token(jar)},
                          files={"signature_png": ("signature.png", png, "image/png")})


async def sign_package(jar, person: dict, seed: int) -> None:
    page = await jar.get("/install/regulations")
    assert page.status_code == 200 and "Подписать" in page.text, page.text
    png = signature_png(seed=seed)
    r = await post_package(jar, package_fields(page.text, person["key"], png), png)
    assert r.status_code == 303, r.text


async def latest_pdfs() -> dict[str, dict]:
    rows = await Document.select().where(Document.package == "regulations").order_by(Document.id)
    return {row["template_id"]: row for row in rows}


def pdf_text(pdf: bytes) -> str:
    out = subprocess.run(["pdftotext", "-layout", "-", "-"], input=bytes(pdf), capture_output=True, check=True)
    return " ".join(out.stdout.decode().split())


async def activation_mails() -> list[dict]:
    return await OutboxMessage.select().where(OutboxMessage.subject.like("%начал работу%")).order_by(
        OutboxMessage.id)


async def test_three_council_members_sign_and_the_cooperative_becomes_active(client):
    setup = await provisioned(client)
    people, settings = setup["people"], setup["settings"]
    operator_fingerprint = operator_certificate_sha256(settings)
    for n, person in enumerate(people):
        async with browser(client) as jar:
            await join_council(jar, person)
            member = await Member.select().where(Member.email == person["email"]).first()
            assert member["cooperative"] == setup["cooperative"]["id"] and member["email_confirmed_at"] is not None
            seat = await CouncilMember.select().where(CouncilMember.id == person["id"]).first()
            assert seat["member"] == member["id"]
            acceptance = await PepAcceptance.select().where(PepAcceptance.member == member["id"]).first()
            assert acceptance["cooperative"] == setup["cooperative"]["id"]
            # single use: the link now says so, and a second key cannot be made with it
            r = await jar.get(f"/install/invite/{person['token']}")
            assert r.status_code == 410 and "уже использовано" in r.text
            assert (await make_key(jar, person)).status_code == 410

            await sign_package(jar, person, seed=n + 1)
            page = (await jar.get("/install/regulations")).text
            documents = await latest_pdfs()
            assert set(documents) == set(REGULATIONS)
            assert await Document.count().where(Document.package == "regulations") == 4 * (n + 1)
            for template_id, doc in documents.items():
                assert f"/install/regulations/documents/{doc['id']}" in page
                signers = await Signature.select().where(Signature.document == doc["id"]).order_by(Signature.id)
                assert [s["email"] for s in signers] == [p["email"] for p in people[: n + 1]]
                text = pdf_text(doc["pdf"])
                for signed in people[: n + 1]:
                    assert signed["email"] in text
                missing = people[n + 1:]
                for waiting in missing:
                    assert waiting["name"] in text and waiting["email"] not in text
                assert ("ещё не подписали" in text) == bool(missing)
                download = await jar.get(f"/install/regulations/documents/{doc['id']}")
                assert download.status_code == 200 and download.content == bytes(doc["pdf"])
            installation = await Installation.select().where(Installation.id == setup["installation"]).first()
            if n < 2:
                assert installation["status"] == "invited" and not await activation_mails()

    installation = await Installation.select().where(Installation.id == setup["installation"]).first()
    assert installation["status"] == "active" and installation["activated_at"] is not None
    cooperative = await Cooperative.select().where(Cooperative.id == setup["cooperative"]["id"]).first()
    assert cooperative["status"] == "active"
    mails = await activation_mails()
    assert sorted(m["to_addr"] for m in mails) == sorted(
        [setup["representative"]["email"], settings.staff_email, *(p["email"] for p in people)])
    assert f"http://{DOMAIN}" in unpack_body(mails[0]["body_text"])[0]

    # The last state: every regulation with the three signatures, verified with the operator's fingerprint alone
    # (the seal is the cooperative's own, issued by the operator's certificate), a valid PDF/A-3b.
    hashes = set()
    for template_id, doc in (await latest_pdfs()).items():
        pdf = bytes(doc["pdf"])
        result = verify_pdf(pdf, seal_certificates=[operator_fingerprint])
        assert result.valid, (template_id, result.reason)
        assert [s.email for s in result.signers] == [p["email"] for p in people]
        seal = check_seal(pdf)
        assert seal.valid and seal.issuer_sha256 == operator_fingerprint
        assert seal.certificate_sha256 != operator_fingerprint and seal.signer_inn == cooperative["inn"]
        assert not verify_pdf(pdf, seal_certificates=["ab" * 32]).valid  # another fingerprint: refused
        assert findings(pdf) == []
        url = f"{settings.base_url}/verify?hash={doc['document_hash']}"
        assert url in pdf_text(pdf).replace(" ", "")  # the operator's /verify (the link may wrap)
        assert (await client.get(url)).status_code == 200
        document = json.loads(doc["canonical_json"])
        assert document["signer"] == {"full_name": cooperative["name_full"], "role": "Совет кооператива",
                                      "email": cooperative["email"]}
        assert [p["last_name"] for p in document["data"]["data"]["council"]] == ["Петров", "Сидорова", "Кузнецов"]
        hashes.add(doc["document_hash"])
    assert len(hashes) == 4


async def test_portal_verify_accepts_the_regulation_with_the_published_fingerprint(client, tmp_path):
    setup = await provisioned(client)
    person = setup["people"][0]
    async with browser(client) as jar:
        await join_council(jar, person)
        await sign_package(jar, person, seed=3)
    doc = (await latest_pdfs())["coop_pep_regulation"]
    path = tmp_path / "regulation.pdf"
    path.write_bytes(bytes(doc["pdf"]))
    fingerprint = operator_certificate_sha256(setup["settings"])
    import sys

    ok = subprocess.run([sys.executable, "-m", "portal", "verify", str(path), "--seal-sha256", fingerprint],
                        capture_output=True, text=True)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    refused = subprocess.run([sys.executable, "-m", "portal", "verify", str(path), "--seal-sha256", "cd" * 32],
                             capture_output=True, text=True)
    assert refused.returncode != 0


async def test_invitations_reused_expired_voided_unknown_or_of_another_site_are_refused(client):
    setup = await provisioned(client)
    person = setup["people"][0]
    expired = await invitation(person["id"])
    await Invitation.update({Invitation.expires_at: now() - dt.timedelta(minutes=1)}).where(
        Invitation.token_hash == token_hash(expired))
    voided = await invitation(person["id"], voided_at=now())
    async with browser(client) as jar:
        r = await jar.get(f"/install/invite/{expired}")
        assert r.status_code == 410 and "Срок действия приглашения истёк" in r.text
        assert (await jar.post(f"/install/invite/{expired}/offer", data={
            "pep_offer": "on", "_csrf_token": await csrf_token(jar)})).status_code == 410
        r = await jar.get(f"/install/invite/{voided}")
        assert r.status_code == 410 and "заменено новым" in r.text
        r = await jar.get("/install/invite/" + secrets.token_urlsafe(32))
        assert r.status_code == 404 and "Такого приглашения нет" in r.text
        # a valid link, reused
        await join_council(jar, person)
    async with browser(client) as other:
        r = await other.get(f"/install/invite/{person['token']}")
        assert r.status_code == 410 and "уже использовано" in r.text
    async with browser(client) as other:  # «Принять оферту» with htmx: the offer-and-key block alone comes back
        token = setup["people"][1]["token"]
        page = (await other.get(f"/install/invite/{token}")).text
        fields = {"offer_sha256": form_value(page, "offer_sha256"),
                  "offer_context_sha256": form_value(page, "offer_context_sha256"),
                  "_csrf_token": await csrf_token(other, f"/install/invite/{token}")}
        r = await other.post(f"/install/invite/{token}/offer", data=fields, headers={"HX-Request": "true"})
        assert r.status_code == 422 and "<html" not in r.text and "Отметьте «Я принимаю условия оферты»" in r.text
        r = await other.post(f"/install/invite/{token}/offer", data={**fields, "offer_sha256": "0" * 64,
                                                                     "pep_offer": "on"})
        assert r.status_code == 422 and "Текст оферты обновился" in r.text
        r = await other.post(f"/install/invite/{token}/offer", data={**fields, "pep_offer": "on"},
                             headers={"HX-Request": "true"})
        assert r.status_code == 200 and "<html" not in r.text and 'id="offer-accepted"' in r.text
        assert 'data-action="create-key" disabled' not in r.text
    async with browser(client) as other:  # an address already a member's here: refused, the link still valid
        taken = setup["people"][2]
        t = now()
        await Member.insert(Member(cooperative=setup["cooperative"]["id"], email=taken["email"],
                                   email_confirmed_at=t, created_at=t))
        assert (await accept_offer(other, taken["token"])).status_code == 303
        r = await make_key(other, taken)
        assert r.status_code == 422 and "в кооперативе уже есть" in r.text
        assert (await other.get(f"/install/invite/{taken['token']}")).status_code == 200
        assert (await CouncilMember.select().where(CouncilMember.id == taken["id"]).first())["member"] is None
        await Member.delete().where(Member.email == taken["email"])
    # the link of this cooperative is not a page of the operator's site
    r = await client.get(f"/install/invite/{setup['people'][1]['token']}")
    assert r.status_code == 404
    assert await Member.count().where(Member.cooperative == setup["cooperative"]["id"]) == 1


async def test_a_forged_signature_or_a_wrong_key_stores_nothing(client):
    setup = await provisioned(client)
    person = setup["people"][0]
    async with browser(client) as jar:
        await join_council(jar, person)
        page = (await jar.get("/install/regulations")).text
        png = signature_png(seed=5)
        fields = package_fields(page, Key(), png)  # signed by another key
        r = await post_package(jar, fields, png)
        assert r.status_code == 422 and "не сходится с вашим ключом" in r.text
        fields = package_fields(page, person["key"], png)
        fields[f"sig_{REGULATIONS[2]}"] = fields[f"sig_{REGULATIONS[1]}"]  # one signature of another document
        r = await post_package(jar, fields, png)
        assert r.status_code == 422 and "не сходится" in r.text
        r = await post_package(jar, package_fields(page, person["key"], png), signature_png(seed=6))  # other image
        assert r.status_code == 422
        assert await Document.count().where(Document.package == "regulations") == 0
        assert await Signature.count() == await Signature.count().where(
            Signature.document.is_in([d["id"] for d in await Document.select(Document.id)]))
        r = await post_package(jar, package_fields(page, person["key"], png), png)
        assert r.status_code == 303
        assert await Document.count().where(Document.package == "regulations") == 4
        r = await post_package(jar, package_fields(page, person["key"], png), png)  # twice: refused
        assert r.status_code == 422 and "уже подписали" in r.text
        assert await Document.count().where(Document.package == "regulations") == 4


async def test_a_member_of_another_cooperative_cannot_reach_the_regulations(client):
    setup = await provisioned(client)
    person = setup["people"][0]
    async with browser(client) as jar:
        await join_council(jar, person)
        await sign_package(jar, person, seed=2)
    doc = (await latest_pdfs())["coop_pd_policy"]
    representative = setup["representative"]
    # the operator's member (the representative) on the operator's site: not their document
    client.cookies.clear()
    client.cookies.update(representative["cookies"])
    r = await client.get(f"/cabinet/documents/{doc['id']}")
    assert r.status_code == 404
    # their session is of the operator's site: on the cooperative's site it opens nothing
    async with browser(client) as jar:
        for name, value in representative["cookies"].items():
            jar.cookies.set(name, value, domain=DOMAIN)
        r = await jar.get(f"/install/regulations/documents/{doc['id']}")
        assert r.status_code in (302, 303) and "/login" in r.headers["location"]
        r = await jar.get("/install/regulations")
        assert r.status_code in (302, 303)


async def test_the_last_two_sign_at_the_same_moment_activation_once(client):
    setup = await provisioned(client)
    people = setup["people"]
    jars = []
    for person in people:
        jar = httpx.AsyncClient(transport=client._transport, base_url=f"http://{DOMAIN}")
        jars.append(jar)
        await join_council(jar, person)
    try:
        await sign_package(jars[0], people[0], seed=1)
        pages = [(await jar.get("/install/regulations")).text for jar in jars[1:]]
        pngs = [signature_png(seed=7), signature_png(seed=8)]
        fields = [package_fields(page, person["key"], png) for page, person, png in zip(pages, people[1:], pngs)]
        results = await asyncio.gather(*(post_package(jar, f, png) for jar, f, png in zip(jars[1:], fields, pngs)))
        assert [r.status_code for r in results] == [303, 303], [r.text for r in results]
    finally:
        for jar in jars:
            await jar.aclose()
    for doc in (await latest_pdfs()).values():
        signers = await Signature.select(Signature.email).where(Signature.document == doc["id"])
        assert sorted(s["email"] for s in signers) == sorted(p["email"] for p in people)
        assert "ещё не подписали" not in pdf_text(doc["pdf"])
    assert len(await activation_mails()) == 5  # the representative, three council members, the staff
    installation = await Installation.select().where(Installation.id == setup["installation"]).first()
    assert installation["status"] == "active"


async def test_a_council_member_of_another_cooperative_reaches_neither_its_pages_nor_its_documents(client):
    """Two cooperatives on one portal: the council member of «Заря» signs on zarya.localhost; with that session
    neither Рассвет's site nor Рассвет's regulations (by their ids, on Заря's own site) open anything."""
    rassvet = await provisioned(client)
    async with browser(client) as jar:
        await join_council(jar, rassvet["people"][0])
        await sign_package(jar, rassvet["people"][0], seed=2)
    theirs = await latest_pdfs()
    zarya = await provisioned(client, "zarya.localhost", "chair@zarya.example", "5001007329",
                              [("chairman", "Зорин", "Олег", "", "zorin@zarya.example")])
    assert zarya["cooperative"]["id"] != rassvet["cooperative"]["id"]
    person = zarya["people"][0]
    # Рассвет's invitation is unknown on Заря's site
    async with browser(client, "zarya.localhost") as jar:
        r = await jar.get(f"/install/invite/{rassvet['people'][1]['token']}")
        assert r.status_code == 404
        await join_council(jar, person)
        r = await jar.get("/install/regulations")
        assert r.status_code == 200 and "Зорин Олег" in r.text and "Петров" not in r.text
        for doc in theirs.values():
            r = await jar.get(f"/install/regulations/documents/{doc['id']}")
            assert r.status_code == 404 and r.content != bytes(doc["pdf"])
        cookies = dict(jar.cookies)
    async with browser(client) as jar:  # the same session cookie on Рассвет's site: no session there
        for name, value in cookies.items():
            jar.cookies.set(name, value, domain=DOMAIN)
        for doc in theirs.values():
            r = await jar.get(f"/install/regulations/documents/{doc['id']}")
            assert r.status_code in (302, 303) and "/login" in r.headers["location"]
