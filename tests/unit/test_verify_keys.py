"""For each signature: the key's fingerprint and whether it was the signer's registered key at signing time —
offline from the signed document itself, online from the key registry (``registry.judge``)."""

from __future__ import annotations

import datetime as dt
import os
import subprocess

import pytest

from portal.documents import registry, render
from portal.documents.registry import judge
from portal.documents.seal import seal_pdf
from portal.documents.signing import (
    b64encode,
    key_fingerprint,
    private_key_from_seed,
    public_key_raw,
    sign,
    signed_message,
    validate_signature_png,
)
from portal.documents.templates import sample_context
from portal.documents.verify import verify_pdf
from tests.unit.test_render import sign_document
from tests.unit.test_signing import scribble_png
from tests.unit.test_verify_command import PORTAL
from tests.unit.test_verify_pdf import seal_identity  # noqa: F401 (fixture)

WHEN = dt.datetime(2026, 11, 25, 9, 0, tzinfo=dt.timezone.utc)


def extra_signature(document_hash: str, *, full_name: str, email: str, when: dt.datetime) -> render.SignatureRecord:
    """Another signature on the same document, with a key of its own."""
    seed = os.urandom(32)
    public = public_key_raw(private_key_from_seed(seed))
    png = scribble_png(400, 160)
    image_hash = validate_signature_png(png)
    return render.SignatureRecord(
        full_name=full_name, role="Председатель совета", email=email, key_fingerprint=key_fingerprint(public),
        public_key_b64=b64encode(public), signature_b64=b64encode(sign(seed, signed_message(document_hash, image_hash))),
        image_sha256=image_hash, image_png=png, signed_at=when, ip="", user_agent="", document_hash=document_hash,
    )


@pytest.fixture(scope="module")
def signed(seal_identity):  # noqa: F811
    document, record = sign_document("pd_consent", sample_context("individual"), os.urandom(32), scribble_png(), WHEN)
    council = extra_signature(record.document_hash, full_name="Петров Пётр Петрович", email="council@voskhod.coop",
                              when=WHEN + dt.timedelta(days=1))
    # The signer's own e-mail, but not the key the document names as theirs.
    stray = extra_signature(record.document_hash, full_name=record.full_name, email=record.email.upper(),
                            when=WHEN + dt.timedelta(hours=1))
    pdf = seal_pdf(render.render_signed_pdf("pd_consent", document, None, [record, council, stray], "https://x/verify"),
                   seal_identity)
    return {"document": document, "record": record, "pdf": pdf, "identity": seal_identity}


def test_each_signature_says_whether_its_key_is_the_registered_one(signed):
    result = verify_pdf(signed["pdf"], seal_certificates=[signed["identity"].certificate_sha256])
    assert result.valid, result.reason
    own, council, stray = result.signers
    assert own.key_in_document is True and own.public_key_b64 == signed["document"]["signer"]["public_key"]
    assert own.key_fingerprint == signed["record"].key_fingerprint
    assert "ключ зарегистрирован за подписантом" in own.key_status
    assert council.key_in_document is None and "не указан" in council.key_status
    assert stray.key_in_document is False and stray.key_status.startswith("НЕ тот ключ")


def test_portal_verify_prints_fingerprint_and_key_status(signed, tmp_path):
    path = tmp_path / "signed.pdf"
    path.write_bytes(signed["pdf"])
    r = subprocess.run([PORTAL, "verify", str(path), "--seal-sha256", signed["identity"].certificate_sha256],
                       capture_output=True, text=True, timeout=120,
                       env={**os.environ, "PORTAL_DATA_DIR": "/nonexistent", "PORTAL_SEAL_SHA256": ""})
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    first = lines.index(next(line for line in lines if line.startswith("Подпись 1:")))
    assert lines[first + 1] == (f"  ключ {signed['record'].key_fingerprint}: ключ зарегистрирован за подписантом: "
                                "он указан в подписанном документе")
    assert lines[first + 3].endswith("в подписанном документе ключ этого подписанта не указан")
    assert "НЕ тот ключ" in lines[first + 5]


def test_a_document_without_a_named_key_says_so(seal_identity):  # noqa: F811
    """Early documents name no key for the signer: offline there is nothing to compare with."""
    from portal.documents.signing import canonical_document, document_hash
    from portal.documents.templates import get_template

    context = sample_context("individual")
    data = {key: value for key, value in context.items() if key != "signer"}
    document = canonical_document(get_template("pd_consent"), data, dict(context["signer"]))
    assert "public_key" not in document["signer"]
    record = extra_signature(document_hash(document), full_name=context["signer"]["full_name"],
                             email=context["signer"]["email"], when=WHEN)
    pdf = seal_pdf(render.render_signed_pdf("pd_consent", document, None, [record], "https://x/verify"), seal_identity)
    result = verify_pdf(pdf)
    assert result.valid, result.reason
    [signer] = result.signers
    assert signer.key_in_document is None and "не указан" in signer.key_status


# --------------------------------------------------------------------------- the registry's verdict


def row(email: str, created: dt.datetime, revoked: dt.datetime | None = None) -> dict:
    return {"email": email, "created_at": created, "revoked_at": revoked}


def test_registered_key():
    verdict = judge("anna@example.org", WHEN, [row("Anna@Example.org", WHEN - dt.timedelta(days=3))])
    assert verdict.ok and verdict.status == registry.REGISTERED
    assert "зарегистрированным ключом пайщика anna@example.org" in verdict.text and "действует и сейчас" in verdict.text
    # Revoked after the signature: it was the member's key when they signed.
    later = judge("anna@example.org", WHEN, [row("anna@example.org", WHEN - dt.timedelta(days=3),
                                                 WHEN + dt.timedelta(days=1))])
    assert later.ok and "отозван позже, 26.11.2026 12:00 МСК" in later.text


def test_key_revoked_before_signing():
    verdict = judge("anna@example.org", WHEN, [row("anna@example.org", WHEN - dt.timedelta(days=3),
                                                   WHEN - dt.timedelta(hours=1))])
    assert not verdict.ok and verdict.status == registry.REVOKED
    assert "отозван 25.11.2026 11:00 МСК — до подписи" in verdict.text
    at_the_same_moment = judge("anna@example.org", WHEN, [row("anna@example.org", WHEN - dt.timedelta(days=3), WHEN)])
    assert at_the_same_moment.status == registry.REVOKED


def test_key_registered_after_signing_or_to_someone_else_or_unknown():
    assert judge("anna@example.org", WHEN, [row("anna@example.org", WHEN + dt.timedelta(minutes=1))]).status == (
        registry.NOT_YET)
    other = judge("anna@example.org", WHEN, [row("boris@example.org", WHEN - dt.timedelta(days=1))])
    assert other.status == registry.OTHER_MEMBER and not other.ok
    unknown = judge("anna@example.org", WHEN, [])
    assert unknown.status == registry.UNKNOWN and "не зарегистрирован" in unknown.text
    assert judge("anna@example.org", None, [row("anna@example.org", WHEN)]).status == registry.NO_TIME


def test_naive_database_times_are_utc():
    naive = (WHEN - dt.timedelta(days=1)).replace(tzinfo=None)
    assert judge("anna@example.org", WHEN, [row("anna@example.org", naive)]).ok
    # A replaced key: the old one revoked, the new one registered after the signature — the old one counts.
    rows = [row("anna@example.org", WHEN - dt.timedelta(days=5), WHEN + dt.timedelta(days=2)),
            row("anna@example.org", WHEN + dt.timedelta(days=2))]
    assert judge("anna@example.org", WHEN, rows).ok
