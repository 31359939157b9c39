"""Templates, HTML/PDF rendering and the signed PDF/A-3b (SPEC §4)."""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import subprocess
from html import unescape
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from portal.documents import render, templates
from portal.documents.render import PortalURLFetcher, SignatureRecord, URLNotAllowed
from portal.documents.signing import (
    b64encode,
    canonical_document,
    canonical_json,
    document_hash,
    key_fingerprint,
    public_key_raw,
    sign,
    signed_message,
    validate_signature_png,
)
from portal.documents.templates import get_template, sample_context
from tests.unit.test_signing import scribble_png

APPLICANT_TYPES = ("organization", "individual", "entrepreneur")
JOIN_PACKAGE = ("join_application", "pep_agreement", "pd_consent", "user_agreement")

needs_poppler = pytest.mark.skipif(shutil.which("pdftotext") is None, reason="poppler-utils missing")


def poppler(tool: str, *args: str, data: bytes, tmp_path: Path) -> str:
    path = tmp_path / f"doc-{os.urandom(4).hex()}.pdf"
    path.write_bytes(data)
    result = subprocess.run([tool, *args, str(path), *(["-"] if tool == "pdftotext" else [])],
                            capture_output=True, check=True)
    return result.stdout.decode("utf-8")


def normalize(text: str) -> str:
    return re.sub(r"[\s\u00a0\u202f]+", " ", text)


# --------------------------------------------------------------------------- signing fixture


def sign_document(template_id: str, context: dict, seed: bytes, png: bytes, when: dt.datetime,
                  version: int | None = None):
    """What the application does: canonical document, browser-side signature, record."""
    public = public_key_raw(Ed25519PrivateKey.from_private_bytes(seed))
    signer = {**context["signer"], "public_key": b64encode(public)}
    data = {key: value for key, value in context.items() if key != "signer"}
    document = canonical_document(get_template(template_id, version), data, signer)
    doc_hash = document_hash(document)
    image_hash = validate_signature_png(png)
    record = SignatureRecord(
        full_name=signer["full_name"],
        role=signer["role"],
        email=signer["email"],
        key_fingerprint=key_fingerprint(public),
        public_key_b64=b64encode(public),
        signature_b64=b64encode(sign(seed, signed_message(doc_hash, image_hash))),
        image_sha256=image_hash,
        image_png=png,
        signed_at=when,
        ip="203.0.113.7",
        user_agent="Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/156.0 Safari/537.36",
        document_hash=doc_hash,
    )
    return document, record


@pytest.fixture(scope="module")
def signed():
    """One signed application per applicant type, rendered once for the whole module."""
    seed = os.urandom(32)
    png = scribble_png()
    when = dt.datetime(2026, 11, 25, 21, 30, 5, tzinfo=dt.timezone.utc)  # 26.11 00:30 МСК
    result = {}
    for kind in APPLICANT_TYPES:
        document, record = sign_document("join_application", sample_context(kind), seed, png, when)
        pdf = render.render_signed_pdf(
            "join_application", document, None, [record], f"https://voskhod.coop/verify/{record.document_hash}"
        )
        result[kind] = (document, record, pdf)
    return result


# --------------------------------------------------------------------------- registry and filters


def test_registry_lists_the_join_package():
    ids = [t.id for t in templates.all_templates()]
    assert set(JOIN_PACKAGE) <= set(ids)
    shas = {t.sha256 for t in templates.all_templates()}
    assert len(shas) == len(ids)
    info = get_template("join_application")
    assert info.version >= 1 and info.title and info.path.is_file() and re.fullmatch(r"[0-9a-f]{64}", info.sha256)
    with pytest.raises(templates.TemplateNotFound):
        get_template("no_such_template")


def test_template_sha_covers_layout_and_stylesheet(tmp_path, monkeypatch):
    copy = tmp_path / "pdf_templates"
    shutil.copytree(templates.templates_dir(), copy)
    monkeypatch.setenv("PORTAL_PDF_TEMPLATES_DIR", str(copy))
    templates.reload_templates()
    try:
        before = {t.id: t.sha256 for t in templates.all_templates()}
        (copy / "print.css").write_text((copy / "print.css").read_text() + "\n/* x */\n")
        templates.reload_templates()
        after_css = {t.id: t.sha256 for t in templates.all_templates()}
        assert all(before[i] != after_css[i] for i in before)
        (copy / "pd_consent.html").write_text((copy / "pd_consent.html").read_text() + "\n")
        templates.reload_templates()
        after_one = {t.id: t.sha256 for t in templates.all_templates()}
        assert after_one["pd_consent"] != after_css["pd_consent"]
        assert after_one["join_application"] == after_css["join_application"]
    finally:
        monkeypatch.delenv("PORTAL_PDF_TEMPLATES_DIR")
        templates.reload_templates()


def test_filters():
    assert templates.rub(100_000) == "1\u00a0000,00\u00a0₽"
    assert normalize(templates.rub(400_000)) == "4 000,00 ₽"
    assert templates.rub(5) == "0,05\u00a0₽"
    assert templates.rub_words(100_000) == "одна тысяча рублей 00 копеек"
    assert templates.rub_words(400_000) == "четыре тысячи рублей 00 копеек"
    assert templates.rub_words(2_101_522_01) == (
        "два миллиона сто одна тысяча пятьсот двадцать два рубля 01 копейка"
    )
    assert templates.rub_words(1_112) == "одиннадцать рублей 12 копеек"
    with pytest.raises(TypeError):
        templates.rub(10.5)
    assert templates.date_ru("2026-11-25") == "25.11.2026"
    assert templates.date_ru(dt.date(2026, 1, 2)) == "02.01.2026"
    late = dt.datetime(2026, 11, 25, 22, 0, tzinfo=dt.timezone.utc)
    assert templates.date_ru(late) == "26.11.2026"  # Moscow time
    assert templates.datetime_msk(late) == "26.11.2026 01:00:00 МСК"
    assert templates.datetime_utc(late) == "25.11.2026 22:00:00 UTC"
    assert templates.initials("Иванов", "Иван", "") == "Иванов И."
    assert templates.groups("abcdefgh12") == "abcdefgh 12"


# --------------------------------------------------------------------------- HTML


def html_text(html: str) -> str:
    """The text of rendered HTML, whitespace (NBSP too) normalised."""
    return normalize(unescape(re.sub(r"<[^>]+>", " ", html)))


@pytest.mark.parametrize("kind", APPLICANT_TYPES)
@pytest.mark.parametrize("template_id", JOIN_PACKAGE)
def test_every_template_renders_for_every_applicant_type(template_id, kind):
    context = sample_context(kind)
    html = render.render_html(template_id, context)
    text = html_text(html)
    assert "ПК «ВОСХОД»" in text
    assert "7707083893" in text  # the cooperative's ИНН
    assert "https://voskhod.coop" in text  # the portal's URL where the texts define it
    if template_id == "pep_agreement":  # an offer: the cooperative never signs it, the member accepts it
        assert 'class="sign-line"' not in html
    else:
        assert 'class="sign-line"' in html  # a signature line, still empty
        assert "г. Москва 25.11.2026" in text  # the place is the city, the date in its own column
        assert "ул. Примерная, д. 1-25" not in text and "д. 1 25.11" not in text
    assert "<style>" in html and "@page" in html
    data = context["data"]
    if template_id == "join_application":
        if kind == "organization":
            assert "4 000,00 ₽" in text and "1 000,00 ₽" in text
            assert "Союза потребительских обществ «РУСЬ»" in text
            assert "5024002119" in text and "502401001" in text and "Устава" in text
        else:
            assert "400,00 ₽" in text and "четыреста рублей 00 копеек" in text
        if kind == "entrepreneur":
            assert data["ogrnip"] in text and data["settlement_account"] in text
        if kind == "individual":
            assert "14.03.1985" in text and "Банковские реквизиты" not in text


def test_power_of_attorney_basis():
    context = sample_context("organization")
    context["data"].update(rep_basis="power_of_attorney", rep_poa_number="17", rep_poa_date="2026-02-01")
    text = html_text(render.render_html("join_application", context))
    assert "на основании доверенности № 17 от 01.02.2026" in text


def test_missing_required_field_is_an_error():
    context = sample_context("organization")
    del context["data"]["kpp"]
    with pytest.raises(Exception, match="kpp"):
        render.render_html("join_application", context)
    context = sample_context("individual")
    context["data"]["applicant_type"] = "robot"
    with pytest.raises(ValueError):
        render.render_html("join_application", context)


def test_user_input_is_escaped_and_never_fetched():
    context = sample_context("organization")
    evil = '<img src="http://example.com/x.png"><link rel="attachment" href="file:///etc/passwd">'
    context["data"]["org_full_name"] = evil
    context["data"]["rep_last_name"] = "<script>alert(1)</script>"
    html = render.render_html("join_application", context)
    assert "<img src=\"http://" not in html and "<script>" not in html and "<link rel" not in html
    assert "&lt;img src=&#34;http://example.com/x.png&#34;&gt;" in html
    pdf = render.render_pdf("join_application", context)  # the fetcher would abort on any fetch
    assert pdf.startswith(b"%PDF-")


# --------------------------------------------------------------------------- URL fetcher


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com/x.png",
        "https://example.com/x.png",
        "ftp://example.com/x.png",
        "file:///etc/passwd",
        "file://evil.example/etc/passwd",
        (templates.templates_dir() / ".." / ".." / ".." / "etc" / "passwd").as_uri().replace("%2E", "."),
        "javascript:alert(1)",
    ],
)
def test_fetcher_refuses_outside_urls(url):
    with pytest.raises(URLNotAllowed):
        PortalURLFetcher().fetch(url)


def test_fetcher_allows_data_and_own_files():
    fetcher = PortalURLFetcher()
    response = fetcher.fetch("data:text/plain;base64,0J/RgNC40LLQtdGC")
    assert response.read().decode() == "Привет"
    css = fetcher.fetch((templates.templates_dir() / "print.css").as_uri())
    assert b"@page" in css.read()
    assert css.content_type == "text/css"


def test_fetch_outside_aborts_render():
    with pytest.raises(URLNotAllowed):
        render._write_pdf('<html><body><img src="http://example.com/x.png"></body></html>')


# --------------------------------------------------------------------------- signed PDF


@needs_poppler
@pytest.mark.parametrize("kind", APPLICANT_TYPES)
def test_signed_pdf_text(signed, kind, tmp_path):
    document, record, pdf = signed[kind]
    text = normalize(poppler("pdftotext", "-enc", "UTF-8", data=pdf, tmp_path=tmp_path))
    assert "ПК «ВОСХОД»" in text
    assert "7707083893" in text
    assert "ЗАЯВЛЕНИЕ" in text and "ЛИСТ ПОДПИСЕЙ" in text
    assert re.search(r"Страница 1 из \d", text)
    assert record.email in text and record.full_name in text
    assert "26.11.2026 00:30:05 МСК" in text and "25.11.2026 21:30:05 UTC" in text
    assert "203.0.113.7" in text and "Safari/537.36" in text
    assert record.key_fingerprint in text
    assert templates.groups(record.document_hash) in text
    assert f"https://voskhod.coop/verify/{record.document_hash}" in text.replace(" ", "")
    if kind == "organization":
        assert "5024002119" in text and "4 000,00 ₽" in text
    elif kind == "entrepreneur":
        assert "304500116000157" in text and "400,00 ₽" in text


@needs_poppler
def test_signed_pdf_fonts_embedded(signed, tmp_path):
    output = poppler("pdffonts", data=signed["organization"][2], tmp_path=tmp_path)
    rows = output.strip().splitlines()[2:]
    assert rows, output
    assert any("DejaVu" in row for row in rows)
    for row in rows:
        # name type encoding emb sub uni object ID — "emb" is the 4th column from the right end.
        assert row.split()[-5] == "yes", row


@needs_poppler
def test_signed_pdf_attachments(signed, tmp_path):
    document, record, pdf = signed["individual"]
    listing = poppler("pdfdetach", "-list", data=pdf, tmp_path=tmp_path)
    for name in ("document.json", "signatures.json", "signature-1.png"):
        assert name in listing
    path = tmp_path / "signed.pdf"
    path.write_bytes(pdf)
    subprocess.run(["pdfdetach", "-saveall", "-o", str(tmp_path), str(path)], check=True)
    assert (tmp_path / "document.json").read_bytes() == canonical_json(document)
    assert (tmp_path / "signature-1.png").read_bytes() == record.image_png
    assert record.signature_b64.encode() in (tmp_path / "signatures.json").read_bytes()


def test_signed_pdf_is_pdfa3b(signed):
    from pypdf import PdfReader
    import io

    reader = PdfReader(io.BytesIO(signed["organization"][2]))
    xmp = reader.trailer["/Root"]["/Metadata"].get_object().get_data()
    assert b"<pdfaid:part>3</pdfaid:part>" in xmp or b'pdfaid:part="3"' in xmp
    assert b"B" in xmp.split(b"conformance")[1][:5]
    assert "/AF" in reader.trailer["/Root"]
    assert len(reader.pages) >= 3


def test_signed_render_refuses_bad_input(signed):
    document, record, _ = signed["organization"]
    url = "https://voskhod.coop/verify"
    forged = SignatureRecord(**{**record.__dict__, "signature_b64": b64encode(b"\0" * 64)})
    with pytest.raises(ValueError, match="invalid signature"):
        render.render_signed_pdf("join_application", document, None, [forged], url)
    other_image = SignatureRecord(**{**record.__dict__, "image_png": scribble_png(500, 150)})
    with pytest.raises(ValueError, match="image"):
        render.render_signed_pdf("join_application", document, None, [other_image], url)
    changed = {**document, "data": {**document["data"], "cooperative": {**document["data"]["cooperative"], "inn": "1"}}}
    with pytest.raises(ValueError, match="another document"):
        render.render_signed_pdf("join_application", changed, None, [record], url)
    with pytest.raises(ValueError, match="differs"):
        render.render_signed_pdf("join_application", document, {"data": {}}, [record], url)
    with pytest.raises(ValueError, match="template"):
        render.render_signed_pdf("pd_consent", document, None, [record], url)
    stale = {**document, "template_version": document["template_version"] + 1}
    with pytest.raises(ValueError, match="template"):
        render.render_signed_pdf("join_application", stale, None, [record], url)
    with pytest.raises(ValueError):
        render.render_signed_pdf("join_application", document, None, [], url)


def test_context_from_document_inverts_canonical_document(signed):
    document, _, _ = signed["entrepreneur"]
    context = render.context_from_document(document)
    assert context["signer"] == document["signer"]
    assert context["data"] == document["data"]["data"]
    assert context["cooperative"]["inn"] == "7707083893"
