"""The foundation on SQLite and PostgreSQL: health, error pages, CSRF, headers, sessions."""

from __future__ import annotations

from litestar import get

from portal.app import create_app
from portal.audit.service import record
from portal.audit.tables import AuditEvent
from portal.cooperatives.tables import Cooperative
from tests.conftest import csrf_token, make_settings


async def test_healthz_answers_ok_when_database_answers(client):
    r = await client.get("/healthz")
    assert r.status_code == 200
    assert r.json() == {"status": "ok"}


async def test_healthz_is_503_when_database_does_not_answer(tmp_path):
    from litestar.testing import AsyncTestClient

    from tests.support.ports import free_port

    settings = make_settings(tmp_path, f"postgresql://postgres@127.0.0.1:{free_port()}/nothing")
    app = create_app(settings, run_mail_sender=False)
    # No lifespan: the database is unreachable, so start-up could not create the operator.
    client = AsyncTestClient(app=app)
    r = await client.get("/healthz")
    assert r.status_code == 503
    assert r.json()["status"] == "error"


async def test_home_page_is_russian_html_with_layout(client):
    r = await client.get("/")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    html = r.text
    assert '<html lang="ru">' in html
    for label in ("Главная", "Документация", "Подключение", "Войти"):
        assert f">{label}</a>" in html
    assert 'href="/connect"' in html and 'href="/docs/connection/"' in html
    assert 'integrity="sha384-' in html and "htmx.org@2.0.11" in html
    token = client.cookies["csrftoken"]
    assert f'hx-headers=\'{{"x-csrftoken": "{token}"}}\'' in html


async def test_unknown_url_gives_russian_html_404(client):
    r = await client.get("/no-such-page")
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("text/html")
    assert "Страница не найдена" in r.text


async def test_wrong_method_gives_russian_405(client):
    token = await csrf_token(client)
    r = await client.post("/", headers={"x-csrftoken": token})
    assert r.status_code == 405
    assert "Метод не поддерживается" in r.text


async def test_post_without_csrf_token_is_refused_with_403(client):
    r = await client.post("/staff/login", data={"email": "a@example.org", "password": "x"})
    assert r.status_code == 403
    assert "Доступ запрещён" in r.text
    assert await AuditEvent.count() == 0  # the handler never ran


async def test_post_with_a_wrong_csrf_token_is_refused(client):
    await csrf_token(client)
    r = await client.post("/staff/login", data={"email": "a@example.org", "password": "x", "_csrf_token": "forged"})
    assert r.status_code == 403


async def test_unhandled_error_gives_russian_500_page(settings):
    from litestar.testing import AsyncTestClient

    @get("/boom")
    async def boom() -> None:
        raise RuntimeError("boom")

    app = create_app(settings, run_mail_sender=False)
    app.register(boom)
    async with AsyncTestClient(app=app) as client:
        r = await client.get("/boom")
    assert r.status_code == 500
    assert "Внутренняя ошибка" in r.text
    assert "RuntimeError" not in r.text


async def test_security_headers(client):
    r = await client.get("/")
    csp = r.headers["content-security-policy"]
    from portal.web import HTMX_URL, SIGNATURE_PAD_URL

    assert f"script-src 'self' {HTMX_URL} {SIGNATURE_PAD_URL};" in csp  # exact scripts, not the whole CDN
    assert "frame-ancestors 'none'" in csp
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["referrer-policy"] == "same-origin"


async def test_operator_cooperative_is_created_with_fees_from_settings(client):
    coops = await Cooperative.select().where(Cooperative.is_operator == True)  # noqa: E712
    assert len(coops) == 1
    op = coops[0]
    assert op["name_short"] == "ПК «ВОСХОД»"
    assert (op["fee_entrance_org"], op["fee_share_org"]) == (100_000, 300_000)
    assert (op["fee_entrance_ind"], op["fee_share_ind"]) == (10_000, 30_000)


async def test_audit_record_keeps_who_what_where(client):
    await record("test.action", actor_type="staff", actor_id=7, actor_label="a@b", object_type="thing",
                 object_id=3, details={"k": "значение"})
    row = await AuditEvent.select().where(AuditEvent.action == "test.action").first()
    assert row["actor_type"] == "staff" and row["actor_id"] == "7" and row["object_id"] == "3"
    details = row["details"]
    if isinstance(details, str):
        import json

        details = json.loads(details)
    assert details == {"k": "значение"}
    assert row["created_at"] is not None


async def test_static_css_is_served(client):
    r = await client.get("/static/portal.css")
    assert r.status_code == 200
    assert "--accent" in r.text


async def test_security_headers_also_on_404_and_csrf_refusals(client):
    for r in (await client.get("/no-such-page"), await client.post("/staff/login", data={"email": "x"})):
        assert r.status_code in (403, 404)
        assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
        assert r.headers["x-content-type-options"] == "nosniff"


async def test_operator_requisites_follow_the_settings_on_restart(client, settings):
    import dataclasses

    from portal.cooperatives.service import ensure_operator

    changed = dataclasses.replace(settings, operator=dataclasses.replace(settings.operator, fee_share_org=350_000,
                                                                         address="г. Тверь"))
    await ensure_operator(changed.operator)  # what start-up does
    rows = await Cooperative.select().where(Cooperative.is_operator == True)  # noqa: E712
    assert len(rows) == 1 and rows[0]["fee_share_org"] == 350_000 and rows[0]["address"] == "г. Тверь"
