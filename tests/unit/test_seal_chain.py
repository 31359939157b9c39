"""Connected cooperatives' seals: certificates issued by the operator's one, so that the operator's single
published fingerprint verifies every cooperative's documents offline — and no forged chain passes."""

from __future__ import annotations

import datetime as dt
import io
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pypdf import PdfReader, PdfWriter
from pypdf.generic import DictionaryObject, NameObject

from portal.documents import render, seal
from portal.documents.seal import (
    INN_LE_OID,
    SealIdentity,
    SealIdentityError,
    check_seal,
    ensure_seal_identity,
    issue_cooperative_identity,
    seal_pdf,
)
from portal.documents.templates import sample_context
from portal.documents.verify import verify_pdf
from tests.unit.test_render import sign_document
from tests.unit.test_signing import scribble_png

OPERATOR = "ПК «ВОСХОД»"
COOPERATIVE = "Потребительский кооператив «Ромашка»"
INN = "7701234567"
PORTAL = str(Path(sys.executable).with_name("portal"))


# --------------------------------------------------------------------------- helpers


def _name(name: str) -> x509.Name:
    attributes = [x509.NameAttribute(NameOID.COUNTRY_NAME, "RU"),
                  x509.NameAttribute(NameOID.ORGANIZATION_NAME, name),
                  x509.NameAttribute(NameOID.COMMON_NAME, name.encode()[:64].decode(errors="ignore"))]
    if name == COOPERATIVE:  # the cooperative's certificates name its ИНН, as issue_cooperative_identity does
        attributes.append(x509.NameAttribute(seal.INN_LE_OID, INN))
    return x509.Name(attributes)


def make_certificate(subject: str, key, *, issuer: x509.Certificate | None = None, issuer_key=None,
                     ca: bool = False, cert_sign: bool = False, not_before: dt.datetime | None = None,
                     not_after: dt.datetime | None = None) -> x509.Certificate:
    """A certificate as a forger (or an older portal) would make it."""
    now = dt.datetime.now(dt.timezone.utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer.subject if issuer is not None else _name(subject))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or now - dt.timedelta(days=1))
        .not_valid_after(not_after or now + dt.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=0 if ca else None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=True, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=cert_sign,
                                     crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
    )
    return builder.sign(issuer_key if issuer_key is not None else key, hashes.SHA256())


def identity_of(key, certificate: x509.Certificate, issuer: x509.Certificate | None = None) -> SealIdentity:
    """A seal identity from any key and certificate (the forger's tool: no checks at all)."""
    issuer_der = issuer.public_bytes(serialization.Encoding.DER) if issuer is not None else b""
    return seal._identity(Path("/nonexistent"), key, certificate, issuer_der=issuer_der)


def new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def certificate_of(identity: SealIdentity) -> x509.Certificate:
    return x509.load_der_x509_certificate(identity.certificate_der)


def repaint(pdf: bytes, text: str = "FORGED fee 9 000") -> bytes:
    """The first page painted over with other text (the attachments and their signatures untouched)."""
    reader = PdfReader(io.BytesIO(pdf))
    writer = PdfWriter(clone_from=reader)
    page = writer.pages[0]
    font = DictionaryObject({NameObject("/Type"): NameObject("/Font"), NameObject("/Subtype"): NameObject("/Type1"),
                             NameObject("/BaseFont"): NameObject("/Helvetica")})
    resources = page["/Resources"].get_object()
    fonts = resources.get("/Font")
    if fonts is None:
        resources[NameObject("/Font")] = fonts = DictionaryObject()
    fonts.get_object()[NameObject("/FForged")] = writer._add_object(font)
    overlay = f"q 1 1 1 rg 40 500 520 120 re f Q BT 0 0 0 rg /FForged 28 Tf 60 550 Td ({text}) Tj ET".encode()
    contents = page.get_contents()
    contents.set_data(contents.get_data() + b"\n" + overlay)
    page.replace_contents(contents)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """The operator, one connected cooperative, and one signed document (unsealed) to seal."""
    data_dir = tmp_path_factory.mktemp("operator-data")
    operator = ensure_seal_identity(data_dir, OPERATOR)
    cooperative = issue_cooperative_identity(operator, data_dir / "seal" / "cooperatives" / INN, COOPERATIVE, INN)
    when = dt.datetime(2026, 11, 25, 9, 0, tzinfo=dt.timezone.utc)
    context = sample_context("individual")
    context["cooperative"] = {**context["cooperative"], "inn": INN, "name_short": COOPERATIVE}  # its own document
    document, record = sign_document("pd_consent", context, os.urandom(32), scribble_png(), when)
    unsealed = render.render_signed_pdf("pd_consent", document, None, [record], "https://romashka.example/verify")
    # A document of another cooperative (the operator's sample requisites), unsealed.
    other, other_record = sign_document("pd_consent", sample_context("individual"), os.urandom(32), scribble_png(),
                                        when)
    other_unsealed = render.render_signed_pdf("pd_consent", other, None, [other_record], "https://x.example/verify")
    return {"operator": operator, "cooperative": cooperative, "unsealed": unsealed,
            "sealed": seal_pdf(unsealed, cooperative), "data_dir": data_dir, "other_unsealed": other_unsealed}


# --------------------------------------------------------------------------- certificates


def test_the_operator_certificate_can_issue(world):
    operator = certificate_of(world["operator"])
    constraints = operator.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical and constraints.value.ca and constraints.value.path_length == 0
    usage = operator.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.key_cert_sign and usage.digital_signature and usage.content_commitment and not usage.crl_sign
    assert operator.issuer == operator.subject
    assert world["operator"].can_issue and world["operator"].issuer_sha256 == ""


def test_the_cooperative_certificate_is_issued_by_the_operator(world):
    operator, identity = world["operator"], world["cooperative"]
    certificate = certificate_of(identity)
    certificate.verify_directly_issued_by(certificate_of(operator))
    assert certificate.issuer == certificate_of(operator).subject
    for oid, value in ((NameOID.ORGANIZATION_NAME, COOPERATIVE), (NameOID.COUNTRY_NAME, "RU"), (INN_LE_OID, INN)):
        assert [a.value for a in certificate.subject.get_attributes_for_oid(oid)] == [value]
    [common_name] = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    assert COOPERATIVE.startswith(common_name.value) and len(common_name.value.encode()) <= 64
    constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical and not constraints.value.ca
    usage = certificate.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and usage.content_commitment and not usage.key_cert_sign
    assert certificate.not_valid_after_utc <= certificate_of(operator).not_valid_after_utc
    assert certificate.public_key() != certificate_of(operator).public_key()
    assert identity.issuer_der == operator.certificate_der and identity.issuer_sha256 == operator.certificate_sha256
    assert not identity.can_issue

    directory = identity.directory
    assert stat.S_IMODE((directory / "cooperative.key.pem").stat().st_mode) == 0o600
    assert (directory / "issuer.crt.pem").read_bytes() == operator.certificate_pem
    seal._identities.pop(directory)  # another process: loaded from the files, not issued again
    again = issue_cooperative_identity(operator, directory, "Другое имя", INN)
    assert again.certificate_der == identity.certificate_der and again.issuer_der == identity.issuer_der
    assert again.private_key.private_numbers() == identity.private_key.private_numbers()


def test_only_a_ca_operator_certificate_issues(world, tmp_path):
    with pytest.raises(ValueError):
        issue_cooperative_identity(world["operator"], tmp_path / "bad-inn", COOPERATIVE, "12345")
    with pytest.raises(SealIdentityError):  # a cooperative cannot issue in turn
        issue_cooperative_identity(world["cooperative"], tmp_path / "sub", "ПК «Лютик»", "7709876543")
    # An operator certificate made before cooperatives' seals existed (CA:false) is kept as it is and keeps
    # sealing the operator's own documents, but cannot issue: it has to be rotated first.
    legacy_dir = tmp_path / "legacy"
    key = new_key()
    (legacy_dir / "seal").mkdir(parents=True)
    (legacy_dir / "seal" / "operator.key.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    legacy_certificate = make_certificate(OPERATOR, key)
    (legacy_dir / "seal" / "operator.crt.pem").write_bytes(legacy_certificate.public_bytes(serialization.Encoding.PEM))
    legacy = ensure_seal_identity(legacy_dir, OPERATOR)
    assert legacy.certificate_der == legacy_certificate.public_bytes(serialization.Encoding.DER)
    assert not legacy.can_issue
    with pytest.raises(SealIdentityError, match="rotate"):
        issue_cooperative_identity(legacy, tmp_path / "coop", COOPERATIVE, INN)
    assert not (tmp_path / "coop" / "cooperative.crt.pem").exists()
    old_document = seal_pdf(world["unsealed"], legacy)
    assert verify_pdf(old_document, seal_certificates=[legacy.certificate_sha256]).valid

    # Rotation: the old files are moved aside, the next start makes a new (issuing) certificate, and both
    # fingerprints are published: the old one keeps verifying what it sealed.
    shutil.move(legacy_dir / "seal", tmp_path / "retired-seal")
    seal._identities.pop((legacy_dir / "seal").resolve())
    rotated = ensure_seal_identity(legacy_dir, OPERATOR)
    assert rotated.can_issue and rotated.certificate_sha256 != legacy.certificate_sha256
    published = [rotated.certificate_sha256, legacy.certificate_sha256]
    cooperative = issue_cooperative_identity(rotated, tmp_path / "coop", COOPERATIVE, INN)
    assert verify_pdf(old_document, seal_certificates=published).valid
    assert verify_pdf(seal_pdf(world["unsealed"], cooperative), seal_certificates=published).valid
    assert verify_pdf(seal_pdf(world["unsealed"], rotated), seal_certificates=published).valid
    assert not verify_pdf(old_document, seal_certificates=[rotated.certificate_sha256]).valid


# --------------------------------------------------------------------------- verification


def test_a_cooperative_document_verifies_with_the_operator_fingerprint_only(world):
    sealed, operator, cooperative = world["sealed"], world["operator"], world["cooperative"]
    assert sealed.startswith(world["unsealed"])
    check = check_seal(sealed)
    assert check.valid, check.reason
    assert check.certificate_sha256 == cooperative.certificate_sha256
    assert (check.issuer_sha256, check.issuer) == (operator.certificate_sha256, OPERATOR)
    assert check.signer == cooperative.subject_name

    result = verify_pdf(sealed, seal_certificates=[operator.certificate_sha256])
    assert result.valid, result.reason
    assert result.seal_trust == "issuer"
    assert f"печать {cooperative.subject_name} действительна" in result.reason
    # Its own certificate published works as well; a stranger's fingerprint does not.
    assert verify_pdf(sealed, seal_certificates=[cooperative.certificate_sha256]).seal_trust == "certificate"
    refused = verify_pdf(sealed, seal_certificates=["ab" * 32])
    assert not refused.valid and "выданным не сертификатом оператора" in refused.reason
    # The operator's own documents still carry one certificate.
    own = verify_pdf(seal_pdf(world["unsealed"], operator), seal_certificates=[operator.certificate_sha256])
    assert own.valid and own.seal_trust == "certificate" and own.seal.issuer_sha256 == ""


def test_a_cooperative_seal_vouches_for_its_own_cooperative_only(world):
    """The operator issued the certificate, but for one cooperative: its seal on another cooperative's document
    (here the operator's own requisites) is refused, whoever published what."""
    operator, cooperative = world["operator"], world["cooperative"]
    assert check_seal(world["sealed"]).signer_inn == INN
    foreign = seal_pdf(world["other_unsealed"], cooperative)
    assert check_seal(foreign).valid  # the seal itself is intact …
    result = verify_pdf(foreign, seal_certificates=[operator.certificate_sha256])
    assert not result.valid  # … but it is on a document it does not vouch for
    assert f"Печать кооператива {cooperative.subject_name} (ИНН {INN}) стоит на документе другого кооператива" \
        in result.reason


def test_the_seal_embeds_the_chain(world):
    from pyhanko.pdf_utils.reader import PdfFileReader

    [embedded] = PdfFileReader(io.BytesIO(world["sealed"])).embedded_signatures
    certificates = {c.chosen.dump() for c in embedded.signed_data["certificates"]}
    assert certificates == {world["cooperative"].certificate_der, world["operator"].certificate_der}


def test_a_certificate_issued_by_a_non_ca_certificate_is_refused(world):
    """A forger takes a plain (CA:false) certificate — e.g. a self-signed seal someone once trusted — to issue."""
    issuer_key, key = new_key(), new_key()
    issuer = make_certificate(OPERATOR, issuer_key, ca=False, cert_sign=False)
    certificate = make_certificate(COOPERATIVE, key, issuer=issuer, issuer_key=issuer_key)
    forged = seal_pdf(world["unsealed"], identity_of(key, certificate, issuer))
    check = check_seal(forged)
    assert not check.valid and "не является удостоверяющим" in check.reason
    fingerprint = seal.hashlib.sha256(issuer.public_bytes(serialization.Encoding.DER)).hexdigest()
    result = verify_pdf(forged, seal_certificates=[fingerprint])  # even with that certificate published
    assert not result.valid and "не является удостоверяющим" in result.reason
    # A CA certificate without keyCertSign cannot issue either.
    issuer = make_certificate(OPERATOR, issuer_key, ca=True, cert_sign=False)
    certificate = make_certificate(COOPERATIVE, key, issuer=issuer, issuer_key=issuer_key)
    assert "не является удостоверяющим" in check_seal(seal_pdf(world["unsealed"], identity_of(key, certificate, issuer))).reason


def test_a_certificate_issued_by_an_unknown_ca_is_refused(world):
    """A forger makes a CA of their own named like the operator and issues a cooperative certificate with it."""
    ca_key, key = new_key(), new_key()
    ca = make_certificate(OPERATOR, ca_key, ca=True, cert_sign=True)
    certificate = make_certificate(COOPERATIVE, key, issuer=ca, issuer_key=ca_key)
    forged = seal_pdf(repaint(world["unsealed"]), identity_of(key, certificate, ca))
    assert check_seal(forged).valid  # the chain holds together, but it is not the operator's
    result = verify_pdf(forged, seal_certificates=[world["operator"].certificate_sha256])
    assert not result.valid
    assert "выданным не сертификатом оператора" in result.reason and result.seal_trust == ""


def test_the_genuine_operator_certificate_next_to_a_forged_one_is_refused(world):
    """The operator's real certificate embedded as the "issuer" of a certificate it never signed."""
    operator_certificate = certificate_of(world["operator"])
    forger_key, key = new_key(), new_key()
    certificate = make_certificate(COOPERATIVE, key, issuer=operator_certificate, issuer_key=forger_key)
    forged = seal_pdf(repaint(world["unsealed"]), identity_of(key, certificate, operator_certificate))
    check = check_seal(forged)
    assert not check.valid and "подпись сертификата не сходится" in check.reason
    assert check.issuer_sha256 == world["operator"].certificate_sha256
    result = verify_pdf(forged, seal_certificates=[world["operator"].certificate_sha256])
    assert not result.valid and "подпись сертификата не сходится" in result.reason


def test_an_expired_or_not_yet_valid_issued_certificate_is_refused(world):
    operator = world["operator"]
    now = dt.datetime.now(dt.timezone.utc)
    for not_before, not_after in ((now - dt.timedelta(days=30), now - dt.timedelta(days=1)),
                                  (now + dt.timedelta(days=1), now + dt.timedelta(days=30))):
        key = new_key()
        certificate = make_certificate(COOPERATIVE, key, issuer=certificate_of(operator),
                                       issuer_key=operator.private_key, not_before=not_before, not_after=not_after)
        sealed = seal_pdf(world["unsealed"], identity_of(key, certificate, certificate_of(operator)))
        result = verify_pdf(sealed, seal_certificates=[operator.certificate_sha256])
        assert not result.valid and "не действовал во время наложения печати" in result.reason
    # The same, but valid now: accepted (the operator really issued it).
    key = new_key()
    certificate = make_certificate(COOPERATIVE, key, issuer=certificate_of(operator), issuer_key=operator.private_key)
    sealed = seal_pdf(world["unsealed"], identity_of(key, certificate, certificate_of(operator)))
    assert verify_pdf(sealed, seal_certificates=[operator.certificate_sha256]).valid


def test_an_issued_certificate_that_is_a_ca_is_refused(world):
    operator = world["operator"]
    key = new_key()
    certificate = make_certificate(COOPERATIVE, key, issuer=certificate_of(operator), issuer_key=operator.private_key,
                                   ca=True, cert_sign=True)
    sealed = seal_pdf(world["unsealed"], identity_of(key, certificate, certificate_of(operator)))
    check = check_seal(sealed)
    assert not check.valid and "не предназначен для печати" in check.reason


def test_every_byte_of_a_chained_seal_counts(world):
    """The issuer certificate lies outside the ByteRange digest: a changed byte in it is refused too."""
    pdf = world["sealed"]
    start, end = [int(v) for v in re.search(rb"/ByteRange\s*\[\s*\d+ (\d+) (\d+)", pdf).groups()]
    der_hex = len(pdf[start + 1:end - 1].rstrip(b"0"))
    issuer_hex = world["operator"].certificate_der.hex().upper().encode()
    content = pdf[start + 1:start + 1 + der_hex].upper()
    issuer_at = start + 1 + content.index(issuer_hex)
    positions = list(range(issuer_at, issuer_at + len(issuer_hex), 5)) + list(range(start, start + der_hex + 3, 23))
    for position in positions:
        original = pdf[position]
        for value in {original ^ 0x01, ord("0") if original != ord("0") else ord("8")}:
            changed = bytearray(pdf)
            changed[position] = value
            result = verify_pdf(bytes(changed), seal_certificates=[world["operator"].certificate_sha256])
            assert not result.valid, (position, bytes([original]), bytes([value]))


# --------------------------------------------------------------------------- portal verify


@pytest.fixture(scope="module")
def files(world, tmp_path_factory):
    forger = ensure_seal_identity(tmp_path_factory.mktemp("forger"), OPERATOR)  # a fresh self-signed certificate
    ca_key, key = new_key(), new_key()
    ca = make_certificate(OPERATOR, ca_key, ca=True, cert_sign=True)
    certificate = make_certificate(COOPERATIVE, key, issuer=ca, issuer_key=ca_key)
    folder = tmp_path_factory.mktemp("files")
    contents = {
        "cooperative": world["sealed"],
        "resealed": seal_pdf(repaint(world["unsealed"]), forger),
        "forged-chain": seal_pdf(repaint(world["unsealed"]), identity_of(key, certificate, ca)),
    }
    paths = {}
    for name, content in contents.items():
        paths[name] = folder / f"{name}.pdf"
        paths[name].write_bytes(content)
    return paths


def run_verify(path: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    environ = {**os.environ, "PORTAL_DATA_DIR": "/nonexistent-data-dir", "PORTAL_SEAL_SHA256": "", **env}
    return subprocess.run([PORTAL, "verify", str(path), *args], capture_output=True, text=True, timeout=120,
                          env=environ)


def test_the_repainted_page_really_differs(world):
    from pypdf import PdfReader

    assert "FORGED fee 9 000" in PdfReader(io.BytesIO(repaint(world["unsealed"]))).pages[0].extract_text()
    assert "FORGED" not in PdfReader(io.BytesIO(world["unsealed"])).pages[0].extract_text()


def test_portal_verify_exit_codes(world, files):
    operator = world["operator"].certificate_sha256
    r = run_verify(files["cooperative"], "--seal-sha256", operator)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("ДЕЙСТВИТЕЛЕН")
    assert f"выдан сертификатом оператора {OPERATOR}" in r.stdout and operator in r.stdout
    assert world["cooperative"].certificate_sha256 in r.stdout
    r = run_verify(files["cooperative"], PORTAL_SEAL_SHA256=f"{'ab' * 32},{operator}")  # old and current
    assert r.returncode == 0
    for name in ("resealed", "forged-chain"):
        r = run_verify(files[name], "--seal-sha256", operator)
        assert r.returncode == 1 and r.stderr.startswith("НЕДЕЙСТВИТЕЛЕН") and "ДЕЙСТВИТЕЛЕН:" not in r.stdout, name
        assert "не сертификатом оператора" in r.stderr, name
    for name in files:  # nothing is trusted without a published fingerprint
        r = run_verify(files[name])
        assert r.returncode == 3 and "НЕ ПРОВЕРЕН" in r.stderr and r.stdout == "", name


def test_serve_warns_about_an_operator_certificate_that_cannot_issue(world, tmp_path):
    from portal.cli import seal_warning

    assert seal_warning(world["operator"]) is None
    key = new_key()
    legacy = identity_of(key, make_certificate(OPERATOR, key))
    warning = seal_warning(legacy)
    assert warning and "не может" in warning and "PORTAL_SEAL_SHA256" in warning


@pytest.mark.skipif(shutil.which("pdfsig") is None, reason="poppler-utils missing")
def test_other_readers_see_the_cooperative_seal(world, tmp_path):
    """poppler reads the chained seal as a valid signature over the whole file, signed by the cooperative."""
    path = tmp_path / "cooperative.pdf"
    path.write_bytes(world["sealed"])
    info = subprocess.run(["pdfsig", str(path)], capture_output=True, text=True, check=True).stdout
    assert len(re.findall(r"^Signature #\d+:", info, flags=re.M)) == 1
    assert f"Common Name: {world['cooperative'].subject_name}" in info
    assert "Total document signed" in info and "Signature is Valid" in info
