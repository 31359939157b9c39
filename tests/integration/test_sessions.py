"""Server-side sessions: the cookie is an opaque id; logout, «Выйти на всех устройствах», key replacement and
staff deactivation end sessions at once; the store is written only when a session changes."""

from __future__ import annotations

import hashlib

import httpx
import pytest

from portal.sessions.store import DatabaseStore
from portal.sessions.tables import StoreEntry
from portal.staff.service import create_staff
from portal.staff.tables import StaffUser
from tests.conftest import post_form
from tests.integration.test_connect import VALID

EMAIL, PASSWORD = "sessions@voskhod.example", "sessions password 1"


def second_client(client: httpx.AsyncClient) -> httpx.AsyncClient:
    """Another browser on the same portal."""
    return httpx.AsyncClient(transport=client._transport, base_url=str(client.base_url))


async def staff_login(client: httpx.AsyncClient) -> str:
    r = await post_form(client, "/staff/login", {"email": EMAIL, "password": PASSWORD}, follow_redirects=False)
    assert r.status_code == 303
    return client.cookies["portal_session"]


@pytest.fixture
async def staff(client):
    return await create_staff(EMAIL, PASSWORD)


async def test_the_cookie_is_an_opaque_id_and_the_store_keeps_only_its_hash(client, staff):
    session_id = await staff_login(client)
    assert EMAIL not in session_id and len(session_id) < 60
    keys = [row["key"] for row in await StoreEntry.select(StoreEntry.key)]
    assert f"sessions:session:{hashlib.sha256(session_id.encode()).hexdigest()}" in keys
    assert not any(session_id in key for key in keys)


async def test_a_copied_cookie_opens_nothing_after_logout(client, staff):
    session_id = await staff_login(client)
    async with second_client(client) as thief:
        thief.cookies.set("portal_session", session_id)
        assert (await thief.get("/staff/")).status_code == 200
        r = await post_form(client, "/staff/logout", {}, follow_redirects=False)
        assert r.status_code == 303
        r = await thief.get("/staff/", follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].startswith("/staff/login")


async def test_staff_log_out_everywhere_ends_every_session(client, staff):
    await staff_login(client)
    async with second_client(client) as other:
        await staff_login(other)
        assert (await other.get("/staff/")).status_code == 200
        r = await post_form(client, "/staff/logout/all", {}, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/staff/login?ended=all"
        assert "Вы вышли на всех устройствах" in (await client.get("/staff/login?ended=all")).text
        assert (await other.get("/staff/", follow_redirects=False)).status_code == 303
        assert (await client.get("/staff/", follow_redirects=False)).status_code == 303
        await staff_login(other)  # a new login works again
        assert (await other.get("/staff/")).status_code == 200


async def test_a_deactivated_staff_account_is_out_at_once(client, staff):
    await staff_login(client)
    await StaffUser.update({StaffUser.is_active: False}).where(StaffUser.id == staff)
    assert (await client.get("/staff/", follow_redirects=False)).status_code == 303


async def test_login_gives_a_new_session_id(client, staff):
    """Session fixation: an id known before the login (here, from the connect form) is not the one after it."""
    await post_form(client, "/connect", VALID)
    before = client.cookies["portal_session"]
    after = await staff_login(client)
    assert after != before
    async with second_client(client) as attacker:
        attacker.cookies.set("portal_session", before)
        assert (await attacker.get("/staff/", follow_redirects=False)).status_code == 303


async def test_pages_with_a_session_do_not_write_the_store(client, staff, monkeypatch):
    await staff_login(client)
    writes: list[str] = []
    real_set = DatabaseStore.set

    async def counting_set(self, key, value, expires_in=None):
        writes.append(key)
        await real_set(self, key, value, expires_in)

    monkeypatch.setattr(DatabaseStore, "set", counting_set)
    for path in ("/staff/", "/staff/connect-requests", "/", "/pricing"):
        assert (await client.get(path)).status_code == 200
    assert writes == []


async def test_every_page_shows_who_is_logged_in_with_logout(client, staff):
    await staff_login(client)
    for path in ("/", "/pricing", "/connect", "/verify"):
        html = (await client.get(path)).text
        assert EMAIL in html and 'action="/staff/logout"' in html and ">Выйти</button>" in html
    await post_form(client, "/staff/logout", {})
    html = (await client.get("/")).text
    assert EMAIL not in html and 'href="/login"' in html


async def test_a_session_lasts_twelve_hours_and_no_longer(client, staff):
    await staff_login(client)
    row = await StoreEntry.select(StoreEntry.expires_at).where(StoreEntry.key.like("sessions:session:%")).first()
    from portal.clock import now

    left = (row["expires_at"] - now()).total_seconds()
    assert 11.9 * 3600 < left <= 12 * 3600
    await StoreEntry.update({StoreEntry.expires_at: now()}).where(StoreEntry.key.like("sessions:session:%"))
    assert (await client.get("/staff/", follow_redirects=False)).status_code == 303


async def test_expired_entries_are_cleared_by_housekeeping(client, staff):
    from portal.clock import now
    from portal.sessions.store import delete_expired

    store = DatabaseStore().with_namespace("test")
    await store.set("old", b"x", expires_in=60)
    await store.set("fresh", b"y", expires_in=3600)
    await StoreEntry.update({StoreEntry.expires_at: now()}).where(StoreEntry.key == "test:old")
    assert await store.get("old") is None and await store.get("fresh") == b"y"
    await delete_expired()
    assert await StoreEntry.count().where(StoreEntry.key == "test:old") == 0
    assert await store.expires_in("fresh") > 3500
    await store.delete_all()
    assert await StoreEntry.count().where(StoreEntry.key.like("test:%")) == 0


async def test_a_renewal_never_brings_back_a_session_ended_meanwhile(client, staff):
    """A slow request that started before «Выйти» must not re-create the session when it answers."""
    import json

    from portal.sessions.middleware import RENEW_AFTER_SECONDS, store_key

    session_id = await staff_login(client)
    key = "sessions:" + store_key(session_id)
    row = await StoreEntry.select(StoreEntry.value).where(StoreEntry.key == key).first()
    record = json.loads(bytes(row["value"]))
    record["renewed"] -= RENEW_AFTER_SECONDS + 60  # renewal is due
    await StoreEntry.update({StoreEntry.value: json.dumps(record).encode()}).where(StoreEntry.key == key)
    app = client._transport.app
    original_get = DatabaseStore.get

    async def logout_meanwhile(self, k, renew_for=None):  # the record is read, then «Выйти» deletes it
        value = await original_get(self, k, renew_for)
        await StoreEntry.delete().where(StoreEntry.key == key)
        return value

    DatabaseStore.get = logout_meanwhile
    try:
        r = await client.get("/pricing")
    finally:
        DatabaseStore.get = original_get
    assert r.status_code == 200 and app is not None
    assert await StoreEntry.count().where(StoreEntry.key == key) == 0
    assert (await client.get("/staff/", follow_redirects=False)).status_code == 303


def test_trusted_proxy_networks_are_normalised_for_the_server():
    from portal.settings import Settings, _trusted_proxies

    assert _trusted_proxies({"PORTAL_TRUSTED_PROXIES": "10.0.0.5/8, 192.0.2.7, ::1/128"}) == (
        "10.0.0.0/8", "192.0.2.7", "::1")
    assert _trusted_proxies({}) == Settings.trusted_proxies
