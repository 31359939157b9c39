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

One published fingerprint for every cooperative: the operator's certificate is a CA (path
length 0, keyCertSign) and issues each connected cooperative's seal certificate
(``issue_cooperative_identity``). A cooperative's seal embeds its certificate and the
operator's; ``check_seal`` then checks the issuance — the issuer is self-signed, a CA allowed to
sign certificates, its signature over the seal certificate checks out, the seal certificate is
an end entity, and both were valid at the sealing time — and returns the issuer's fingerprint
(``SealCheck.issuer_sha256``) for the caller to compare with the published one. An operator
certificate made before (CA:false) keeps sealing the operator's own documents; to issue, it is
replaced (README: the old fingerprint stays published and keeps verifying what it sealed).

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
from typing import Any, Collection, Iterator

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
    directory: Path  # data_dir/seal (the operator's), or a cooperative's seal directory
    subject_name: str  # CN of the certificate
    certificate_pem: bytes
    certificate_der: bytes
    certificate_sha256: str  # hex; the fingerprint the operator publishes (for the operator's identity)
    private_key: ec.EllipticCurvePrivateKey = field(repr=False, compare=False)
    _signer: list = field(default_factory=list, repr=False, compare=False)  # cached SimpleSigner
    #: DER of the certificate that issued this one, embedded in every seal next to it (a cooperative's
    #: identity: the operator's certificate); empty for the operator's self-signed certificate.
    issuer_der: bytes = b""
    key_name: str = KEY_FILE
    certificate_name: str = CERTIFICATE_FILE

    @property
    def key_path(self) -> Path:
        return self.directory / self.key_name

    @property
    def certificate_path(self) -> Path:
        return self.directory / self.certificate_name

    @property
    def issuer_sha256(self) -> str:
        """SHA-256 of the issuing certificate (the operator's, for a cooperative), "" when self-signed."""
        return hashlib.sha256(self.issuer_der).hexdigest() if self.issuer_der else ""

    @property
    def can_issue(self) -> bool:
        """Whether this certificate may issue cooperatives' seal certificates (CA, keyCertSign)."""
        return _is_issuing_ca(x509.load_der_x509_certificate(self.certificate_der))

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
            registry = None  # the signing certificate is embedded once by itself
            if self.issuer_der:  # and its issuer next to it: the chain up to the published fingerprint
                from pyhanko_certvalidator.registry import SimpleCertificateStore

                registry = SimpleCertificateStore.from_certs([asn1_x509.Certificate.load(self.issuer_der)])
            self._signer.append(
                SimpleSigner(
                    signing_cert=certificate,
                    signing_key=asn1_keys.PrivateKeyInfo.load(key_der),
                    cert_registry=registry,
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
    #: A cooperative's seal: the certificate embedded next to the seal certificate that issued it
    #: (checked: signature, CA, keyCertSign, validity at ``signed_at``); "" for a self-signed seal.
    issuer: str = ""  # its CN
    issuer_sha256: str = ""  # its SHA-256 (DER): the operator's published fingerprint, if genuine
    signer_inn: str = ""  # the ИНН in the seal certificate's subject (a cooperative's seal names its cooperative)

    def trusted_by(self, fingerprints: "Collection[str]") -> str:
        """Which of the published ``fingerprints`` vouches for this seal: "certificate" (the seal's own
        certificate is published), "issuer" (it was issued by a published certificate) or ""."""
        published = {f.replace(":", "").strip().lower() for f in fingerprints}
        if not self.valid:
            return ""
        if self.certificate_sha256 in published:
            return "certificate"
        if self.issuer_sha256 and self.issuer_sha256 in published:
            return "issuer"
        return ""


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


#: OID of the legal entity's INN in a subject name (ИНН ЮЛ, Приказ ФСБ России № 795).
INN_LE_OID = x509.ObjectIdentifier("1.2.643.100.4")
COOPERATIVE_KEY_FILE = "cooperative.key.pem"
COOPERATIVE_CERTIFICATE_FILE = "cooperative.crt.pem"
ISSUER_CERTIFICATE_FILE = "issuer.crt.pem"  # the operator's certificate that issued the cooperative's
COOPERATIVE_CERTIFICATE_DAYS = 1827  # 5 years, never beyond the issuer's own validity
_SKEW = dt.timedelta(minutes=10)


def _subject(name: str, inn: str | None = None) -> x509.Name:
    name = " ".join(name.split()) or "Оператор портала"
    # CN is at most 64 long; cryptography counts UTF-8 bytes (32 Cyrillic letters): use the short
    # name. O has no such limit and keeps the name whole.
    common_name = name.encode()[:64].decode(errors="ignore").strip()
    attributes = [
        x509.NameAttribute(NameOID.COUNTRY_NAME, "RU"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, name),
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
    ]
    if inn:
        from cryptography.x509.name import _ASN1Type

        attributes.append(x509.NameAttribute(INN_LE_OID, inn, _type=_ASN1Type.NumericString))
    return x509.Name(attributes)


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True, content_commitment=True, key_encipherment=False, data_encipherment=False,
        key_agreement=False, key_cert_sign=cert_sign, crl_sign=False, encipher_only=False, decipher_only=False,
    )


def _new_certificate(key: ec.EllipticCurvePrivateKey, operator_name: str) -> x509.Certificate:
    """The operator's self-signed seal certificate; a CA (path length 0) so that it can issue the
    connected cooperatives' seal certificates, and a seal certificate itself (digitalSignature,
    nonRepudiation) for the operator's own documents."""
    name = _subject(operator_name)
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    public = key.public_key()
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _SKEW)
        .not_valid_after(now + dt.timedelta(days=CERTIFICATE_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )


def _is_issuing_ca(certificate: x509.Certificate) -> bool:
    """A CA certificate allowed to sign certificates (basicConstraints CA:true, keyUsage keyCertSign)."""
    try:
        constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        return False
    try:
        usage = certificate.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return False
    return bool(constraints.ca and usage.key_cert_sign)


def _identity(directory: Path, key: ec.EllipticCurvePrivateKey, certificate: x509.Certificate, *,
              issuer_der: bytes = b"", key_name: str = KEY_FILE,
              certificate_name: str = CERTIFICATE_FILE) -> SealIdentity:
    der = certificate.public_bytes(serialization.Encoding.DER)
    common_names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return SealIdentity(
        directory=directory,
        subject_name=str(common_names[0].value) if common_names else certificate.subject.rfc4514_string(),
        certificate_pem=certificate.public_bytes(serialization.Encoding.PEM),
        certificate_der=der,
        certificate_sha256=hashlib.sha256(der).hexdigest(),
        private_key=key,
        issuer_der=issuer_der,
        key_name=key_name,
        certificate_name=certificate_name,
    )


def _load_or_create_key(key_path: Path, cert_path: Path) -> ec.EllipticCurvePrivateKey:
    """The EC key in ``key_path`` (made when neither it nor the certificate exists)."""
    if key_path.exists():
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise SealIdentityError(f"{key_path}: not an EC private key")
        return key
    if cert_path.exists():
        raise SealIdentityError(
            f"{cert_path} exists without its key {key_path}: restore the key (documents sealed "
            "with it must stay verifiable) or remove the certificate to start a new identity"
        )
    key = ec.generate_private_key(ec.SECP256R1())
    _write_file(
        key_path,
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption(),
        ),
        0o600,
    )
    return key


def _load_or_create(directory: Path, operator_name: str) -> SealIdentity:
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    key_path, cert_path = directory / KEY_FILE, directory / CERTIFICATE_FILE
    with _file_lock(directory / ".lock"):
        key = _load_or_create_key(key_path, cert_path)
        if cert_path.exists():
            certificate = x509.load_pem_x509_certificate(cert_path.read_bytes())
            if certificate.public_key() != key.public_key():
                raise SealIdentityError(f"{cert_path} does not belong to the key {key_path}")
        else:
            certificate = _new_certificate(key, operator_name)
            _write_file(cert_path, certificate.public_bytes(serialization.Encoding.PEM), 0o644)
    return _identity(directory, key, certificate)


def _subject_inn(certificate_der: bytes) -> str:
    """The ИНН attribute (OID 1.2.643.100.4) of a certificate's subject, or ""."""
    try:
        values = x509.load_der_x509_certificate(certificate_der).subject.get_attributes_for_oid(INN_LE_OID)
    except ValueError:
        return ""
    return str(values[0].value) if values else ""


def issue_cooperative_identity(operator: SealIdentity, directory: Path, name: str, inn: str) -> SealIdentity:
    """A connected cooperative's seal: its own key and a certificate issued by the operator's one.

    Kept in ``directory`` (``cooperative.key.pem`` mode 0600, ``cooperative.crt.pem``, and the
    issuing certificate ``issuer.crt.pem``); seals made with it embed both certificates, so that
    the operator's one published fingerprint verifies the cooperative's documents offline.
    Subject: C = RU, O = ``name``, CN = ``name`` (cut to 64 UTF-8 bytes), ИНН ЮЛ = ``inn``;
    basicConstraints CA:false; keyUsage digitalSignature, nonRepudiation; valid for
    ``COOPERATIVE_CERTIFICATE_DAYS`` but never beyond the operator's certificate.

    An identity already in ``directory`` is loaded as it is (also if the operator's certificate
    was replaced since: what it sealed verifies while the old fingerprint stays published); to
    issue a new certificate, move the directory aside first. Raises ``SealIdentityError`` when the
    operator's certificate cannot issue (made before certificates were issued: rotate it, README).
    """
    directory = Path(directory).resolve()
    with _identities_lock:
        cached = _identities.get(directory)
        if cached is not None:
            return cached
    if operator.issuer_der:
        raise SealIdentityError("a cooperative's seal certificate cannot issue certificates")
    inn = inn.strip()
    if not (inn.isdigit() and len(inn) in (10, 12)):
        raise ValueError(f"ИНН кооператива — 10 или 12 цифр: {inn!r}")
    issuer = x509.load_der_x509_certificate(operator.certificate_der)
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    key_path, cert_path = directory / COOPERATIVE_KEY_FILE, directory / COOPERATIVE_CERTIFICATE_FILE
    issuer_path = directory / ISSUER_CERTIFICATE_FILE
    with _file_lock(directory / ".lock"):
        if not cert_path.exists() and not _is_issuing_ca(issuer):
            raise SealIdentityError(
                f"{operator.certificate_path}: the operator's seal certificate is not a CA (keyCertSign) and "
                "cannot issue cooperatives' seal certificates; rotate it (README, «Печать оператора»)"
            )
        key = _load_or_create_key(key_path, cert_path)
        if cert_path.exists():
            certificate = x509.load_pem_x509_certificate(cert_path.read_bytes())
            if certificate.public_key() != key.public_key():
                raise SealIdentityError(f"{cert_path} does not belong to the key {key_path}")
            if not issuer_path.exists():
                raise SealIdentityError(f"{issuer_path} is missing: the certificate that issued {cert_path}")
            issuer = x509.load_pem_x509_certificate(issuer_path.read_bytes())
        else:
            now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
            public = key.public_key()
            certificate = (
                x509.CertificateBuilder()
                .subject_name(_subject(name, inn))
                .issuer_name(issuer.subject)
                .public_key(public)
                .serial_number(x509.random_serial_number())
                .not_valid_before(max(now - _SKEW, issuer.not_valid_before_utc))
                .not_valid_after(min(now + dt.timedelta(days=COOPERATIVE_CERTIFICATE_DAYS), issuer.not_valid_after_utc))
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(_key_usage(cert_sign=False), critical=True)
                .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
                .add_extension(
                    x509.AuthorityKeyIdentifier.from_issuer_public_key(operator.private_key.public_key()),
                    critical=False,
                )
                .sign(operator.private_key, hashes.SHA256())
            )
            _write_file(issuer_path, issuer.public_bytes(serialization.Encoding.PEM), 0o644)
            _write_file(cert_path, certificate.public_bytes(serialization.Encoding.PEM), 0o644)
    identity = _identity(directory, key, certificate,
                         issuer_der=issuer.public_bytes(serialization.Encoding.DER),
                         key_name=COOPERATIVE_KEY_FILE, certificate_name=COOPERATIVE_CERTIFICATE_FILE)
    with _identities_lock:
        return _identities.setdefault(directory, identity)


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


def seal_pdf(pdf_bytes: bytes, identity: SealIdentity, *, reason: str | None = None) -> bytes:
    """``pdf_bytes`` with the operator's seal appended as an incremental PAdES signature.

    The original bytes stay a prefix of the result; the signature field is invisible. Raises
    ``ValueError`` when the input is not a PDF that can be sealed (e.g. already sealed). A
    cooperative's identity (``issue_cooperative_identity``) seals with its own certificate and
    embeds the operator's certificate that issued it.
    """
    if reason is None:
        reason = (f"Печать {identity.subject_name}: документ выдан на портале" if identity.issuer_der
                  else DEFAULT_REASON)
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
    chain = 3 * len(identity.certificate_der) + len(identity.issuer_der)
    for reserved in (2 * (chain + CMS_OVERHEAD_RESERVED), None):
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


def _check_signature_bytes(pdf_bytes: bytes, embedded: Any, who: dict[str, Any]) -> Any:
    """The bytes outside the ByteRange: exactly the CMS the sealer writes, nothing else.

    They are not covered by the digest, so each one is checked here: the hex string (one case,
    no whitespace), canonical DER of the CMS, zero padding, and every unsigned field of the CMS
    equal to what the sealer writes or bound by a signed attribute. Returns the second embedded
    certificate (a cooperative's seal: the operator's certificate that issued the signer's), or
    None; the caller checks that it did issue it (``_check_issuer``).
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
        or len(data["certificates"]) not in (1, 2)
        or len(data["signer_infos"]) != 1
        or any(choice.name != "certificate" for choice in data["certificates"])
    ):
        raise _Refused(broken, **who)
    certificates = data["certificates"]
    # A SET OF in DER is sorted by the elements' encodings (what asn1crypto writes): one order only.
    dumps = [choice.dump() for choice in certificates]
    if certificates.contents != b"".join(sorted(dumps)) or len(set(dumps)) != len(dumps):
        raise _Refused(broken, **who)
    signer = data["signer_infos"][0]
    sid = signer["sid"]
    if sid.name != "issuer_and_serial_number":
        raise _Refused(broken, **who)
    matching = [choice.chosen for choice in certificates
                if choice.chosen.issuer.dump() == sid.chosen["issuer"].dump()
                and choice.chosen.serial_number == sid.chosen["serial_number"].native]
    if len(matching) != 1 or matching[0].dump() != embedded.signer_cert.dump():
        raise _Refused(broken, **who)
    certificate = matching[0]
    others = [choice.chosen for choice in certificates if choice.chosen is not certificate]
    if (
        signer["version"].native != "v1"
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
    return others[0] if others else None


def _when(moment: dt.datetime) -> str:
    from portal.clock import datetime_ru

    return datetime_ru(moment)


def _check_issuer(signer_der: bytes, issuer_der: bytes, signed_at: dt.datetime | None, who: dict[str, Any]) -> None:
    """The seal's certificate was issued by the one embedded next to it, and both were valid when sealed.

    The issuer must be a self-signed CA certificate allowed to sign certificates (basicConstraints
    CA:true, keyUsage keyCertSign) whose signature over the seal certificate checks out; the seal
    certificate an end entity (CA:false) allowed to sign; the sealing time within both validity periods.
    Whether the issuer is the operator's (its fingerprint published) is for the caller to decide.
    """
    name = who.get("signer", "")
    try:
        issuer = x509.load_der_x509_certificate(issuer_der)
        certificate = x509.load_der_x509_certificate(signer_der)
    except ValueError as exc:
        raise _Refused("Печать недействительна: сертификат, выдавший сертификат печати, повреждён.", **who) from exc
    issuer_names = issuer.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    issuer_name = str(issuer_names[0].value) if issuer_names else issuer.subject.rfc4514_string()
    try:
        certificate.verify_directly_issued_by(issuer)
    except Exception as exc:  # ValueError (names, algorithm), InvalidSignature, TypeError (key type)
        raise _Refused(
            f"Печать недействительна: сертификат печати {name} не выдан приложенным к ней сертификатом "
            f"{issuer_name} — подпись сертификата не сходится.", **who) from exc
    try:
        issuer.verify_directly_issued_by(issuer)
    except Exception as exc:
        raise _Refused(
            f"Печать недействительна: сертификат {issuer_name}, выдавший сертификат печати, не самоподписанный "
            "или повреждён.", **who) from exc
    if not _is_issuing_ca(issuer):
        raise _Refused(
            f"Печать недействительна: сертификат {issuer_name}, выдавший сертификат печати {name}, не является "
            "удостоверяющим (нет CA:true и keyCertSign) и не вправе выдавать сертификаты.", **who)
    try:
        constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints).value
        is_ca = constraints.ca
    except x509.ExtensionNotFound:
        is_ca = False
    try:
        usage = certificate.extensions.get_extension_for_class(x509.KeyUsage).value
        may_sign = usage.digital_signature or usage.content_commitment
    except x509.ExtensionNotFound:
        may_sign = True
    if is_ca or not may_sign:
        raise _Refused(f"Печать недействительна: сертификат печати {name} не предназначен для печати документов.",
                       **who)
    if signed_at is None:
        raise _Refused("Печать недействительна: в ней не указано время наложения.", **who)
    for cert, label in ((certificate, f"сертификат печати {name}"), (issuer, f"выдавший его сертификат {issuer_name}")):
        if not cert.not_valid_before_utc - _SKEW <= signed_at <= cert.not_valid_after_utc:
            raise _Refused(
                f"Печать недействительна: {label} не действовал во время наложения печати ({_when(signed_at)} МСК; "
                f"срок действия с {_when(cert.not_valid_before_utc)} по {_when(cert.not_valid_after_utc)} МСК).",
                **who)


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
           "certificate_sha256": fingerprint, "signer_inn": _subject_inn(certificate.dump())}
    if seal.sig_object_type != "/Sig" or seal.sig_object.get("/SubFilter") != "/ETSI.CAdES.detached":
        raise _Refused("Печать оператора не в формате PAdES.", **who)
    if seal.md_algorithm != "sha256":
        raise _Refused("Печать оператора сделана с неожиданным алгоритмом хеширования.", **who)
    issuer = _check_signature_bytes(pdf_bytes, seal, who)
    if issuer is not None:
        issuer_subject = issuer.subject.native
        who["issuer"] = str(issuer_subject.get("common_name") or issuer.subject.human_friendly)
        who["issuer_sha256"] = hashlib.sha256(issuer.dump()).hexdigest()

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
    if issuer is not None:
        signed_at = status.signer_reported_dt
        if signed_at is not None and signed_at.tzinfo is None:
            signed_at = signed_at.replace(tzinfo=dt.timezone.utc)
        _check_issuer(certificate.dump(), issuer.dump(), signed_at, who)
        return SealCheck(valid=True, reason=f"Печать {who['signer']} действительна: файл не изменён после выдачи.",
                         **who)
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
