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
(``result.seal.certificate_sha256``) for the caller to compare. A connected cooperative seals
with its own certificate, issued by the operator's: the seal embeds both, ``check_seal`` checks
the issuance (signature, CA and keyCertSign of the issuer, validity at the sealing time), and the
seal is accepted when the issuer's fingerprint is published (``result.seal_trust == "issuer"``).

A document the cooperative issues itself (the council's decision on admission, ``portal.admissions``) carries
``document.json`` and a ``signatures.json`` with no member signatures; it is accepted only when
``seal_certificates`` is given and the seal is made with the published certificate (or one it issued).

For each signature ``SignerInfo.key_in_document`` says whether its key is the one the signed
document names as the signer's registered key (offline; /verify also asks the key registry).

Anybody may upload a file here, so before anything else reads it the file is measured: a few KB
of PDF can hold streams that inflate to gigabytes (a Flate stream inflates up to ~1000 times,
chained filters multiply that). ``_measure_streams`` reads every object that has an offset in
any cross-reference section of any revision — every stream pyHanko could ever decode from this
file, the seal check's reader included, is one of them (streams cannot live in object streams).
Each stream may only be uncompressed or a single ``/FlateDecode`` (the only filter of the
portal's PDFs; ``/DecodeParms`` only on images, where predictors never enlarge the data); it is
inflated here step by step without keeping the output, every byte counted against one budget
for the whole file, ``MAX_DECODED_BYTES``, and refused past it. The streams pyHanko itself
decodes and keeps (object, cross-reference and XMP streams) and the attachments read below are
held to ``MAX_STRUCTURE_STREAM_BYTES`` / ``MAX_ATTACHMENT_BYTES`` each, and pyHanko's own
decoding limits are set just as tight for this reader. A refused file is reported with
``refused=True``: nothing in it was verified.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import io
import logging
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
#: Everything decoded from one PDF together, all streams of all revisions: pages, fonts, images,
#: metadata, attachments. A signed document of the portal decodes to under 1 MB; the largest
#: part is the drawn signature as an image (at most 2000×1000 px: 8 MB for each signer).
MAX_DECODED_BYTES = 48 * 1024 * 1024
#: One attachment: document.json, signatures.json and the signature PNGs are far smaller.
MAX_ATTACHMENT_BYTES = 1024 * 1024
#: One object stream, cross-reference stream or XMP metadata stream (a few KB in the portal's
#: PDFs). pyHanko decodes these and keeps them in memory.
MAX_STRUCTURE_STREAM_BYTES = 1024 * 1024
#: Objects with an offset, all revisions together (a signed document has about 60).
MAX_OBJECTS = 20_000
_INFLATE_STEP = 64 * 1024
_STRUCTURE_TYPES = ("/ObjStm", "/XRef", "/Metadata")

NOT_PDF = "Файл не является PDF-документом: выберите PDF, полученный на портале."
DAMAGED = "Печать оператора и подписи не проверены: структура PDF-файла повреждена."
TOO_LARGE = "Файл слишком большой для проверки."
DECODE_LIMIT = (
    "Файл не проверен: сжатые данные в нём распаковываются в слишком большой объём — в документах "
    "портала такого не бывает. Загрузите PDF, выданный порталом."
)
UNKNOWN_FILTER = (
    "Файл не проверен: данные в нём сжаты способом, которого нет в документах портала. "
    "Загрузите PDF, выданный порталом."
)
ENCRYPTED = "Файл зашифрован, а документы портала не шифруются: такой файл не проверить."
TOO_MANY_OBJECTS = "Файл не проверен: в нём слишком много объектов для документа портала."

_RECORD_FIELDS = (
    "full_name", "role", "email", "key_fingerprint", "public_key_b64", "signature_b64",
    "document_hash", "image_sha256", "signed_at", "ip", "user_agent",
)

# pyHanko logs a warning for some damaged files; without a handler of its own that would go to
# the stderr of ``portal verify`` (the records still reach the application's handlers).
logging.getLogger("pyhanko").addHandler(logging.NullHandler())


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
    #: Offline answer to "was this the signer's registered key?": True — the key is the one the signed
    #: document (document.json, ``signer.public_key``) names as the signer's registered key; False —
    #: the document names another key for this signer; None — the document names no key for this
    #: signature (a countersignature by someone else, or an early document without the key).
    key_in_document: bool | None = None

    @property
    def key_status(self) -> str:
        """One Russian phrase for ``key_in_document``."""
        if self.key_in_document is True:
            return "ключ зарегистрирован за подписантом: он указан в подписанном документе"
        if self.key_in_document is False:
            return "НЕ тот ключ, что указан в подписанном документе как ключ подписанта"
        return "в подписанном документе ключ этого подписанта не указан"

    @property
    def signed_at_time(self) -> dt.datetime | None:
        """``signed_at`` as an aware datetime (None if it is not an ISO time with an offset)."""
        try:
            value = dt.datetime.fromisoformat(self.signed_at)
        except ValueError:
            return None
        return value if value.tzinfo is not None else None


@dataclass(frozen=True)
class VerifyResult:
    valid: bool
    reason: str  # one line, Russian
    document_hash: str | None = None
    signers: list[SignerInfo] = field(default_factory=list)
    document: dict | None = None  # the canonical document when it could be read
    template_id: str | None = None
    seal: SealCheck | None = None  # the operator's seal, when the attachments were valid
    #: With ``seal_certificates``: "certificate" — the seal's certificate is a published one (the
    #: operator's); "issuer" — it was issued by a published one (a connected cooperative's seal).
    seal_trust: str = ""
    refused: bool = False  # the file itself was refused (not a PDF, damaged, over the limits): nothing verified


class _Invalid(Exception):
    def __init__(self, reason: str, **extra: Any) -> None:
        super().__init__(reason)
        self.reason = reason
        self.extra = extra


class _Refused(Exception):
    """The uploaded file cannot be checked at all (``VerifyResult.refused``)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# --------------------------------------------------------------------------- bounded decoding


class _Budget:
    """Bytes that may still be decoded from this file, all streams together."""

    def __init__(self, total: int) -> None:
        self.left = total

    def spend(self, count: int) -> None:
        self.left -= count
        if self.left < 0:
            raise _Refused(DECODE_LIMIT)


def _inflate(data: bytes, budget: _Budget, limit: int, *, keep: bool) -> tuple[bytes, bool]:
    """Inflate a zlib stream step by step: at most ``limit`` bytes, each step charged to ``budget``.

    Returns the content (with ``keep``; otherwise b"": the stream is only measured) and whether
    the stream is complete: it ended, its checksum matched and only whitespace follows. Raises
    ``_Refused`` past ``limit`` or the budget; at most one step is in memory beyond the content.
    """
    inflater = zlib.decompressobj()
    parts: list[bytes] = []
    size = 0
    pending = data
    try:
        while not inflater.eof:
            chunk = inflater.decompress(pending, _INFLATE_STEP)
            pending = inflater.unconsumed_tail
            if not chunk:
                break  # the input is used up: a truncated stream
            size += len(chunk)
            if size > limit:
                raise _Refused(DECODE_LIMIT)
            budget.spend(len(chunk))
            if keep:
                parts.append(chunk)
    except zlib.error:
        return b"".join(parts), False
    return b"".join(parts), inflater.eof and not inflater.unused_data.strip()


def _get(dictionary: Any, key: str) -> Any:
    """``dictionary[key]`` with indirect objects resolved, or None."""
    try:
        return dictionary[key]
    except KeyError:
        return None


def _unwrap(value: Any) -> Any:
    """A one-element array as its element (``[/FlateDecode]`` is ``/FlateDecode``)."""
    if isinstance(value, list):
        return value[0].get_object() if len(value) == 1 else value
    return value


def _is_flate(stream: Any) -> bool:
    """True for one ``/FlateDecode``, False for no filter; ``_Refused`` for anything else.

    ``/DecodeParms`` (predictors) only on images: they never enlarge the data, and nothing in
    the verification applies them.
    """
    filters = _get(stream, "/Filter")
    if filters is None or filters == []:
        return False
    if _unwrap(filters) != "/FlateDecode":
        raise _Refused(UNKNOWN_FILTER)
    params = _unwrap(_get(stream, "/DecodeParms"))
    if params is not None and params != {} and _get(stream, "/Subtype") != "/Image":
        raise _Refused(UNKNOWN_FILTER)
    return True


def _measure(stream: Any, budget: _Budget) -> None:
    """Inflate one stream without keeping it, counting its size against the limits."""
    kind = _get(stream, "/Type")
    if kind in _STRUCTURE_TYPES:
        limit = MAX_STRUCTURE_STREAM_BYTES
    elif kind == "/EmbeddedFile":
        limit = MAX_ATTACHMENT_BYTES
    else:
        limit = MAX_DECODED_BYTES
    data = stream.encoded_data
    if _is_flate(stream):
        # A damaged stream is measured as far as it inflates: nobody can decode more of it.
        _inflate(data, budget, limit, keep=False)
    else:
        if len(data) > limit:
            raise _Refused(DECODE_LIMIT)
        budget.spend(len(data))


def _measure_streams(reader: Any, budget: _Budget) -> None:
    """Measure every stream of every revision (each object that has an offset in the file)."""
    from pyhanko.pdf_utils.generic import StreamObject

    xrefs = reader.xrefs
    count = 0
    for revision in range(xrefs.total_revisions):
        for ref in xrefs.explicit_refs_in_revision(revision):
            if not isinstance(xrefs.get_historical_ref(ref, revision), int):
                continue  # freed, or in an object stream (which holds no streams)
            count += 1
            if count > MAX_OBJECTS:
                raise _Refused(TOO_MANY_OBJECTS)
            obj = reader.get_object(ref, revision=revision)
            if isinstance(obj, StreamObject):
                _measure(obj, budget)


def _decode_limits() -> Any:
    """pyHanko's own limits for the streams it decodes itself (object and xref streams)."""
    from pyhanko.pdf_utils.decode_limits import DecodeLimits, DocumentDecodeBudget, StreamDecodeLimits

    return DecodeLimits(
        per_stream=StreamDecodeLimits(max_ratio=None, max_output_size=MAX_STRUCTURE_STREAM_BYTES),
        per_purpose={},
        document_budget=DocumentDecodeBudget(base_allowance=4 * MAX_STRUCTURE_STREAM_BYTES, max_ratio=0),
    )


def _is_decode_limit(exc: BaseException) -> bool:
    from pyhanko.pdf_utils.misc import PdfDecodeLimitError

    while exc is not None:
        if isinstance(exc, PdfDecodeLimitError):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def _open(pdf_bytes: bytes, budget: _Budget) -> Any:
    """A strict pyHanko reader of the file, after every stream in it has been measured."""
    from pyhanko.pdf_utils.reader import PdfFileReader

    try:
        reader = PdfFileReader(io.BytesIO(pdf_bytes), strict=True, decode_limits=_decode_limits())
        if reader.encrypted:
            raise _Refused(ENCRYPTED)
        _measure_streams(reader, budget)
        _get(reader.root, "/Pages")
    except _Refused:
        raise
    except Exception as exc:  # pyHanko raises many kinds of errors on garbage
        raise _Refused(DECODE_LIMIT if _is_decode_limit(exc) else DAMAGED) from exc
    return reader


# --------------------------------------------------------------------------- attachments


def _embedded_files(node: Any, seen: set, depth: int = 0):
    """(name, stream) pairs of an /EmbeddedFiles name tree (leaves and /Kids)."""
    if depth > 16 or len(seen) > 256:
        raise ValueError("name tree too deep or too large")
    node = node.get_object()
    if id(node) in seen:
        raise ValueError("name tree has a loop")
    seen.add(id(node))
    names = _get(node, "/Names")
    if names is not None:
        for i in range(0, len(names) - 1, 2):
            key = names[i].get_object()
            name = key if isinstance(key, str) else bytes(key).decode("latin-1")
            yield name, names[i + 1].get_object()["/EF"]["/F"]
    for kid in _get(node, "/Kids") or []:
        yield from _embedded_files(kid, seen, depth + 1)


def _stream_content(stream: Any, budget: _Budget) -> bytes:
    """Content of an embedded-file stream; Flate streams are inflated strictly (checksum too)."""
    data = stream.encoded_data
    if _is_flate(stream):
        if _get(stream, "/DecodeParms") is not None:
            raise _Refused(UNKNOWN_FILTER)
        content, complete = _inflate(data, budget, MAX_ATTACHMENT_BYTES, keep=True)
        if not complete:  # truncated, corrupt or followed by other data
            raise ValueError("attachment stream damaged")
    else:
        if len(data) > MAX_ATTACHMENT_BYTES:
            raise _Refused(DECODE_LIMIT)
        budget.spend(len(data))
        content = data
    params = _get(stream, "/Params")
    if params is not None:
        size = _get(params, "/Size")
        if size is not None and int(size) != len(content):
            raise ValueError("size mismatch")
        checksum = _get(params, "/CheckSum")
        if checksum is not None:
            expected = bytes(checksum.original_bytes) if hasattr(checksum, "original_bytes") else bytes(checksum)
            if hashlib.md5(content, usedforsecurity=False).digest() != expected:
                raise ValueError("checksum mismatch")
    return content


def _attachments(reader: Any, budget: _Budget) -> dict[str, list[bytes]]:
    result: dict[str, list[bytes]] = {}
    try:
        names = _get(reader.root, "/Names")
        tree = _get(names, "/EmbeddedFiles") if names is not None else None
        if tree is not None:
            for name, stream in _embedded_files(tree, set()):
                result.setdefault(name, []).append(_stream_content(stream, budget))
    except _Refused:
        raise
    except Exception as exc:
        if _is_decode_limit(exc):
            raise _Refused(DECODE_LIMIT) from exc
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
        raise _Refused(NOT_PDF)
    if len(pdf_bytes) > MAX_PDF_BYTES:
        raise _Refused(TOO_LARGE)
    budget = _Budget(MAX_DECODED_BYTES)
    reader = _open(bytes(pdf_bytes), budget)
    attachments = _attachments(reader, budget)

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
    if not records and seal_certificates is None:
        # A document the cooperative issues (the council's decision) has no member signatures: only the seal
        # vouches for it, so it is accepted only with the seal checked against the published certificate.
        raise _Invalid("В документе нет ни одной подписи пайщика, а печать не сверена с опубликованным "
                       "сертификатом оператора: такой документ не проверить.", **base)

    signers: list[SignerInfo] = []
    keys: set[bytes] = set()
    records_keys: list[tuple[bytes, str]] = []
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
        records_keys.append((public_key, record["email"]))
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
        signer_email = str(document["signer"].get("email") or "").strip().lower()
        signers = [
            dataclasses.replace(info, key_in_document=True if key == expected else (
                False if email.strip().lower() == signer_email else None))
            for info, (key, email) in zip(signers, records_keys)
        ]

    seal = check_seal(bytes(pdf_bytes))
    base["seal"] = seal
    if not seal.valid:
        raise _Invalid(seal.reason, **base)
    trust = ""
    if seal_certificates is not None:
        trust = seal.trusted_by(seal_certificates)
        if not trust and seal.issuer_sha256:
            raise _Invalid(
                f"Печать поставлена сертификатом {seal.signer}, выданным не сертификатом оператора: отпечаток "
                f"SHA-256 выдавшего его сертификата ({seal.issuer}) {seal.issuer_sha256} не совпадает с опубликованным.",
                **base,
            )
        if not trust:
            raise _Invalid(
                "Печать поставлена не сертификатом оператора: отпечаток SHA-256 сертификата печати "
                f"{seal.certificate_sha256} не совпадает с опубликованным.",
                **base,
            )
        issuing = document["data"].get("cooperative", {}) if isinstance(document["data"], dict) else {}
        if trust == "issuer" and seal.signer_inn != str(issuing.get("inn", "")):
            # A cooperative's certificate vouches for that cooperative's documents only.
            raise _Invalid(
                f"Печать кооператива {seal.signer} (ИНН {seal.signer_inn or 'не указан'}) стоит на документе "
                f"другого кооператива (ИНН {issuing.get('inn') or 'не указан'}).",
                **base,
            )

    count = len(signers)
    sealed_by = "печать оператора" if not seal.issuer_sha256 else f"печать {seal.signer}"
    signed = (f"Подписи действительны ({count}), вложенный документ не изменён после подписания; " if count else
              "Документ выдан кооперативом, подписей пайщиков в нём нет; ")
    return VerifyResult(
        valid=True,
        reason=f"{signed}{sealed_by} действительна, файл не изменён после выдачи.",
        signers=signers,
        seal_trust=trust,
        **base,
    )


def verify_pdf(pdf_bytes: bytes, *, seal_certificates: Collection[str] | None = None) -> VerifyResult:
    """Verify a signed PDF offline; never raises for bad input (``valid=False`` with a reason).

    ``seal_certificates``: SHA-256 fingerprints (hex) of the operator's seal certificates; when
    given, the seal must be made with one of them or with a certificate one of them issued.
    """
    try:
        return _check(pdf_bytes, seal_certificates)
    except _Invalid as invalid:
        return VerifyResult(valid=False, reason=invalid.reason, **invalid.extra)
    except _Refused as refused:
        return VerifyResult(valid=False, reason=refused.reason, refused=True)
