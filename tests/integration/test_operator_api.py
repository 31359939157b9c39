"""The operator's API for self-hosted cooperatives: tokens from the cabinet, GET /api/v1/connections/{domain}, its
OpenAPI schema (issue #10, «One portal, many cooperatives»)."""

from __future__ import annotations

import hashlib
import json
from urllib.parse import quote

import idna
import pytest

from portal.accounts.tables import MemberKey
from portal.connection import api
from portal.connection.tables import ApiToken, Connection
from portal.documents.tables import Document
from tests.conftest import csrf_token
from tests.factories import ORG_APPLICATION

FEES = {"fee_entrance_org": "1 500", "fee_share_org": "2 000,50", "fee_entrance_ind": "100", "fee_share_ind": "300"}
# A passport whose numbers appear nowhere else in the application.
PASSPORT = {"rep_passport_series": "4519", "rep_passport_number": "870421"}
DESCRIPTION = "Закупаем у фермеров Вологды молоко и сыр для пайщиков."


async def signed_connection(client, *, email: str, inn: str, domain: str, hosting: str = "self",
                            application: dict | None = None) -> dict:
    """An admitted member (over HTTP) who signed a connection agreement with the connection service, the way
    «Подписать соглашение» does (draft → the document → the key's signature). Logged in on ``client``."""
    from portal.connection import service
    from portal.documents.signing import signed_message
    from tests.support.members import admitted_member

    member = await admitted_member(client, email, inn, application={"inn": inn, **(application or {})})
    settings = client._transport.app.state.settings
    values = {**FEES, "domain": domain, "hosting": hosting, "description": DESCRIPTION}
    connection, form = await service.save_draft(settings, member, values)
    assert form.valid, form.errors
    today = service.today_moscow()
    prepared = await service.prepare(settings, member, connection, form, today)
    nonce = await service.new_nonce(connection, today)
    image = await service.drawn_signature(member["id"])
    signature = member["key"].sign(signed_message(prepared.hash, image["sha256"]))
    member["connection"] = await service.sign(settings, member, nonce=nonce, hash=prepared.hash,
                                              signature=signature)
    return member


async def issue(client, *, htmx: bool = True):
    headers = {"HX-Request": "true"} if htmx else {}
    return await client.post("/cabinet/connection/tokens", data={"_csrf_token": await csrf_token(client)},
                             headers=headers)


def token_in(html: str) -> str:
    import re

    found = re.search(r'id="api-token-value"[^>]*value="([^"]+)"', html)
    assert found, html
    return found.group(1)


async def test_a_token_is_shown_once_and_stored_as_its_hash(client):
    member = await signed_connection(client, email="coop@example.org", inn="7707083893", domain="rassvet.example.ru")
    r = await issue(client)
    assert r.status_code == 200
    assert "<html" not in r.text and 'id="api-tokens"' in r.text  # htmx gets the section alone
    token = token_in(r.text)
    assert token.startswith("vsk_") and len(token) > 40
    assert "показывается один раз" in r.text
    # The docker command: the operator's address, the token, the cooperative's own https address, /data.
    assert "PORTAL_OPERATOR_URL=http://testserver.local" in r.text
    assert f"PORTAL_OPERATOR_TOKEN={token}" in r.text
    assert "PORTAL_BASE_URL=https://rassvet.example.ru" in r.text
    assert "-v portal-data:/data" in r.text and "-p 8000:8000" in r.text and "PORTAL_SECRET_KEY=" in r.text

    rows = await ApiToken.select().where(ApiToken.member == member["id"])
    assert len(rows) == 1
    row = rows[0]
    assert row["token_sha256"] == hashlib.sha256(token.encode()).hexdigest()
    assert row["prefix"] == token[:12] and row["revoked_at"] is None and row["last_used_at"] is None
    assert token not in json.dumps(row, default=str)

    # Shown once: the cabinet lists it by its prefix from now on, never the whole token.
    page = await client.get("/cabinet/connection")
    assert page.status_code == 200
    assert token not in page.text and f"{token[:12]}…" in page.text

    # Without htmx (a plain form POST) the answer is a whole page that shows the new token.
    r = await issue(client, htmx=False)
    assert r.status_code == 200 and "<html" in r.text and "← Подключение" in r.text
    second = token_in(r.text)
    assert second != token
    assert await ApiToken.count().where(ApiToken.member == member["id"]) == 2


async def test_no_token_without_a_self_hosted_agreement(client):
    await signed_connection(client, email="hosted@example.org", inn="7707083893", domain="hosted.example.ru",
                            hosting="hosted")
    r = await issue(client)
    assert r.status_code == 422
    assert api.NOT_SELF_HOSTED in r.text and 'id="api-token-value"' not in r.text
    assert await ApiToken.count() == 0
    page = await client.get("/cabinet/connection")
    assert "Выпустить токен" not in page.text


async def test_the_api_gives_the_owner_what_an_instance_installs(client):
    domain = "рассвет-кооп.рф"
    ascii_domain = idna.encode(domain, uts46=True).decode()
    member = await signed_connection(client, email="coop@example.org", inn="7707083893", domain=domain,
                                     application=PASSPORT)
    token = token_in((await issue(client)).text)
    client.cookies.clear()  # the API needs no session: the token is all

    for path_domain in (ascii_domain, quote(domain), ascii_domain.upper()):
        r = await client.get(f"/api/v1/connections/{path_domain}", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith("application/json")
        assert "set-cookie" not in r.headers
    info = r.json()
    assert info["domain"] == ascii_domain and info["domain_unicode"] == domain
    assert info["status"] == "signed" and info["hosting"] == "self" and info["description"] == DESCRIPTION
    assert info["fees"] == {"entrance_org": 150000, "share_org": 200050, "entrance_ind": 10000, "share_ind": 30000}
    coop = info["cooperative"]
    for field, key in [("name_full", "full_name"), ("name_short", "short_name"), ("inn", "inn"), ("ogrn", "ogrn"),
                       ("kpp", "kpp"), ("legal_address", "legal_address"), ("actual_address", "actual_address"),
                       ("bank_name", "bank_name"), ("bik", "bik"), ("corr_account", "corr_account"),
                       ("settlement_account", "settlement_account")]:
        assert coop[field] == ORG_APPLICATION[key], field
    assert coop["email"] == "coop@example.org" and coop["phone"].startswith("+7")
    key = await MemberKey.select().where(MemberKey.member == member["id"]).first()
    assert info["representative"] == {"full_name": "Иванова Мария Петровна", "position": "председатель совета",
                                      "public_key": member["key"].public_b64, "fingerprint": key["fingerprint"]}
    document = await Document.select(Document.document_hash, Document.pdf_sha256).where(
        Document.id == member["connection"]["document"]).first()
    assert info["agreement"]["document_hash"] == document["document_hash"]
    assert info["agreement"]["pdf_sha256"] == document["pdf_sha256"] and info["agreement"]["signed_at"]
    assert info["agreement"]["approved_pdf_sha256"] is None and info["agreement"]["approved_at"] is None
    # Nothing of the passport or the representative's home address reaches the instance.
    text = r.text
    for private in ("4519", "870421", "ГУ МВД", "770-001", "Тверская", "passport", "rep_address", "birth"):
        assert private not in text, private
    used = await ApiToken.select(ApiToken.last_used_at).where(ApiToken.member == member["id"]).first()
    assert used["last_used_at"] is not None


async def test_an_approved_agreement_names_the_operators_countersigned_copy(client):
    from portal.connection import service

    member = await signed_connection(client, email="coop@example.org", inn="7707083893", domain="rassvet.example.ru")
    token = token_in((await issue(client)).text)
    settings = client._transport.app.state.settings
    approved = await service.approve(settings, member["connection"]["id"], {"id": 0, "email": "staff@voskhod.example"})
    r = await client.get("/api/v1/connections/rassvet.example.ru", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200
    agreement = r.json()["agreement"]
    copy = await Document.select(Document.pdf_sha256).where(Document.id == approved["approved_document"]).first()
    assert r.json()["status"] == "approved"
    assert agreement["approved_pdf_sha256"] == copy["pdf_sha256"] != agreement["pdf_sha256"]
    assert agreement["approved_at"] == approved["decided_at"].isoformat()


async def test_the_api_refuses_without_a_valid_token(client):
    member = await signed_connection(client, email="coop@example.org", inn="7707083893", domain="rassvet.example.ru")
    token = token_in((await issue(client)).text)
    url = "/api/v1/connections/rassvet.example.ru"
    cases = [({}, "Нужен токен API"), ({"Authorization": f"Basic {token}"}, "Нужен токен API"),
             ({"Authorization": "Bearer"}, "Нужен токен API"),
             ({"Authorization": f"Bearer {token}x"}, "Токен API не действует"),
             ({"Authorization": f"Bearer {token.upper()}"}, "Токен API не действует")]
    for headers, message in cases:
        r = await client.get(url, headers=headers)
        assert r.status_code == 401, headers
        assert r.headers["www-authenticate"].startswith("Bearer")
        assert r.headers["content-type"].startswith("application/json")
        assert message in r.json()["detail"]
    ok = await client.get(url, headers={"Authorization": f"bearer {token}"})  # the scheme in any case
    assert ok.status_code == 200

    # Revoked in the cabinet: refused from the next request on.
    row = await ApiToken.select(ApiToken.id).where(ApiToken.member == member["id"]).first()
    r = await client.post(f"/cabinet/connection/tokens/{row['id']}/revoke",
                          data={"_csrf_token": await csrf_token(client)}, headers={"HX-Request": "true"})
    assert r.status_code == 200 and "отозван" in r.text and "Отозвать токен" not in r.text
    r = await client.get(url, headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401 and "отозван" in r.json()["detail"]
    # A second revoke finds nothing to revoke.
    r = await client.post(f"/cabinet/connection/tokens/{row['id']}/revoke",
                          data={"_csrf_token": await csrf_token(client)})
    assert r.status_code == 404


async def test_a_token_opens_only_its_owners_current_connection(client):
    other = await signed_connection(client, email="other@example.org", inn="7736050003", domain="zarya.example.ru",
                                    application={"full_name": "Потребительский кооператив «Заря»",
                                                 "short_name": "ПК «Заря»"})
    other_token = token_in((await issue(client)).text)
    other_token_id = (await ApiToken.select(ApiToken.id).where(ApiToken.member == other["id"]).first())["id"]
    await signed_connection(client, email="coop@example.org", inn="7707083893", domain="rassvet.example.ru")
    token = token_in((await issue(client)).text)
    auth = {"Authorization": f"Bearer {token}"}
    assert (await client.get("/api/v1/connections/rassvet.example.ru", headers=auth)).status_code == 200
    for domain in ("zarya.example.ru", "unknown.example.ru", "not a domain", "rassvet.example.ru.evil"):
        r = await client.get(f"/api/v1/connections/{quote(domain)}", headers=auth)
        assert r.status_code == 404, domain
        assert "у владельца токена нет" in r.json()["detail"]
    r = await client.get("/api/v1/connections/zarya.example.ru", headers={"Authorization": f"Bearer {other_token}"})
    assert r.status_code == 200 and r.json()["cooperative"]["name_short"] == "ПК «Заря»"
    # One member cannot revoke another's token.
    r = await client.post(f"/cabinet/connection/tokens/{other_token_id}/revoke",
                          data={"_csrf_token": await csrf_token(client)}, headers={"HX-Request": "true"})
    assert r.status_code == 404
    assert (await ApiToken.select(ApiToken.revoked_at).where(ApiToken.id == other_token_id).first())[
        "revoked_at"] is None


async def test_a_replaced_agreement_for_hosting_closes_the_api(client):
    """The API answers for the member's agreement in force: once replaced by one for «на серверах ВОСХОДа», the
    token opens nothing."""
    member = await signed_connection(client, email="coop@example.org", inn="7707083893", domain="rassvet.example.ru")
    token = token_in((await issue(client)).text)
    auth = {"Authorization": f"Bearer {token}"}
    assert (await client.get("/api/v1/connections/rassvet.example.ru", headers=auth)).status_code == 200
    await Connection.update({Connection.hosting: "hosted"}).where(Connection.id == member["connection"]["id"])
    assert (await client.get("/api/v1/connections/rassvet.example.ru", headers=auth)).status_code == 404


async def test_the_cabinet_routes_need_a_member(client):
    r = await client.post("/cabinet/connection/tokens", data={"_csrf_token": await csrf_token(client)})
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
    member = await signed_connection(client, email="coop@example.org", inn="7707083893", domain="rassvet.example.ru")
    r = await client.post("/cabinet/connection/tokens", headers={"HX-Request": "true"})  # no CSRF token
    assert r.status_code == 403
    assert await ApiToken.count().where(ApiToken.member == member["id"]) == 0


async def test_the_openapi_schema_lists_the_api_alone(client):
    r = await client.get("/api/v1/openapi.json")
    assert r.status_code == 200
    schema = json.loads(r.text)
    assert list(schema["paths"]) == ["/api/v1/connections/{domain}"]
    text = r.text
    for page in ("/staff", "/cabinet", "/login", "/join", '"/connect"', "/pricing", "/yookassa", "/healthz",
                 "/verify"):
        assert page not in text, page
    operation = schema["paths"]["/api/v1/connections/{domain}"]["get"]
    assert {"200", "401", "404"} <= set(operation["responses"])
    assert operation["security"] == [{"bearer": []}]
    assert schema["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    info = schema["components"]["schemas"]["ConnectionInfo"]
    assert set(info["required"]) == {"domain", "domain_unicode", "status", "hosting", "description", "cooperative",
                                     "fees", "representative", "agreement"}
    assert "inn" in schema["components"]["schemas"]["CooperativeData"]["properties"]
    assert (await client.get("/schema")).status_code == 404
    assert (await client.get("/schema/openapi.json")).status_code == 404


@pytest.mark.parametrize("path", ["/api/v1/openapi.json", "/api/v1/connections/rassvet.example.ru"])
async def test_the_api_is_the_operators_only(client, path):
    """On a cooperative's host the operator's API does not exist."""
    from portal.clock import now
    from portal.cooperatives.tables import Cooperative

    await Cooperative.insert(Cooperative(name_full="ПК «Иной»", name_short="ПК «Иной»", inn="7736050003",
                                         domain="inoy.localhost", created_at=now()))
    r = await client.get(path, headers={"Host": "inoy.localhost"})
    assert r.status_code == 404
