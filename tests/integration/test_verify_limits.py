"""/verify over HTTP: files that cannot be checked are refused at the file field (422); the
signing time of a verified document is shown in Moscow time."""

from __future__ import annotations

import datetime as dt
import html
import os
import re

from portal.documents import render
from portal.documents.seal import ensure_seal_identity, seal_pdf
from portal.documents.templates import sample_context
from portal.documents.verify import DECODE_LIMIT, NOT_PDF, UNKNOWN_FILTER
from tests.conftest import csrf_token
from tests.unit.test_render import sign_document
from tests.unit.test_signing import scribble_png
from tests.unit.test_verify_limits import INFLATES_TO_100_MB, TWICE_DEFLATED, stream, with_attachment


async def upload(client, content: bytes, name: str = "document.pdf"):
    token = await csrf_token(client)
    return await client.post("/verify", data={"_csrf_token": token},
                             files={"file": (name, content, "application/pdf")})


def file_field(page: str) -> str:
    return re.search(r'<div class="field[^"]*"><label for="file">.*?</div>', page, re.S).group(0)


async def test_files_that_cannot_be_checked_are_refused_at_the_field(client):
    cases = [
        (b"hello, I am not a PDF", NOT_PDF),
        (b"\x89PNG\r\n\x1a\n" + bytes(64), NOT_PDF),
        (with_attachment(stream(b"/Type /EmbeddedFile /Filter [/FlateDecode /FlateDecode]", TWICE_DEFLATED)),
         UNKNOWN_FILTER),
        (with_attachment(stream(b"/Type /EmbeddedFile /Filter /FlateDecode", INFLATES_TO_100_MB)), DECODE_LIMIT),
    ]
    for content, reason in cases:
        r = await upload(client, content)
        assert r.status_code == 422, reason
        field = file_field(r.text)
        assert 'class="field invalid"' in field and 'aria-invalid="true"' in field
        assert f'<p class="field-error" id="err-file" role="alert">{html.escape(reason)}</p>' in field
        assert 'id="verify-result"' not in r.text  # no verdict on a document: nothing was checked
    r = await upload(client, b"")
    assert r.status_code == 422 and "Выберите PDF-файл документа." in file_field(r.text)


async def test_signing_time_in_moscow_time(client, settings):
    identity = ensure_seal_identity(settings.data_dir, settings.operator.name_short)  # the portal's own seal
    when = dt.datetime(2026, 12, 2, 0, 48, 30, 123456, tzinfo=dt.timezone.utc)
    document, record = sign_document("pd_consent", sample_context("individual"), os.urandom(32), scribble_png(), when)
    pdf = seal_pdf(render.render_signed_pdf("pd_consent", document, None, [record], "http://x/verify"), identity)
    r = await upload(client, pdf)
    assert r.status_code == 200 and "Документ действителен" in r.text
    result = re.search(r'<section class="card verify-result ok" id="verify-result">.*?</section>', r.text,
                       re.S).group(0)
    result = " ".join(result.split())  # as the browser shows it
    assert re.search(r"Подпись 1: [^<]*, 02\.12\.2026 03:48 МСК</p>", result)
    assert "2026-12-02T00:48" not in result and "UTC" not in result
