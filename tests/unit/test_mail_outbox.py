"""Pure parts of the outbox: secrets in the stored body, addresses the sender accepts, final SMTP errors."""

from __future__ import annotations

import aiosmtplib
import pytest

from portal.mail import service
from portal.mail.service import HIDDEN, address_problem, pack_body, permanent_reason, redact, unpack_body

TOKEN = "Zq3" + "k" * 40


def test_a_body_without_secrets_is_stored_as_is():
    assert pack_body("Текст\n") == "Текст\n"
    assert unpack_body("Текст\n") == ("Текст\n", [])


def test_secrets_travel_with_the_body_and_come_back():
    body = f"Ссылка:\n\nhttp://x/join/{TOKEN}\n"
    stored = pack_body(body, [TOKEN, TOKEN])
    assert stored.startswith(body)  # the link is still there while the message waits
    assert unpack_body(stored) == (body, [TOKEN])


def test_the_separator_cannot_come_from_the_text():
    body, secrets = unpack_body(pack_body(f"a{service.SECRETS_SEPARATOR}b http://x/{TOKEN}", [TOKEN]))
    assert body == f"ab http://x/{TOKEN}" and secrets == [TOKEN]


@pytest.mark.parametrize("stored", ["a\x1eb", "a\x1e{}", "a\x1e[1]"])
def test_a_stray_separator_in_older_data_is_just_text(stored):
    assert unpack_body(stored) == (stored, [])


@pytest.mark.parametrize("secret", ["short", "not-in-the-body-0123456789"])
def test_a_secret_must_be_a_token_in_the_body(secret):
    with pytest.raises(ValueError):
        pack_body(f"http://x/join/{TOKEN} short", [secret])


def test_redact_replaces_the_whole_link():
    text = f"Перейдите по ссылке:\n\nhttp://x/join/{TOKEN}\n\nСсылка действует 7 дней."
    assert redact(text, [TOKEN]) == f"Перейдите по ссылке:\n\n{HIDDEN}\n\nСсылка действует 7 дней."
    assert redact("без ссылок", [TOKEN]) == "без ссылок"


@pytest.mark.parametrize("addr", ["a@example.org", "кооператив@example.org", "staff@voskhod.localhost",
                                  "o'brien+x@xn--j1aiae.xn--p1ai", "root@localhost"])
def test_addresses_the_sender_accepts(addr):
    assert address_problem(addr) is None


@pytest.mark.parametrize("addr", ["postmaster,someone@example.org", '"><img/src=x>@example.org',
                                  '"john"@example.org', "Мария <m@example.org>", "a@b@example.org", "example.org",
                                  "a@", "@example.org", "a..b@example.org", "a@exa mple.org", "a@пример.рф",
                                  "a@[127.0.0.1]", "a@-x.org", "a\n@example.org"])
def test_addresses_the_sender_refuses(addr):
    assert address_problem(addr)


def refused(code: int) -> aiosmtplib.SMTPRecipientsRefused:
    return aiosmtplib.SMTPRecipientsRefused([aiosmtplib.SMTPRecipientRefused(code, "no", "a@example.org")])


@pytest.mark.parametrize("exc", [refused(550), refused(553), aiosmtplib.SMTPDataError(554, "spam"),
                                 aiosmtplib.SMTPRecipientRefused(550, "no", "a@example.org")])
def test_final_refusals(exc):
    assert permanent_reason(exc, "a@example.org")


@pytest.mark.parametrize("exc", [
    refused(450), aiosmtplib.SMTPDataError(451, "later"), ConnectionRefusedError(), TimeoutError(),
    aiosmtplib.SMTPServerDisconnected("gone"), aiosmtplib.SMTPConnectError("no"),
    # The relay's own problems: fixed by the operator, then the waiting mail goes out.
    aiosmtplib.SMTPAuthenticationError(535, "bad password"), aiosmtplib.SMTPSenderRefused(553, "no", "from@x"),
    aiosmtplib.SMTPNotSupported("no STARTTLS"),
])
def test_temporary_failures(exc):
    assert permanent_reason(exc, "a@example.org") is None


def test_a_cyrillic_mailbox_without_smtputf8_is_final():
    assert permanent_reason(aiosmtplib.SMTPNotSupported("no SMTPUTF8"), "почта@example.org")
