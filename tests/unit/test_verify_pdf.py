"""Offline verification of signed PDFs: genuine sealed ones pass, any altered attachment fails.

Every PDF the portal issues carries the operator's seal (``seal.seal_pdf``) and ``verify_pdf``
requires it; byte-level tampering with sealed files is tested in ``test_seal``.
"""

from __future__ import annotations

import copy
import hashlib
import datetime as dt
import io
import json
import os

import pytest
from pypdf import PdfReader, PdfWriter
from pypdf.generic import ByteStringObject, NameObject, NumberObject

from portal.documents import render
from portal.documents.seal import NO_SEAL, ensure_seal_identity, seal_pdf
from portal.documents.signing import (
    b64encode,
    canonical_json,
    document_hash,
    sign,
    signed_message,
)
from portal.documents.templates import sample_context
from portal.documents.verify import verify_pdf
from tests.unit.test_render import sign_document
from tests.unit.test_signing import scribble_png

VERIFY_URL = "https://voskhod.coop/verify"


@pytest.fixture(scope="module")
def seal_identity(tmp_path_factory):
    """The operator's seal key and certificate in a temporary data directory."""
    return ensure_seal_identity(tmp_path_factory.mktemp("data"), "ПК «ВОСХОД»")


@pytest.fixture(scope="module")
def case(seal_identity):
    """A signed PDF as the portal issues it: rendered, then sealed (``pdf``); ``unsealed`` too."""
    seed = os.urandom(32)
    png = scribble_png()
    when = dt.datetime(2026, 11, 25, 9, 0, tzinfo=dt.timezone.utc)
    document, record = sign_document("pd_consent", sample_context("individual"), seed, png, when)
    unsealed = render.render_signed_pdf("pd_consent", document, None, [record], VERIFY_URL)
    pdf = seal_pdf(unsealed, seal_identity)
    return {"seed": seed, "document": document, "record": record, "pdf": pdf, "unsealed": unsealed,
            "identity": seal_identity}


# --------------------------------------------------------------------------- PDF surgery helpers


def _embedded(writer: PdfWriter) -> dict[str, object]:
    names = writer.root_object["/Names"]["/EmbeddedFiles"]["/Names"]
    return {str(names[i]): names[i + 1].get_object()["/EF"]["/F"].get_object() for i in range(0, len(names), 2)}


def replace_attachments(pdf: bytes, replacements: dict[str, bytes]) -> bytes:
    """Rewrite the PDF with some attachments' contents replaced (the pages stay)."""
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(pdf)))
    streams = _embedded(writer)
    for name, content in replacements.items():
        streams[name].set_data(content)
        params = streams[name].get("/Params")
        if params is not None:  # keep the file-spec metadata consistent, as a careful forger would
            params[NameObject("/Size")] = NumberObject(len(content))
            params[NameObject("/CheckSum")] = ByteStringObject(hashlib.md5(content).digest())
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def attachment(pdf: bytes, name: str) -> bytes:
    contents = PdfReader(io.BytesIO(pdf)).attachments[name]
    assert len(contents) == 1
    return contents[0]


def build_pdf(files: dict[str, bytes]) -> bytes:
    """A PDF with arbitrary attachments (to test verify independently of the renderer)."""
    writer = PdfWriter()
    writer.add_blank_page(595, 842)
    for name, content in files.items():
        writer.add_attachment(name, content)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


# --------------------------------------------------------------------------- genuine


def test_genuine_pdf_is_valid(case):
    result = verify_pdf(case["pdf"])
    assert result.valid, result.reason
    assert result.document_hash == document_hash(case["document"])
    assert result.document == case["document"]
    assert result.template_id == "pd_consent"
    assert "действительны" in result.reason
    [signer] = result.signers
    record = case["record"]
    assert (signer.full_name, signer.email, signer.key_fingerprint) == (
        record.full_name, record.email, record.key_fingerprint
    )
    assert signer.signed_at.startswith("2026-11-25T09:00:00")
    assert result.seal is not None and result.seal.valid
    assert result.seal.certificate_sha256 == case["identity"].certificate_sha256
    assert result.seal.signer == "ПК «ВОСХОД»"
    assert "печать оператора действительна" in result.reason


def test_unsealed_pdf_refused(case):
    """The attachments and Ed25519 signatures are fine, but the portal did not issue this file."""
    result = verify_pdf(case["unsealed"])
    assert not result.valid
    assert result.reason == NO_SEAL == "Нет печати оператора: документ не выдан порталом или изменён"
    assert result.document_hash == document_hash(case["document"])  # the attachments were read
    assert result.seal is not None and not result.seal.valid


def test_rewritten_pdf_needs_a_new_seal(case):
    """Rewriting keeps the attachments valid but breaks the seal; a re-sealed rewrite passes."""
    same = replace_attachments(case["pdf"], {"document.json": canonical_json(case["document"])})
    assert same != case["pdf"]
    broken = verify_pdf(same)
    assert not broken.valid and "Печать оператора" in broken.reason
    assert broken.document_hash == document_hash(case["document"])
    rewritten = replace_attachments(case["unsealed"], {"document.json": canonical_json(case["document"])})
    assert verify_pdf(seal_pdf(rewritten, case["identity"])).valid


def test_seal_certificate_pinning(case, tmp_path):
    """Anybody can seal with a certificate of their own; pinning the operator's one refuses it."""
    operator = case["identity"].certificate_sha256
    assert verify_pdf(case["pdf"], seal_certificates=[operator]).valid
    colon_upper = ":".join(operator[i:i + 2] for i in range(0, 64, 2)).upper()
    assert verify_pdf(case["pdf"], seal_certificates={colon_upper}).valid
    stranger = ensure_seal_identity(tmp_path, "ПК «ВОСХОД»")
    assert stranger.certificate_sha256 != operator
    forged = seal_pdf(case["unsealed"], stranger)
    assert verify_pdf(forged).valid  # integrity only
    pinned = verify_pdf(forged, seal_certificates=[operator])
    assert not pinned.valid and "не сертификатом оператора" in pinned.reason
    assert pinned.seal.certificate_sha256 == stranger.certificate_sha256


def test_countersigned_pdf_with_two_signatures(case):
    """E.g. the connection agreement: the member signs, then the operator countersigns."""
    from portal.documents.signing import key_fingerprint, private_key_from_seed, public_key_raw

    document, member = case["document"], case["record"]
    seal_seed = os.urandom(32)
    seal_public = public_key_raw(private_key_from_seed(seal_seed))
    seal_png = scribble_png(400, 160)
    from portal.documents.signing import validate_signature_png

    seal_image_hash = validate_signature_png(seal_png)
    operator = render.SignatureRecord(
        full_name="Петров Пётр Петрович", role="Председатель совета ПК «ВОСХОД»",
        email="info@voskhod.coop", key_fingerprint=key_fingerprint(seal_public),
        public_key_b64=b64encode(seal_public),
        signature_b64=b64encode(sign(seal_seed, signed_message(member.document_hash, seal_image_hash))),
        image_sha256=seal_image_hash, image_png=seal_png,
        signed_at=member.signed_at + dt.timedelta(days=1), ip="", user_agent="",
        document_hash=member.document_hash,
    )
    pdf = seal_pdf(
        render.render_signed_pdf("pd_consent", document, None, [member, operator], VERIFY_URL),
        case["identity"],
    )
    result = verify_pdf(pdf)
    assert result.valid, result.reason
    assert [s.full_name for s in result.signers] == [member.full_name, "Петров Пётр Петрович"]
    assert PdfReader(io.BytesIO(pdf)).attachments["signature-2.png"] == [seal_png]


# --------------------------------------------------------------------------- altered


def test_altered_document_json_refused(case):
    forged = copy.deepcopy(case["document"])
    forged["data"]["cooperative"]["fee_share_ind"] = 1
    result = verify_pdf(replace_attachments(case["pdf"], {"document.json": canonical_json(forged)}))
    assert not result.valid
    assert "document.json" in result.reason and "хеш" in result.reason.lower()


def test_non_canonical_document_json_refused(case):
    pretty = json.dumps(case["document"], ensure_ascii=False, indent=1).encode()
    result = verify_pdf(replace_attachments(case["pdf"], {"document.json": pretty}))
    assert not result.valid and "каноническ" in result.reason


def test_altered_document_with_recomputed_hash_refused(case):
    """A forger who also fixes the hashes in signatures.json still cannot forge Ed25519."""
    forged = copy.deepcopy(case["document"])
    forged["signer"]["full_name"] = "Подставной Пётр Петрович"
    new_hash = document_hash(forged)
    bundle = json.loads(attachment(case["pdf"], "signatures.json"))
    bundle["document_hash"] = new_hash
    for record in bundle["signatures"]:
        record["document_hash"] = new_hash
        record["message"] = signed_message(new_hash, record["image_sha256"]).decode()
    result = verify_pdf(replace_attachments(
        case["pdf"], {"document.json": canonical_json(forged), "signatures.json": canonical_json(bundle)}
    ))
    assert not result.valid
    assert "Ed25519" in result.reason and "недействительна" in result.reason


def test_altered_signature_refused(case):
    bundle = json.loads(attachment(case["pdf"], "signatures.json"))
    raw = bytearray(__import__("base64").b64decode(bundle["signatures"][0]["signature_b64"]))
    raw[0] ^= 0x80
    bundle["signatures"][0]["signature_b64"] = b64encode(bytes(raw))
    result = verify_pdf(replace_attachments(case["pdf"], {"signatures.json": canonical_json(bundle)}))
    assert not result.valid and "№ 1" in result.reason and "недействительна" in result.reason


def test_altered_signature_image_refused(case):
    result = verify_pdf(replace_attachments(case["pdf"], {"signature-1.png": scribble_png(500, 160)}))
    assert not result.valid and "Изображение подписи" in result.reason


def test_swapped_public_key_refused(case):
    """Re-signing with another key: the document names the signer's key, so it fails."""
    bundle = json.loads(attachment(case["pdf"], "signatures.json"))
    other_seed = os.urandom(32)
    from portal.documents.signing import key_fingerprint, private_key_from_seed, public_key_raw

    other_public = public_key_raw(private_key_from_seed(other_seed))
    record = bundle["signatures"][0]
    record["public_key_b64"] = b64encode(other_public)
    record["key_fingerprint"] = key_fingerprint(other_public)
    record["signature_b64"] = b64encode(sign(other_seed, record["message"].encode()))
    result = verify_pdf(replace_attachments(case["pdf"], {"signatures.json": canonical_json(bundle)}))
    assert not result.valid and "ключом подписанта" in result.reason


def test_byte_flip_inside_attachment_stream_refused(case):
    pdf = case["pdf"]
    reader = PdfReader(io.BytesIO(pdf))
    names = reader.trailer["/Root"]["/Names"]["/EmbeddedFiles"]["/Names"]
    for i in range(0, len(names), 2):
        if names[i] == "document.json":
            raw_stream = names[i + 1].get_object()["/EF"]["/F"].get_object()._data
    offset = pdf.index(raw_stream)
    # zlib header, deflate data, the Adler-32 checksum at the end: every byte counts.
    for position in [offset + i for i in range(0, len(raw_stream), max(1, len(raw_stream) // 40))] + [
        offset + len(raw_stream) - 1
    ]:
        flipped = bytearray(pdf)
        flipped[position] ^= 0x5A
        result = verify_pdf(bytes(flipped))
        assert not result.valid, position
        assert result.reason


def test_missing_and_duplicate_pieces_refused(case):
    document_json = attachment(case["pdf"], "document.json")
    signatures_json = attachment(case["pdf"], "signatures.json")
    png = attachment(case["pdf"], "signature-1.png")
    reference = build_pdf({"document.json": document_json, "signatures.json": signatures_json,
                           "signature-1.png": png})  # all present
    assert verify_pdf(seal_pdf(reference, case["identity"])).valid
    assert verify_pdf(reference).reason == NO_SEAL
    no_png = verify_pdf(build_pdf({"document.json": document_json, "signatures.json": signatures_json}))
    assert not no_png.valid and "signature-1.png" in no_png.reason
    no_sigs = verify_pdf(build_pdf({"document.json": document_json}))
    assert not no_sigs.valid and "signatures.json" in no_sigs.reason
    bundle = json.loads(signatures_json)
    bundle["signatures"] = []
    empty = verify_pdf(build_pdf({"document.json": document_json, "signatures.json": canonical_json(bundle)}))
    assert not empty.valid and "нет ни одной подписи" in empty.reason


# --------------------------------------------------------------------------- not ours


def test_foreign_pdf_refused():
    plain = render.render_pdf("user_agreement", sample_context("organization"))
    result = verify_pdf(plain)
    assert not result.valid and "document.json" in result.reason
    assert not verify_pdf(build_pdf({"notes.txt": b"hello"})).valid


@pytest.mark.parametrize("data", [b"", b"hello", b"%PDF-1.7\n%garbage", b"\x89PNG\r\n\x1a\n"])
def test_garbage_refused(data):
    result = verify_pdf(data)
    assert not result.valid and "PDF" in result.reason


def test_truncated_pdf_refused(case):
    assert not verify_pdf(case["pdf"][: len(case["pdf"]) // 3]).valid
