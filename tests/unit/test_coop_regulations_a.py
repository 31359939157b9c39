"""Two regulations a connected cooperative's council signs on its own site (issue #11, SPEC J7): the Положение о ЦПП
«Цифровой кошелёк» (coop_wallet_program v1) and the Положение о простой электронной подписи (coop_pep_regulation
v1). Filled with the cooperative's names, requisites, fees and council, adopted by the council's decision; every
council member signs the same document, the PDF is re-issued as they sign and says who has not signed yet. The
signed PDFs, sealed by the cooperative's seal the operator's certificate issued, are PDF/A-3b and verify."""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import subprocess
from html import unescape
from pathlib import Path

import jinja2
import page  # page-validation, the PDF/A validator (tests/unit/test_pdfa.py)
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from portal.documents import render
from portal.documents.render import SignatureRecord
from portal.documents.seal import ensure_seal_identity, issue_cooperative_identity, seal_pdf
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
from portal.documents.templates import SAMPLE_COOPERATIVE, SAMPLE_PEP_OFFER, full_name, get_template
from portal.documents.verify import verify_pdf
from tests.unit.test_signing import scribble_png

TEMPLATES = ("coop_wallet_program", "coop_pep_regulation")
TITLES = {
    "coop_wallet_program": "Положение о целевой потребительской программе «Цифровой кошелёк»",
    "coop_pep_regulation": "Положение о простой электронной подписи",
}
VERIFY_URL = "https://rassvet.example/verify"
FIRST_SIGNED = dt.datetime(2026, 12, 3, 9, 5, 0, tzinfo=dt.timezone.utc)

needs_poppler = pytest.mark.skipif(shutil.which("pdftotext") is None, reason="poppler-utils missing")

RASSVET = {
    "name_full": "Потребительское общество «Рассвет»",
    "name_short": "ПО «Рассвет»",
    "inn": "5024002119",
    "ogrn": "1025002864710",
    "kpp": "502401001",
    "address": "143401, Московская обл., г. Красногорск, ул. Лесная, д. 5",
    "bank_name": "АО «Альфа-Банк»",
    "bik": "044525593",
    "corr_account": "30101810200000000593",
    "settlement_account": "40702810401300000001",
    "fee_entrance_org": 250_000,
    "fee_share_org": 750_000,
    "fee_entrance_ind": 15_000,
    "fee_share_ind": 45_050,
    "email": "sovet@rassvet.example",
    "phone": "+7 900 123-45-67",
    "city": "г. Красногорск",
    "site": "https://rassvet.example",
    "charter": "Устав ПО «Рассвет», утверждённый общим собранием пайщиков 20.11.2026 (протокол № 3)",
    "processors": [{"name": "Потребительский кооператив «ВОСХОД»", "address": "г. Москва, ул. Примерная, д. 1",
                    "purpose": "размещение портала, хранение данных и отправка писем"}],
}

COUNCIL = [
    {"role": "chairman", "last_name": "Смирнова", "first_name": "Анна", "patronymic": "Петровна"},
    {"role": "member", "last_name": "Кузнецов", "first_name": "Иван", "patronymic": "Сергеевич"},
    {"role": "member", "last_name": "Орлова", "first_name": "Мария", "patronymic": ""},
]
EMAILS = ["smirnova@rassvet.example", "kuznetsov@rassvet.example", "orlova@rassvet.example"]


def regulation_context(council: list[dict] | None = None, **cooperative_changes) -> dict:
    """The shared context of the council's regulations (without ``signer``): the new cooperative, the operator,
    the council and the council's decision, and the ПЭП offer acceptance for the signature sheet."""
    operator = {**SAMPLE_COOPERATIVE, "processors": [dict(p) for p in SAMPLE_COOPERATIVE["processors"]]}
    return {
        "data": {"document_date": "2026-12-03", "council": [dict(p) for p in (council or COUNCIL)],
                 "decision": {"number": "1", "date": "2026-12-03"}},
        "cooperative": {**RASSVET, **cooperative_changes},
        "operator": operator,
        "pep_offer": dict(SAMPLE_PEP_OFFER),
    }


def council_signatures(template_id: str, context: dict, count: int | None = None,
                       council: list[dict] | None = None):
    """The canonical document every council member signs (one hash for all) and the first ``count`` members'
    Ed25519 signatures over it with their drawn signatures, as the application makes them."""
    council = council or context["data"]["council"]
    signer = {"full_name": f"Совет {context['cooperative']['name_short']}", "email": context["cooperative"]["email"],
              "role": "Совет кооператива"}
    document = canonical_document(get_template(template_id), context, signer)
    doc_hash = document_hash(document)
    records = []
    for n, person in enumerate(council[: len(council) if count is None else count]):
        seed = os.urandom(32)
        public = public_key_raw(Ed25519PrivateKey.from_private_bytes(seed))
        png = scribble_png()
        image_hash = validate_signature_png(png)
        records.append(SignatureRecord(
            full_name=full_name(person["last_name"], person["first_name"], person.get("patronymic")),
            role="Председатель Совета" if person["role"] == "chairman" else "Член Совета",
            email=EMAILS[n % len(EMAILS)], key_fingerprint=key_fingerprint(public), public_key_b64=b64encode(public),
            signature_b64=b64encode(sign(seed, signed_message(doc_hash, image_hash))), image_sha256=image_hash,
            image_png=png, signed_at=FIRST_SIGNED + dt.timedelta(minutes=17 * n), ip=f"203.0.113.{10 + n}",
            user_agent="Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/156.0 Safari/537.36",
            document_hash=doc_hash))
    return document, records


def pending_of(council: list[dict], signed: int) -> list[dict]:
    """``pending`` as the wizard passes it: the council members who have not signed yet."""
    return [{"full_name": full_name(p["last_name"], p["first_name"], p.get("patronymic")), "role": p["role"]}
            for p in council[signed:]]


def flat(text: str) -> str:
    """Text with every kind of whitespace collapsed and WeasyPrint's hyphenation points removed."""
    text = re.sub(r"\u2010\n\s*", "", text.replace("\u00ad", ""))
    return re.sub(r"[\s\u00a0\u202f]+", " ", text)


def html_text(html: str) -> str:
    """The words of the HTML: inline tags dropped, the others (cells, paragraphs) as spaces."""
    inline = re.sub(r"</?(?:span|strong|em)\b[^>]*>", "", html)
    return flat(unescape(re.sub(r"<[^>]+>", " ", inline)))


def pdf_pages(pdf: bytes, tmp_path: Path) -> list[str]:
    path = tmp_path / f"regulation-{os.urandom(4).hex()}.pdf"
    path.write_bytes(pdf)
    out = subprocess.run(["pdftotext", "-layout", "-enc", "UTF-8", str(path), "-"], capture_output=True,
                         check=True).stdout.decode("utf-8")
    return [flat(p) for p in out.split("\f") if p.strip()]


def image_count(pdf: bytes, tmp_path: Path) -> int:
    """Images drawn on the pages (pdfimages -list; a drawn signature with its alpha mask counts once)."""
    path = tmp_path / f"images-{os.urandom(4).hex()}.pdf"
    path.write_bytes(pdf)
    out = subprocess.run(["pdfimages", "-list", str(path)], capture_output=True, check=True).stdout.decode()
    return sum(1 for line in out.splitlines()[2:] if line.split()[2] == "image")


def findings(pdf: bytes) -> list[str]:
    report = page.validate_pdf_bytes(pdf, profile=page.ValidationProfile.PDF_A_3B)
    found = [f"{f.rule_id}: {f.message}" for f in report.failures]
    assert report.is_compliant or found, "non-conformant without a finding"
    return found


@pytest.fixture(scope="module")
def seal(tmp_path_factory):
    """The cooperative's own seal, its certificate issued by the operator's seal certificate."""
    data_dir = tmp_path_factory.mktemp("operator-data")
    operator = ensure_seal_identity(data_dir, "ПК «ВОСХОД»")
    cooperative = issue_cooperative_identity(operator, data_dir / "seal" / "cooperatives" / RASSVET["inn"],
                                             RASSVET["name_short"], RASSVET["inn"])
    return operator, cooperative


# --------------------------------------------------------------------------- registry and HTML


@pytest.mark.parametrize("template_id", TEMPLATES)
def test_registered_with_its_title(template_id):
    info = get_template(template_id)
    assert (info.version, info.directory, info.title) == (1, "", TITLES[template_id])
    assert info.path.name == f"{template_id}.html" and re.fullmatch(r"[0-9a-f]{64}", info.sha256)


@pytest.mark.parametrize("template_id", TEMPLATES)
def test_html_names_the_cooperative_its_council_and_the_decision(template_id):
    html = render.render_html(template_id, regulation_context())
    assert "<style>" in html and "@page" in html  # a self-contained preview
    text = html_text(html)
    assert "УТВЕРЖДЕНО решением Совета ПО «Рассвет» от 03.12.2026 № 1" in text
    assert "Потребительское общество «Рассвет» (ПО «Рассвет»), ИНН 5024002119, ОГРН 1025002864710" in text
    assert "ИНН / КПП 5024002119 / 502401001" in text and "40702810401300000001" in text
    assert "Потребительский кооператив «ВОСХОД» (ПК «ВОСХОД»), ИНН 7707083893" in text  # the operator
    assert "Уставом Кооператива. Устав Кооператива: Устав ПО «Рассвет», утверждённый общим собранием пайщиков 20.11.2026 (протокол № 3)." in text
    assert "г. Красногорск" in text and "03.12.2026" in text
    for label, name in (("Председатель Совета", "Смирнова Анна Петровна"), ("Член Совета", "Кузнецов Иван Сергеевич"),
                        ("Член Совета", "Орлова Мария")):
        assert f"{label} {name}" in text, name
    for initials in ("/ Смирнова А. П. /", "/ Кузнецов И. С. /", "/ Орлова М. /"):
        assert initials in text
    assert html.count('class="sign-line"') == 3 and "<img" not in html  # three empty signature lines
    assert "не всеми членами Совета" not in text and "ещё не подписали" not in text
    assert "ВОСХОД" not in html.split('class="doc-ref"')[1].split("</div>")[0]  # the issuer is the cooperative


def test_wallet_program_prints_the_fees_and_keeps_axon_a_resource_unit():
    text = html_text(render.render_html("coop_wallet_program", regulation_context()))
    assert ("для юридических лиц — вступительный взнос 2 500,00 ₽ (две тысячи пятьсот рублей 00 копеек) и "
            "минимальный паевой взнос 7 500,00 ₽ (семь тысяч пятьсот рублей 00 копеек)") in text
    assert ("для граждан и индивидуальных предпринимателей — вступительный взнос 150,00 ₽ (сто пятьдесят рублей "
            "00 копеек) и минимальный паевой взнос 450,50 ₽ (четыреста пятьдесят рублей 50 копеек)") in text
    assert "расчётный счёт Кооператива № 40702810401300000001 в АО «Альфа-Банк», БИК 044525593" in text
    assert "AXON применяются только как единица ресурсов Платформы" in text
    assert "за счёт собственных средств Кооператива, а не за счёт целевых взносов Участников" in text
    assert "Криптовалюта, AXON, ценные бумаги и иное имущество в качестве целевого взноса не принимаются" in text
    assert "9. Полномочия Совета" in text and "10. Отчёты" in text and "7. Возврат целевых взносов" in text


def test_pep_regulation_states_the_rules_of_63_fz():
    text = html_text(render.render_html("coop_pep_regulation", regulation_context()))
    assert "статьёй 9 Федерального закона от 06.04.2011 № 63-ФЗ «Об электронной подписи»" in text
    assert "закрытый ключ алгоритма Ed25519 (32 байта), который создаётся в браузере" in text
    assert "coopdoc:v1:<хеш документа>:<хеш SHA-256 изображения подписи>" in text
    assert "подтверждённого адреса электронной почты" in text and "Пользователь обязан соблюдать конфиденциальность" in text
    assert "Подписи, созданные до замены ключа, остаются действительными и проверяемыми" in text
    assert "выпущен сертификатом электронной печати Оператора" in text
    assert ("для юридических лиц 2 500,00 ₽ и 7 500,00 ₽, для граждан и индивидуальных предпринимателей 150,00 ₽ и "
            "450,50 ₽") in text
    assert "портал Кооператива https://rassvet.example" in text


@pytest.mark.parametrize("template_id", TEMPLATES)
def test_pending_shows_only_when_given(template_id):
    context = regulation_context()
    plain = html_text(render.render_html(template_id, context))
    assert html_text(render.render_html(template_id, {**context, "pending": []})) == plain
    assert html_text(render.render_html(template_id, {**context, "pending": None})) == plain
    text = html_text(render.render_html(template_id, {**context, "pending": pending_of(COUNCIL, 1)}))
    assert ("Документ подписан не всеми членами Совета: ещё не подписали — Кузнецов Иван Сергеевич (член Совета), "
            "Орлова Мария (член Совета).") in text
    assert "Смирнова Анна Петровна (председатель Совета)" not in text


@pytest.mark.parametrize("template_id", TEMPLATES)
def test_hostile_names_stay_text(template_id):
    council = [dict(COUNCIL[0], last_name="<script>alert(1)</script>"), *COUNCIL[1:]]
    context = regulation_context(council, name_short="ПО «<b>Рассвет</b>» & Ко")
    html = render.render_html(template_id, {**context, "pending": [{"full_name": "<img src=x>", "role": "member"}]})
    assert "<script>alert" not in html and "<b>Рассвет" not in html and "<img src=x>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "ПО «&lt;b&gt;Рассвет&lt;/b&gt;» &amp; Ко" in html
    assert "&lt;img src=x&gt;" in html


@pytest.mark.parametrize("template_id", TEMPLATES)
def test_unknown_role_and_missing_values_are_refused(template_id):
    with pytest.raises(jinja2.UndefinedError):
        render.render_html(template_id, regulation_context([dict(COUNCIL[0], role="secretary")]))
    context = regulation_context()
    del context["data"]["decision"]
    with pytest.raises(jinja2.UndefinedError, match="decision"):
        render.render_html(template_id, context)
    context = regulation_context()
    del context["cooperative"]["fee_share_ind"]
    with pytest.raises((TypeError, jinja2.UndefinedError)):  # a missing fee is never printed as 0
        render.render_html(template_id, context)
    context = regulation_context()
    del context["operator"]
    with pytest.raises(jinja2.UndefinedError, match="operator"):
        render.render_html(template_id, context)


# --------------------------------------------------------------------------- signed PDF


@needs_poppler
@pytest.mark.parametrize("template_id", TEMPLATES)
def test_signed_by_the_whole_council_is_pdfa_and_verifies(template_id, seal, tmp_path):
    operator, cooperative = seal
    context = regulation_context()
    document, records = council_signatures(template_id, context)
    assert len({r.document_hash for r in records}) == 1 and len(records) == 3
    unsealed = render.render_signed_pdf(template_id, document, None, records, VERIFY_URL)
    sealed = seal_pdf(unsealed, cooperative)
    for name, pdf in (("signed", unsealed), ("sealed", sealed)):
        found = findings(pdf)
        assert not found, f"{template_id} ({name}): PDF/A-3b findings:\n" + "\n".join(found)
    result = verify_pdf(sealed, seal_certificates=[operator.certificate_sha256])
    assert result.valid, result.reason
    assert result.document_hash == document_hash(document)

    pages = pdf_pages(unsealed, tmp_path)
    assert 4 <= len(pages) <= 9, len(pages)
    text = " ".join(pages)
    assert "Потребительское общество «Рассвет»" in text and "ИНН 5024002119" in text
    assert "УТВЕРЖДЕНО решением Совета ПО «Рассвет» от 03.12.2026 № 1" in text
    assert "2 500,00 ₽" in text and "450,50 ₽" in text
    assert "ещё не подписали" not in text
    sheet = text[text.index("ЛИСТ ПОДПИСЕЙ"):]
    assert TITLES[template_id] in sheet
    for n, name in enumerate(("Смирнова Анна Петровна", "Кузнецов Иван Сергеевич", "Орлова Мария"), start=1):
        assert f"Подпись № {n} Подписант {name}" in sheet, name
    assert "Председатель Совета" in sheet and "Издатель Потребительское общество «Рассвет», ИНН 5024002119" in sheet
    # Each member's drawn signature at their line in the body and once more on the sheet, plus the QR code.
    assert "простая электронная подпись — см. лист подписей" in text
    assert image_count(unsealed, tmp_path) == 3 + 3 + 1


@needs_poppler
@pytest.mark.parametrize("template_id", TEMPLATES)
def test_reissued_while_signatures_are_missing(template_id, seal, tmp_path):
    """One of three has signed: the re-issued PDF names the two others right before the signature sheet, the
    unsigned lines stay empty, and it is still PDF/A-3b and verifies; the pending list is not signed."""
    operator, cooperative = seal
    context = regulation_context()
    document, records = council_signatures(template_id, context, count=1)
    pending = pending_of(COUNCIL, 1)
    unsealed = render.render_signed_pdf(template_id, document, {"pending": pending}, records, VERIFY_URL)
    sealed = seal_pdf(unsealed, cooperative)
    assert not findings(sealed), "\n".join(findings(sealed))
    result = verify_pdf(sealed, seal_certificates=[operator.certificate_sha256])
    assert result.valid, result.reason
    assert b"pending" not in canonical_json(document) and b"Kuznetsov" not in canonical_json(document)
    pages = pdf_pages(unsealed, tmp_path)
    mark = next(i for i, p in enumerate(pages) if "ещё не подписали" in p)
    assert "ЛИСТ ПОДПИСЕЙ" in pages[mark + 1] and "ЛИСТ ПОДПИСЕЙ" not in pages[mark]
    assert ("ещё не подписали — Кузнецов Иван Сергеевич (член Совета), Орлова Мария (член Совета)."
            in " ".join(pages))
    sheet = " ".join(pages[mark + 1:])
    assert "Подпись № 1 Подписант Смирнова Анна Петровна" in sheet and "Подпись № 2" not in sheet
    assert image_count(unsealed, tmp_path) == 1 + 1 + 1  # the chairman's line, the sheet, the QR code
    # All three signatures later on the same document: the same hash, no pending block.
    _, all_records = council_signatures(template_id, context)
    assert document_hash(document) == all_records[0].document_hash


@pytest.mark.parametrize("template_id", TEMPLATES)
def test_each_signature_stands_at_its_own_members_line(template_id):
    """A council member's drawn signature goes to their line: matched by e-mail when the council names it, else by
    the full name; a signature of someone else is placed at no line."""
    def lines(html: str) -> list[str]:
        return re.findall(r'<table class="sign-line">.*?</table>', html, flags=re.S)

    def view(name: str, email: str, marker: str) -> dict:
        return {"full_name": name, "email": email, "image_uri": f"data:image/png;base64,{marker}"}

    by_name = [view("Орлова Мария", "x@example.ru", "ORLOVA"), view("Посторонний Пётр", "p@example.ru", "STRANGER")]
    html = render.render_html(template_id, {**regulation_context(), "signatures": by_name})
    chairman, kuznetsov, orlova = lines(html)
    assert "ORLOVA" in orlova and "<img" not in chairman and "<img" not in kuznetsov
    assert "STRANGER" not in html

    council = [dict(p, email=e) for p, e in zip(COUNCIL, EMAILS)]
    by_email = [view("Смирнова А. П.", "SMIRNOVA@rassvet.example", "CHAIR"),  # the name as typed differs
                view("Кузнецов Иван Сергеевич", "other@example.ru", "WRONG")]  # the name matches, the e-mail not
    html = render.render_html(template_id, {**regulation_context(council), "signatures": by_email})
    chairman, kuznetsov, orlova = lines(html)
    assert "CHAIR" in chairman and "<img" not in kuznetsov and "<img" not in orlova and "WRONG" not in html


@needs_poppler
@pytest.mark.parametrize("template_id", TEMPLATES)
def test_long_names_stay_whole(template_id, seal, tmp_path):
    """A 43-letter double surname, a double first name and a long name of the cooperative: still PDF/A-3b, the
    signature line wraps the surname at its hyphen only."""
    surname = "Константинопольская-Верхнезаводская"
    council = [dict(COUNCIL[0], last_name=surname, first_name="Анна-Виктория"), *COUNCIL[1:]]
    context = regulation_context(council, name_full="Потребительское общество «Рассвет — Красногорские фермерские "
                                                    "хозяйства и садоводы Подмосковья»")
    document, records = council_signatures(template_id, context)
    sealed = seal_pdf(render.render_signed_pdf(template_id, document, None, records, VERIFY_URL), seal[1])
    assert not findings(sealed), "\n".join(findings(sealed))
    assert verify_pdf(sealed, seal_certificates=[seal[0].certificate_sha256]).valid
    pages = pdf_pages(sealed, tmp_path)
    assert len(pages) <= 10, len(pages)
    text = " ".join(pages)
    assert re.search(r"/ Константинопольская-.{0,80}Верхнезаводская А\.-В\. П\. /", text), text[-3000:]
    assert "Рассвет — Красногорские фермерские хозяйства и садоводы Подмосковья»" in text
    assert f"Подписант {surname} Анна-Виктория Петровна" in text


@pytest.mark.parametrize("template_id", TEMPLATES)
def test_optional_requisites_may_be_missing(template_id):
    """A new cooperative without a site, charter, e-mail, phone or city, and no offer acceptance: nothing of them is
    printed, not even an empty «()» or «None»."""
    context = regulation_context(site=None, charter="", email=None, phone=None, city="", processors=[])
    del context["pep_offer"]
    html = render.render_html(template_id, context)
    body = html_text(html.split("</style>", 1)[1])
    assert "None" not in body and "()" not in body and " ," not in body
    assert "https://rassvet.example" not in body and "sovet@rassvet.example" not in body
    assert re.search(r"портале? Кооператива \(далее — Портал\)", body)
    assert "Потребительское общество «Рассвет» (ПО «Рассвет»), ИНН 5024002119" in body
