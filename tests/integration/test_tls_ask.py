"""Caddy's on-demand TLS question over HTTP, asked the way Caddy asks it (on the loopback address, no cookies):
`GET /api/v1/tls/allowed?domain=…` is 200 only for approved connections' domains, the sites this portal serves
and the operator's own host."""

from __future__ import annotations

import idna
import pytest

from portal.clock import now
from portal.cooperatives.tables import Cooperative
from tests.support.dns import connection_row

ASK = "http://127.0.0.1:8000/api/v1/tls/allowed"  # Caddy's `ask` URL of the installation docs


async def ask(client, *params: tuple[str, str], url: str = ASK):
    client.cookies.clear()
    return await client.get(url, params=list(params))


async def test_an_approved_connection_gets_its_certificate(client) -> None:
    await connection_row("coop.example.ru", status="approved")
    r = await ask(client, ("domain", "coop.example.ru"))
    assert (r.status_code, r.text) == (200, "ok\n")
    assert r.headers["cache-control"] == "no-store"
    assert r.headers["content-type"] == "text/plain; charset=utf-8"
    assert "set-cookie" not in r.headers  # no session, no CSRF cookie: Caddy keeps nothing
    # Caddy passes the SNI name as the client sent it: case and a trailing dot do not matter.
    assert (await ask(client, ("domain", "COOP.Example.RU."))).status_code == 200


@pytest.mark.parametrize("status", ["draft", "signed", "returned", "replaced"])
async def test_a_connection_not_approved_gets_none(client, status: str) -> None:
    await connection_row("coop.example.ru", status=status)
    r = await ask(client, ("domain", "coop.example.ru"))
    assert r.status_code == 404
    assert r.text == "Для этого домена нет одобренного подключения.\n"
    assert r.headers["cache-control"] == "no-store"


async def test_a_domain_nobody_connected_gets_none(client) -> None:
    await connection_row("coop.example.ru", status="approved")
    for name in ("other.example.ru", "sub.coop.example.ru", "example.ru"):
        assert (await ask(client, ("domain", name))).status_code == 404, name


async def test_the_operators_own_host(client) -> None:
    settings = client._transport.app.state.settings
    assert settings.operator_host == "testserver.local"
    r = await ask(client, ("domain", "testserver.local"))
    assert (r.status_code, r.text) == (200, "ok\n")


async def test_the_unicode_form_of_an_approved_cyrillic_domain(client) -> None:
    punycode = idna.encode("кооп.рф").decode()
    await connection_row(punycode, status="approved")
    for name in ("кооп.рф", "КООП.РФ", punycode):
        r = await ask(client, ("domain", name))
        assert (r.status_code, r.text) == (200, "ok\n"), name
    assert (await ask(client, ("domain", "другой.рф"))).status_code == 404


async def test_a_served_cooperative_keeps_its_certificate_while_a_new_agreement_waits(client) -> None:
    """The approved agreement was replaced by a newer one, signed and not yet approved: the live site's
    certificate must still load (Caddy asks before loading one from its storage too)."""
    await connection_row("coop.example.ru", status="replaced")
    await connection_row("coop.example.ru", status="signed")
    assert (await ask(client, ("domain", "coop.example.ru"))).status_code == 404
    await Cooperative.insert(Cooperative(name_full="Потребительский кооператив «Пример»", name_short="ПК «Пример»",
                                         inn="7707083893", domain="coop.example.ru", status="active",
                                         created_at=now()))
    assert (await ask(client, ("domain", "coop.example.ru"))).status_code == 200


@pytest.mark.parametrize("params", [
    (),
    (("domain", ""),),
    (("domain", "   "),),
    (("name", "coop.example.ru"),),
    (("domain", "coop.example.ru"), ("domain", "other.example.ru")),
])
async def test_a_missing_parameter_is_a_bad_request(client, params) -> None:
    r = await ask(client, *params)
    assert r.status_code == 400
    assert r.text == "Укажите один домен: ?domain=coop.example.ru\n"


@pytest.mark.parametrize("name", [
    "https://coop.example.ru/", "coop.example.ru:443", "203.0.113.7", "[2001:db8::1]", "localhost",
    "coop_example.ru", "-coop.example.ru", "a" * 64 + ".ru", "coop.123",
])
async def test_a_malformed_domain_is_a_bad_request(client, name: str) -> None:
    r = await ask(client, ("domain", name))
    assert r.status_code == 400
    assert r.text.startswith("Это не имя домена: ")


async def test_asked_on_the_operators_host_too_and_not_on_a_cooperatives(client) -> None:
    await connection_row("coop.example.ru", status="approved")
    assert (await ask(client, ("domain", "coop.example.ru"),
                      url="http://testserver.local/api/v1/tls/allowed")).status_code == 200
    await Cooperative.insert(Cooperative(name_full="Потребительский кооператив «Б»", name_short="ПК «Б»",
                                         inn="7707083893", domain="coop-b.example.ru", status="active",
                                         created_at=now()))
    # A cooperative's site has no such route: nothing about other domains is told there.
    r = await ask(client, ("domain", "coop.example.ru"), url="http://coop-b.example.ru/api/v1/tls/allowed")
    assert r.status_code == 404 and r.headers["content-type"].startswith("text/html")  # the site's 404 page


async def test_only_get(client) -> None:
    await connection_row("coop.example.ru", status="approved")
    r = await client.post(ASK, params={"domain": "coop.example.ru"})
    assert r.status_code in (403, 405)
