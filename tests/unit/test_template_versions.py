"""Documents signed with version 1 of the texts keep rendering and verifying exactly as they were.

``tests/data/v1/*.pdf`` were signed and sealed (by a throwaway test seal) with version 1, before
version 2 changed the texts. Version 1 lives on as frozen copies in ``pdf_templates/v1/``.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from pypdf import PdfReader

from portal.documents import render, templates
from portal.documents.verify import verify_pdf
import datetime as dt

from portal.documents.render import SignatureRecord
from tests.unit.test_render import normalize, poppler

DATA = Path(__file__).resolve().parent.parent / "data" / "v1"
TEST_SEAL_SHA256 = "3e4b09ad4d47be41d246c8212e7ad2945fe1d64d1912677aaf8141dbddde500d"
# The SHA-256 of each version-1 template as it was signed; editing pdf_templates/v1/ breaks these.
V1_SHA256 = {
    "join_application": "9e2e837267974d9663cf6c8c95b121254124c2abebdcae624088a2689e3ecde5",
    "pep_agreement": "19bb2c346f68c5fb80ed5df654db531c3e6cd154c9c7027db97d01b8fc4b3b8a",
    "pd_consent": "38c3efcbdacfcc5eea8f9959afbb29d56c76b9c58404dfcba3c6d16007cdbeda",
    "user_agreement": "4c3af29fbe928a3f12cd94b2fea355940b1ea5ed138aeeefec1bb21450064d80",
}
GOLDEN = sorted(DATA.glob("*.pdf"))


def test_version_one_is_frozen_and_version_two_is_current():
    for template_id, sha in V1_SHA256.items():
        v1 = templates.get_template(template_id, 1)
        assert v1.sha256 == sha and v1.directory == "v1"
        current = templates.get_template(template_id)
        assert current.version >= 2 and current.directory == ""
    assert {t.id for t in templates.all_templates()} >= set(V1_SHA256)
    with pytest.raises(templates.TemplateNotFound):
        templates.get_template("join_application", 99)


@pytest.mark.parametrize("path", GOLDEN, ids=[p.stem for p in GOLDEN])
def test_version_one_documents_still_verify(path):
    result = verify_pdf(path.read_bytes(), seal_certificates=[TEST_SEAL_SHA256])
    assert result.valid, result.reason


def _attachment(pdf: bytes, name: str) -> bytes:
    return PdfReader(io.BytesIO(pdf)).attachments[name][0]


@pytest.mark.parametrize("path", GOLDEN, ids=[p.stem for p in GOLDEN])
def test_version_one_documents_render_as_they_were(path, tmp_path):
    """Re-rendered from its own document.json with today's engine, the body reads word for word the same."""
    pdf = path.read_bytes()
    document = json.loads(_attachment(pdf, "document.json"))
    assert document["template_version"] == 1
    records = [
        SignatureRecord(
            full_name=s["full_name"], role=s["role"], email=s["email"], key_fingerprint=s["key_fingerprint"],
            public_key_b64=s["public_key_b64"], signature_b64=s["signature_b64"], image_sha256=s["image_sha256"],
            image_png=_attachment(pdf, s["image_file"]), signed_at=dt.datetime.fromisoformat(s["signed_at"]),
            ip=s["ip"], user_agent=s["user_agent"], document_hash=s["document_hash"],
        )
        for s in json.loads(_attachment(pdf, "signatures.json"))["signatures"]
    ]
    again = render.render_signed_pdf(document["template_id"], document, None, records, "https://voskhod.coop/verify")
    text = [normalize(poppler("pdftotext", "-layout", data=d, tmp_path=tmp_path)) for d in (pdf, again)]
    assert text[0] == text[1] and "ЛИСТ ПОДПИСЕЙ" in text[0]
