"""The operator's seal: a PAdES signature of ПК «ВОСХОД» over the whole signed PDF.

The members' Ed25519 signatures (``verify``) protect the attached canonical document, not the
visible pages. The seal closes that gap: the portal signs every PDF it issues with an incremental
PAdES signature (pyHanko), whose ByteRange digest covers every byte of the file except the
signature value itself; ``check_seal`` refuses the file if any byte changed or anything was
appended.

    identity = ensure_seal_identity(settings.data_dir, "ПК «ВОСХОД»")   # once per process
    sealed = seal_pdf(signed_pdf_bytes, identity)
    check = check_seal(sealed)      # SealCheck(valid, reason, signer, certificate_sha256, …)

The seal key is an EC P-256 key with a self-signed X.509 certificate kept in
``data_dir/seal/`` (``operator.key.pem`` mode 0600, ``operator.crt.pem``). ``check_seal``
checks integrity, not trust: any certificate embedded in the signature is accepted, and its
SHA-256 fingerprint is returned so the caller can compare it with the operator's published
one (``verify.verify_pdf(..., seal_certificates=...)``).

The bytes the ByteRange leaves out (the hex string of the CMS signature) are checked too: the
signer certificate must be the one whose hash is signed, every unsigned field of the CMS must
have the value the sealer writes, the DER must be canonical and the padding zero, so a changed
byte there is refused as well, not only a changed byte in the signed ranges.

pyHanko is imported only when a seal is made or checked.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import datetime as dt
import fcntl
import hashlib
import io
import logging
import os
import re
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

#: Name of the seal's signature field; ``check_seal`` looks for exactly this one.
SEAL_FIELD = "OperatorSeal"
DEFAULT_REASON = "Печать оператора ПК «ВОСХОД»: документ зарегистрирован на портале"
SEAL_DIRECTORY = "seal"
KEY_FILE = "operator.key.pem"
CERTIFICATE_FILE = "operator.crt.pem"
CERTIFICATE_DAYS = 3653  # 10 years
#: Space for the seal's CMS besides the certificate and the issuer names (signed attributes,
#: ECDSA signature, the structure: about 300 bytes), with a margin.
CMS_OVERHEAD_RESERVED = 512

NO_SEAL = "Нет печати оператора: документ не выдан порталом или изменён"

# DER of the algorithm identifiers the sealer writes (unsigned fields of the CMS SignerInfo).
_SHA256 = {
    bytes.fromhex("300d06096086480165030402010500"),  # sha256, NULL parameters (pyHanko)
    bytes.fromhex("300b0609608648016503040201"),  # sha256, parameters absent
}
_ECDSA_SHA256 = {bytes.fromhex("300a06082a8648ce3d040302")}
_HEX = re.compile(rb"[0-9A-F]+|[0-9a-f]+")


class SealIdentityError(RuntimeError):
    """The stored seal key and certificate are unusable (mismatched, half missing)."""


@dataclass(frozen=True)
class SealIdentity:
    directory: Path  # data_dir/seal
    subject_name: str  # CN of the certificate
    certificate_pem: bytes
    certificate_der: bytes
    certificate_sha256: str  # hex; the fingerprint the operator publishes
    private_key: ec.EllipticCurvePrivateKey = field(repr=False, compare=False)
    _signer: list = field(default_factory=list, repr=False, compare=False)  # cached SimpleSigner

    @property
    def key_path(self) -> Path:
        return self.directory / KEY_FILE

    @property
    def certificate_path(self) -> Path:
        return self.directory / CERTIFICATE_FILE

    def signer(self) -> Any:
        """The pyHanko ``SimpleSigner`` for this identity (made once)."""
        if not self._signer:
            from asn1crypto import keys as asn1_keys
            from asn1crypto import x509 as asn1_x509
            from pyhanko.sign.signers import SimpleSigner

            certificate = asn1_x509.Certificate.load(self.certificate_der)
            key_der = self.private_key.private_bytes(
                serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
            self._signer.append(
                SimpleSigner(
                    signing_cert=certificate,
                    signing_key=asn1_keys.PrivateKeyInfo.load(key_der),
                    cert_registry=None,  # the signing certificate is embedded once by itself
                )
            )
        return self._signer[0]


@dataclass(frozen=True)
class SealCheck:
    valid: bool
    reason: str  # one line, Russian
    signer: str = ""  # CN of the seal certificate
    certificate_sha256: str = ""  # hex fingerprint of the seal certificate (DER)
    signed_at: dt.datetime | None = None  # the time the sealer claims (/M), not a timestamp


# --------------------------------------------------------------------------- identity

_identities: dict[Path, SealIdentity] = {}
_identities_lock = threading.Lock()


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """An exclusive lock between processes (two workers creating the key at once)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def _write_file(path: Path, data: bytes, mode: int) -> None:
    """Write atomically (temp file + rename) with exactly ``mode``."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.fchmod(fd, mode)
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def _new_certificate(key: ec.EllipticCurvePrivateKey, operator_name: str) -> x509.Certificate:
    operator_name = " ".join(operator_name.split()) or "Оператор портала"
    # CN is at most 64 long; cryptography counts UTF-8 bytes (32 Cyrillic letters): use the short
    # name. O has no such limit and keeps the name whole.
    common_name = operator_name.encode()[:64].decode(errors="ignore").strip()
    name = x509.Name([
        x509.NameAttribute(NameOID.COUNTRY_NAME, "RU"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, operator_name),
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
    ])
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    public = key.public_key()
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=10))
        .not_valid_after(now + dt.timedelta(days=CERTIFICATE_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=True, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )


def _load_or_create(directory: Path, operator_name: str) -> SealIdentity:
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    key_path, cert_path = directory / KEY_FILE, directory / CERTIFICATE_FILE
    with _file_lock(directory / ".lock"):
        if key_path.exists():
            key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
            if not isinstance(key, ec.EllipticCurvePrivateKey):
                raise SealIdentityError(f"{key_path}: not an EC private key")
        elif cert_path.exists():
            raise SealIdentityError(
                f"{cert_path} exists without its key {key_path}: restore the key (documents sealed "
                "with it must stay verifiable) or remove the certificate to start a new identity"
            )
        else:
            key = ec.generate_private_key(ec.SECP256R1())
            _write_file(
                key_path,
                key.private_bytes(
                    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                ),
                0o600,
            )
        if cert_path.exists():
            certificate = x509.load_pem_x509_certificate(cert_path.read_bytes())
            if certificate.public_key() != key.public_key():
                raise SealIdentityError(f"{cert_path} does not belong to the key {key_path}")
        else:
            certificate = _new_certificate(key, operator_name)
            _write_file(cert_path, certificate.public_bytes(serialization.Encoding.PEM), 0o644)
    der = certificate.public_bytes(serialization.Encoding.DER)
    common_names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return SealIdentity(
        directory=directory,
        subject_name=str(common_names[0].value) if common_names else certificate.subject.rfc4514_string(),
        certificate_pem=certificate.public_bytes(serialization.Encoding.PEM),
        certificate_der=der,
        certificate_sha256=hashlib.sha256(der).hexdigest(),
        private_key=key,
    )


def ensure_seal_identity(data_dir: Path, operator_name: str) -> SealIdentity:
    """The operator's seal key and certificate in ``data_dir/seal/``, made on first use.

    ``operator_name`` becomes the certificate's CN and O (C = RU); pass the short name
    (``settings.operator.name_short``): the CN is cut to 64 UTF-8 bytes.

    An existing identity is reused as is (also if ``operator_name`` changed since: documents
    sealed earlier carry its certificate). Cached in memory per directory.
    """
    directory = (Path(data_dir) / SEAL_DIRECTORY).resolve()
    with _identities_lock:
        identity = _identities.get(directory)
        if identity is None:
            identity = _identities[directory] = _load_or_create(directory, operator_name)
        return identity


def certificate_sha256_in(data_dir: Path) -> str | None:
    """The SHA-256 (DER) of the seal certificate kept in ``data_dir/seal/``, or None; creates nothing."""
    path = Path(data_dir) / SEAL_DIRECTORY / CERTIFICATE_FILE
    if not path.is_file():
        return None
    cert = x509.load_pem_x509_certificate(path.read_bytes())
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


# --------------------------------------------------------------------------- sealing


def _pyhanko_classes() -> tuple[type, type]:
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign.fields import SigSeedSubFilter
    from pyhanko.sign.signers import PdfSigner
    from pyhanko.sign.signers import constants

    class Writer(IncrementalPdfFileWriter):
        def _update_meta(self) -> None:
            # PDF/A: the Info dictionary and the XMP metadata must agree. pyHanko appends
            # "; pyHanko x.y" to Info /Producer but writes only "pyHanko x.y" into the XMP;
            # the seal is a signature, not an edit, so both are kept as rendered.
            return None

    class Signer(PdfSigner):
        def register_extensions(self, pdf_out: Any, *, md_algorithm: str) -> None:
            # PDF/A-3 is PDF 1.7. For ECDSA pyHanko would also declare ISO/TS 32002 and raise
            # the catalog /Version to 2.0; declare only the ESIC (PAdES) extension of PDF 1.7.
            if self.signature_meta.subfilter == SigSeedSubFilter.PADES:
                pdf_out.ensure_output_version(version=(1, 7))
                pdf_out.register_extension(constants.ESIC_EXTENSION_1)

    return Writer, Signer


_classes: list[tuple[type, type]] = []


def seal_pdf(pdf_bytes: bytes, identity: SealIdentity, *, reason: str = DEFAULT_REASON) -> bytes:
    """``pdf_bytes`` with the operator's seal appended as an incremental PAdES signature.

    The original bytes stay a prefix of the result; the signature field is invisible. Raises
    ``ValueError`` when the input is not a PDF that can be sealed (e.g. already sealed).
    """
    from pyhanko.sign.fields import SigSeedSubFilter
    from pyhanko.sign.signers import PdfSignatureMetadata

    if not _classes:
        _classes.append(_pyhanko_classes())
    writer_class, signer_class = _classes[0]
    meta = PdfSignatureMetadata(
        field_name=SEAL_FIELD,
        md_algorithm="sha256",
        subfilter=SigSeedSubFilter.PADES,
        reason=reason,
        name=identity.subject_name,
    )
    # A fixed reservation for the CMS skips pyHanko's dry-run signature (a third of the time).
    # The CMS holds the certificate and its issuer name twice more (sid, ESS); ``bytes_reserved``
    # counts hex digits. Should it not fit, pyHanko's own estimate is used.
    for reserved in (2 * (3 * len(identity.certificate_der) + CMS_OVERHEAD_RESERVED), None):
        try:
            writer = writer_class(io.BytesIO(bytes(pdf_bytes)))
            already = any(name == SEAL_FIELD for name, _value, _field in _sig_fields(writer.prev))
        except Exception as exc:  # pyHanko's errors on unreadable input
            raise ValueError(f"cannot seal the PDF: {exc}") from exc
        if already:
            raise ValueError("the PDF is already sealed")
        try:
            signer = signer_class(meta, signer=identity.signer())
            output = _UnambiguousStreamEnds()
            _run(lambda: signer.async_sign_pdf(writer, bytes_reserved=reserved, output=output))
            return output.getvalue()
        except Exception as exc:  # pyHanko's errors (damaged input, reservation too small)
            if reserved is None or "larger than expected" not in str(exc):
                raise ValueError(f"cannot seal the PDF: {exc}") from exc
    raise AssertionError("unreachable")  # pragma: no cover


class _UnambiguousStreamEnds(io.BytesIO):
    """The seal's output buffer: a stream whose data ends with CR gets CR LF before ``endstream``.

    pyHanko writes each stream of the seal's revision (the deflated cross-reference stream) as
    ``data``, then ``LF endstream``. Data ending with a CR byte (one time in 256: the last bytes
    of deflated data are its Adler-32) would read ``CR LF endstream``, which a reader may take for
    a CR LF end-of-line and find the data one byte shorter than its /Length (ISO 19005-3
    §6.1.7.1; page-validation's PDFA3B-STREAM-LENGTH-001). Written while pyHanko serialises
    the revision, before it records later offsets and before the ByteRange digest.
    """

    _last = b""

    def write(self, data: Any) -> int:
        data = bytes(data)
        if data == b"\nendstream" and self._last == b"\r":
            data = b"\r\nendstream"
        if data:
            self._last = data[-1:]
        return super().write(data)


def _sig_fields(reader: Any) -> list:
    from pyhanko.sign.fields import enumerate_sig_fields

    return list(enumerate_sig_fields(reader, filled_status=None))


# --------------------------------------------------------------------------- checking


_null_handler = logging.NullHandler()


class _Refused(Exception):
    def __init__(self, reason: str, **extra: Any) -> None:
        super().__init__(reason)
        self.reason = reason
        self.extra = extra


def _run(coro_factory: Any) -> Any:
    """Run a coroutine to completion also when called from inside a running event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro_factory())
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(coro_factory())).result()


def _der_header(data: bytes, pos: int, end: int) -> tuple[int, int, int]:
    """(tag, start of contents, end of contents) of the DER element at ``pos``; strict DER."""
    if pos + 2 > end:
        raise ValueError("truncated")
    tag, first = data[pos], data[pos + 1]
    if tag == 0 or tag & 0x1F == 0x1F:
        # Tag 0 is reserved (end-of-contents): zero bytes are padding, never CMS. Without this a
        # changed length could swallow some of the padding as "elements".
        raise ValueError("tag 0 or a high tag number: not the CMS the sealer writes")
    pos += 2
    if first < 0x80:
        length = first
    else:
        count = first & 0x7F
        if not 1 <= count <= 4 or pos + count > end or data[pos] == 0:
            raise ValueError("indefinite or non-minimal length")
        length = int.from_bytes(data[pos:pos + count], "big")
        if length < 0x80:
            raise ValueError("non-minimal length")
        pos += count
    if pos + length > end:
        raise ValueError("truncated")
    return tag, pos, pos + length


def _strict_der(data: bytes, pos: int, end: int, depth: int = 0) -> None:
    """Every element from ``pos`` to ``end`` (recursively) is strict DER and fills it exactly."""
    if depth > 32:
        raise ValueError("too deep")
    while pos < end:
        tag, start, stop = _der_header(data, pos, end)
        if tag & 0x20:  # constructed
            _strict_der(data, start, stop, depth + 1)
        pos = stop


def _check_signature_bytes(pdf_bytes: bytes, embedded: Any, who: dict[str, Any]) -> None:
    """The bytes outside the ByteRange: exactly the CMS the sealer writes, nothing else.

    They are not covered by the digest, so each one is checked here: the hex string (one case,
    no whitespace), canonical DER of the CMS, zero padding, and every unsigned field of the CMS
    equal to what the sealer writes or bound by a signed attribute.
    """
    from asn1crypto import cms

    broken = "Печать оператора повреждена: значение подписи изменено."
    _zero, len1, start2, _len2 = embedded.byte_range
    gap = pdf_bytes[len1:start2]
    if len(gap) < 4 or gap[:1] != b"<" or gap[-1:] != b">" or not _HEX.fullmatch(gap[1:-1]):
        raise _Refused(broken, **who)
    contents = bytes.fromhex(gap[1:-1].decode("ascii"))
    if contents != bytes(embedded.pkcs7_content):
        raise _Refused(broken, **who)
    try:
        tag, _start, size = _der_header(contents, 0, len(contents))
        _strict_der(contents, 0, size)
    except ValueError as exc:
        raise _Refused(broken, **who) from exc
    der, padding = contents[:size], contents[size:]
    if tag != 0x30 or padding.strip(b"\0"):
        raise _Refused(broken, **who)
    info = cms.ContentInfo.load(der, strict=True)
    if info["content_type"].native != "signed_data":
        raise _Refused(broken, **who)
    data = info["content"]
    if (
        data["version"].native != "v1"
        or len(data["digest_algorithms"]) != 1
        or data["digest_algorithms"][0].dump() not in _SHA256
        or data["encap_content_info"]["content_type"].native != "data"
        or data["encap_content_info"]["content"].native is not None
        or data["crls"].native is not None
        or len(data["certificates"]) != 1
        or len(data["signer_infos"]) != 1
    ):
        raise _Refused(broken, **who)
    certificate = data["certificates"][0].chosen
    signer = data["signer_infos"][0]
    sid = signer["sid"]
    if (
        data["certificates"][0].name != "certificate"
        or signer["version"].native != "v1"
        or sid.name != "issuer_and_serial_number"
        or sid.chosen["issuer"].dump() != certificate.issuer.dump()
        or sid.chosen["serial_number"].native != certificate.serial_number
        or signer["digest_algorithm"].dump() not in _SHA256
        or signer["signature_algorithm"].dump() not in _ECDSA_SHA256
        or signer["unsigned_attrs"].native is not None
    ):
        raise _Refused(broken, **who)
    # The certificate is not signed by the seal: its hash is (ESS signing-certificate-v2).
    bound = [
        value
        for attribute in signer["signed_attrs"]
        if attribute["type"].native == "signing_certificate_v2"
        for value in attribute["values"]
    ]
    if len(bound) != 1 or len(bound[0]["certs"]) < 1:
        raise _Refused(broken, **who)
    first = bound[0]["certs"][0]
    if first["hash_algorithm"]["algorithm"].native != "sha256" or (
        first["cert_hash"].native != hashlib.sha256(certificate.dump()).digest()
    ):
        raise _Refused("Печать оператора повреждена: сертификат в подписи подменён.", **who)


def _check(pdf_bytes: bytes) -> SealCheck:
    # pyHanko logs a warning with a traceback for a damaged signature dictionary; without a
    # handler of its own that goes to stderr of ``portal verify`` (logging's last resort). The
    # records still propagate to the application's handlers.
    logging.getLogger("pyhanko").addHandler(_null_handler)
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import SignatureCoverageLevel
    from pyhanko.sign.validation.pdf_embedded import async_validate_pdf_signature
    from pyhanko_certvalidator import ValidationContext

    try:
        reader = PdfFileReader(io.BytesIO(pdf_bytes), strict=True)
        signatures = reader.embedded_signatures
    except Exception as exc:
        raise _Refused("Печать оператора не проверена: структура PDF-файла повреждена.") from exc
    seals = [s for s in signatures if s.field_name == SEAL_FIELD]
    if not seals:
        raise _Refused(NO_SEAL)
    if len(seals) != 1:
        raise _Refused("В PDF-файле несколько печатей оператора: файл изменён.")
    seal = seals[0]
    if signatures[-1] is not seal:
        raise _Refused("После печати оператора в PDF-файл добавлены другие подписи: файл изменён.")

    certificate = seal.signer_cert
    fingerprint = hashlib.sha256(certificate.dump()).hexdigest()
    subject = certificate.subject.native
    who = {"signer": str(subject.get("common_name") or certificate.subject.human_friendly),
           "certificate_sha256": fingerprint}
    if seal.sig_object_type != "/Sig" or seal.sig_object.get("/SubFilter") != "/ETSI.CAdES.detached":
        raise _Refused("Печать оператора не в формате PAdES.", **who)
    if seal.md_algorithm != "sha256":
        raise _Refused("Печать оператора сделана с неожиданным алгоритмом хеширования.", **who)
    _check_signature_bytes(pdf_bytes, seal, who)

    context = ValidationContext(trust_roots=[certificate], allow_fetching=False)
    try:
        status = _run(lambda: async_validate_pdf_signature(seal, context, skip_diff=True))
    except Exception as exc:  # pyHanko's SignatureValidationError and errors of damaged CMS
        raise _Refused("Печать оператора недействительна: подпись не проходит проверку.", **who) from exc
    who["signed_at"] = status.signer_reported_dt
    if not status.intact:
        raise _Refused("Печать оператора недействительна: файл изменён после её наложения.", **who)
    if not status.valid:
        raise _Refused("Печать оператора недействительна: подпись не проходит проверку.", **who)
    if status.coverage != SignatureCoverageLevel.ENTIRE_FILE:
        raise _Refused("Печать оператора не покрывает весь файл: после неё в файл дописаны данные.", **who)
    return SealCheck(valid=True, reason="Печать оператора действительна: файл не изменён после выдачи.", **who)


def check_seal(pdf_bytes: bytes) -> SealCheck:
    """Check the operator's seal of a PDF; never raises (``valid=False`` with a Russian reason)."""
    try:
        if not isinstance(pdf_bytes, (bytes, bytearray)):
            raise _Refused("Файл не является PDF-документом.")
        return _check(bytes(pdf_bytes))
    except _Refused as refused:
        return SealCheck(valid=False, reason=refused.reason, **refused.extra)
    except Exception:  # pyHanko / asn1crypto raise many kinds of errors on damaged input
        return SealCheck(valid=False, reason="Печать оператора не проверена: файл повреждён или изменён.")
