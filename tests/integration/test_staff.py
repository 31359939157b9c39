"""Staff accounts: login, console, refusal, logout, rate limit."""

from __future__ import annotations

import pytest

from portal.audit.tables import AuditEvent
from portal.staff.service import create_staff
from tests.conftest import post_form

EMAIL, PASSWORD = "operator@voskhod.example", "correct horse battery"


@pytest.fixture
async def staff(client):
    return await create_staff(EMAIL, PASSWORD)


async def test_console_redirects_anonymous_to_login(client):
    r = await client.get("/staff/", follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"].startswith("/staff/login?next=/staff")


async def test_login_page_is_a_form(client):
    r = await client.get("/staff/login")
    assert r.status_code == 200
    assert 'name="email"' in r.text and 'name="password"' in r.text and "Вход для сотрудников" in r.text


async def test_staff_logs_in_sees_console_and_logs_out(client, staff):
    r = await post_form(client, "/staff/login", {"email": EMAIL.upper(), "password": PASSWORD, "next": "/staff/"},
                        follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/staff/"
    cookie = r.headers.get("set-cookie", "")
    assert "portal_session=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
    r = await client.get("/staff/")
    assert r.status_code == 200 and "Консоль сотрудников" in r.text and EMAIL in r.text
    assert await AuditEvent.count().where(AuditEvent.action == "staff.login") == 1
    r = await post_form(client, "/staff/logout", {}, follow_redirects=False)
    assert r.status_code == 303
    r = await client.get("/staff/", follow_redirects=False)
    assert r.status_code == 303


async def test_wrong_password_is_refused_with_422_and_keeps_the_email(client, staff):
    r = await post_form(client, "/staff/login", {"email": EMAIL, "password": "wrong"})
    assert r.status_code == 422
    assert "Неверная почта или пароль" in r.text
    assert f'value="{EMAIL}"' in r.text
    r = await client.get("/staff/", follow_redirects=False)
    assert r.status_code == 303
    assert await AuditEvent.count().where(AuditEvent.action == "staff.login_failed") == 1


async def test_htmx_login_error_renders_only_the_form(client, staff):
    r = await post_form(client, "/staff/login", {"email": EMAIL, "password": "wrong"}, htmx=True)
    assert r.status_code == 422
    assert r.text.lstrip().startswith("<form") and "<html" not in r.text


async def test_unknown_email_is_refused_the_same_way(client, staff):
    r = await post_form(client, "/staff/login", {"email": "nobody@example.org", "password": PASSWORD})
    assert r.status_code == 422 and "Неверная почта или пароль" in r.text


async def test_next_cannot_point_outside_the_console(client, staff):
    r = await post_form(client, "/staff/login", {"email": EMAIL, "password": PASSWORD, "next": "https://evil.example/"},
                        follow_redirects=False)
    assert r.headers["location"] == "/staff/"


async def test_login_is_rate_limited(client, staff):
    statuses = [
        (await post_form(client, "/staff/login", {"email": EMAIL, "password": f"wrong{i}"})).status_code
        for i in range(12)
    ]
    assert statuses[:10] == [422] * 10
    assert statuses[10] == 429
    r = await post_form(client, "/staff/login", {"email": EMAIL, "password": PASSWORD})
    assert r.status_code == 429 and "Слишком много попыток" in r.text


async def test_create_staff_validates_input(client):
    with pytest.raises(ValueError, match="не короче 8"):
        await create_staff("x@example.org", "short")
    with pytest.raises(ValueError, match="почты"):
        await create_staff("not-an-email", "long enough password")


async def test_rate_limits_of_different_forms_count_separately(client, staff):
    from tests.integration.test_connect import VALID

    for _ in range(12):
        await post_form(client, "/connect", {**VALID, "inn": ""})
    r = await post_form(client, "/staff/login", {"email": EMAIL, "password": PASSWORD})
    assert r.status_code in (200, 303)


async def test_a_deactivated_staff_account_loses_access_at_once(client, staff):
    from portal.staff.tables import StaffUser

    await post_form(client, "/staff/login", {"email": EMAIL, "password": PASSWORD})
    assert (await client.get("/staff/")).status_code == 200
    await StaffUser.update({StaffUser.is_active: False}).where(StaffUser.id == staff)
    r = await client.get("/staff/", follow_redirects=False)
    assert r.status_code == 303 and "/staff/login" in r.headers["location"]
