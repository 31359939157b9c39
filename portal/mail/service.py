"""Mail through an outbox: enqueue inside the business transaction, deliver with retries, exactly once.

A message that can never be delivered (a broken address, a permanent 5xx refusal of the recipient, a
message that cannot be built) is marked `failed` at once with the reason in `last_error`; temporary
failures (4xx, no connection, timeout) are retried with a growing delay, at most MAX_ATTEMPTS times.
One bad message never stops the others.

Secrets (one-time link tokens) given to `enqueue` stay in the stored body only while the message is
pending: once it is sent or given up, every word containing a secret is replaced by HIDDEN.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import re
import secrets as _secrets
import string
import unicodedata
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr
from typing import Iterable
from urllib.parse import urlparse

import aiosmtplib

from portal.clock import now
from portal.mail.render import render_mail
from portal.mail.tables import OutboxMessage
from portal.settings import Settings

log = logging.getLogger("portal.mail")

MAX_ATTEMPTS = 8
CLAIM_SECONDS = 120
HIDDEN = "[ссылка скрыта после отправки]"
# Between the body and the JSON list of its secrets in `body_text` while the message is pending.
# ASCII «record separator»: never part of a mail text (enqueue removes it from the body).
SECRETS_SEPARATOR = "\x1e"
MIN_SECRET_LENGTH = 16  # a secret is a random token, not a word that also occurs in the text


def backoff(attempts: int) -> dt.timedelta:
    """Delay before the next try after `attempts` failures: 10 s, 20 s, 40 s … capped at one hour."""
    return dt.timedelta(seconds=min(10 * 2 ** max(attempts - 1, 0), 3600))


# --- the stored body and its secrets ------------------------------------------------------------------


def pack_body(body: str, secrets: Iterable[str] = ()) -> str:
    """What `body_text` holds while pending: the body, then (if any) the separator and the secrets."""
    body = body.replace(SECRETS_SEPARATOR, "")
    secrets = list(dict.fromkeys(secrets))
    for secret in secrets:
        if len(secret) < MIN_SECRET_LENGTH or secret not in body:
            raise ValueError("a secret must be a token of at least 16 characters that occurs in the body")
    return body + SECRETS_SEPARATOR + json.dumps(secrets) if secrets else body


def unpack_body(stored: str) -> tuple[str, list[str]]:
    """The body as sent and the secrets it holds (a stray separator in older data is just text)."""
    body, separator, tail = (stored or "").partition(SECRETS_SEPARATOR)
    if not separator:
        return body, []
    try:
        secrets = json.loads(tail)
    except ValueError:
        secrets = None
    if not (isinstance(secrets, list) and all(isinstance(s, str) for s in secrets)):
        return stored, []
    return body, secrets


def visible_body(stored: str) -> str:
    return unpack_body(stored)[0]


def redact(text: str, secrets: Iterable[str]) -> str:
    """Every word (link) containing a secret replaced by HIDDEN."""
    for secret in secrets:
        text = re.sub(r"\S*" + re.escape(secret) + r"\S*", HIDDEN, text)
    return text


# --- enqueue ---------------------------------------------------------------------------------------------


async def enqueue(to: str, subject: str, body: str, *, secrets: Iterable[str] = ()) -> int:
    """Store a message in the outbox; call it inside the transaction of the change that causes it.

    `secrets` are tokens of one-time links in the body: kept while the message waits, hidden once it is
    sent or given up.
    """
    rows = await OutboxMessage.insert(
        OutboxMessage(
            to_addr=to.strip(),
            subject=" ".join(subject.replace(SECRETS_SEPARATOR, "").split())[:500],
            body_text=pack_body(body, secrets),
            status="pending",
            attempts=0,
            next_attempt_at=now(),
            created_at=now(),
        )
    ).returning(OutboxMessage.id)
    return rows[0]["id"]


async def send_template(settings: Settings, to: str, template_name: str, context: dict, *,
                        secrets: Iterable[str] = ()) -> int:
    """Render `portal/templates/<template_name>` (blocks subject and body) and enqueue it."""
    subject, body = render_mail(settings, template_name, context)
    return await enqueue(to, subject, body, secrets=secrets)


# --- building and sending --------------------------------------------------------------------------------


class Undeliverable(Exception):
    """The message cannot be delivered as it is; trying again will not help. The text goes to last_error."""


# What may stand before the @ unquoted (RFC 5322 atext and the dot); letters beyond ASCII need SMTPUTF8.
_LOCAL_ASCII = frozenset(string.ascii_letters + string.digits + "!#$%&'*+-/=?^_`{|}~.")
_DOMAIN_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")


def address_problem(addr: str) -> str | None:
    """Why `addr` cannot be one recipient in the To header and the SMTP envelope, or None.

    Deliberately looser than `clean_email` (forms): any domain in ASCII (IDNA) form, even .localhost
    of a development relay, but exactly one mailbox, nothing quoted, nothing that splits into two.
    """
    local, at, domain = addr.rpartition("@")
    if not at or not local or not domain or "@" in local:
        return "нет одного знака @ между именем и доменом"
    odd = [c for c in local if not (c in _LOCAL_ASCII or (not c.isascii() and unicodedata.category(c)[0] in "LMN"))]
    if odd:
        return "недопустимые символы до @: " + " ".join(repr(c) for c in dict.fromkeys(odd))
    if local.startswith(".") or local.endswith(".") or ".." in local or len(local.encode()) > 64:
        return "неверное имя до @"
    if len(addr.encode()) > 254 or not all(_DOMAIN_LABEL.fullmatch(label) for label in domain.split(".")):
        return "неверный домен"
    return None


def _message_id_domain(mail_from: str) -> str:
    domain = parseaddr(mail_from)[1].rpartition("@")[2]
    return domain if domain and domain.isascii() else "localhost"


def build_message(settings: Settings, row: dict) -> EmailMessage:
    """The message to send; raises Undeliverable when it cannot be built as stored."""
    problem = address_problem(row["to_addr"])
    if problem:
        raise Undeliverable(f"Адрес получателя {row['to_addr']!r} не годится для отправки: {problem}.")
    try:
        msg = EmailMessage()
        msg["From"] = settings.mail_from
        msg["To"] = row["to_addr"]
        msg["Subject"] = row["subject"]
        msg["Date"] = formatdate(localtime=False)
        msg["Message-ID"] = make_msgid(domain=_message_id_domain(settings.mail_from))
        msg.set_content(visible_body(row["body_text"]))
    except Exception as exc:  # a header with a line break, a body that cannot be encoded …
        raise Undeliverable(f"Письмо не собрать: {type(exc).__name__}: {exc}") from exc
    return msg


def permanent_reason(exc: BaseException, to_addr: str) -> str | None:
    """Why an SMTP failure is final for this message, or None when it is worth trying again later.

    Final: the server refuses this recipient or this message with 5xx, or the address needs SMTPUTF8 and
    the server lacks it. Everything about the server itself (no connection, timeout, 4xx, refused login
    or sender) is temporary: once the operator fixes the relay, the waiting mail goes out.
    """
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        if exc.recipients and all(500 <= r.code < 600 for r in exc.recipients):
            return "SMTP-сервер окончательно отказал получателю: " + "; ".join(
                f"{r.code} {r.message}" for r in exc.recipients)
    elif isinstance(exc, (aiosmtplib.SMTPRecipientRefused, aiosmtplib.SMTPDataError)):
        if 500 <= exc.code < 600:
            return f"SMTP-сервер окончательно отказал: {exc.code} {exc.message}"
    elif isinstance(exc, aiosmtplib.SMTPNotSupported) and not to_addr.isascii():
        return f"SMTP-сервер не принимает адреса с нелатинскими буквами (нет SMTPUTF8): {exc}"
    return None


async def _send(settings: Settings, msg: EmailMessage, to_addr: str) -> None:
    url = urlparse(settings.smtp_url)
    await aiosmtplib.send(
        msg,
        recipients=[to_addr],  # the envelope is exactly the one stored address, whatever the headers say
        hostname=url.hostname or "127.0.0.1",
        port=url.port or (465 if url.scheme == "smtps" else 25),
        username=url.username or None,
        password=url.password or None,
        use_tls=url.scheme == "smtps",
        start_tls=False if url.scheme == "smtp" and not url.username else None,
        timeout=20,
    )


# --- the sender -------------------------------------------------------------------------------------------


async def _claim(row_id: int) -> str | None:
    """Take one message for sending; only one process wins the claim."""
    token = _secrets.token_hex(16)
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


async def _finish(row: dict, claim: str, status: str, error: str = "") -> None:
    """Record the last attempt of a message (sent or failed): its secrets leave the stored copy."""
    body, secrets = unpack_body(row["body_text"])
    values = {
        OutboxMessage.status: status,
        OutboxMessage.attempts: row["attempts"] + 1,
        OutboxMessage.subject: redact(row["subject"], secrets),
        OutboxMessage.body_text: redact(body, secrets),
        OutboxMessage.last_error: redact(error, secrets)[:1000],
        OutboxMessage.claimed_until: None,
    }
    if status == "sent":
        values[OutboxMessage.sent_at] = now()
    await OutboxMessage.update(values).where((OutboxMessage.id == row["id"]) & (OutboxMessage.claim_token == claim))


async def _retry_later(row: dict, claim: str, exc: BaseException) -> None:
    attempts = row["attempts"] + 1
    if attempts >= MAX_ATTEMPTS:
        await _finish(row, claim, "failed", f"Не отправлено за {attempts} попыток, последняя ошибка: {exc}")
        log.error("mail %s to %s failed after %s attempts: %s", row["id"], row["to_addr"], attempts, exc)
        return
    await OutboxMessage.update(
        {
            OutboxMessage.attempts: attempts,
            OutboxMessage.last_error: str(exc)[:1000],
            OutboxMessage.next_attempt_at: now() + backoff(attempts),
            OutboxMessage.claimed_until: None,
            OutboxMessage.claim_token: None,
        }
    ).where((OutboxMessage.id == row["id"]) & (OutboxMessage.claim_token == claim))
    log.warning("mail %s to %s not sent (attempt %s): %s", row["id"], row["to_addr"], attempts, exc)


async def _deliver_one(settings: Settings, row: dict, claim: str) -> bool:
    """Try one claimed message; True when it was sent."""
    try:
        msg = build_message(settings, row)
        await _send(settings, msg, row["to_addr"])
    except Undeliverable as exc:
        reason = str(exc)
    except (aiosmtplib.SMTPException, OSError, asyncio.TimeoutError) as exc:
        reason = permanent_reason(exc, row["to_addr"])
        if reason is None:
            await _retry_later(row, claim, exc)
            return False
    except Exception as exc:  # e.g. a message that cannot be serialised for SMTP: the same on every try
        log.exception("mail %s: unexpected error while sending", row["id"])
        reason = f"Письмо не отправить: {type(exc).__name__}: {exc}"
    else:
        await _finish(row, claim, "sent")
        return True
    await _finish(row, claim, "failed", reason)
    log.error("mail %s to %s will not be sent: %s", row["id"], row["to_addr"], reason)
    return False


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
        claim = await _claim(item["id"])
        if claim is None:
            continue
        row = await OutboxMessage.select().where(OutboxMessage.id == item["id"]).first()
        if row is not None and await _deliver_one(settings, row, claim):
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


async def recent_messages(limit: int = 200) -> list[dict]:
    """The newest messages of the outbox as a reader should see them (for /dev/mail)."""
    rows = await OutboxMessage.select().order_by(OutboxMessage.id, ascending=False).limit(limit)
    return [{**row, "body_text": visible_body(row["body_text"])} for row in rows]
