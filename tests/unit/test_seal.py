"""The operator's PAdES seal: one changed byte anywhere in an issued PDF and verification fails."""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import re
import shutil
import stat
import subprocess

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pypdf import PdfReader

from portal.documents import seal
from portal.documents.seal import (
    NO_SEAL,
    SEAL_FIELD,
    SealIdentityError,
    check_seal,
    ensure_seal_identity,
    seal_pdf,
)
from portal.documents.verify import verify_pdf
from tests.unit.test_render import poppler
from tests.unit.test_verify_pdf import build_pdf, case, seal_identity  # noqa: F401 (fixtures)

needs_poppler = pytest.mark.skipif(
    shutil.which("pdfsig") is None or shutil.which("pdfdetach") is None, reason="poppler-utils missing"
)

OPERATOR = "ПК «ВОСХОД»"


# --------------------------------------------------------------------------- identity


def test_identity_generated_once_and_reused(tmp_path):
    identity = ensure_seal_identity(tmp_path, OPERATOR)
    key_file, cert_file = tmp_path / "seal" / "operator.key.pem", tmp_path / "seal" / "operator.crt.pem"
    assert identity.key_path == key_file and identity.certificate_path == cert_file
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    cert_bytes = cert_file.read_bytes()
    assert identity.certificate_pem == cert_bytes

    certificate = x509.load_pem_x509_certificate(cert_bytes)
    assert isinstance(certificate.public_key(), ec.EllipticCurvePublicKey)
    assert certificate.public_key().curve.name == "secp256r1"
    for oid, value in ((NameOID.COMMON_NAME, OPERATOR), (NameOID.ORGANIZATION_NAME, OPERATOR),
                       (NameOID.COUNTRY_NAME, "RU")):
        assert [a.value for a in certificate.subject.get_attributes_for_oid(oid)] == [value]
    assert certificate.issuer == certificate.subject
    lifetime = certificate.not_valid_after_utc - certificate.not_valid_before_utc
    assert dt.timedelta(days=3650) <= lifetime <= dt.timedelta(days=3654)
    assert identity.subject_name == OPERATOR
    assert len(identity.certificate_sha256) == 64

    assert ensure_seal_identity(tmp_path, OPERATOR) is identity  # cached per directory
    seal._identities.clear()  # a new process: loaded from the files, not generated again
    again = ensure_seal_identity(tmp_path, "Другое имя")
    assert again is not identity
    assert again.certificate_pem == cert_bytes == cert_file.read_bytes()
    assert again.certificate_sha256 == identity.certificate_sha256
    assert again.subject_name == OPERATOR  # an existing identity is kept as is
    assert again.private_key.private_numbers() == identity.private_key.private_numbers()
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600


def test_identity_certificate_without_key_refused(tmp_path):
    ensure_seal_identity(tmp_path, OPERATOR)
    (tmp_path / "seal" / "operator.key.pem").unlink()
    seal._identities.clear()
    with pytest.raises(SealIdentityError):
        ensure_seal_identity(tmp_path, OPERATOR)


def test_identity_with_foreign_certificate_refused(tmp_path):
    ensure_seal_identity(tmp_path / "a", OPERATOR)
    ensure_seal_identity(tmp_path / "b", OPERATOR)
    shutil.copy(tmp_path / "b" / "seal" / "operator.crt.pem", tmp_path / "a" / "seal" / "operator.crt.pem")
    seal._identities.clear()
    with pytest.raises(SealIdentityError):
        ensure_seal_identity(tmp_path / "a", OPERATOR)


# --------------------------------------------------------------------------- sealing


@needs_poppler
def test_sealed_pdf_keeps_attachments_and_verifies(case, tmp_path):  # noqa: F811
    sealed, unsealed = case["pdf"], case["unsealed"]
    assert sealed.startswith(unsealed)  # an incremental update: the rendered bytes stay as they are
    result = verify_pdf(sealed)
    assert result.valid, result.reason
    assert result.seal.valid and result.seal.certificate_sha256 == case["identity"].certificate_sha256
    assert result.seal.signed_at is not None

    listing = poppler("pdfdetach", "-list", data=sealed, tmp_path=tmp_path)
    assert listing == poppler("pdfdetach", "-list", data=unsealed, tmp_path=tmp_path)
    assert "3 embedded files" in listing
    for name in ("document.json", "signatures.json", "signature-1.png"):
        assert name in listing
        assert PdfReader(io.BytesIO(sealed)).attachments[name] == PdfReader(io.BytesIO(unsealed)).attachments[name]

    path = tmp_path / "sealed.pdf"
    path.write_bytes(sealed)
    info = subprocess.run(["pdfsig", str(path)], capture_output=True, text=True, check=True).stdout
    assert len(re.findall(r"^Signature #\d+:", info, flags=re.M)) == 1
    assert f"Signature Field Name: {SEAL_FIELD}" in info
    assert f"Common Name: {OPERATOR}" in info
    assert "Total document signed" in info
    assert "Signature is Valid" in info
    assert "SHA-256" in info


def test_sealed_pdf_stays_pdf_a_3b(case):  # noqa: F811
    """The seal must not break what the renderer made: PDF 1.7, PDF/A-3B, Info == XMP."""
    sealed, unsealed = case["pdf"], case["unsealed"]
    new, old = PdfReader(io.BytesIO(sealed)), PdfReader(io.BytesIO(unsealed))
    assert sealed.startswith(b"%PDF-1.7")
    root = new.trailer["/Root"].get_object()
    assert "/Version" not in root or str(root["/Version"]) == "/1.7"  # not raised to PDF 2.0
    assert "/ISO_" not in root.get("/Extensions", {})
    [intent] = root["/OutputIntents"]
    assert intent["/S"] == "/GTS_PDFA1"
    assert intent.raw_get("/DestOutputProfile").idnum == old.trailer["/Root"]["/OutputIntents"][0].raw_get(
        "/DestOutputProfile"
    ).idnum
    xmp = new.xmp_metadata.stream.get_data()
    assert xmp == old.xmp_metadata.stream.get_data()
    assert b'pdfaid:part="3"' in xmp and b'pdfaid:conformance="B"' in xmp
    assert dict(new.metadata) == dict(old.metadata)  # Producer etc. still agree with the XMP
    producer = new.metadata["/Producer"]
    assert f'pdf:Producer="{producer}"'.encode() in xmp
    [field] = [f for f in root["/AcroForm"]["/Fields"] if f.get_object()["/T"] == SEAL_FIELD]
    widget = field.get_object()
    assert [float(v) for v in widget["/Rect"]] == [0, 0, 0, 0]  # invisible
    assert int(widget["/F"]) & 4  # printable flag, as PDF/A wants for annotations
    assert str(widget["/V"].get_object()["/SubFilter"]) == "/ETSI.CAdES.detached"


def test_sealing_twice_and_garbage_refused(case, seal_identity):  # noqa: F811
    with pytest.raises(ValueError):
        seal_pdf(case["pdf"], seal_identity)
    with pytest.raises(ValueError):
        seal_pdf(b"not a pdf", seal_identity)


def test_seal_is_fast(case, seal_identity):  # noqa: F811
    seal_pdf(case["unsealed"], seal_identity)
    best = min(_timed(lambda: seal_pdf(case["unsealed"], seal_identity)) for _ in range(5))
    assert best < 0.5, best  # about 20-40 ms; generous for loaded CI machines
    best = min(_timed(lambda: check_seal(case["pdf"])) for _ in range(5))
    assert best < 0.5, best  # about 15-30 ms


def test_long_operator_name_and_reservation_fallback(case, tmp_path, monkeypatch):  # noqa: F811
    long_name = "Потребительский кооператив «ВОСХОД» " * 8
    identity = ensure_seal_identity(tmp_path, long_name)
    certificate = x509.load_pem_x509_certificate(identity.certificate_pem)
    [organization] = certificate.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    assert organization.value == long_name.strip()
    assert len(identity.subject_name.encode()) <= 64 and long_name.startswith(identity.subject_name)
    sealed = seal_pdf(case["unsealed"], identity)
    assert verify_pdf(sealed).valid and check_seal(sealed).signer == identity.subject_name
    # Too small a reservation for the CMS: pyHanko's own size estimate is used instead.
    monkeypatch.setattr(seal, "CMS_OVERHEAD_RESERVED", -3 * len(identity.certificate_der) + 100)
    assert verify_pdf(seal_pdf(case["unsealed"], identity)).valid


def _timed(action) -> float:
    import time

    started = time.perf_counter()
    action()
    return time.perf_counter() - started


async def test_seal_and_check_inside_an_event_loop(case, seal_identity):  # noqa: F811
    """pyHanko runs asyncio internally; the portal's async handlers must still be able to call us."""
    asyncio.get_running_loop()
    assert check_seal(case["pdf"]).valid
    assert check_seal(seal_pdf(case["unsealed"], seal_identity)).valid
    assert verify_pdf(case["pdf"]).valid


# --------------------------------------------------------------------------- tampering


def _object_offset(pdf: bytes, idnum: int) -> int:
    match = None
    for match in re.finditer(rb"(?:^|[\r\n])%d 0 obj" % idnum, pdf):
        pass  # the last definition counts (incremental updates)
    assert match is not None, idnum
    return match.end()


def _stream_span(pdf: bytes, idnum: int) -> tuple[int, int]:
    """(start, end) of the raw data of stream object ``idnum``."""
    start = pdf.index(b"stream", _object_offset(pdf, idnum)) + len(b"stream")
    start += 2 if pdf[start:start + 2] == b"\r\n" else 1
    return start, pdf.index(b"endstream", start)


def _flip_positions(case) -> dict[str, int]:  # noqa: F811
    """Named positions spread over the whole sealed file."""
    pdf, unsealed = case["pdf"], case["unsealed"]
    reader = PdfReader(io.BytesIO(unsealed))
    content = reader.pages[0].raw_get("/Contents")
    if isinstance(content.get_object(), list):
        content = content.get_object()[0]
    page_start, page_end = _stream_span(pdf, content.idnum)
    names = reader.trailer["/Root"]["/Names"]["/EmbeddedFiles"]["/Names"]
    streams = {str(names[i]): names[i + 1].get_object()["/EF"].raw_get("/F").idnum for i in range(0, len(names), 2)}
    doc_start, doc_end = _stream_span(pdf, streams["document.json"])
    png_start, png_end = _stream_span(pdf, streams["signature-1.png"])
    xrefs = [int(m.group(1)) for m in re.finditer(rb"startxref\s+(\d+)", pdf)]
    assert len(xrefs) == 2 and xrefs[0] < len(unsealed) < xrefs[1]
    byte_range = [int(v) for v in re.search(rb"/ByteRange\s*\[\s*(\d+) (\d+) (\d+) (\d+)", pdf).groups()]
    contents_start, contents_end = byte_range[1], byte_range[2]  # "<" … ">"
    der_hex = len(pdf[contents_start + 1:contents_end - 1].rstrip(b"0"))
    byte_range_text = pdf.index(b"/ByteRange")
    positions = {
        "header %PDF": 0,
        "header version": 7,
        "binary comment": 10,
        "page content start": page_start,
        "page content middle": (page_start + page_end) // 2,
        "page content end": page_end - 1,
        "document.json start": doc_start,
        "document.json middle": (doc_start + doc_end) // 2,
        "document.json checksum": doc_end - 1,
        "signature png middle": (png_start + png_end) // 2,
        "rendered xref": xrefs[0] + 5,
        "rendered startxref": unsealed.rindex(b"startxref") + 3,
        "rendered %%EOF": len(unsealed) - 3,
        "first byte of the seal update": len(unsealed),
        "seal dictionary /ByteRange": byte_range_text + 2,
        "seal /ByteRange value": byte_range_text + 14,
        "seal /Contents <": contents_start,
        "seal CMS header": contents_start + 1,
        "seal CMS length": contents_start + 6,
        "seal CMS certificate": contents_start + 1 + der_hex // 3,
        "seal CMS signed attributes": contents_start + 1 + der_hex * 2 // 3,
        "seal CMS signature value": contents_start + der_hex - 4,
        "seal CMS padding start": contents_start + der_hex + 2,
        "seal CMS padding middle": (contents_start + 1 + der_hex + contents_end) // 2,
        "seal /Contents >": contents_end - 1,
        "seal field name": pdf.index(SEAL_FIELD.encode(), len(unsealed)) + 3,
        "seal xref": xrefs[1] + 5,
        "seal startxref": pdf.rindex(b"startxref") + 3,
        "seal startxref value": pdf.rindex(b"startxref") + 11,
        "last byte": len(pdf) - 1,
    }
    for i in range(1, 10):  # and evenly over the file
        positions[f"spread {i}/10"] = len(pdf) * i // 10
    assert len(positions) >= 30
    assert all(0 <= p < len(pdf) for p in positions.values())
    return positions


def test_one_changed_byte_anywhere_refused(case):  # noqa: F811
    pdf = case["pdf"]
    assert verify_pdf(pdf).valid
    for name, position in _flip_positions(case).items():
        original = pdf[position]
        # Bit flips, a case flip (hex digits and PDF names), and a different hex digit: a byte a
        # PDF parser would read the same (a hex digit's case, whitespace) still changes the file.
        replacements = {original ^ 0x01, original ^ 0x20, original ^ 0x5A, original ^ 0x80}
        replacements |= {ord("1") if original == ord("0") else ord("0")}
        for value in replacements:
            changed = bytearray(pdf)
            changed[position] = value
            result = verify_pdf(bytes(changed))
            assert not result.valid, (name, position, bytes([original]), bytes([value]))
            assert result.reason and "\n" not in result.reason


def test_every_byte_of_the_signature_value_counts(case):  # noqa: F811
    """The /Contents hex string is outside the ByteRange digest: each byte is checked by itself."""
    pdf = case["pdf"]
    start, end = [int(v) for v in re.search(rb"/ByteRange\s*\[\s*\d+ (\d+) (\d+)", pdf).groups()]
    der_hex = len(pdf[start + 1:end - 1].rstrip(b"0"))
    for position in list(range(start, start + der_hex + 3, 7)) + list(range(start + der_hex + 3, end, 301)):
        original = pdf[position]
        for value in {original ^ 0x01, original ^ 0x20, ord("0") if original != ord("0") else ord("8")}:
            changed = bytearray(pdf)
            changed[position] = value
            assert not check_seal(bytes(changed)).valid, (position, bytes([original]), bytes([value]))


@pytest.mark.parametrize("tail", [b"\n", b" ", b"%%EOF\n", b"\n1 0 obj\n(x)\nendobj\n"])
def test_appended_bytes_refused(case, tail):  # noqa: F811
    result = verify_pdf(case["pdf"] + tail)
    assert not result.valid
    assert "Печать оператора" in result.reason


def test_incremental_update_after_seal_refused(case):  # noqa: F811
    """A proper incremental update (e.g. an edited page added later) is not covered by the seal."""
    from pyhanko.pdf_utils import generic
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter

    writer = IncrementalPdfFileWriter(io.BytesIO(case["pdf"]))
    info = writer.root
    info["/Lang"] = generic.TextStringObject("en")
    writer.update_root()
    out = io.BytesIO()
    writer.write(out)
    updated = out.getvalue()
    assert updated.startswith(case["pdf"]) and len(updated) > len(case["pdf"])
    result = verify_pdf(updated)
    assert not result.valid and "весь файл" in result.reason
    assert check_seal(updated).certificate_sha256 == case["identity"].certificate_sha256


def test_unsealed_and_foreign_pdfs_refused(case):  # noqa: F811
    assert check_seal(case["unsealed"]).reason == NO_SEAL
    assert verify_pdf(case["unsealed"]).reason == NO_SEAL
    assert check_seal(build_pdf({"notes.txt": b"hello"})).reason == NO_SEAL


@pytest.mark.parametrize("data", [b"", b"hello", b"%PDF-1.7\n%garbage", None, "text"])
def test_check_seal_never_raises(data):
    result = check_seal(data)
    assert not result.valid and result.reason and "\n" not in result.reason


def test_truncated_sealed_pdf_refused(case):  # noqa: F811
    pdf = case["pdf"]
    for size in (len(pdf) - 1, len(pdf) - 200, len(case["unsealed"]) + 100, len(pdf) // 2):
        assert not check_seal(pdf[:size]).valid, size
        assert not verify_pdf(pdf[:size]).valid, size


def test_lazy_exports():
    import portal.documents as documents

    assert documents.check_seal is check_seal
    assert documents.seal_pdf is seal_pdf
    assert documents.ensure_seal_identity is ensure_seal_identity
    assert {"SealCheck", "SealIdentity", "check_seal", "seal_pdf"} <= set(documents.__all__)
