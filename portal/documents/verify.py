"""Offline verification of a signed PDF (``portal verify FILE.pdf``, the page ``/verify``).

Checks the attachments written by ``render.render_signed_pdf``: ``document.json`` is present,
unique and canonical; its SHA-256 is the document hash named by ``signatures.json``; for every
signature record the image file's SHA-256, the key fingerprint and the signed message match,
and the Ed25519 signature verifies with the record's public key. If the document names the
signer's public key (``signer.public_key``), one of the signatures must be made with it.

The attachments cannot show an edit of the visible pages, so the file must also carry the
operator's seal (``seal.check_seal``): a PAdES signature of ПК «ВОСХОД» whose digest covers the
whole file. One changed byte anywhere, or bytes appended after it, and the seal fails. The seal
is checked after the attachments, so a changed attachment is reported as such.

The seal proves integrity, not who sealed: anybody can seal a file with a certificate of their
own. Pass ``seal_certificates`` (the SHA-256 fingerprints of the operator's seal certificates)
to also require the operator's certificate; without it the fingerprint is only reported
(``result.seal.certificate_sha256``) for the caller to compare.
"""

from __future__ import annotations

import hashlib
import io
import zlib
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from portal.documents.seal import SealCheck, check_seal
from portal.documents.signing import (
    CANONICAL_DOCUMENT_KEYS,
    DOCUMENT_FILE,
    SIGNATURES_FILE,
    SIGNATURES_FORMAT,
    KeyFormatError,
    key_fingerprint,
    parse_canonical_json,
    public_key_from_b64,
    sha256_hex,
    signature_file_name,
    signature_from_b64,
    signed_message,
    verify_signature,
)

MAX_PDF_BYTES = 50 * 1024 * 1024
MAX_ATTACHMENT_BYTES = 4 * 1024 * 1024  # document.json, signatures.json, PNGs are far smaller

_RECORD_FIELDS = (
    "full_name", "role", "email", "key_fingerprint", "public_key_b64", "signature_b64",
    "document_hash", "image_sha256", "signed_at", "ip", "user_agent",
)


@dataclass(frozen=True)
class SignerInfo:
    n: int
    full_name: str
    role: str
    email: str
    key_fingerprint: str
    public_key_b64: str
    signed_at: str  # ISO 8601, UTC
    ip: str
    user_agent: str


@dataclass(frozen=True)
class VerifyResult:
    valid: bool
    reason: str  # one line, Russian
    document_hash: str | None = None
    signers: list[SignerInfo] = field(default_factory=list)
    document: dict | None = None  # the canonical document when it could be read
    template_id: str | None = None
    seal: SealCheck | None = None  # the operator's seal, when the attachments were valid


class _Invalid(Exception):
    def __init__(self, reason: str, **extra: Any) -> None:
        super().__init__(reason)
        self.reason = reason
        self.extra = extra


def _embedded_files(node: Any, depth: int = 0):
    """(name, stream) pairs of an /EmbeddedFiles name tree (leaves and /Kids)."""
    if depth > 16:
        raise ValueError("name tree too deep")
    node = node.get_object()
    names = node.get("/Names")
    if names is not None:
        names = names.get_object()
        for i in range(0, len(names) - 1, 2):
            spec = names[i + 1].get_object()
            yield str(names[i]), spec["/EF"].get_object()["/F"].get_object()
    for kid in node.get("/Kids") or []:
        yield from _embedded_files(kid, depth + 1)


def _stream_content(stream: Any) -> bytes:
    """Content of an embedded-file stream; Flate streams are inflated strictly (checksum too)."""
    filters = stream.get("/Filter")
    if filters is not None and not isinstance(filters, str):
        filters = list(filters)
        filters = filters[0] if len(filters) == 1 else filters
    if filters == "/FlateDecode" and "/DecodeParms" not in stream:
        inflater = zlib.decompressobj()
        content = inflater.decompress(stream._data, MAX_ATTACHMENT_BYTES)
        if inflater.unconsumed_tail or not inflater.eof:  # too big, truncated or corrupt
            raise ValueError("attachment too large or corrupt")
        if inflater.unused_data.strip():
            raise ValueError("data after the compressed stream")
    else:
        content = stream.get_data()
    params = stream.get("/Params")
    if params is not None:
        params = params.get_object()
        size = params.get("/Size")
        if size is not None and int(size) != len(content):
            raise ValueError("size mismatch")
        checksum = params.get("/CheckSum")
        if checksum is not None:
            expected = bytes(checksum.original_bytes) if hasattr(checksum, "original_bytes") else bytes(checksum)
            if hashlib.md5(content, usedforsecurity=False).digest() != expected:
                raise ValueError("checksum mismatch")
    return content


def _attachments(pdf_bytes: bytes) -> dict[str, list[bytes]]:
    from pypdf import PdfReader

    try:
        reader = PdfReader(io.BytesIO(pdf_bytes), strict=False)
        _ = len(reader.pages)
        root = reader.trailer["/Root"].get_object()
    except Exception as exc:  # pypdf raises many kinds of errors on garbage
        raise _Invalid("Файл не является PDF-документом или повреждён.") from exc
    result: dict[str, list[bytes]] = {}
    try:
        names = root.get("/Names")
        tree = names.get_object().get("/EmbeddedFiles") if names is not None else None
        if tree is not None:
            for name, stream in _embedded_files(tree):
                result.setdefault(name, []).append(_stream_content(stream))
    except Exception as exc:
        raise _Invalid("Вложения PDF-файла повреждены: поток данных не проходит проверку целостности.") from exc
    return result


def _single(attachments: dict[str, list[bytes]], name: str, missing: str) -> bytes:
    contents = attachments.get(name)
    if not contents:
        raise _Invalid(missing)
    if len(contents) != 1:
        raise _Invalid(f"В PDF-файле несколько вложений {name}: файл изменён.")
    return contents[0]


def _check(pdf_bytes: bytes, seal_certificates: Collection[str] | None) -> VerifyResult:
    if not isinstance(pdf_bytes, (bytes, bytearray)) or b"%PDF-" not in bytes(pdf_bytes[:1024]):
        raise _Invalid("Файл не является PDF-документом.")
    if len(pdf_bytes) > MAX_PDF_BYTES:
        raise _Invalid("Файл слишком большой для проверки.")
    attachments = _attachments(bytes(pdf_bytes))

    raw_document = _single(
        attachments, DOCUMENT_FILE,
        "В PDF-файле нет вложения document.json: это не подписанный документ портала.",
    )
    try:
        document = parse_canonical_json(raw_document)
    except ValueError as exc:
        raise _Invalid("Вложение document.json изменено или повреждено: оно не в канонической форме.") from exc
    if not isinstance(document, dict) or set(document) != CANONICAL_DOCUMENT_KEYS or not isinstance(
        document.get("signer"), dict
    ):
        raise _Invalid("Вложение document.json не является каноническим документом портала.")
    doc_hash = sha256_hex(raw_document)
    base = {"document_hash": doc_hash, "document": document, "template_id": document.get("template_id")}

    raw_signatures = _single(
        attachments, SIGNATURES_FILE, "В PDF-файле нет вложения signatures.json с записями подписей."
    )
    try:
        bundle = parse_canonical_json(raw_signatures)
    except ValueError as exc:
        raise _Invalid("Вложение signatures.json изменено или повреждено.", **base) from exc
    if not isinstance(bundle, dict) or bundle.get("format") != SIGNATURES_FORMAT or not isinstance(
        bundle.get("signatures"), list
    ):
        raise _Invalid("Вложение signatures.json не в формате подписей портала.", **base)
    if bundle.get("document_hash") != doc_hash:
        raise _Invalid(
            "Хеш вложения document.json не совпадает с хешем в записях подписей: документ изменён.", **base
        )
    records = bundle["signatures"]
    if not records:
        raise _Invalid("В документе нет ни одной подписи.", **base)

    signers: list[SignerInfo] = []
    keys: set[bytes] = set()
    for n, record in enumerate(records, start=1):
        if not isinstance(record, dict) or any(not isinstance(record.get(f), str) for f in _RECORD_FIELDS):
            raise _Invalid(f"Запись подписи № {n} неполна или повреждена.", **base)
        who = f"№ {n} ({record['full_name']})"
        if record["document_hash"] != doc_hash:
            raise _Invalid(f"Подпись {who} относится к другому документу.", **base)
        image = _single(
            attachments, signature_file_name(n), f"Нет изображения подписи {who}: {signature_file_name(n)}."
        )
        if sha256_hex(image) != record["image_sha256"]:
            raise _Invalid(f"Изображение подписи {who} изменено: SHA-256 не совпадает.", **base)
        try:
            message = signed_message(doc_hash, record["image_sha256"])
            public_key = public_key_from_b64(record["public_key_b64"])
            signature = signature_from_b64(record["signature_b64"])
        except (KeyFormatError, ValueError) as exc:
            raise _Invalid(f"Ключ или подпись {who} в неверном формате.", **base) from exc
        if record.get("message") is not None and record["message"] != message.decode("ascii"):
            raise _Invalid(f"Подписанное сообщение подписи {who} не соответствует документу.", **base)
        if key_fingerprint(public_key) != record["key_fingerprint"]:
            raise _Invalid(f"Отпечаток ключа подписи {who} не соответствует открытому ключу.", **base)
        if not verify_signature(public_key, message, signature):
            raise _Invalid(f"Подпись {who} недействительна: проверка Ed25519 не пройдена.", **base)
        keys.add(public_key)
        signers.append(
            SignerInfo(
                n=n,
                full_name=record["full_name"],
                role=record["role"],
                email=record["email"],
                key_fingerprint=record["key_fingerprint"],
                public_key_b64=record["public_key_b64"],
                signed_at=record["signed_at"],
                ip=record["ip"],
                user_agent=record["user_agent"],
            )
        )

    named_key = document["signer"].get("public_key")
    if named_key:
        try:
            expected = public_key_from_b64(named_key)
        except KeyFormatError as exc:
            raise _Invalid("Открытый ключ подписанта в document.json в неверном формате.", **base) from exc
        if expected not in keys:
            raise _Invalid("Нет подписи ключом подписанта, указанным в документе.", **base)

    seal = check_seal(bytes(pdf_bytes))
    base["seal"] = seal
    if not seal.valid:
        raise _Invalid(seal.reason, **base)
    if seal_certificates is not None and seal.certificate_sha256 not in {
        fingerprint.replace(":", "").lower() for fingerprint in seal_certificates
    }:
        raise _Invalid(
            "Печать поставлена не сертификатом оператора: отпечаток SHA-256 сертификата печати "
            f"{seal.certificate_sha256} не совпадает с опубликованным.",
            **base,
        )

    count = len(signers)
    return VerifyResult(
        valid=True,
        reason=(
            f"Подписи действительны ({count}), вложенный документ не изменён после подписания; "
            "печать оператора действительна, файл не изменён после выдачи."
        ),
        signers=signers,
        **base,
    )


def verify_pdf(pdf_bytes: bytes, *, seal_certificates: Collection[str] | None = None) -> VerifyResult:
    """Verify a signed PDF offline; never raises for bad input (``valid=False`` with a reason).

    ``seal_certificates``: SHA-256 fingerprints (hex) of the operator's seal certificates; when
    given, the seal must be made with one of them.
    """
    try:
        return _check(pdf_bytes, seal_certificates)
    except _Invalid as invalid:
        return VerifyResult(valid=False, reason=invalid.reason, **invalid.extra)
