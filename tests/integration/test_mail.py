"""The outbox: delivery to a real SMTP server (aiosmtpd), retries after an outage, exactly once."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from portal import db
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
