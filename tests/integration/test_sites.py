"""SPEC §9 over HTTP: the host decides whose site it is; an unknown host gets a plain 404 naming no cooperative;
on a cooperative's host nothing of the operator's site or of another cooperative is reachable, with any session."""

from __future__ import annotations

import re

from litestar.handlers import HTTPRouteHandler

from portal.clock import now
from portal.cooperatives.tables import Cooperative
from tests.conftest import csrf_token
from tests.support.members import admitted_member

ON_EVERY_SITE = {"/", "/healthz", "/static"}  # what a cooperative's host serves today besides its own pages


async def add_cooperative(domain: str, name: str, description: str = "Закупки у фермеров") -> dict:
    rows = await Cooperative.insert(Cooperative(
        name_full=f"Потребительский кооператив «{name}»", name_short=f"ПК «{name}»", inn="7736207543",
        domain=domain, description=description, status="installing", created_at=now())).returning(Cooperative.id)
    return await Cooperative.select().where(Cooperative.id == rows[0]["id"]).first()


def concrete(path: str) -> str:
    """A route path with its parameters filled in (ids of rows that exist in these tests, or plain words)."""
    path = re.sub(r"\{[^}:]+:int\}", "1", path)
    return re.sub(r"\{[^}]+\}", "x", path) or "/"


def every_route(app) -> list[tuple[str, str, dict]]:
    out = []
    for route in app.routes:
        for handler in getattr(route, "route_handlers", []):
            methods = sorted(handler.http_methods) if isinstance(handler, HTTPRouteHandler) else ["GET"]
            for method in methods:
                out.append((method, concrete(route.path), handler.opt))
    return out


async def test_an_unknown_host_gets_a_plain_404_that_names_no_cooperative(client):
    await add_cooperative("rassvet.localhost", "Рассвет")
    for host in ("unknown.example", "rassvet.localhost.evil.example", "xn--e1afmkfd.xn--p1ai", "[::2]"):
        r = await client.get("/", headers={"Host": host})
        assert r.status_code == 404, host
        assert "Сайт не найден" in r.text
        assert "ВОСХОД" not in r.text and "Рассвет" not in r.text
        assert "set-cookie" not in r.headers
    r = await client.get("/connect", headers={"Host": "unknown.example"})
    assert r.status_code == 404 and "ВОСХОД" not in r.text


async def test_the_operator_host_and_loopback_get_the_operators_site(client):
    for host in ("testserver.local", "127.0.0.1:8000", "localhost", "TESTSERVER.LOCAL."):
        r = await client.get("/", headers={"Host": host})
        assert r.status_code == 200 and "ПК «ВОСХОД»" in r.text and 'href="/connect"' in r.text, host


async def test_a_cooperatives_host_gets_its_own_site_by_its_unicode_or_punycode_name(client):
    coop = await add_cooperative("xn--e1afmkfd.xn--p1ai", "Пример", "Совместные закупки для семей")  # пример.рф
    for host in ("xn--e1afmkfd.xn--p1ai", "пример.рф".encode("idna").decode()):
        r = await client.get("/", headers={"Host": host})
        assert r.status_code == 200
        assert coop["name_full"] in r.text and "Совместные закупки для семей" in r.text
        assert 'href="/connect"' not in r.text and "/docs/" not in r.text  # the operator's menu is not there
        assert 'id="installing"' in r.text


async def test_nothing_of_the_operators_site_is_reachable_on_a_cooperatives_host(client):
    """Every route of the app, with a logged-in operator member's session, on a cooperative's host: only the pages
    every site has answer, and they show no one logged in; everything else is the cooperative's plain 404."""
    member = await admitted_member(client)
    await add_cooperative("rassvet.localhost", "Рассвет")
    token = await csrf_token(client)
    app = client._transport.app
    checked = 0
    for method, path, opt in every_route(app):
        headers = {"Host": "rassvet.localhost", "x-csrftoken": token}
        r = await client.request(method, path, headers=headers, data={"_csrf_token": token} if method == "POST" else None)
        served_everywhere = opt.get("sites") == "any" or path == "/healthz"  # (its OPTIONS too: any host)
        if opt.get("sites") == "cooperative":  # the cooperative's own pages: not on the operator's host instead
            on_operator = await client.request(method, path, headers={"x-csrftoken": token},
                                               data={"_csrf_token": token} if method == "POST" else None)
            assert on_operator.status_code == 404, (method, path, on_operator.status_code)
            assert member["email"] not in r.text, (method, path)
        elif not served_everywhere:
            assert r.status_code == 404, (method, path, r.status_code)
            assert member["email"] not in r.text, (method, path)
            if not path.startswith("/api/"):  # the API answers in JSON; a page — the cooperative's 404 page
                assert "ПК «Рассвет»" in r.text, (method, path)
        else:
            assert path.split("/x")[0] in ON_EVERY_SITE or path.startswith("/static"), (method, path)
            assert member["email"] not in r.text, (method, path)
        checked += 1
    assert checked > 40
    # The same session still works on the operator's own host.
    r = await client.get("/cabinet", headers={"Host": "testserver.local"})
    assert r.status_code == 200 and member["email"] in r.text


async def test_a_session_is_of_one_site(client):
    """A session id shown on another host finds nothing there: the store key includes the site."""
    member = await admitted_member(client)
    await add_cooperative("rassvet.localhost", "Рассвет")
    r = await client.get("/", headers={"Host": "rassvet.localhost"})
    assert member["email"] not in r.text and "Выйти" not in r.text
    assert (await client.get("/cabinet", headers={"Host": "testserver.local"})).status_code == 200
