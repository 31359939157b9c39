"""Several portal processes share one session store and one rate limit: in the database (two `portal serve`
processes on one PostgreSQL) or in Redis when PORTAL_REDIS_URL is set."""

from __future__ import annotations

import os
import subprocess

import httpx
import pytest

from tests.conftest import make_settings, post_form
from tests.integration.test_cli import PORTAL, start_serve, stop_serve

EMAIL, PASSWORD = "shared@voskhod.example", "shared password 1"
SECRET = "shared-store-test-secret-0123456789-abcdefghij"


def login_form(client: httpx.Client) -> dict[str, str]:
    client.get("/staff/login")
    return {"_csrf_token": client.cookies["csrftoken"]}


def test_two_processes_on_one_postgresql_share_sessions_and_rate_limits(tmp_path, pg_server, session_site):
    dsn = pg_server.create_database(f"shared_{os.getpid()}")
    env = {"PORTAL_DATABASE_URL": dsn, "PORTAL_SECRET_KEY": SECRET}
    r = subprocess.run([PORTAL, "create-staff", EMAIL, "--password", PASSWORD], capture_output=True, text=True,
                       env={**os.environ, "PORTAL_DATA_DIR": str(tmp_path / "data"), **env}, timeout=120)
    assert r.returncode == 0, r.stderr
    a, url_a, _ = start_serve(tmp_path, session_site, "--workers", "1", **env)
    try:
        b, url_b, _ = start_serve(tmp_path, session_site, "--workers", "1", **env)
        try:
            with httpx.Client(base_url=url_a) as on_a, httpx.Client(base_url=url_b) as on_b:
                r = on_a.post("/staff/login", data={**login_form(on_a), "email": EMAIL, "password": PASSWORD})
                assert r.status_code == 303
                on_b.cookies.set("portal_session", on_a.cookies["portal_session"])
                on_b.cookies.set("csrftoken", on_a.cookies["csrftoken"])
                assert on_b.get("/staff/").status_code == 200  # the session opened on A is known to B
                r = on_b.post("/staff/logout", data={"_csrf_token": on_b.cookies["csrftoken"]})
                assert r.status_code == 303
                assert on_a.get("/staff/").status_code == 303  # ended on B, ended on A

                # One limit of 10 login attempts a minute (the successful one above was the first), whichever
                # process counts them.
                statuses = []
                for n in range(10):
                    c = on_a if n % 2 else on_b
                    statuses.append(c.post("/staff/login", data={**login_form(c), "email": EMAIL,
                                                                  "password": "wrong"}).status_code)
                assert statuses[:9] == [422] * 9 and statuses[9] == 429
        finally:
            stop_serve(b)
    finally:
        stop_serve(a)


@pytest.fixture(scope="module")
def redis_server():
    from tests.support.redis import start_redis

    server = start_redis()
    yield server
    server.stop()


async def test_with_redis_two_apps_share_sessions_and_rate_limits(tmp_path, redis_server, sqlite_template):
    """PORTAL_REDIS_URL: the sessions and counters live in Redis; the database holds none of them."""
    import shutil

    from portal import db
    from portal.app import create_app, startup
    from portal.sessions.tables import StoreEntry
    from portal.staff.service import create_staff

    shutil.copyfile(sqlite_template, tmp_path / "portal.sqlite3")
    settings = make_settings(tmp_path, PORTAL_REDIS_URL=redis_server.url)
    first, second = create_app(settings, run_mail_sender=False), create_app(settings, run_mail_sender=False)
    await startup(settings)
    try:
        await create_staff(EMAIL, PASSWORD)
        base = "http://testserver.local"
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=first), base_url=base) as one, \
                httpx.AsyncClient(transport=httpx.ASGITransport(app=second), base_url=base) as two:
            r = await post_form(one, "/staff/login", {"email": EMAIL, "password": PASSWORD}, follow_redirects=False)
            assert r.status_code == 303
            two.cookies.update(one.cookies)
            assert (await two.get("/staff/")).status_code == 200
            await post_form(two, "/staff/logout", {})
            assert (await one.get("/staff/", follow_redirects=False)).status_code == 303
            statuses = [(await post_form(c, "/staff/login", {"email": EMAIL, "password": "wrong"})).status_code
                        for c in [one, two] * 5]
            assert statuses[:9] == [422] * 9 and statuses[9] == 429  # the successful login was the first of 10
        assert await StoreEntry.count() == 0
    finally:
        await db.stop(settings)
