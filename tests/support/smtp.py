"""An SMTP server on 127.0.0.1 that keeps every message it receives.

    with SmtpSink() as sink:
        os.environ["PORTAL_SMTP_URL"] = sink.url     # smtp://127.0.0.1:PORT
        ...
        [msg] = sink.wait_for(1)
        assert msg["To"] == "chair@example.org"
        body = msg.get_body(("plain",)).get_content()

``set_failure("451 4.3.0 Try again later")`` makes it refuse every message (an
outage the outbox must survive); ``set_failure(None)`` heals it.
``refuse_recipient("gone@example.org")`` answers RCPT TO for that address with
``550 5.1.1`` (or the reply given) while other recipients are accepted;
``refuse_recipient(addr, None)`` accepts it again. ``stop()`` then ``start()``
again keeps the same port.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser

from aiosmtpd.controller import Controller

from .ports import free_port

__all__ = ["Envelope", "SmtpSink"]


@dataclass(frozen=True)
class Envelope:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    message: EmailMessage


class _Handler:
    def __init__(self, sink: "SmtpSink") -> None:
        self.sink = sink

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options) -> str:  # noqa: N802
        refusal = self.sink._refused.get(address.lower())
        if refusal is not None:
            return refusal
        # What aiosmtpd does without this hook.
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802 (aiosmtpd API)
        failure = self.sink._failure
        if failure is not None:
            return failure
        raw = envelope.original_content or envelope.content
        if isinstance(raw, str):
            raw = raw.encode("utf-8")
        # SMTP lines end in CRLF; normalise so get_content() gives plain "\n" text.
        raw = raw.replace(b"\r\n", b"\n")
        message = BytesParser(policy=policy.default).parsebytes(raw)
        self.sink._add(Envelope(envelope.mail_from, tuple(envelope.rcpt_tos), message))
        return "250 Message accepted for delivery"


class SmtpSink:
    def __init__(self, host: str = "127.0.0.1", port: int | None = None) -> None:
        self.host = host
        self.port = port or free_port(host)
        self._cond = threading.Condition()
        self._envelopes: list[Envelope] = []
        self._failure: str | None = None
        self._refused: dict[str, str] = {}
        self._controller: Controller | None = None

    # --- lifecycle ------------------------------------------------------------
    def start(self) -> "SmtpSink":
        if self._controller is None:
            controller = Controller(
                _Handler(self), hostname=self.host, port=self.port,
                enable_SMTPUTF8=True, ready_timeout=10,
            )
            controller.start()
            self._controller = controller
        return self

    def stop(self) -> None:
        if self._controller is not None:
            controller, self._controller = self._controller, None
            controller.stop()

    def __enter__(self) -> "SmtpSink":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"smtp://{self.host}:{self.port}"

    # --- behaviour ------------------------------------------------------------
    def set_failure(self, reply: str | None) -> None:
        """Answer DATA with ``reply`` (e.g. ``"451 4.3.0 Try again later"``) instead of 250."""
        self._failure = reply

    def refuse_recipient(self, address: str, reply: str | None = "550 5.1.1 Mailbox unavailable") -> None:
        """Answer RCPT TO ``address`` with ``reply`` (``None``: accept it again); other recipients still pass."""
        if reply is None:
            self._refused.pop(address.lower(), None)
        else:
            self._refused[address.lower()] = reply

    # --- received mail ----------------------------------------------------------
    def _add(self, envelope: Envelope) -> None:
        with self._cond:
            self._envelopes.append(envelope)
            self._cond.notify_all()

    @property
    def messages(self) -> list[EmailMessage]:
        """A snapshot of the messages received so far, oldest first."""
        with self._cond:
            return [e.message for e in self._envelopes]

    @property
    def envelopes(self) -> list[Envelope]:
        """Messages with their SMTP envelope (MAIL FROM, RCPT TO)."""
        with self._cond:
            return list(self._envelopes)

    def wait_for(self, count: int, timeout: float = 10) -> list[EmailMessage]:
        """Block until at least ``count`` messages arrived; return them all.

        Raises TimeoutError (with what did arrive) after ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self._envelopes) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    subjects = [e.message.get("Subject") for e in self._envelopes]
                    raise TimeoutError(
                        f"expected {count} message(s) within {timeout}s, got {len(subjects)}: {subjects}"
                    )
                self._cond.wait(remaining)
            return [e.message for e in self._envelopes]

    def clear(self) -> None:
        with self._cond:
            self._envelopes.clear()
