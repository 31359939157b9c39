"""How the portal talks to its database and serves files: pooled connections, no garbage cycles per request,
static files from memory with ETags, one grouped query for the staff console."""

from __future__ import annotations

import gc
from pathlib import Path

import httpx
import pytest

from portal import db
from portal.connect.tables import ConnectRequest
from portal.staff.service import create_staff, queue_counts
from tests.conftest import make_settings, post_form
from tests.integration.test_connect import VALID


async def asgi_get(app, path: str) -> int:
    return (await asgi_start(app, path))["status"]


async def asgi_start(app, path: str) -> dict:
    """One request straight through the ASGI callable (no client library in between): its response start."""
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
             "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
             "headers": [(b"host", b"testserver.local")], "client": ("127.0.0.1", 5000),
             "server": ("testserver.local", 80)}
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent[0]


async def test_a_page_request_leaves_no_reference_cycles(client):
    """HTMXPlugin's request class tied every request into a cycle that only the garbage collector freed."""
    app = client._transport.app
    for _ in range(3):
        assert await asgi_get(app, "/connect") == 200
    gc.collect()
    gc.disable()
    try:
        for _ in range(30):
            await asgi_get(app, "/connect")
        assert gc.collect() == 0
    finally:
        gc.enable()


async def test_queries_reuse_the_pool_instead_of_opening_connections(client, settings, monkeypatch):
    await create_staff("pool@voskhod.example", "pool password 1")
    await post_form(client, "/staff/login", {"email": "pool@voskhod.example", "password": "pool password 1"})
    if settings.is_postgres:
        opened_before = await _pg_backends()
    else:
        import aiosqlite

        opened: list[object] = []
        real_connect = aiosqlite.connect
        monkeypatch.setattr(aiosqlite, "connect", lambda *a, **k: opened.append(1) or real_connect(*a, **k))
    for _ in range(20):
        assert (await client.get("/staff/")).status_code == 200
        assert (await client.get("/staff/connect-requests")).status_code == 200
    if settings.is_postgres:
        assert await _pg_backends() <= max(opened_before, 10)
    else:
        assert opened == []  # every query of 40 pages ran on a connection opened at start-up
        assert db.engine().connections_opened == db.POOL_SIZE


async def _pg_backends() -> int:
    rows = await ConnectRequest.raw("SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database()")
    return rows[0]["n"]


async def test_a_cancelled_transaction_gives_its_connection_back_clean(client, settings):
    """A request that dies inside a transaction must not leave the pooled connection in it."""
    with pytest.raises(RuntimeError):
        async with db.transaction():
            await ConnectRequest.raw("SELECT 1")
            raise RuntimeError("request cancelled")
    for _ in range(db.POOL_SIZE + 1):  # every connection of the pool takes a new transaction
        async with db.transaction():
            await ConnectRequest.raw("SELECT 1")


async def test_staff_console_counts_every_queue_in_one_query(client):
    for inn, email in [("7707083893", "a@example.org"), ("7736050003", "b@example.org")]:
        await post_form(client, "/connect", {**VALID, "inn": inn, "email": email})
    await ConnectRequest.update({ConnectRequest.status: "rejected"}).where(ConnectRequest.inn == "7736050003")
    counts = await queue_counts()
    assert counts == {"connect_requests": {"new": 1, "invited": 0, "rejected": 1},
                      "applications": {"draft": 0, "signed": 0}, "invoices": {"issued": 0, "paid": 0},
                      "payments": {"unmatched": 0, "credited": 0},
                      "connections": {"signed": 0, "approved": 0, "returned": 0},
                      "deployments": {"queued": 0, "running": 0, "done": 0, "failed": 0},
                      "installations": {"key": 0, "council": 0, "invited": 0, "active": 0}}


@pytest.fixture
async def docs_client(tmp_path: Path, session_site: Path):
    from portal.app import create_app, startup

    settings = make_settings(tmp_path, PORTAL_SITE_DIR=str(session_site))
    from tests.conftest import _migrate

    _migrate(settings)
    app = create_app(settings, run_mail_sender=False)
    await startup(settings)
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver.local") as c:
        yield c
    await db.stop(settings)


async def test_docs_are_served_with_etag_and_cache_headers(docs_client, session_site):
    r = await docs_client.get("/docs/")
    assert r.status_code == 200
    assert r.content == (session_site / "index.html").read_bytes()
    assert r.headers["content-type"] == "text/html; charset=utf-8"
    assert r.headers["cache-control"] == "public, max-age=600"
    assert "set-cookie" not in r.headers  # cacheable: no session, no CSRF cookie
    assert "content-security-policy" in r.headers
    etag = r.headers["etag"]
    r = await docs_client.get("/docs/", headers={"If-None-Match": etag})
    assert r.status_code == 304 and r.content == b"" and r.headers["etag"] == etag
    r = await docs_client.get("/docs/", headers={"If-None-Match": f'"other", W/{etag}'})
    assert r.status_code == 304
    r = await docs_client.head("/docs/")
    assert r.status_code == 200 and r.content == b""
    assert int(r.headers["content-length"]) == (session_site / "index.html").stat().st_size


async def test_docs_directories_get_their_slash_and_unknown_pages_the_sites_404(docs_client):
    r = await docs_client.get("/docs/connect")
    assert r.status_code == 301 and r.headers["location"] == "/docs/connect/"
    r = await docs_client.get("/docs")
    assert r.status_code == 301 and r.headers["location"] == "/docs/"
    start = await asgi_start(docs_client._transport.app, "//docs/connect")  # a client would read "//docs" as a host
    assert start["status"] == 301 and dict(start["headers"])[b"location"] == b"/docs/connect/"
    r = await docs_client.get("/docs/connect/")
    assert r.status_code == 200 and "connect-form" in r.text
    r = await docs_client.get("/docs/no-such-page/")
    assert r.status_code == 404
    r = await docs_client.get("/docs/search/search_index.json")
    assert r.status_code == 200 and r.headers["content-type"] == "application/json; charset=utf-8"


async def test_static_files_answer_head_and_refuse_other_methods(client):
    r = await client.get("/static/portal.css")
    assert r.status_code == 200 and r.headers["content-type"] == "text/css; charset=utf-8"
    assert r.headers["cache-control"] == "public, max-age=3600" and r.headers["etag"]
    assert (await client.head("/static/portal.css")).status_code == 200
    r = await post_form(client, "/static/portal.css", {})
    assert r.status_code == 405 and "Метод не поддерживается" in r.text
    r = await client.get("/static/no-such.css")
    assert r.status_code == 404 and "Страница не найдена" in r.text


async def test_production_does_not_reload_templates(tmp_path):
    from portal.app import create_app

    prod = make_settings(tmp_path, PORTAL_ENV="production")
    dev = make_settings(tmp_path)
    assert create_app(prod, run_mail_sender=False).template_engine.engine.auto_reload is False
    assert create_app(dev, run_mail_sender=False).template_engine.engine.auto_reload is True


async def test_a_failed_begin_gives_its_pooled_connection_back(client, settings):
    """A lock held longer than the busy timeout makes BEGIN fail; the connection must still return to the pool."""
    if settings.is_postgres:
        pytest.skip("the SQLite pool")
    import sqlite3

    engine = db.engine()
    engine.connection_kwargs["timeout"] = 0.05
    for connection in engine._all:
        await connection.execute("PRAGMA busy_timeout = 50")
    blocker = sqlite3.connect(settings.sqlite_path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        for _ in range(db.POOL_SIZE + 1):
            with pytest.raises(sqlite3.OperationalError):
                async with db.transaction():
                    pass
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert engine._idle.qsize() == db.POOL_SIZE
    assert await ConnectRequest.count() == 0  # and a query still runs
