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
    inline = re.sub(r"</?(?:span|strong|b)\b[^>]*>", "", html)
    return normalize(unescape(re.sub(r"<[^>]+>", " ", inline)))


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


# --------------------------------------------------------------------------- long and hostile names

LONG_SURNAME = "Константинопольская-Преображенская-Оболенская"  # 43 letters
DOUBLE_FIRST_NAME = "Анна-Виктория"
HOSTILE = 'ООО «"Рога & Копыта" <script>alert(1)</script> O\'Brien»'
LONG_ADDRESS = ("Российская Федерация, Московская область, городской округ Красногорск, г. Красногорск, "
                "ул. Длинная Набережная Верхнего Пруда имени Героев-Первопроходцев, д. 125, корп. 3, стр. 2, кв. 417")
SIGNED_TEMPLATES = ("join_application", "pd_consent", "user_agreement")
# The closing clause of each signed template: its first and last words sit on the page of the signature line.
LAST_CLAUSE = {
    "join_application": ("Заявитель подтверждает достоверность", "подписанному собственноручной подписью."),
    "pd_consent": ("Согласие дано в форме электронного документа", "подписанному собственноручной подписью."),
    "user_agreement": ("К Соглашению применяется право", "и действует бессрочно."),
}


def long_name_context(kind: str) -> dict:
    """The sample context with a 43-letter double surname, a double first name, a long address and
    a hostile name (quotes, markup, ampersand)."""
    context = sample_context(kind)
    data = context["data"]
    if kind == "organization":
        data.update(rep_last_name=LONG_SURNAME, rep_first_name=DOUBLE_FIRST_NAME, rep_patronymic="Петровна",
                    org_full_name=HOSTILE, legal_address=LONG_ADDRESS, actual_address=LONG_ADDRESS,
                    rep_basis="power_of_attorney", rep_poa_number="77 АБ 1234567", rep_poa_date="2026-10-01")
    else:
        data.update(last_name=LONG_SURNAME, first_name=DOUBLE_FIRST_NAME, patronymic='Петровна "<b>&amp;',
                    address=LONG_ADDRESS)
    context["signer"]["full_name"] = templates.signatory_name(data)
    return context


@pytest.fixture(scope="module")
def long_signed():
    """Signed PDFs of every signed template for an organization, an individual and an ИП with long names."""
    seed = os.urandom(32)
    png = scribble_png()
    when = dt.datetime(2026, 11, 25, 9, 0, 5, tzinfo=dt.timezone.utc)
    result = {}
    for template_id in SIGNED_TEMPLATES:
        for kind in APPLICANT_TYPES:
            context = long_name_context(kind)
            document, record = sign_document(template_id, context, seed, png, when)
            pdf = render.render_signed_pdf(template_id, document, None, [record], "https://voskhod.coop/verify")
            result[(template_id, kind)] = (context, record, pdf)
    return result


def words_with_boxes(pdf: bytes, tmp_path: Path) -> list[list[tuple[str, float, float, float, float]]]:
    """Per page: (word, xMin, yMin, xMax, yMax) from ``pdftotext -bbox``."""
    from xml.etree import ElementTree

    markup = poppler("pdftotext", "-bbox", data=pdf, tmp_path=tmp_path)
    root = ElementTree.fromstring(markup.encode())
    pages = []
    for page in root.iter("{http://www.w3.org/1999/xhtml}page"):
        pages.append([(w.text or "", float(w.get("xMin")), float(w.get("yMin")), float(w.get("xMax")),
                       float(w.get("yMax"))) for w in page.iter("{http://www.w3.org/1999/xhtml}word")])
    return pages


def name_at_signature_line(pages) -> tuple[int, str, float]:
    """The page, the text and the right edge of the name column of the signature line «/ Фамилия И. О. /»."""
    for number, words in enumerate(pages):
        for index, (word, x0, y0, _x1, _y1) in enumerate(words):
            if word == "/" and index + 1 < len(words) and words[index + 1][0].startswith(LONG_SURNAME[:6]):
                column = [w for w in words if w[1] >= x0 - 0.5 and w[2] >= y0 - 0.5]
                column.sort(key=lambda w: (round(w[2]), w[1]))
                text, last_y, right = "", None, 0.0
                for w_text, _wx0, wy0, wx1, _wy1 in column:
                    if last_y is not None:
                        text += "" if round(wy0) != round(last_y) and text.endswith("-") else " "
                    text, last_y, right = text + w_text, wy0, max(right, wx1)
                    if w_text == "/" and text != "/":
                        return number, text, right
    raise AssertionError("no signature line with the long surname")


@needs_poppler
@pytest.mark.parametrize("kind", APPLICANT_TYPES)
@pytest.mark.parametrize("template_id", SIGNED_TEMPLATES)
def test_long_name_is_printed_whole_at_the_signature_line(long_signed, template_id, kind, tmp_path):
    context, record, pdf = long_signed[(template_id, kind)]
    pages = words_with_boxes(pdf, tmp_path)
    page_number, printed, right = name_at_signature_line(pages)
    expected = templates.signatory_initials(context["data"])
    assert expected == f"{LONG_SURNAME} А.-В. П."
    assert normalize(printed) == f"/ {expected} /"
    assert right <= 595.3 - 15 / 25.4 * 72 + 1  # inside the right margin of A4, nothing cut at the page edge


@needs_poppler
@pytest.mark.parametrize("kind", APPLICANT_TYPES)
@pytest.mark.parametrize("template_id", SIGNED_TEMPLATES)
def test_signature_block_stays_with_the_last_clause_and_the_date(long_signed, template_id, kind, tmp_path):
    context, record, pdf = long_signed[(template_id, kind)]
    page_number, _, _ = name_at_signature_line(words_with_boxes(pdf, tmp_path))
    layout = poppler("pdftotext", "-layout", "-enc", "UTF-8", data=pdf, tmp_path=tmp_path).split("\f")
    page = normalize(layout[page_number].replace("\u2010\n", "").replace("\u2010 ", ""))
    first, last = LAST_CLAUSE[template_id]
    assert first in page and normalize(last) in normalize(page.replace("- ", "-")), page
    assert "г. Москва" in page and "25.11.2026" in page
    assert "(подпись; простая электронная подпись" in page
    # The signature line is never the first thing on its page: the last clause comes before it.
    assert page.index(first) < page.index("(подпись; простая электронная подпись")


@needs_poppler
@pytest.mark.parametrize("kind", APPLICANT_TYPES)
@pytest.mark.parametrize("template_id", SIGNED_TEMPLATES)
def test_long_and_hostile_names_whole_and_escaped(long_signed, template_id, kind, tmp_path):
    context, record, pdf = long_signed[(template_id, kind)]
    data = context["data"]
    text = poppler("pdftotext", "-layout", "-enc", "UTF-8", data=pdf, tmp_path=tmp_path)
    flat = normalize(text)
    # Names and requisites are never hyphenated (WeasyPrint hyphenates with U+2010): no fragment of a
    # name, of the address's proper names or of «ОГРНИП» ends a line with a hyphenation mark.
    hyphenated = [a + b for a, b in re.findall(r"(\w+)\u2010\s*(\w+)", text)]
    assert hyphenated  # ordinary words are still hyphenated
    protected = [LONG_SURNAME, DOUBLE_FIRST_NAME, "ОГРНИП", "Красногорск", "Героев-Первопроходцев", "Набережная"]
    parts = [part for name in protected for part in name.split("-")]
    for word in hyphenated:
        assert not any(part.startswith(word) or word.startswith(part) for part in parts), word
    # The signature sheet names the signer whole (wrapping at spaces/hyphens only).
    assert normalize(record.full_name) in re.sub(r"-\s+", "-", flat) or \
        normalize(record.full_name) in flat.replace("- ", "-")
    if kind == "organization" and template_id == "join_application":
        assert 'ООО «"Рога & Копыта" <script>alert(1)</script> O\'Brien»' in flat.replace("- ", "-")
        assert "доверенности № 77 АБ 1234567 от 01.10.2026" in flat
    if kind != "organization":
        assert 'Петровна "<b>&amp;' in flat
    if template_id == "join_application" or (template_id == "pd_consent" and kind != "organization"):
        assert "Длинная Набережная Верхнего Пруда" in flat


@needs_poppler
@pytest.mark.parametrize("template_id", SIGNED_TEMPLATES)
def test_signature_sheet_fits_one_page_with_the_offer_acceptance(long_signed, template_id, tmp_path):
    _, record, pdf = long_signed[(template_id, "organization")]
    pages = poppler("pdftotext", "-layout", "-enc", "UTF-8", data=pdf, tmp_path=tmp_path).split("\f")
    sheet = [i for i, p in enumerate(pages) if "ЛИСТ ПОДПИСЕЙ" in p]
    assert len(sheet) == 1
    last = normalize(pages[sheet[0]])
    assert "его SHA-256 хранится у издателя" in last  # the closing notice has no page of its own
    assert "Проверка подлинности" in last and record.key_fingerprint in last
    assert not normalize(pages[sheet[0] + 1]).strip() if sheet[0] + 1 < len(pages) else True
    # The ПЭП offer acceptance carried by the document (pep_offer) is on the sheet.
    assert "Оферта о простой электронной подписи (версия 2) акцептована" in last
    assert "пользователем zayavitel@example.ru 24.11.2026 21:15:07 МСК" in last
    assert "IP-адрес 203.0.113.7" in last and "Chrome/156.0" in last


def _layout_boxes(html_text: str):
    from weasyprint import HTML

    document = HTML(string=html_text, base_url=templates.templates_dir().as_uri() + "/",
                    url_fetcher=render._fetcher()).render(stylesheets=[render._stylesheet()],
                                                         font_config=render._font_config())
    found: dict[str, list] = {"img": [], "caption": [], "name": []}

    def walk(box):
        element = getattr(box, "element", None)
        classes = (element.get("class") or "").split() if element is not None else []
        if box.element_tag == "img" and element is not None and (element.get("alt") or "").startswith("Подпись"):
            found["img"].append(box)
        if "sign-caption" in classes and box.element_tag == "td" and type(box).__name__ == "TableCellBox":
            found["caption"].append(box)
        if "sign-name" in classes and type(box).__name__ == "TableCellBox":
            found["name"].append(box)
        for child in getattr(box, "children", []):
            walk(child)

    for page in document.pages:
        walk(page._page_box)
    return found


@pytest.mark.parametrize("kind", APPLICANT_TYPES)
def test_drawn_signature_leaves_its_caption_free(long_signed, kind):
    """The drawn signature crosses the line but never covers «(подпись; простая электронная подпись …)»."""
    context = long_name_context(kind)
    signature = {"image_uri": "data:image/png;base64," + __import__("base64").b64encode(scribble_png()).decode(),
                 "full_name": context["signer"]["full_name"]}
    html_text = render.render_html("pd_consent", {**context, "signature": signature}, inline_css=False)
    boxes = _layout_boxes(html_text)
    assert len(boxes["img"]) == 1 and len(boxes["caption"]) == 1
    img, caption = boxes["img"][0], boxes["caption"][0]
    image_bottom = img.position_y + img.margin_height()
    caption_text_top = caption.content_box_y()  # below its padding
    assert image_bottom <= caption_text_top + 0.01, (image_bottom, caption_text_top)
    cell = boxes["name"][0]  # the name column: its lines never overflow the cell
    lines = [line for line in cell.descendants() if type(line).__name__ == "LineBox"]
    assert len(lines) >= 2  # the long name wraps instead of being cut
    for line in lines:
        assert line.position_x + line.width <= cell.content_box_x() + cell.width + 0.5


# --------------------------------------------------------------------------- optional keys, the offer


OPTIONAL_DATA = ("patronymic", "rep_patronymic", "passport_series", "passport_number", "passport_issued_by",
                 "passport_issue_date", "passport_division_code", "rep_passport_series", "rep_passport_number",
                 "rep_passport_issued_by", "rep_passport_issue_date", "rep_passport_division_code",
                 "join_decision_body", "join_decision_number", "join_decision_date", "rep_poa_number",
                 "rep_poa_date", "union_member")
OPTIONAL_COOPERATIVE = ("email", "phone", "site", "city", "charter", "processors")


def without_optional_keys(context: dict) -> dict:
    context = {key: value for key, value in context.items() if key != "pep_offer"}
    context["data"] = {k: v for k, v in context["data"].items() if k not in OPTIONAL_DATA}
    context["cooperative"] = {k: v for k, v in context["cooperative"].items() if k not in OPTIONAL_COOPERATIVE}
    return context


@pytest.mark.parametrize("kind", APPLICANT_TYPES)
@pytest.mark.parametrize("template_id", JOIN_PACKAGE)
def test_every_template_renders_without_and_with_optional_keys(template_id, kind):
    full = sample_context(kind)
    rich = html_text(render.render_html(template_id, full))
    bare = html_text(render.render_html(template_id, without_optional_keys(full)))
    assert "https://voskhod.coop" in rich and "https://voskhod.coop" not in bare
    assert "None" not in bare and "None" not in rich
    data = full["data"]
    if template_id == "pd_consent":
        # 152-ФЗ ст. 9 ч. 4: the subject's identity document, the processors, the operator's address.
        prefix = "rep_" if kind == "organization" else ""
        assert f"{data[prefix + 'passport_series']} {data[prefix + 'passport_number']}" in rich
        assert data[prefix + "passport_issued_by"] in rich
        assert data[prefix + "passport_division_code"] in rich
        assert "ООО «Хостинг-Центр», адрес: 123456, г. Москва" in rich and "ООО НКО «ЮМани»" in rich
        assert "не поручает обработку" in bare and "Паспорт" not in bare
        assert "отдельным явным действием" in rich
        assert "https://voskhod.coop/docs/personal-data/" in rich
        assert "г. Москва, ул. Примерная, д. 1" in rich
    if template_id == "user_agreement":
        assert "https://voskhod.coop/docs/personal-data/" in rich
        assert "удалить учётную запись" in rich and "Обращения и жалобы" in rich and "10 (десять)" in rich
    if template_id == "join_application":
        assert "в редакции № 2, утверждённой общим собранием пайщиков 15.01.2026" in rich
        if kind == "organization":
            assert "общее собрание пайщиков, № 3 от 20.11.2026" in rich
            assert "решением уполномоченного органа Заявителя" in bare


def test_power_of_attorney_and_decision_are_stated():
    context = sample_context("organization")
    context["data"].update(rep_basis="power_of_attorney", rep_poa_number="17", rep_poa_date="2026-02-01",
                           join_decision_body="общее собрание участников", join_decision_number="5",
                           join_decision_date="2026-01-20")
    text = html_text(render.render_html("join_application", context))
    assert "одобрено решением: общее собрание участников, № 5 от 20.01.2026" in text
    assert "Представитель действует на основании доверенности № 17 от 01.02.2026" in text


@pytest.mark.parametrize("accepted", [False, True])
def test_pep_offer_renders_from_the_cooperative_alone(accepted):
    context = templates.sample_offer_context(accepted)
    assert set(context) == ({"cooperative", "pep_offer"} if accepted else {"cooperative"})
    html = render.render_html("pep_agreement", context)
    text = html_text(html)
    assert "ОФЕРТА" in text and "ПК «ВОСХОД»" in text
    assert "информационной системе Кооператива — портал Кооператива https://voskhod.coop" in text
    assert "конфиденциальность ключа пайщика" in text and "Блокирование ключа" in text
    assert "5 (пяти) лет" in text and "письменными доказательствами" in text
    assert 'class="sign-line"' not in html  # the cooperative never signs it
    if accepted:
        assert "Акцепт оферты Оферта версия 2 (pep_agreement)" in text
        assert "Акцептовал zayavitel@example.ru" in text
        assert "Дата и время акцепта 24.11.2026 21:15:07 МСК" in text
        assert "IP-адрес 203.0.113.7" in text and "Chrome/156.0" in text
    else:
        assert "Акцептовал" not in text and "203.0.113.7" not in text


def test_pep_offer_without_email_or_site():
    context = templates.sample_offer_context(True)
    del context["pep_offer"]["email"]
    del context["cooperative"]["site"]
    text = html_text(render.render_html("pep_agreement", context))
    assert "Акцептовал пользователь портала" in text
    assert "информационной системе Кооператива — портал Кооператива (далее — Портал)" in text


@needs_poppler
@pytest.mark.parametrize("accepted", [False, True])
def test_pep_offer_pdf(accepted, tmp_path):
    pdf = render.render_pdf("pep_agreement", templates.sample_offer_context(accepted), pdf_variant=render.PDF_VARIANT)
    text = normalize(poppler("pdftotext", "-layout", "-enc", "UTF-8", data=pdf, tmp_path=tmp_path))
    assert "ОФЕРТА" in text and "https://voskhod.coop" in text
    assert ("24.11.2026 21:15:07 МСК" in text) is accepted
    assert "ЛИСТ ПОДПИСЕЙ" not in text


def test_a_long_name_without_hyphens_wraps_inside_its_column():
    """A 45-letter surname with no space or hyphen still stays inside the name column (never cut)."""
    context = sample_context("individual")
    context["data"]["last_name"] = "Константинопольскаяпреображенскаяоболенская"
    boxes = _layout_boxes(render.render_html("pd_consent", context, inline_css=False))
    cell = boxes["name"][0]
    lines = [line for line in cell.descendants() if type(line).__name__ == "LineBox"]
    assert len(lines) >= 2
    for line in lines:
        assert line.position_x + line.width <= cell.content_box_x() + cell.width + 0.5
    printed = "".join(box.text for box in cell.descendants() if hasattr(box, "text") and isinstance(box.text, str))
    assert "Константинопольскаяпреображенскаяоболенская" in printed.replace("\u00a0", " ")
