"""Signed PDFs are PDF/A-3b without a single validator finding (page-validation), sealed or not.

Every template of ``pdf_templates/templates.toml`` is rendered, signed and sealed as the portal
issues it, so a new document type is checked as soon as it is registered.
"""

from __future__ import annotations

import datetime as dt
import io
import os
import zlib

import pytest
import page  # page-validation, the PDF/A validator (a test dependency: a missing one fails the run)
from pypdf import PdfReader

from portal.documents import render, templates
from portal.documents.seal import _UnambiguousStreamEnds, ensure_seal_identity, seal_pdf
from portal.documents.signing import canonical_json
from portal.documents.templates import sample_context
from portal.documents.verify import verify_pdf
from tests.unit.test_render import APPLICANT_TYPES, SIGNED_TEMPLATES, long_name_context, sign_document
from tests.unit.test_signing import scribble_png


WHEN = dt.datetime(2026, 11, 25, 9, 0, tzinfo=dt.timezone.utc)
VERIFY_URL = "https://voskhod.coop/verify"


@pytest.fixture(scope="module")
def identity(tmp_path_factory):
    return ensure_seal_identity(tmp_path_factory.mktemp("data"), "ПК «ВОСХОД»")


def findings(pdf: bytes) -> list[str]:
    report = page.validate_pdf_bytes(pdf, profile=page.ValidationProfile.PDF_A_3B)
    found = [
        f"{f.rule_id} (object {f.object_id.object_number if f.object_id else '-'}): {f.message}"
        for f in report.failures
    ]
    assert report.is_compliant or found, "non-conformant without a finding"
    return found


def af_duplicates(pdf: bytes) -> list[int]:
    """Object numbers listed more than once in the catalog's /AF (ISO 19005-3 Annex E)."""
    numbers = [ref.idnum for ref in PdfReader(io.BytesIO(pdf)).trailer["/Root"].get("/AF", [])]
    return sorted({n for n in numbers if numbers.count(n) > 1})


def issue(template_id: str, applicant_type: str, identity, seed: bytes | None = None,
          context: dict | None = None) -> tuple[bytes, bytes]:
    document, record = sign_document(template_id, context or sample_context(applicant_type), seed or os.urandom(32),
                                     scribble_png(), WHEN)
    unsealed = render.render_signed_pdf(template_id, document, None, [record], VERIFY_URL)
    return unsealed, seal_pdf(unsealed, identity)


# Checked in their own tests: documents issued by the cooperative and not signed by the member (the invoice), and
# the connection agreement, whose data is not the joining application (tests/unit/test_connection_agreement.py).
OWN_TESTS = {"invoice", "connection_agreement"}
# The cooperative's regulations its council signs: their data is the council and its decision, not an application
# (tests/unit/test_coop_regulations_b.py).
OWN_TESTS |= {"coop_pd_policy", "coop_user_agreement"}
OWN_TESTS |= {"coop_wallet_program", "coop_pep_regulation"}  # tests/unit/test_coop_regulations_a.py


@pytest.mark.parametrize("applicant_type", ["organization", "individual", "entrepreneur"])
@pytest.mark.parametrize("template_id", [t.id for t in templates.all_templates() if t.id not in OWN_TESTS])
def test_signed_pdf_has_no_pdfa_findings(identity, template_id, applicant_type):
    unsealed, sealed = issue(template_id, applicant_type, identity)
    for name, pdf in (("sealed", sealed), ("before the seal", unsealed)):
        found = findings(pdf)
        assert not found, f"{template_id} ({applicant_type}, {name}): PDF/A-3b findings:\n" + "\n".join(found)
        assert not af_duplicates(pdf), f"{template_id}: /AF lists file specifications twice: {af_duplicates(pdf)}"
    assert len(PdfReader(io.BytesIO(sealed)).trailer["/Root"]["/AF"]) == 3  # document, signatures, PNG
    result = verify_pdf(sealed)
    assert result.valid, result.reason


@pytest.mark.parametrize("applicant_type", APPLICANT_TYPES)
@pytest.mark.parametrize("template_id", SIGNED_TEMPLATES)
def test_long_and_hostile_names_have_no_pdfa_findings(identity, template_id, applicant_type):
    """A 43-letter double surname, a long address and a hostile name: still PDF/A-3b without a finding."""
    context = long_name_context(applicant_type)
    assert "pep_offer" in context  # the signature sheet carries the offer acceptance
    unsealed, sealed = issue(template_id, applicant_type, identity, context=context)
    for name, pdf in (("sealed", sealed), ("before the seal", unsealed)):
        found = findings(pdf)
        assert not found, f"{template_id} ({applicant_type}, {name}): PDF/A-3b findings:\n" + "\n".join(found)
    assert verify_pdf(sealed).valid


@pytest.mark.parametrize("accepted", [False, True])
def test_pep_offer_pdf_has_no_pdfa_findings(accepted):
    """The ПЭП offer, rendered from the cooperative alone (and the acceptance), as PDF/A-3b."""
    context = templates.sample_offer_context(accepted)
    pdf = render.render_pdf("pep_agreement", context, pdf_variant=render.PDF_VARIANT)
    found = findings(pdf)
    assert not found, "pep_agreement offer: PDF/A-3b findings:\n" + "\n".join(found)
    xmp = PdfReader(io.BytesIO(pdf)).trailer["/Root"]["/Metadata"].get_object().get_data()
    assert b"<pdfaid:part>3</pdfaid:part>" in xmp or b'pdfaid:part="3"' in xmp


def test_stream_data_ending_with_cr(identity):
    """The deflated document.json ends with its Adler-32; pick a document where that is a CR."""
    for _ in range(5000):
        seed = os.urandom(32)
        document, _record = sign_document("pd_consent", sample_context("individual"), seed, scribble_png(), WHEN)
        data = canonical_json(dict(document))
        if zlib.compress(data, 9)[-1:] == b"\r":
            break
    else:  # pragma: no cover
        pytest.fail("no document whose deflated JSON ends with CR")
    unsealed, sealed = issue("pd_consent", "individual", identity, seed)
    for pdf in (unsealed, sealed):
        found = findings(pdf)
        assert not found, "\n".join(found)
    assert b"\r\r\nendstream" in unsealed  # CR LF as the end-of-line marker
    assert PdfReader(io.BytesIO(sealed)).attachments["document.json"] == [data]
    assert verify_pdf(sealed).valid


def test_seal_output_ends_cr_stream_with_cr_lf():
    out = _UnambiguousStreamEnds()
    for chunk in (b"1 0 obj\n<</Length 4>>", b"\nstream\n", b"abc\r", b"\nendstream", b"\nendobj\n",
                  b"2 0 obj\n<</Length 3>>", b"\nstream\n", b"abc", b"\nendstream"):
        out.write(chunk)
    assert out.getvalue() == (b"1 0 obj\n<</Length 4>>\nstream\nabc\r\r\nendstream\nendobj\n"
                              b"2 0 obj\n<</Length 3>>\nstream\nabc\nendstream")
