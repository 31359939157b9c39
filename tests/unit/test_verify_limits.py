"""Verifying an uploaded PDF decodes a bounded amount of data, whatever the file holds.

Each bomb is a small PDF (a few hundred bytes to ~100 KB) whose streams inflate to 100 MB or more:
through chained filters, /DecodeParms, one big stream, many streams, XMP metadata, a
cross-reference stream or an object stream. The verification must refuse it with a Russian
reason and never hold more than a few MB (measured with tracemalloc).
"""

from __future__ import annotations

import datetime as dt
import os
import re
import tracemalloc
import zlib

import pytest

from portal.documents import render
from portal.documents.seal import ensure_seal_identity, seal_pdf
from portal.documents.templates import sample_context
from portal.documents.verify import (
    DAMAGED,
    DECODE_LIMIT,
    MAX_DECODED_BYTES,
    NOT_PDF,
    UNKNOWN_FILTER,
    verify_pdf,
)
from tests.unit.test_render import sign_document
from tests.unit.test_signing import scribble_png

MB = 1024 * 1024
PEAK_LIMIT = 4 * MB


def deflate_zeros(size: int) -> bytes:
    """zlib data that inflates to ``size`` zero bytes (made without holding them)."""
    compressor = zlib.compressobj(9)
    block = bytes(MB)
    parts = [compressor.compress(block) for _ in range(size // MB)]
    return b"".join(parts) + compressor.flush()


INFLATES_TO_100_MB = deflate_zeros(100 * MB)
TWICE_DEFLATED = zlib.compress(INFLATES_TO_100_MB, 9)  # a few hundred bytes


def stream(entries: bytes, data: bytes) -> bytes:
    return b"<< " + entries + b" /Length %d >>\nstream\n" % len(data) + data + b"\nendstream"


def raw_pdf(objects: list[bytes]) -> bytes:
    """A one-revision PDF with a classic xref table; object 1 is the catalog."""
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def with_attachment(file_stream: bytes) -> bytes:
    return raw_pdf([
        b"<< /Type /Catalog /Pages 2 0 R /Names << /EmbeddedFiles << /Names [(document.json) 4 0 R] >> >> >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] >>",
        b"<< /Type /Filespec /F (document.json) /EF << /F 5 0 R >> >>",
        file_stream,
    ])


def with_page_contents(contents: list[bytes]) -> bytes:
    refs = b" ".join(b"%d 0 R" % (4 + i) for i in range(len(contents)))
    return raw_pdf([
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents [" + refs + b"] >>",
        *contents,
    ])


def append_revision(pdf: bytes, body: bytes, xref_stream: bytes) -> bytes:
    """``pdf`` with an incremental update: ``body`` (objects) and its cross-reference stream."""
    return pdf + body + xref_stream + b"startxref\n%d\n%%%%EOF\n" % (len(pdf) + len(body))


@pytest.fixture(scope="module")
def genuine(tmp_path_factory) -> bytes:
    """A signed, sealed PDF as the portal issues it (valid attachments: the checks reach the seal)."""
    identity = ensure_seal_identity(tmp_path_factory.mktemp("data"), "ПК «ВОСХОД»")
    when = dt.datetime(2026, 11, 25, 9, 0, tzinfo=dt.timezone.utc)
    document, record = sign_document("pd_consent", sample_context("individual"), os.urandom(32), scribble_png(), when)
    return seal_pdf(render.render_signed_pdf("pd_consent", document, None, [record], "https://x/verify"), identity)


def xref_stream_bomb(pdf: bytes) -> bytes:
    """A new revision whose cross-reference stream inflates to 21 MB (3 million entries)."""
    prev = int(re.findall(rb"startxref\s+(\d+)", pdf)[-1])
    root = re.search(rb"/Root (\d+ \d+ R)", pdf).group(1)
    size = 3_000_000
    data = zlib.compress(bytes(size * 7), 9)
    xref = (b"\n%d 0 obj\n" % (size - 1)
            + stream(b"/Type /XRef /Size %d /W [1 4 2] /Root %s /Prev %d /Filter /FlateDecode" % (size, root, prev),
                     data)
            + b"\nendobj\n")
    return append_revision(pdf, b"\n", xref)


def object_stream_bomb(pdf: bytes) -> bytes:
    """A new revision that moves the catalog into an object stream inflating to 100 MB."""
    prev = int(re.findall(rb"startxref\s+(\d+)", pdf)[-1])
    root_number = int(re.search(rb"/Root (\d+) 0 R", pdf).group(1))
    size = int(re.findall(rb"/Size (\d+)", pdf)[-1])
    objstm, xref = size, size + 1
    header = b"%d 0 " % root_number
    contents = zlib.compressobj(9)
    data = contents.compress(header + b"<< /Type /Catalog /Pages 2 0 R >>")
    data += b"".join(contents.compress(b" " * MB) for _ in range(100)) + contents.flush()
    body = b"\n%d 0 obj\n" % objstm + stream(
        b"/Type /ObjStm /N 1 /First %d /Filter /FlateDecode" % len(header), data) + b"\nendobj\n"
    objstm_offset = len(pdf) + 1
    xref_offset = len(pdf) + len(body)
    entries = (b"\x02" + objstm.to_bytes(4, "big") + b"\x00\x00"
               + b"\x01" + objstm_offset.to_bytes(4, "big") + b"\x00\x00"
               + b"\x01" + xref_offset.to_bytes(4, "big") + b"\x00\x00")
    xref_obj = b"%d 0 obj\n" % xref + stream(
        b"/Type /XRef /Size %d /W [1 4 2] /Index [%d 1 %d 2] /Root %d 0 R /Prev %d"
        % (xref + 1, root_number, objstm, root_number, prev), entries) + b"\nendobj\n"
    return append_revision(pdf, body, xref_obj)


def verify_measured(pdf: bytes):
    """``verify_pdf(pdf)`` and the peak of memory allocated while it ran."""
    verify_pdf(b"%PDF-1.7\n")  # imports pyHanko & co. before measuring
    tracemalloc.start()
    try:
        result = verify_pdf(pdf)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return result, peak


BOMBS = {
    "attachment, chained filters": (
        lambda genuine: with_attachment(stream(b"/Type /EmbeddedFile /Filter [/FlateDecode /FlateDecode]",
                                               TWICE_DEFLATED)), UNKNOWN_FILTER),
    "attachment, DecodeParms": (
        lambda genuine: with_attachment(stream(
            b"/Type /EmbeddedFile /Filter /FlateDecode /DecodeParms << /Predictor 12 /Columns 1 >>",
            INFLATES_TO_100_MB)), UNKNOWN_FILTER),
    "attachment, one stream": (
        lambda genuine: with_attachment(stream(b"/Type /EmbeddedFile /Filter /FlateDecode", INFLATES_TO_100_MB)),
        DECODE_LIMIT),
    "page contents, chained filters": (
        lambda genuine: with_page_contents([stream(b"/Filter [/FlateDecode /FlateDecode]", TWICE_DEFLATED)]),
        UNKNOWN_FILTER),
    "page contents, one stream": (
        lambda genuine: with_page_contents([stream(b"/Filter /FlateDecode", INFLATES_TO_100_MB)]), DECODE_LIMIT),
    "page contents, many small streams": (
        lambda genuine: with_page_contents(
            [stream(b"/Filter /FlateDecode", deflate_zeros(MB))] * (MAX_DECODED_BYTES // MB + 1)),
        DECODE_LIMIT),
    "XMP metadata": (
        lambda genuine: raw_pdf([b"<< /Type /Catalog /Pages 2 0 R /Metadata 3 0 R >>",
                                 b"<< /Type /Pages /Kids [] /Count 0 >>",
                                 stream(b"/Type /Metadata /Subtype /XML /Filter /FlateDecode", INFLATES_TO_100_MB)]),
        DECODE_LIMIT),
    "signed PDF + cross-reference stream": (xref_stream_bomb, DECODE_LIMIT),
    "signed PDF + object stream": (object_stream_bomb, DECODE_LIMIT),
}


@pytest.mark.parametrize("name", list(BOMBS))
def test_decompression_bombs_refused_with_little_memory(genuine, name):
    build, reason = BOMBS[name]
    pdf = build(genuine)
    assert len(pdf) < 200 * 1024
    result, peak = verify_measured(pdf)
    assert (result.valid, result.refused, result.reason) == (False, True, reason)
    assert peak < PEAK_LIMIT, f"{peak / MB:.1f} MB"


def test_genuine_pdf_still_verifies(genuine):
    result = verify_pdf(genuine)
    assert result.valid and not result.refused, result.reason
    # An appended revision that is harmless keeps the attachments readable; only the seal fails.
    prev = int(re.findall(rb"startxref\s+(\d+)", genuine)[-1])
    root = re.search(rb"/Root (\d+ \d+ R)", genuine).group(1)
    size = int(re.findall(rb"/Size (\d+)", genuine)[-1])
    entries = b"\x01" + (len(genuine) + 1).to_bytes(4, "big") + b"\x00\x00"
    xref = b"\n%d 0 obj\n" % size + stream(
        b"/Type /XRef /Size %d /W [1 4 2] /Index [%d 1] /Root %s /Prev %d" % (size + 1, size, root, prev),
        entries) + b"\nendobj\n"
    appended = verify_pdf(append_revision(genuine, b"", xref))
    assert not appended.valid and not appended.refused and appended.document_hash == result.document_hash


def test_largest_signature_image_still_verifies(tmp_path):
    """Two signers with images of the largest size allowed (2000×1000 px) stay within the limits."""
    from portal.documents.signing import b64encode, key_fingerprint, private_key_from_seed, public_key_raw
    from portal.documents.signing import sign, signed_message, validate_signature_png

    identity = ensure_seal_identity(tmp_path, "ПК «ВОСХОД»")
    when = dt.datetime(2026, 11, 25, 9, 0, tzinfo=dt.timezone.utc)
    png = scribble_png(2000, 1000)
    document, member = sign_document("pd_consent", sample_context("individual"), os.urandom(32), png, when)
    seed = os.urandom(32)
    public = public_key_raw(private_key_from_seed(seed))
    other_png = scribble_png(2000, 1000, background=(255, 255, 255, 255))
    image_hash = validate_signature_png(other_png)
    operator = render.SignatureRecord(
        full_name="Петров Пётр Петрович", role="Председатель совета ПК «ВОСХОД»", email="info@voskhod.coop",
        key_fingerprint=key_fingerprint(public), public_key_b64=b64encode(public),
        signature_b64=b64encode(sign(seed, signed_message(member.document_hash, image_hash))),
        image_sha256=image_hash, image_png=other_png, signed_at=when + dt.timedelta(days=1), ip="", user_agent="",
        document_hash=member.document_hash,
    )
    pdf = seal_pdf(render.render_signed_pdf("pd_consent", document, None, [member, operator], "https://x/verify"),
                   identity)
    result = verify_pdf(pdf)
    assert result.valid, result.reason
    assert len(result.signers) == 2


@pytest.mark.parametrize("data", [b"", b"hello", b"\x89PNG\r\n\x1a\n" + bytes(100), "not bytes"])
def test_not_a_pdf_refused(data):
    result = verify_pdf(data)
    assert (result.valid, result.refused, result.reason) == (False, True, NOT_PDF)


def test_damaged_pdf_refused(genuine):
    for damaged in (b"%PDF-1.7\n%garbage", genuine[: len(genuine) // 3]):
        result = verify_pdf(damaged)
        assert (result.valid, result.refused, result.reason) == (False, True, DAMAGED)
