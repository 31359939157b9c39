"""Mail through an outbox: enqueue inside the business transaction, deliver with retries, exactly once."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import secrets
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from urllib.parse import urlparse

import aiosmtplib

from portal.clock import now
from portal.mail.tables import OutboxMessage
from portal.settings import Settings

log = logging.getLogger("portal.mail")

MAX_ATTEMPTS = 8
CLAIM_SECONDS = 120


def backoff(attempts: int) -> dt.timedelta:
    """Delay before the next try after `attempts` failures: 10 s, 20 s, 40 s … capped at one hour."""
    return dt.timedelta(seconds=min(10 * 2 ** max(attempts - 1, 0), 3600))


async def enqueue(to: str, subject: str, body: str) -> int:
    """Store a message in the outbox; call it inside the transaction of the change that causes it."""
    rows = await OutboxMessage.insert(
        OutboxMessage(
            to_addr=to,
            subject=subject,
            body_text=body,
            status="pending",
            attempts=0,
            next_attempt_at=now(),
            created_at=now(),
        )
    ).returning(OutboxMessage.id)
    return rows[0]["id"]


def build_message(settings: Settings, row: dict) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = settings.mail_from
    msg["To"] = row["to_addr"]
    msg["Subject"] = row["subject"]
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = make_msgid(domain="voskhod.localhost")
    msg.set_content(row["body_text"])
    return msg


async def _claim(row_id: int) -> str | None:
    """Take one message for sending; only one process wins the claim."""
    token = secrets.token_hex(16)
    t = now()
    await OutboxMessage.update(
        {OutboxMessage.claim_token: token, OutboxMessage.claimed_until: t + dt.timedelta(seconds=CLAIM_SECONDS)}
    ).where(
        (OutboxMessage.id == row_id)
        & (OutboxMessage.status == "pending")
        & ((OutboxMessage.claimed_until.is_null()) | (OutboxMessage.claimed_until < t))
    )
    won = await OutboxMessage.exists().where((OutboxMessage.id == row_id) & (OutboxMessage.claim_token == token))
    return token if won else None


async def _send(settings: Settings, msg: EmailMessage) -> None:
    url = urlparse(settings.smtp_url)
    await aiosmtplib.send(
        msg,
        hostname=url.hostname or "127.0.0.1",
        port=url.port or (465 if url.scheme == "smtps" else 25),
        username=url.username or None,
        password=url.password or None,
        use_tls=url.scheme == "smtps",
        start_tls=False if url.scheme == "smtp" and not url.username else None,
        timeout=20,
    )


async def deliver_pending(settings: Settings, limit: int = 50) -> int:
    """Send what is due; returns the number of messages sent. Without SMTP, mail stays in the outbox."""
    if not settings.smtp_url:
        return 0
    due = await (
        OutboxMessage.select(OutboxMessage.id)
        .where((OutboxMessage.status == "pending") & (OutboxMessage.next_attempt_at <= now()))
        .order_by(OutboxMessage.id)
        .limit(limit)
    )
    sent = 0
    for item in due:
        token = await _claim(item["id"])
        if token is None:
            continue
        row = await OutboxMessage.select().where(OutboxMessage.id == item["id"]).first()
        try:
            await _send(settings, build_message(settings, row))
        except (aiosmtplib.SMTPException, OSError, asyncio.TimeoutError) as exc:
            attempts = row["attempts"] + 1
            await OutboxMessage.update(
                {
                    OutboxMessage.attempts: attempts,
                    OutboxMessage.last_error: str(exc)[:1000],
                    OutboxMessage.next_attempt_at: now() + backoff(attempts),
                    OutboxMessage.status: "failed" if attempts >= MAX_ATTEMPTS else "pending",
                    OutboxMessage.claimed_until: None,
                    OutboxMessage.claim_token: None,
                }
            ).where((OutboxMessage.id == row["id"]) & (OutboxMessage.claim_token == token))
            log.warning("mail %s to %s not sent (attempt %s): %s", row["id"], row["to_addr"], attempts, exc)
            continue
        await OutboxMessage.update(
            {
                OutboxMessage.status: "sent",
                OutboxMessage.sent_at: now(),
                OutboxMessage.attempts: row["attempts"] + 1,
                OutboxMessage.claimed_until: None,
            }
        ).where((OutboxMessage.id == row["id"]) & (OutboxMessage.claim_token == token))
        sent += 1
    return sent


async def run_sender(settings: Settings, stop: asyncio.Event) -> None:
    """The sender loop (inside `portal serve` and as `portal worker`)."""
    while not stop.is_set():
        try:
            await deliver_pending(settings)
        except Exception:  # the loop must survive a database hiccup
            log.exception("mail sender failed")
        try:
            await asyncio.wait_for(stop.wait(), timeout=settings.mail_poll_seconds)
        except asyncio.TimeoutError:
            pass
