"""J6 over HTTP, on SQLite and PostgreSQL: the installation wizard on the cooperative's own domain — the
installation key (a file or pasted key, and the signing hop through the operator's cabinet), the council, the
invitations and their statuses. The cooperative is made the way the journey makes it: an admitted member signs
the connection agreement for rassvet.localhost, staff approve it, the background worker provisions the site."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import re
from urllib.parse import quote, urlsplit

import httpx
import pytest

from portal.accounts.tables import Member, MemberKey
from portal.clock import now
from portal.connection.background import tick
from portal.connection.tables import Connection
from portal.cooperatives.tables import Cooperative
from portal.installation import service
from portal.installation.tables import CouncilMember, Installation, Invitation
from portal.mail.service import unpack_body
from portal.mail.tables import OutboxMessage
from tests.conftest import make_settings, post_form
from tests.factories import MemberKey as Key, form_value
from tests.integration.test_admissions import as_member, as_staff
from tests.integration.test_connection_agreement import VALID, sign_current_draft
from tests.support.members import admitted_member

DOMAIN = "rassvet.localhost"
CHAIR = {"role": "chairman", "last_name": "Иванова", "first_name": "Мария", "patronymic": "Петровна",
         "birth_date": "1980-03-05", "email": "maria@rassvet.example", "phone": "+7 912 345-67-89"}
PETROV = {"role": "member", "last_name": "Петров", "first_name": "Пётр", "patronymic": "",
          "birth_date": "12.07.1975", "email": "petrov@rassvet.example", "phone": "8 (900) 111-22-33"}
SIDOROVA = {"role": "member", "last_name": "Сидорова", "first_name": "Анна", "patronymic": "Ильинична",
            "birth_date": "1990-01-31", "email": "anna@rassvet.example", "phone": "+79001112244"}


def site_client(client: httpx.AsyncClient, host: str = DOMAIN, scheme: str = "http") -> httpx.AsyncClient:
    """A browser on the cooperative's site: the same app, its own cookies (of that host)."""
    return httpx.AsyncClient(transport=client._transport, base_url=f"{scheme}://{host}")


async def provisioned(client: httpx.AsyncClient, domain: str = DOMAIN) -> tuple[dict, dict]:
    """The representative (logged in on ``client`` on the operator's site) and the cooperative whose site the
    worker provisioned on ``domain`` (a .localhost name resolves to this machine, so it is delegated at once)."""
    member = await admitted_member(client)
    assert (await post_form(client, "/cabinet/connection", {**VALID, "domain": domain})).status_code == 303
    assert (await sign_current_draft(client, member)).status_code == 303
    row = await Connection.select().where(Connection.status == "signed").first()
    await as_staff(client)
    assert (await post_form(client, f"/staff/connections/{row['id']}/approve", {})).status_code == 303
    await tick(client._transport.app.state.settings)
    cooperative = await Cooperative.select().where(Cooperative.domain == domain).first()
    assert cooperative is not None and cooperative["status"] == "installing"
    as_member(client, member)
    return member, cooperative


@pytest.fixture
async def rassvet(client):
    member, cooperative = await provisioned(client)
    async with site_client(client) as site:
        yield {"member": member, "cooperative": cooperative, "site": site}


def key_message(nonce: str, domain: str = DOMAIN) -> str:
    return f"coopinstall:v1:{domain}:{nonce}"


async def key_page_nonce(site) -> str:
    page = await site.get("/install/key")
    assert page.status_code == 200, page.text
    return form_value(page.text, "nonce")


async def prove(site, key: Key, *, domain: str = DOMAIN, public_key: str | None = None):
    nonce = await key_page_nonce(site)
    return await post_form(site, "/install/key", {"nonce": nonce, "signature": key.sign(key_message(nonce, domain)),
                                                  "public_key": key.public_b64 if public_key is None else public_key})


def field_errors(html: str) -> dict[str, str]:
    return {name: " ".join(text.split()) for name, text in
            re.findall(r'<p class="field-error" id="err-([a-z_]+)"[^>]*>([^<]+)</p>', html)}


async def installation_row(cooperative: dict) -> dict:
    return await Installation.select().where(Installation.cooperative == cooperative["id"]).first()


async def test_the_wizard_starts_at_the_key_and_the_right_key_opens_the_council(rassvet):
    site, member, cooperative = rassvet["site"], rassvet["member"], rassvet["cooperative"]
    r = await site.get("/install")
    assert r.status_code == 303 and r.headers["location"] == "/install/key"
    installation = await installation_row(cooperative)
    assert installation["status"] == "key" and installation["representative"] == member["id"]
    assert installation["connection"] == (await service.connection_of(cooperative["id"]))["id"]
    page = await site.get("/install/key")
    assert "Ключ установки" in page.text and 'data-message="coopinstall:v1:rassvet.localhost:' in page.text
    for step in ("/install/council", "/install/invitations"):  # closed before the key
        r = await site.get(step)
        assert r.status_code == 303 and r.headers["location"] == "/install/key"

    r = await prove(site, member["key"])
    assert r.status_code == 303 and r.headers["location"] == "/install/council"
    installation = await installation_row(cooperative)
    assert installation["status"] == "council" and installation["key_proved_at"] is not None
    assert (await site.get("/install/council")).status_code == 200
    assert (await site.get("/install")).headers["location"] == "/install/council"
    assert await Installation.count().where(Installation.cooperative == cooperative["id"]) == 1

    # Another browser has not proved anything; the representative proves again and stays at the council.
    async with httpx.AsyncClient(transport=site._transport, base_url=f"http://{DOMAIN}") as other:
        assert (await other.get("/install/council")).headers["location"] == "/install/key"
        assert (await prove(other, member["key"])).headers["location"] == "/install/council"
    assert (await installation_row(cooperative))["status"] == "council"


async def test_a_wrong_key_is_refused_with_its_message_and_the_tries_are_limited(rassvet):
    site, member, cooperative = rassvet["site"], rassvet["member"], rassvet["cooperative"]
    stranger = Key()
    r = await prove(site, stranger)
    assert r.status_code == 422
    assert field_errors(r.text)["key"].startswith("Ключ не подходит: установку подтверждает ключ пайщика")
    r = await prove(site, stranger, public_key="")  # no public key said: every key of the representative tried
    assert r.status_code == 422 and "Ключ не подходит" in r.text
    # The representative's key, but the signature of another domain's challenge: it does not verify here.
    r = await prove(site, member["key"], domain="zarya.localhost")
    assert r.status_code == 422 and "Подпись не сошлась с ключом" in r.text
    # A challenge used once (or never given to this browser) is refused.
    nonce = await key_page_nonce(site)
    fields = {"nonce": nonce, "public_key": member["key"].public_b64,
              "signature": stranger.sign(key_message(nonce))}
    assert (await post_form(site, "/install/key", fields)).status_code == 422
    fields["signature"] = member["key"].sign(key_message(nonce))
    r = await post_form(site, "/install/key", fields)
    assert r.status_code == 422 and "Страница устарела" in r.text
    assert (await installation_row(cooperative))["status"] == "key"

    statuses = [(await prove(site, stranger)).status_code for _ in range(8)]
    assert statuses[:5] == [422] * 5 and statuses[-1] == 429
    r = await prove(site, member["key"])
    assert r.status_code == 429 and "Слишком много попыток" in r.text
    assert (await installation_row(cooperative))["status"] == "key"


async def test_the_hop_signs_this_domains_challenge_for_the_representative_only(rassvet, client):
    site, member, cooperative = rassvet["site"], rassvet["member"], rassvet["cooperative"]
    page = await site.get("/install/key")
    hop = re.search(r'id="operator-hop" href="([^"]+)"', page.text).group(1)
    nonce = form_value(page.text, "nonce")
    assert hop == f"http://testserver.local/cabinet/install-hop/{DOMAIN}/{nonce}"
    path = urlsplit(hop).path

    # Not on the cooperative's host; on the operator's, only for a logged-in member.
    assert (await site.get(path)).status_code == 404
    async with httpx.AsyncClient(transport=client._transport, base_url="http://testserver.local") as anonymous:
        r = await anonymous.get(path)
        assert r.status_code == 303 and r.headers["location"].startswith("/login?next=/cabinet/install-hop/")

    r = await client.get(path)
    assert r.status_code == 200
    assert 'id="hop-domain">rassvet.localhost<' in r.text and cooperative["name_short"] in r.text
    assert f'data-message="coopinstall:v1:{DOMAIN}:{nonce}"' in r.text
    assert "form-action 'self' http://rassvet.localhost;" in r.headers["content-security-policy"]

    # A wrong key is refused here, before anything goes back.
    r = await post_form(client, path, {"signature": Key().sign(key_message(nonce)), "public_key": ""})
    assert r.status_code == 422 and "Ключ не подходит" in r.text and "location" not in r.headers

    signature = member["key"].sign(key_message(nonce))
    r = await post_form(client, path, {"signature": signature, "public_key": member["key"].public_b64})
    assert r.status_code == 303
    assert r.headers["location"] == f"http://{DOMAIN}/install/key?signature={quote(signature, safe='')}"
    # The domain in the address is only a lookup: the way back is the connection's own domain.
    upper = f"/cabinet/install-hop/{DOMAIN.upper()}/{nonce}"
    r = await post_form(client, upper, {"signature": signature, "public_key": member["key"].public_b64})
    assert r.status_code == 303 and r.headers["location"].startswith(f"http://{DOMAIN}/install/key?signature=")
    for elsewhere in ("evil.example", "zarya.localhost", "testserver.local"):
        r = await post_form(client, f"/cabinet/install-hop/{elsewhere}/{nonce}", {"signature": signature})
        assert r.status_code == 403 and "location" not in r.headers
        assert "только пайщик, подписавший соглашение" in r.text

    # Back on the cooperative's site: the signature alone finishes the step (the challenge is this browser's,
    # also when the page was opened again meanwhile). A signature of anything else is refused.
    await key_page_nonce(site)
    back = await site.get(f"/install/key?signature={quote(Key().sign(key_message(nonce)), safe='')}")
    r = await post_form(site, "/install/key", {"signature": form_value(back.text, "signature")})
    assert r.status_code == 422 and "Ключ не подходит" in r.text
    back = await site.get(f"/install/key?signature={quote(signature, safe='')}")
    assert back.status_code == 200 and 'data-install-hop-return' in back.text and 'name="nonce"' not in back.text
    async with site_client(client) as stranger:  # another browser: the challenge is not its own
        r = await post_form(stranger, "/install/key", {"signature": signature})
        assert r.status_code == 422
    r = await post_form(site, "/install/key", {"signature": form_value(back.text, "signature")})
    assert r.status_code == 303 and r.headers["location"] == "/install/council"
    assert (await installation_row(cooperative))["status"] == "council"
    # Used up: the hop says the request is stale now.
    r = await client.get(path)
    assert r.status_code == 200 and 'id="hop-stale"' in r.text and "data-install-key" not in r.text


async def test_the_hop_is_refused_to_a_member_who_is_not_the_representative(rassvet, client):
    site = rassvet["site"]
    nonce = await key_page_nonce(site)
    t = now()
    other = await Member.insert(Member(cooperative=rassvet["member"]["cooperative"], email="other@example.org",
                                       email_confirmed_at=t, created_at=t)).returning(Member.id)
    key = Key()
    await MemberKey.insert(MemberKey(member=other[0]["id"], public_key=key.public_b64, fingerprint="x" * 64,
                                     created_at=t))
    client.cookies.clear()
    login = await client.get("/login")
    login_nonce = form_value(login.text, "nonce")
    r = await post_form(client, "/login", {"email": "other@example.org", "nonce": login_nonce,
                                           "public_key": key.public_b64,
                                           "signature": key.sign(f"coopauth:v1:{login_nonce}")})
    assert r.status_code == 303
    path = f"/cabinet/install-hop/{DOMAIN}/{nonce}"
    r = await client.get(path)
    assert r.status_code == 403 and "только пайщик, подписавший соглашение" in r.text
    r = await post_form(client, path, {"signature": key.sign(key_message(nonce)), "public_key": key.public_b64})
    assert r.status_code == 403 and "location" not in r.headers


async def test_the_council_is_checked_at_the_field_kept_and_editable(rassvet):
    site = rassvet["site"]
    assert (await prove(site, rassvet["member"]["key"])).status_code == 303
    page = await site.get("/install/council")
    assert 'value="chairman" checked' in page.text  # the first person is the chairman by default

    bad = {"role": "chairman", "last_name": "Ivanova", "first_name": "", "patronymic": "Петр0вна",
           "birth_date": "31.02.1980", "email": "maria@", "phone": "12345"}
    r = await post_form(site, "/install/council", bad)
    assert r.status_code == 422
    errors = field_errors(r.text)
    assert set(errors) == {"last_name", "first_name", "patronymic", "birth_date", "email", "phone"}
    assert "русскими буквами" in errors["last_name"] and "не заполнено" in errors["first_name"]
    assert "Такой даты не бывает" in errors["birth_date"] and "name@example.ru" in errors["email"]
    assert "10 цифр" in errors["phone"] and "data-error-summary" in r.text
    assert 'value="Ivanova"' in r.text and 'value="maria@"' in r.text and 'value="31.02.1980"' in r.text
    assert await CouncilMember.count() == 0

    young = (now() - dt.timedelta(days=365 * 16)).date().isoformat()
    r = await post_form(site, "/install/council", {**CHAIR, "birth_date": young})
    assert r.status_code == 422 and "совершеннолетним" in field_errors(r.text)["birth_date"]

    r = await post_form(site, "/install/council", CHAIR)
    assert r.status_code == 303 and r.headers["location"].startswith("/install/council")
    r = await post_form(site, "/install/council", {**PETROV, "email": "MARIA@rassvet.example"}, htmx=True)
    assert r.status_code == 422 and "<html" not in r.text
    assert "уже указан у другого члена совета" in field_errors(r.text)["email"]
    r = await post_form(site, "/install/council", PETROV, htmx=True)
    assert r.status_code == 200 and 'id="council-list"' in r.text and "<html" not in r.text
    rows = await CouncilMember.select().order_by(CouncilMember.position)
    assert [(p["last_name"], p["role"], p["phone"], p["birth_date"]) for p in rows] == [
        ("Иванова", "chairman", "+79123456789", "1980-03-05"), ("Петров", "member", "+79001112233", "1975-07-12")]
    petrov = rows[1]

    # Change: the edit page, errors there, then saved; a new chairman makes the previous one a member.
    r = await site.get(f"/install/council/{petrov['id']}")
    assert r.status_code == 200 and 'value="petrov@rassvet.example"' in r.text
    r = await post_form(site, f"/install/council/{petrov['id']}", {**PETROV, "email": "maria@rassvet.example"})
    assert r.status_code == 422 and "уже указан" in field_errors(r.text)["email"]
    r = await post_form(site, f"/install/council/{petrov['id']}", {**PETROV, "role": "chairman",
                                                                    "first_name": "Павел"})
    assert r.status_code == 303
    rows = await CouncilMember.select().order_by(CouncilMember.position)
    assert [(p["first_name"], p["role"]) for p in rows] == [("Павел", "chairman"), ("Мария", "member")]
    # Remove.
    r = await post_form(site, f"/install/council/{rows[1]['id']}/delete", {})
    assert r.status_code == 303
    assert [p["last_name"] for p in await CouncilMember.select()] == ["Петров"]
    assert (await site.get("/install/council/999999")).status_code == 404


async def test_dev_needs_one_person_and_the_invitations_go_out_by_mail(rassvet):
    site, cooperative = rassvet["site"], rassvet["cooperative"]
    assert (await prove(site, rassvet["member"]["key"])).status_code == 303
    r = await site.get("/install/invitations")
    assert "Добавьте хотя бы одного члена совета" in r.text
    r = await post_form(site, "/install/invitations", {})
    assert r.status_code == 422 and "Добавьте хотя бы одного члена совета" in r.text
    await post_form(site, "/install/council", PETROV)  # a member, no chairman
    r = await post_form(site, "/install/invitations", {})
    assert r.status_code == 422 and "Укажите председателя совета" in r.text
    await post_form(site, "/install/council", CHAIR)
    await post_form(site, "/install/council", SIDOROVA)
    r = await post_form(site, "/install/invitations", {})
    assert r.status_code == 303

    installation = await installation_row(cooperative)
    assert installation["status"] == "invited" and installation["invitations_sent_at"] is not None
    tokens = {}
    for person in (CHAIR, PETROV, SIDOROVA):
        mails = await OutboxMessage.select().where(OutboxMessage.to_addr == person["email"])
        assert len(mails) == 1
        body, secrets = unpack_body(mails[0]["body_text"])
        link = re.search(r"http://\S+", body).group(0)
        assert link.startswith(f"http://{DOMAIN}/install/invite/")
        token = link.rsplit("/", 1)[1]
        assert secrets == [token] and cooperative["name_short"] in mails[0]["subject"]
        assert "Положение о простой электронной подписи" in body
        tokens[person["email"]] = token
    chair_mail = (await OutboxMessage.select().where(OutboxMessage.to_addr == CHAIR["email"]).first())
    assert "Здравствуйте, Мария Петровна!" in chair_mail["body_text"]
    assert "председателя совета" in chair_mail["body_text"]
    invitations = await Invitation.select()
    assert len(invitations) == 3
    stored = {i["token_hash"] for i in invitations}
    assert stored == {hashlib.sha256(t.encode()).hexdigest() for t in tokens.values()}
    for invitation in invitations:
        assert not any(t in str(invitation) for t in tokens.values())  # only the hash is kept
        assert dt.timedelta(hours=23, minutes=59) < invitation["expires_at"] - invitation["created_at"] \
            <= dt.timedelta(hours=24)

    # Sent once; the council is frozen now.
    assert (await post_form(site, "/install/invitations", {})).status_code == 422
    assert await OutboxMessage.count().where(OutboxMessage.to_addr == CHAIR["email"]) == 1
    r = await post_form(site, "/install/council", {**CHAIR, "email": "late@rassvet.example"})
    assert r.status_code == 409 and "состав совета больше не меняется" in r.text
    assert await CouncilMember.count() == 3
    assert (await site.get("/install")).headers["location"] == "/install/invitations"


async def test_statuses_resend_and_the_links_for_the_invitation_page(rassvet, client):
    site, cooperative = rassvet["site"], rassvet["cooperative"]
    assert (await prove(site, rassvet["member"]["key"])).status_code == 303
    for person in (CHAIR, PETROV):
        await post_form(site, "/install/council", person)
    assert (await post_form(site, "/install/invitations", {})).status_code == 303
    installation = await installation_row(cooperative)
    chair, petrov = await CouncilMember.select().order_by(CouncilMember.position)

    def token_of(mail: dict) -> str:
        return re.search(r"/install/invite/(\S+)", unpack_body(mail["body_text"])[0]).group(1)

    first = token_of(await OutboxMessage.select().where(OutboxMessage.to_addr == PETROV["email"]).first())
    state, found = await service.invitation_for_token(first)
    assert state == "valid" and found["council_member"]["id"] == petrov["id"]
    assert found["installation"]["id"] == installation["id"] and found["invitation"]["used_at"] is None
    assert (await service.invitation_for_token(first, cooperative_id=cooperative["id"]))[0] == "valid"
    assert (await service.invitation_for_token(first, cooperative_id=cooperative["id"] + 1000)) == ("unknown", None)
    assert await service.invitation_for_token("no-such-token") == ("unknown", None)

    page = await site.get("/install/invitations")
    assert page.status_code == 200 and 'hx-get="/install/invitations/status"' in page.text
    polled = await site.get("/install/invitations/status", headers={"HX-Request": "true"})
    assert polled.status_code == 200 and "<html" not in polled.text
    assert re.findall(r'data-status="\d+">([^<]+)<', polled.text) == ["приглашён", "приглашён"]

    # «Отправить ещё раз»: the old link is voided, the new one works once.
    r = await post_form(site, f"/install/invitations/{petrov['id']}/resend", {}, htmx=True)
    assert r.status_code == 200 and "<html" not in r.text
    mails = await OutboxMessage.select().where(OutboxMessage.to_addr == PETROV["email"]).order_by(OutboxMessage.id)
    assert len(mails) == 2
    second = token_of(mails[1])
    assert second != first
    assert (await service.invitation_for_token(first))[0] == "voided"
    assert await service.use_invitation(first) is None
    assert (await service.invitation_for_token(second))[0] == "valid"

    # An expired link is said so, and can be sent again.
    chair_token = token_of(await OutboxMessage.select().where(OutboxMessage.to_addr == CHAIR["email"]).first())
    await Invitation.update({Invitation.expires_at: now() - dt.timedelta(minutes=1)}).where(
        Invitation.token_hash == hashlib.sha256(chair_token.encode()).hexdigest())
    assert (await service.invitation_for_token(chair_token))[0] == "expired"
    assert await service.use_invitation(chair_token) is None

    # Petrov accepts with the new link (his key: a member of the cooperative), then signs the regulations.
    from tests.integration.test_council_signing import join_council, sign_package

    person = {"token": second, "name": "Петров Пётр", "email": PETROV["email"], "key": Key()}
    async with site_client(client) as petrov_browser:
        await join_council(petrov_browser, person)
        labels = [(p["full_name"], p["status_label"]) for p in await service.council_of(installation["id"])]
        assert labels == [("Иванова Мария Петровна", "ссылка истекла"), ("Петров Пётр", "ключ получен")]
        await sign_package(petrov_browser, person, seed=3)
    assert (await service.invitation_for_token(second))[0] == "used"  # used up by accepting it
    assert await service.use_invitation(second) is None
    polled = await site.get("/install/invitations/status", headers={"HX-Request": "true"})
    assert re.findall(r'data-status="\d+">([^<]+)<', polled.text) == ["ссылка истекла", "подписано 4 из 4"]
    assert f"/install/invitations/{chair['id']}/resend" in polled.text
    assert f"/install/invitations/{petrov['id']}/resend" not in polled.text  # accepted: no new link
    r = await post_form(site, f"/install/invitations/{petrov['id']}/resend", {})
    assert r.status_code == 409 and "уже принял" in r.text
    r = await post_form(site, f"/install/invitations/{chair['id']}/resend", {})
    assert r.status_code == 303
    polled = await site.get("/install/invitations/status", headers={"HX-Request": "true"})
    assert re.findall(r'data-status="\d+">([^<]+)<', polled.text) == ["приглашён", "подписано 4 из 4"]
    # The new link of the chairman: used once, whoever comes at the same moment.
    mails = await OutboxMessage.select().where(OutboxMessage.to_addr == CHAIR["email"]).order_by(OutboxMessage.id)
    latest = token_of(mails[-1])
    results = await asyncio.gather(*(service.use_invitation(latest) for _ in range(4)))
    assert len([r for r in results if r is not None]) == 1


async def test_the_wizard_is_not_on_the_operators_host_nor_on_another_cooperatives(rassvet, client):
    site, cooperative = rassvet["site"], rassvet["cooperative"]
    assert (await prove(site, rassvet["member"]["key"])).status_code == 303
    await post_form(site, "/install/council", CHAIR)
    for path in ("/install", "/install/key", "/install/council", "/install/invitations"):
        r = await client.get(path)
        assert r.status_code == 404, path

    # Another cooperative's site (its own connection, the same representative): its wizard is its own.
    t = now()
    zarya = await Cooperative.insert(Cooperative(name_full="Потребительский кооператив «Заря»",
                                                 name_short="ПК «Заря»", inn="5024002119", domain="zarya.localhost",
                                                 status="installing", created_at=t)).returning(Cooperative.id)
    connection = await service.connection_of(cooperative["id"])
    await Connection.insert(Connection(**{**{k: v for k, v in connection.items() if k != "id"},
                                          "domain": "zarya.localhost", "cooperative": zarya[0]["id"],
                                          "document": None, "approved_document": None}))
    async with site_client(client, "zarya.localhost") as other:
        # even with the rassvet session's cookie
        other.cookies.set("portal_session", site.cookies["portal_session"], domain="zarya.localhost")
        r = await other.get("/install/council")
        assert r.status_code == 303 and r.headers["location"] == "/install/key"
        # rassvet's signature is no key for zarya
        nonce = await key_page_nonce(other)
        r = await post_form(other, "/install/key", {"nonce": nonce, "public_key": "",
                                                    "signature": rassvet["member"]["key"].sign(key_message(nonce))})
        assert r.status_code == 422
        assert "Иванова" not in r.text
    # A site with no connection has no wizard.
    await Cooperative.insert(Cooperative(name_full="ПК «Утро»", name_short="ПК «Утро»", inn="7736207543",
                                         domain="utro.localhost", status="installing", created_at=t))
    async with site_client(client, "utro.localhost") as utro:
        assert (await utro.get("/install")).status_code == 404
        assert (await utro.get("/install/key")).status_code == 404


async def test_an_active_cooperative_says_it_is_installed(rassvet):
    site, cooperative = rassvet["site"], rassvet["cooperative"]
    await Cooperative.update({Cooperative.status: "active"}).where(Cooperative.id == cooperative["id"])
    r = await site.get("/install")
    assert r.status_code == 200 and "Установка завершена" in r.text
    assert (await site.get("/install/key")).headers["location"] == "/install"
    assert (await site.get("/install/invitations")).headers["location"] == "/install"
    polled = await site.get("/install/invitations/status", headers={"HX-Request": "true"})
    assert polled.status_code == 200 and polled.headers["hx-redirect"] == "/install"  # the polling ends there


async def test_production_needs_a_chairman_and_two_members(client, settings, tmp_path):
    """The same database served in production mode (HTTPS): two people are not a council, three are."""
    member, cooperative = await provisioned(client)
    prod = make_settings(settings.data_dir, settings.database_url, PORTAL_ENV="production",
                         PORTAL_BASE_URL="https://testserver.local")
    from portal.app import create_app

    app = create_app(prod, run_mail_sender=False)
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50001))
    async with httpx.AsyncClient(transport=transport, base_url=f"https://{DOMAIN}") as site:
        assert (await prove(site, member["key"])).status_code == 303
        page = await site.get("/install/council")
        assert "не меньше двух членов" in page.text
        await post_form(site, "/install/council", CHAIR)
        await post_form(site, "/install/council", PETROV)
        r = await post_form(site, "/install/invitations", {})
        assert r.status_code == 422 and "не меньше 3 человек" in r.text
        assert (await post_form(site, "/install/council", SIDOROVA)).status_code == 303
        assert (await post_form(site, "/install/invitations", {})).status_code == 303
        mail = await OutboxMessage.select().where(OutboxMessage.to_addr == CHAIR["email"]).first()
        assert f"https://{DOMAIN}/install/invite/" in unpack_body(mail["body_text"])[0]
