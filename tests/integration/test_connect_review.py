"""Staff review of connect requests: list, search, detail, registration links, rejection."""

from __future__ import annotations

import asyncio
import dataclasses
import re

import pytest

from portal.audit.tables import AuditEvent
from portal.clock import now
from portal.connect import service
from portal.connect.tables import ConnectRequest, RegistrationLink
from portal.mail import service as mail
from portal.mail.tables import OutboxMessage
from portal.staff.service import create_staff
from tests.conftest import post_form
from tests.integration.test_connect import PUNY, VALID
from tests.support.smtp import SmtpSink


@pytest.fixture
async def staff_client(client):
    await create_staff("staff@voskhod.example", "staff password 1")
    r = await post_form(client, "/staff/login", {"email": "staff@voskhod.example", "password": "staff password 1"})
    assert r.status_code in (200, 303)
    return client


async def submit(client, **overrides) -> int:
    r = await post_form(client, "/connect", {**VALID, **overrides}, follow_redirects=False)
    assert r.status_code == 303, r.text
    return (await ConnectRequest.select(ConnectRequest.id).order_by(ConnectRequest.id, ascending=False).first())["id"]


async def test_staff_pages_refuse_anonymous(client):
    rid = await submit(client)
    r = await client.get(f"/staff/connect-requests/{rid}", follow_redirects=False)
    assert r.status_code == 303 and "/staff/login" in r.headers["location"]
    r = await post_form(client, f"/staff/connect-requests/{rid}/invite", {}, follow_redirects=False)
    assert r.status_code == 303
    assert await RegistrationLink.count() == 0


async def test_list_filters_by_status_and_searches_cyrillic_any_case(staff_client):
    await submit(staff_client)
    await submit(staff_client, coop_name="Кооператив «Заря»", inn="7736050003", email="zarya@example.org", domain="")
    r = await staff_client.get("/staff/connect-requests")
    assert "Рассвет" in r.text and "Заря" in r.text
    r = await staff_client.get("/staff/connect-requests", params={"q": "ЗАРЯ"})
    assert "Заря" in r.text and "Рассвет" not in r.text
    r = await staff_client.get("/staff/connect-requests", params={"q": "рассвет"})
    assert "Рассвет" in r.text and "Заря" not in r.text
    r = await staff_client.get("/staff/connect-requests", params={"q": "7736050003"})
    assert "Заря" in r.text and "Рассвет" not in r.text
    r = await staff_client.get("/staff/connect-requests", params={"status": "rejected"})
    assert "Заявок не найдено" in r.text
    r = await staff_client.get("/staff/connect-requests", params={"q": "заря"}, headers={"HX-Request": "true"})
    assert r.text.lstrip().startswith('<div id="results"') and "Заря" in r.text
    r = await staff_client.get("/staff/")
    assert 'id="count-connect-new">2<' in r.text


async def test_detail_shows_the_request(staff_client):
    rid = await submit(staff_client)
    r = await staff_client.get(f"/staff/connect-requests/{rid}")
    assert r.status_code == 200
    assert "рассвет.рф" in r.text and "+79123456789" in r.text and "Отправить ссылку на регистрацию" in r.text
    r = await staff_client.get("/staff/connect-requests/9999")
    assert r.status_code == 404


async def test_registration_link_arrives_by_smtp_and_works_once(staff_client, settings):
    rid = await submit(staff_client)
    await OutboxMessage.delete(force=True)
    r = await post_form(staff_client, f"/staff/connect-requests/{rid}/invite", {}, follow_redirects=False)
    assert r.status_code == 303
    link = await RegistrationLink.select().first()
    assert len(link["token_hash"]) == 64
    assert (link["expires_at"] - now()).days == 6  # 7 days minus a moment
    assert (await service.get(rid))["status"] == "invited"
    with SmtpSink() as sink:
        assert await mail.deliver_pending(dataclasses.replace(settings, smtp_url=sink.url)) == 1
        [msg] = await asyncio.to_thread(sink.wait_for, 1)
    assert msg["To"] == f"maria@{PUNY}"
    body = msg.get_content()
    url = re.search(r"http://testserver\.local(/join/[A-Za-z0-9_-]+)", body).group(1)
    token = url.rsplit("/", 1)[1]
    assert service.hash_token(token) == link["token_hash"]
    assert token not in str(await RegistrationLink.select())  # only the hash is stored
    r = await staff_client.get(url)
    assert r.status_code == 200 and "Регистрация в ПК «ВОСХОД»" in r.text and "Рассвет" in r.text
    assert await AuditEvent.count().where(AuditEvent.action == "connect.link_sent") == 1
    # Used once: the second use is refused.
    assert (await service.consume_link(token))["id"] == link["id"]
    assert await service.consume_link(token) is None
    r = await staff_client.get(url)
    # Said in plain words, with «Войти» and the operator's contacts from the settings.
    assert r.status_code == 410 and "По этой ссылке уже зарегистрировались" in r.text
    assert "Ошибка 410" not in r.text and 'href="/login">Войти</a>' in r.text
    operator = staff_client._transport.app.state.settings.operator
    assert f"mailto:{operator.email}" in r.text and operator.phone in r.text


async def test_expired_and_unknown_links_are_refused(staff_client):
    rid = await submit(staff_client)
    token = await service.send_registration_link(staff_client._transport.app.state.settings, rid,
                                                 {"id": 1, "email": "s@x"})
    await RegistrationLink.update({RegistrationLink.expires_at: now()}).where(RegistrationLink.id > 0)
    r = await staff_client.get(f"/join/{token}")
    assert r.status_code == 410 and "Срок действия ссылки истёк" in r.text
    assert await service.consume_link(token) is None
    r = await staff_client.get("/join/not-a-real-token")
    assert r.status_code == 404 and "не найдена" in r.text


async def test_a_new_link_replaces_the_previous_one(staff_client):
    rid = await submit(staff_client)
    settings = staff_client._transport.app.state.settings
    first = await service.send_registration_link(settings, rid, {"id": 1, "email": "s@x"})
    second = await service.send_registration_link(settings, rid, {"id": 1, "email": "s@x"})
    assert (await service.check_link(first)).state == "expired"
    assert (await service.check_link(second)).state == "valid"


async def test_reject_needs_a_reason_and_mails_it(staff_client):
    rid = await submit(staff_client)
    await OutboxMessage.delete(force=True)
    r = await post_form(staff_client, f"/staff/connect-requests/{rid}/reject", {"reason": "  "})
    assert r.status_code == 422 and "Укажите причину отказа" in r.text
    assert (await service.get(rid))["status"] == "new" and await OutboxMessage.count() == 0
    reason = "Кооператив не состоит в Союзе «РУСЬ»: сначала вступите в союз."
    r = await post_form(staff_client, f"/staff/connect-requests/{rid}/reject", {"reason": reason},
                        follow_redirects=False)
    assert r.status_code == 303
    row = await service.get(rid)
    assert row["status"] == "rejected" and row["reject_reason"] == reason
    [m] = await OutboxMessage.select()
    assert m["to_addr"] == row["email"] and reason in m["body_text"]
    ev = await AuditEvent.select().where(AuditEvent.action == "connect.rejected").first()
    assert ev["actor_type"] == "staff" and ev["actor_label"] == "staff@voskhod.example"
    # A rejected request gets no link; a new request with the same ИНН is accepted again.
    r = await post_form(staff_client, f"/staff/connect-requests/{rid}/invite", {})
    assert r.status_code == 422 and "отклонена" in r.text
    await submit(staff_client)
    assert await ConnectRequest.count() == 2
