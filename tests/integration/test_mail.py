"""The outbox: delivery to a real SMTP server (aiosmtpd), retries after an outage, exactly once."""

from __future__ import annotations

import asyncio
import dataclasses
import re
import secrets

import pytest

from portal import db
from portal.clock import now
from portal.mail import service
from portal.mail.tables import OutboxMessage
from tests.support.smtp import SmtpSink


@pytest.fixture
def sink():
    with SmtpSink() as s:
        yield s


async def test_message_is_delivered_once(client, settings, sink):
    settings = dataclasses.replace(settings, smtp_url=sink.url)
    async with db.transaction():
        await service.enqueue("кооператив@example.org", "Заявка принята", "Здравствуйте! Ссылка: http://x/join/abc")
    assert await service.deliver_pending(settings) == 1
    [msg] = await asyncio.to_thread(sink.wait_for, 1)
    assert msg["Subject"] == "Заявка принята"
    assert "Здравствуйте!" in msg.get_content()
    assert "ВОСХОД" in msg["From"]
    assert await service.deliver_pending(settings) == 0
    await asyncio.sleep(0.3)
    assert len(sink.messages) == 1
    row = await OutboxMessage.select().first()
    assert row["status"] == "sent" and row["attempts"] == 1 and row["sent_at"] is not None


async def test_a_rolled_back_change_sends_nothing(client, settings, sink):
    with pytest.raises(RuntimeError):
        async with db.transaction():
            await service.enqueue("a@example.org", "Тема", "Текст")
            raise RuntimeError("the change failed")
    assert await OutboxMessage.count() == 0


async def test_smtp_outage_is_retried_and_loses_nothing(client, settings, sink):
    settings = dataclasses.replace(settings, smtp_url=sink.url)
    await service.enqueue("a@example.org", "Первое", "Текст 1")
    sink.stop()  # the SMTP server is down: connection refused
    assert await service.deliver_pending(settings) == 0
    row = await OutboxMessage.select().first()
    assert row["status"] == "pending" and row["attempts"] == 1 and row["last_error"]
    assert row["next_attempt_at"] > row["created_at"]
    # Not due yet: nothing is tried before the back-off has passed.
    sink.start()
    assert await service.deliver_pending(settings) == 0
    # A server that answers with a temporary failure also counts as an attempt.
    sink.set_failure("451 4.3.0 Попробуйте позже")
    await OutboxMessage.update({OutboxMessage.next_attempt_at: row["created_at"]}).where(OutboxMessage.id == row["id"])
    assert await service.deliver_pending(settings) == 0
    assert (await OutboxMessage.select().first())["attempts"] == 2
    sink.set_failure(None)
    await OutboxMessage.update({OutboxMessage.next_attempt_at: row["created_at"]}).where(OutboxMessage.id == row["id"])
    assert await service.deliver_pending(settings) == 1
    msgs = await asyncio.to_thread(sink.wait_for, 1)
    assert [m["Subject"] for m in msgs] == ["Первое"]
    row = await OutboxMessage.select().first()
    assert row["status"] == "sent" and row["attempts"] == 3


async def test_two_senders_at_once_send_each_message_once(client, settings, sink):
    settings = dataclasses.replace(settings, smtp_url=sink.url)
    for i in range(5):
        await service.enqueue(f"u{i}@example.org", f"Письмо {i}", "Текст")
    sent = await asyncio.gather(service.deliver_pending(settings), service.deliver_pending(settings))
    assert sum(sent) == 5
    await asyncio.to_thread(sink.wait_for, 5)
    await asyncio.sleep(0.3)
    assert sorted(m["Subject"] for m in sink.messages) == [f"Письмо {i}" for i in range(5)]


async def test_sender_loop_delivers_in_the_background(client, settings, sink):
    settings = dataclasses.replace(settings, smtp_url=sink.url, mail_poll_seconds=0.05)
    stop = asyncio.Event()
    task = asyncio.create_task(service.run_sender(settings, stop))
    await service.enqueue("a@example.org", "Фоновая отправка", "Текст")
    msgs = await asyncio.to_thread(sink.wait_for, 1)
    stop.set()
    await task
    assert msgs[0]["Subject"] == "Фоновая отправка"


async def test_without_smtp_mail_stays_in_outbox_and_dev_mail_shows_it(client, settings):
    await service.enqueue("a@example.org", "Ссылка на регистрацию", "Перейдите: http://127.0.0.1:8000/join/tok123")
    assert await service.deliver_pending(settings) == 0
    r = await client.get("/dev/mail")
    assert r.status_code == 200
    assert "Ссылка на регистрацию" in r.text
    assert '<a href="http://127.0.0.1:8000/join/tok123">' in r.text


def test_backoff_grows_and_is_capped():
    assert [service.backoff(n).total_seconds() for n in (1, 2, 3)] == [10, 20, 40]
    assert service.backoff(30).total_seconds() == 3600


# --- mail that can never be delivered: failed at once, the rest of the batch still goes ---------------


async def add_raw(to: str, subject: str = "Тема", body: str = "Текст") -> int:
    """A message as older data may hold it: stored without any check."""
    return await service.enqueue(to, subject, body)


async def row_of(message_id: int) -> dict:
    return await OutboxMessage.select().where(OutboxMessage.id == message_id).first()


@pytest.mark.parametrize("bad_addr", [
    "postmaster,someone@example.org",  # two recipients in one
    '"><img/src=x>@example.org',  # the sender used to raise on it, the message stayed pending for ever
    "a;b@example.org",
    "Мария <maria@example.org>",
    "no-at-sign.example.org",
])
async def test_an_address_that_cannot_be_one_recipient_fails_and_the_batch_goes_on(client, settings, sink, bad_addr):
    settings = dataclasses.replace(settings, smtp_url=sink.url)
    bad = await add_raw(bad_addr, "Плохой адрес")
    good = await add_raw("кооператив@example.org", "Хороший адрес")
    assert await service.deliver_pending(settings) == 1
    await asyncio.to_thread(sink.wait_for, 1)
    [envelope] = sink.envelopes
    assert envelope.rcpt_tos == ("кооператив@example.org",) and envelope.message["Subject"] == "Хороший адрес"
    row = await row_of(bad)
    assert row["status"] == "failed" and row["attempts"] == 1 and "не годится для отправки" in row["last_error"]
    assert (await row_of(good))["status"] == "sent"
    # Never tried again.
    await OutboxMessage.update({OutboxMessage.next_attempt_at: row["created_at"]}).where(OutboxMessage.id == bad)
    assert await service.deliver_pending(settings) == 0
    assert (await row_of(bad))["attempts"] == 1 and len(sink.envelopes) == 1


async def test_a_permanent_refusal_of_the_recipient_fails_at_once(client, settings, sink):
    settings = dataclasses.replace(settings, smtp_url=sink.url)
    sink.refuse_recipient("gone@example.org", "550 5.1.1 Нет такого ящика")
    gone = await add_raw("gone@example.org", "Первое")
    ok = await add_raw("ok@example.org", "Второе")
    assert await service.deliver_pending(settings) == 1
    [msg] = await asyncio.to_thread(sink.wait_for, 1)
    assert msg["Subject"] == "Второе"
    row = await row_of(gone)
    assert row["status"] == "failed" and row["attempts"] == 1 and "550" in row["last_error"]
    assert (await row_of(ok))["status"] == "sent"
    await OutboxMessage.update({OutboxMessage.next_attempt_at: row["created_at"]}).where(OutboxMessage.id == gone)
    assert await service.deliver_pending(settings) == 0
    assert (await row_of(gone))["attempts"] == 1


async def test_a_temporary_refusal_of_the_recipient_is_retried(client, settings, sink):
    settings = dataclasses.replace(settings, smtp_url=sink.url)
    sink.refuse_recipient("busy@example.org", "450 4.2.1 Ящик занят")
    busy = await add_raw("busy@example.org", "Позже")
    assert await service.deliver_pending(settings) == 0
    row = await row_of(busy)
    assert row["status"] == "pending" and row["attempts"] == 1 and "450" in row["last_error"]
    assert row["next_attempt_at"] > row["created_at"]
    sink.refuse_recipient("busy@example.org", None)
    await OutboxMessage.update({OutboxMessage.next_attempt_at: row["created_at"]}).where(OutboxMessage.id == busy)
    assert await service.deliver_pending(settings) == 1
    assert (await row_of(busy))["status"] == "sent"


async def test_a_message_that_cannot_be_built_fails_and_the_batch_goes_on(client, settings, sink):
    settings = dataclasses.replace(settings, smtp_url=sink.url)
    broken = await add_raw("a@example.org", "Тема")
    # A header with a line break (stored by an older version): EmailMessage refuses it.
    await OutboxMessage.update({OutboxMessage.subject: "Тема\nBcc: victim@example.org"}).where(
        OutboxMessage.id == broken)
    ok = await add_raw("b@example.org", "Целое")
    assert await service.deliver_pending(settings) == 1
    [msg] = await asyncio.to_thread(sink.wait_for, 1)
    assert msg["Subject"] == "Целое" and msg["Bcc"] is None
    row = await row_of(broken)
    assert row["status"] == "failed" and "Письмо не собрать" in row["last_error"]
    assert (await row_of(ok))["status"] == "sent"


async def test_temporary_failures_give_up_after_max_attempts(client, settings, sink):
    settings = dataclasses.replace(settings, smtp_url=sink.url)
    mid = await add_raw("a@example.org")
    await OutboxMessage.update({OutboxMessage.attempts: service.MAX_ATTEMPTS - 1}).where(OutboxMessage.id == mid)
    sink.set_failure("451 4.3.0 Попробуйте позже")
    assert await service.deliver_pending(settings) == 0
    row = await row_of(mid)
    assert row["status"] == "failed" and row["attempts"] == service.MAX_ATTEMPTS and "451" in row["last_error"]


# --- one-time links leave the stored copy once the message is sent -------------------------------------


def outbox_text(row: dict) -> str:
    return " ".join(str(value) for value in row.values())


async def test_a_sent_registration_link_is_not_kept_in_the_outbox(client, settings, sink):
    from portal.connect import service as connect
    from portal.connect.tables import ConnectRequest

    rows = await ConnectRequest.insert(ConnectRequest(
        coop_name="Кооператив «Заря»", inn="7736050003", contact_name="Мария", email="zarya@example.org",
        phone="+79123456789", union_member="yes", created_at=now())).returning(ConnectRequest.id)
    token = await connect.send_registration_link(settings, rows[0]["id"], {"id": 1, "email": "s@example.org"})
    [row] = await OutboxMessage.select()
    # While pending, the stored message holds the link: it has to be sent, and /dev/mail shows it.
    link = f"{settings.base_url}/join/{token}"
    assert link in row["body_text"]
    r = await client.get("/dev/mail")
    assert f'<a href="{link}">' in r.text and "\x1e" not in r.text
    assert await service.deliver_pending(dataclasses.replace(settings, smtp_url=sink.url)) == 1
    [msg] = await asyncio.to_thread(sink.wait_for, 1)
    assert link in msg.get_content()
    [row] = await OutboxMessage.select()
    assert row["status"] == "sent"
    assert token not in outbox_text(row)
    assert service.HIDDEN in row["body_text"] and "/join/" not in row["body_text"]
    assert "Здравствуйте, Мария!" in row["body_text"]  # the rest of the text stays
    r = await client.get("/dev/mail")
    assert token not in r.text and service.HIDDEN in r.text


async def test_a_sent_recovery_link_is_not_kept_in_the_outbox(client, settings, sink):
    from portal.accounts import service as accounts
    from portal.accounts.tables import Member
    from portal.cooperatives.service import operator

    await Member.insert(Member(cooperative=(await operator())["id"], email="maria@example.org",
                               email_confirmed_at=now(), created_at=now()))
    await accounts.request_recovery(settings, "maria@example.org", cooperative_id=(await operator())["id"])
    [row] = await OutboxMessage.select()
    token = re.search(r"/recover/([A-Za-z0-9_-]+)", row["body_text"]).group(1)
    assert await service.deliver_pending(dataclasses.replace(settings, smtp_url=sink.url)) == 1
    [msg] = await asyncio.to_thread(sink.wait_for, 1)
    assert f"/recover/{token}" in msg.get_content()
    [row] = await OutboxMessage.select()
    assert row["status"] == "sent" and token not in outbox_text(row)


async def test_a_link_in_mail_that_is_given_up_is_hidden_too(client, settings, sink):
    token = secrets.token_urlsafe(32)
    mid = await service.enqueue("gone@example.org", "Ссылка", f"Ссылка: http://x/join/{token}\n", secrets=[token])
    sink.refuse_recipient("gone@example.org")
    assert await service.deliver_pending(dataclasses.replace(settings, smtp_url=sink.url)) == 0
    row = await row_of(mid)
    assert row["status"] == "failed" and token not in outbox_text(row)
