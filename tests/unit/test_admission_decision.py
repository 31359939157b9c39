"""The council's decision on admission as the portal issues it: a document of the engine (admission_decision v1),
PDF/A-3b without a validator finding, sealed by the operator, read by pdfsig, accepted by `portal verify` with
the operator's published fingerprint (and by nothing without it), for each of the three applicant types."""

from __future__ import annotations

import datetime as dt
import os
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import page  # page-validation, the PDF/A validator (tests/unit/test_pdfa.py)
import pytest
from pypdf import PdfReader

from portal.admissions import decision as issued
from portal.admissions.service import decision_number, refund_lines
from portal.documents.seal import certificate_sha256_in, ensure_seal_identity, seal_pdf
from portal.documents.signing import canonical_document, canonical_json, document_hash
from portal.documents.templates import get_template, sample_context
from portal.documents.verify import verify_pdf

PORTAL = str(Path(sys.executable).with_name("portal"))
WHEN = dt.datetime(2026, 12, 2, 9, 30, tzinfo=dt.timezone.utc)
FEES = {"organization": (100_000, 300_000), "individual": (10_000, 30_000), "entrepreneur": (10_000, 30_000)}
NAMES = {"organization": ["Потребительское общество «Рассвет»", "ИНН 5024002119", "ОГРН 1025002864710"],
         "individual": ["Кузнецов Иван Сергеевич", "14.03.1985"],
         "entrepreneur": ["индивидуальный предприниматель Кузнецов Иван Сергеевич", "ИНН 500100732259",
                          "ОГРНИП 304500116000157"]}


@pytest.fixture(scope="module")
def operator_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("data")
    ensure_seal_identity(path, "ПК «ВОСХОД»")
    return path


def decision_document(applicant_type: str, number: str = "Р-2026-0007") -> dict:
    context = sample_context(applicant_type)
    entrance, share = FEES[applicant_type]
    data = {k: v for k, v in context["data"].items() if not k.startswith(("passport", "rep_passport"))}
    data.update(document_date="2026-12-02", decision_number=number, application_date="2026-11-25",
                fees={"entrance": entrance, "share": share, "total": entrance + share},
                invoice_number="В-2026-000042", invoice_date="2026-11-26", paid_on="2026-11-30",
                paid_amount=entrance + share)
    cooperative = context["cooperative"]
    return canonical_document(get_template("admission_decision"), {"data": data, "cooperative": cooperative},
                              issued.issuer_of(cooperative))


def findings(pdf: bytes) -> list[str]:
    report = page.validate_pdf_bytes(pdf, profile=page.ValidationProfile.PDF_A_3B)
    found = [f"{f.rule_id}: {f.message}" for f in report.failures]
    assert report.is_compliant or found, "non-conformant without a finding"
    return found


def text_of(pdf: bytes, tmp_path: Path) -> str:
    path = tmp_path / "decision.pdf"
    path.write_bytes(pdf)
    out = subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True).stdout
    return " ".join(out.replace("\u00a0", " ").replace("\u2010", "").split())


def test_decision_numbers_and_refunds():
    assert decision_number(2026, 1) == "Р-2026-0001"
    assert decision_number(2027, 123) == "Р-2027-0123"
    invoice = {"lines": '[{"title": "Вступительный взнос", "amount": 10000}, '
                        '{"title": "Минимальный паевой взнос", "amount": 30000}]', "paid_amount": 45000}
    assert refund_lines(invoice) == [{"title": "Вступительный взнос", "amount": 10000},
                                     {"title": "Минимальный паевой взнос", "amount": 30000},
                                     {"title": "Оплачено сверх счёта", "amount": 5000}]
    assert sum(x["amount"] for x in refund_lines({**invoice, "paid_amount": 40000})) == 40000


@pytest.mark.skipif(shutil.which("pdftotext") is None or shutil.which("pdfsig") is None,
                    reason="poppler-utils missing")
@pytest.mark.parametrize("applicant_type", ["organization", "individual", "entrepreneur"])
def test_decision_pdf_is_numbered_pdfa_sealed_and_verifiable(applicant_type, operator_dir, tmp_path):
    document = decision_document(applicant_type)
    unsealed = issued.render_issued_pdf("admission_decision", document, "https://voskhod.coop/verify?hash=x", WHEN)
    sealed = seal_pdf(unsealed, ensure_seal_identity(operator_dir, "ПК «ВОСХОД»"))

    text = text_of(sealed, tmp_path)
    assert "РЕШЕНИЕ" in text and "о приёме в пайщики № Р-2026-0007 от 02.12.2026" in text
    for name in NAMES[applicant_type]:
        assert name in text, name
    entrance, share = FEES[applicant_type]
    money = {100_000: "1 000,00 ₽", 300_000: "3 000,00 ₽", 400_000: "4 000,00 ₽",
             10_000: "100,00 ₽", 30_000: "300,00 ₽", 40_000: "400,00 ₽"}
    for amount in (entrance, share, entrance + share):
        assert money[amount] in text
    assert "№ В-2026-000042 от 26.11.2026" in text and "30.11.2026" in text
    assert "Закона № 3085-1" in text and "Председатель Совета" in text and "г. Москва" in text
    assert "Паспорт" not in text and "345678" not in text  # the decision prints no passport

    for pdf in (unsealed, sealed):
        found = findings(pdf)
        assert not found, f"{applicant_type}: PDF/A-3b findings:\n" + "\n".join(found)

    path = tmp_path / "sealed.pdf"
    path.write_bytes(sealed)
    info = subprocess.run(["pdfsig", str(path)], capture_output=True, text=True, check=True).stdout
    assert "Signature Field Name: OperatorSeal" in info and "Signature is Valid" in info
    assert "Total document signed" in info

    fingerprint = certificate_sha256_in(operator_dir)
    result = verify_pdf(sealed, seal_certificates=[fingerprint])
    assert result.valid, result.reason
    assert result.document_hash == document_hash(document) and result.signers == []
    assert "выдан кооперативом" in result.reason
    # Without the published fingerprint a document with no member signature proves nothing.
    assert not verify_pdf(sealed).valid
    assert not verify_pdf(unsealed, seal_certificates=[fingerprint]).valid  # no seal


def test_portal_verify_accepts_the_decision_and_refuses_a_reseal(operator_dir, tmp_path):
    document = decision_document("individual", "Р-2026-0001")
    unsealed = issued.render_issued_pdf("admission_decision", document, "https://voskhod.coop/verify?hash=x", WHEN)
    genuine = tmp_path / "genuine.pdf"
    genuine.write_bytes(seal_pdf(unsealed, ensure_seal_identity(operator_dir, "ПК «ВОСХОД»")))
    forged = tmp_path / "forged.pdf"
    forged.write_bytes(seal_pdf(unsealed, ensure_seal_identity(tmp_path / "forger", "ПК «ВОСХОД»")))
    env = {**os.environ, "PORTAL_DATA_DIR": "/nonexistent-data-dir", "PORTAL_SEAL_SHA256": ""}
    fingerprint = certificate_sha256_in(operator_dir)
    r = subprocess.run([PORTAL, "verify", str(genuine), "--seal-sha256", fingerprint], capture_output=True,
                       text=True, timeout=120, env=env)
    assert r.returncode == 0 and "ДЕЙСТВИТЕЛЕН" in r.stdout, r.stderr
    assert document_hash(document) in r.stdout
    r = subprocess.run([PORTAL, "verify", str(forged), "--seal-sha256", fingerprint], capture_output=True,
                       text=True, timeout=120, env=env)
    assert r.returncode == 1 and "НЕДЕЙСТВИТЕЛЕН" in r.stderr


def test_each_decision_has_its_own_hash_and_template_check(operator_dir):
    """Another number is another document (another hash); a document made for other template text is refused."""
    document = decision_document("organization")
    other = decision_document("organization", "Р-2026-0008")
    assert document_hash(document) != document_hash(other)
    pdf = issued.render_issued_pdf("admission_decision", document, "https://voskhod.coop/verify?hash=x", WHEN)
    attachments = PdfReader(io.BytesIO(pdf)).attachments
    assert attachments["document.json"] == [canonical_json(document)]
    assert json.loads(attachments["signatures.json"][0]) == {"format": "coopdoc-signatures/v1",
                                                             "document_hash": document_hash(document),
                                                             "signatures": []}
    with pytest.raises(ValueError):
        issued.render_issued_pdf("admission_decision", {**document, "template_sha256": "0" * 64},
                                 "https://voskhod.coop/verify?hash=x", WHEN)
