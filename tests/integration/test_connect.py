"""Connect requests (J0): the form, validation, e-mails, duplicates, rate limit."""

from __future__ import annotations

import idna
import pytest

from portal.audit.tables import AuditEvent
from portal.connect.tables import ConnectRequest
from portal.mail.tables import OutboxMessage
from tests.conftest import post_form

PUNY = "xn--80aej5bgaj.xn--p1ai"  # рассвет.рф
VALID = {
    "coop_name": "Потребительский кооператив «Рассвет»",
    "inn": "7707083893",
    "contact_name": "Иванова Мария Петровна",
    "email": "maria@рассвет.рф",
    "phone": "8 (912) 345-67-89",
    "domain": "Рассвет.РФ",
    "union_member": "yes",
    "message": "Хотим подключиться в этом квартале.",
    "consent": "on",
}


async def test_form_page_has_every_field_with_labels(client):
    r = await client.get("/connect")
    assert r.status_code == 200
    for name in ("coop_name", "inn", "contact_name", "email", "phone", "domain", "message"):
        assert f'id="f-{name}" name="{name}"' in r.text
        assert f'<label for="f-{name}">' in r.text
    assert 'name="union_member" value="in_progress"' in r.text and 'name="consent"' in r.text


async def test_htmx_request_gets_only_the_form(client):
    r = await client.get("/connect", headers={"HX-Request": "true"})
    assert r.status_code == 200
    assert r.text.lstrip().startswith("<form") and "<html" not in r.text
    assert 'name="_csrf_token"' in r.text


async def test_valid_request_is_stored_confirmed_and_staff_notified(client, settings):
    r = await post_form(client, "/connect", VALID, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/connect/done"
    row = await ConnectRequest.select().first()
    assert row["coop_name"] == VALID["coop_name"]
    assert row["phone"] == "+79123456789"
    assert row["domain"] == PUNY and idna.decode(row["domain"]) == "рассвет.рф"
    assert row["email"] == f"maria@{PUNY}"
    assert row["status"] == "new" and row["ip"] == "127.0.0.1"
    mails = await OutboxMessage.select().order_by(OutboxMessage.id)
    assert [m["to_addr"] for m in mails] == [row["email"], settings.staff_email]
    assert f"№ {row['id']}" in mails[0]["subject"] and "Рассвет" in mails[0]["body_text"]
    assert f"/staff/connect-requests/{row['id']}" in mails[1]["body_text"]
    assert await AuditEvent.count().where(AuditEvent.action == "connect.submitted") == 1
    r = await client.get("/connect/done")
    assert f"Заявка № {row['id']} принята" in r.text


async def test_htmx_submit_answers_with_the_confirmation_block(client):
    r = await post_form(client, "/connect", VALID, htmx=True)
    assert r.status_code == 200
    assert "принята" in r.text and "<html" not in r.text


BAD = [
    ("coop_name", "", "Укажите название кооператива"),
    ("inn", "7707083894", "контрольной суммой"),
    ("inn", "770708389312", "10 цифр"),
    ("contact_name", "", "как к вам обращаться"),
    ("email", "maria-at-example", "Адрес почты"),
    ("phone", "12345", "10 цифр после +7"),
    ("domain", "рассвет", "Домен"),
    ("union_member", "maybe", "Союзе «РУСЬ»"),
    ("message", "я" * 2001, "2000 символов"),
    ("consent", "", "согласия"),
]


@pytest.mark.parametrize(("field", "value", "message"), BAD, ids=[f"{f}-{i}" for i, (f, _, _) in enumerate(BAD)])
async def test_bad_field_gives_russian_error_at_the_field_keeps_input_and_stores_nothing(client, field, value, message):
    data = {**VALID, field: value}
    r = await post_form(client, "/connect", data)
    assert r.status_code == 422
    html = r.text
    assert f'id="err-{field}"' in html
    error_line = html.split(f'id="err-{field}">', 1)[1].split("</p>", 1)[0]
    assert message in error_line
    assert html.count('class="field-error"') == 1  # only that field
    summary = html.split("data-error-summary", 1)[1].split("</div>", 1)[0]  # named and linked at the top
    assert f'href="#f-{field}"' in summary and message in summary and f'id="f-{field}"' in html
    # Everything typed is still there.
    assert 'value="Потребительский кооператив «Рассвет»"' in html or field == "coop_name"
    assert 'value="Иванова Мария Петровна"' in html or field == "contact_name"
    assert "Хотим подключиться в этом квартале." in html or field == "message"
    assert await ConnectRequest.count() == 0
    assert await OutboxMessage.count() == 0


async def test_second_pending_request_with_same_inn_is_not_duplicated(client):
    await post_form(client, "/connect", VALID)
    r = await post_form(client, "/connect", {**VALID, "email": "other@example.org", "inn": "77 0708 3893"},
                        follow_redirects=True)
    assert r.status_code == 200
    assert "уже рассматривается" in r.text
    assert await ConnectRequest.count() == 1
    assert await OutboxMessage.count() == 2  # only the first request's two e-mails


async def test_connect_form_is_rate_limited_per_ip(client):
    statuses = [(await post_form(client, "/connect", {**VALID, "inn": ""})).status_code for _ in range(21)]
    assert statuses[:20] == [422] * 20 and statuses[20] == 429


async def test_concurrent_requests_with_one_inn_store_one(client, settings):
    import asyncio

    from portal.connect import forms, service

    clean = forms.validate(VALID).clean
    results = await asyncio.gather(*(service.submit(settings, clean, "127.0.0.1") for _ in range(3)))
    assert sorted(r.duplicate for r in results) == [False, True, True]
    assert len({r.request_id for r in results}) == 1
    assert await ConnectRequest.count() == 1 and await OutboxMessage.count() == 2
