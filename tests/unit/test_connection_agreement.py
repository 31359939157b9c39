"""The connection agreement (connection_agreement v1) as the document engine renders it: the connecting
cooperative's four fees, its domain (Unicode, punycode beside it), the base package and quota of the Tariff it is
given, the hosting choice, a typed description kept as text, and the operator's approval mark only in the
countersigned copy. The member-signed and the sealed PDF are PDF/A-3b without a validator finding and verify."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import os
import re
import shutil
import subprocess
from pathlib import Path

import jinja2
import page  # page-validation, the PDF/A validator (tests/unit/test_pdfa.py)
import pytest
from pypdf import PdfReader

from portal.connection.forms import clean_domain, shown_domain
from portal.documents import render
from portal.documents.seal import ensure_seal_identity, seal_pdf
from portal.documents.signing import canonical_json, document_hash
from portal.documents.templates import SAMPLE_COOPERATIVE, SAMPLE_PEP_OFFER, get_template
from portal.documents.verify import verify_pdf
from portal.pricing.tariff import Tariff
from tests.unit.test_render import sign_document
from tests.unit.test_signing import scribble_png

TEMPLATE = "connection_agreement"
WHEN = dt.datetime(2026, 12, 2, 10, 15, 30, tzinfo=dt.timezone.utc)
VERIFY_URL = "https://voskhod.coop/verify"
APPROVAL = {"operator": SAMPLE_COOPERATIVE["name_full"], "staff_email": "staff@voskhod.coop",
            "approved_at": "2026-12-03T21:40:05Z", "number": "ДП-2026-000017"}

needs_poppler = pytest.mark.skipif(shutil.which("pdftotext") is None, reason="poppler-utils missing")


def tariff_data(tariff: Tariff) -> dict:
    """``data.tariff`` as the connection service makes it: the fields of the pricing module's Tariff."""
    return dataclasses.asdict(tariff)


def agreement_context(*, tariff: Tariff | None = None, hosting: str = "hosted", domain: str = "кооп-рассвет.рф",
                      description: str | None = None, **member_changes) -> dict:
    """A complete context of the agreement: the operator, the member as its joining application has it (no
    passport), its own fees, domain, hosting, description and the tariff, and the ПЭП offer acceptance."""
    member = {
        "applicant_type": "organization",
        "org_full_name": "Потребительское общество «Рассвет»", "org_short_name": "ПО «Рассвет»",
        "inn": "5024002119", "ogrn": "1025002864710", "kpp": "502401001",
        "legal_address": "Московская обл., г. Красногорск, ул. Лесная, д. 5",
        "actual_address": "Московская обл., г. Красногорск, ул. Лесная, д. 5, оф. 3",
        "phone": "+7 900 123-45-67", "email": "rassvet@example.ru",
        "bank_name": "АО «Альфа-Банк»", "bik": "044525593", "corr_account": "30101810200000000593",
        "settlement_account": "40702810401300000001",
        "rep_last_name": "Смирнова", "rep_first_name": "Анна", "rep_patronymic": "Петровна",
        "rep_position": "председатель совета", "rep_basis": "charter",
        **member_changes,
    }
    data = {
        "document_date": "2026-12-02",
        "agreement_number": "ДП-2026-000017",
        "member": member,
        "fees": {"entrance_org": 250_000, "share_org": 750_000, "entrance_ind": 15_000, "share_ind": 45_050},
        "domain": shown_domain(clean_domain(domain)),  # as the connection form stores and shows it
        "domain_ascii": clean_domain(domain),
        "hosting": hosting,
        "description": ("Закупки фермерских продуктов для пайщиков в Красногорске: молоко, овощи, мёд.\n"
                        "Доставка по четвергам." if description is None else description),
        "tariff": tariff_data(tariff or Tariff()),
    }
    cooperative = {**SAMPLE_COOPERATIVE, "processors": [dict(p) for p in SAMPLE_COOPERATIVE["processors"]]}
    signer = {"full_name": "Смирнова Анна Петровна", "email": member["email"], "role": "Представитель пайщика"}
    return {"data": data, "cooperative": cooperative, "signer": signer, "pep_offer": dict(SAMPLE_PEP_OFFER)}


def flat(text: str) -> str:
    """Text with every kind of whitespace collapsed and WeasyPrint's hyphenation points removed."""
    text = re.sub(r"\u2010\n\s*", "", text.replace("\u00ad", ""))
    return re.sub(r"[\s\u00a0\u202f]+", " ", text)


def pdf_pages(pdf: bytes, tmp_path: Path) -> list[str]:
    path = tmp_path / f"agreement-{os.urandom(4).hex()}.pdf"
    path.write_bytes(pdf)
    out = subprocess.run(["pdftotext", "-layout", "-enc", "UTF-8", str(path), "-"], capture_output=True,
                         check=True).stdout.decode("utf-8")
    return [flat(p) for p in out.split("\f") if p.strip()]


def findings(pdf: bytes) -> list[str]:
    report = page.validate_pdf_bytes(pdf, profile=page.ValidationProfile.PDF_A_3B)
    found = [f"{f.rule_id}: {f.message}" for f in report.failures]
    assert report.is_compliant or found, "non-conformant without a finding"
    return found


def body_context(context: dict, **extra) -> dict:
    """The context of a preview or a plain PDF: everything but the signer."""
    return {**{k: v for k, v in context.items() if k != "signer"}, **extra}


def html_of(context: dict, **extra) -> str:
    return render.render_html(TEMPLATE, body_context(context, **extra))


def sign(context: dict):
    """The member's signature as the application makes it (tests/unit/test_render.py): canonical document of the
    context without the signer, an Ed25519 signature over its hash and the drawn signature."""
    return sign_document(TEMPLATE, context, os.urandom(32), scribble_png(), WHEN)


@pytest.fixture(scope="module")
def identity(tmp_path_factory):
    return ensure_seal_identity(tmp_path_factory.mktemp("seal"), "ПК «ВОСХОД»")


@pytest.fixture(scope="module")
def signed():
    """One agreement signed by the member, as the member's copy (no approval) and as the operator's copy
    (the approval mark added, not part of the document)."""
    context = agreement_context()
    document, record = sign(context)
    own = render.render_signed_pdf(TEMPLATE, document, None, [record], VERIFY_URL)
    approved = render.render_signed_pdf(TEMPLATE, document, {"countersignature": APPROVAL}, [record], VERIFY_URL)
    return document, record, own, approved


# --------------------------------------------------------------------------- registry and HTML


def test_registered_with_its_title():
    info = get_template(TEMPLATE)
    assert (info.version, info.directory) == (1, "")
    assert info.title == "Соглашение о подключении к платформе «Кооперативная экономика»"
    assert info.path.name == "connection_agreement.html" and re.fullmatch(r"[0-9a-f]{64}", info.sha256)


def test_preview_html_names_the_parties_and_escapes_the_description():
    hostile = "<script>alert(1)</script> & «Ромашка» <b>жирно</b>"
    html = html_of(agreement_context(description=hostile))
    assert "<script>alert" not in html and "<b>жирно" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "&amp; «Ромашка»" in html
    assert "<style>" in html and "@page" in html  # the preview is self-contained
    text = flat(re.sub(r"<[^>]+>", "", html))
    assert "Потребительское общество «Рассвет» (ПО «Рассвет»)" in text
    assert "действует председатель совета Смирнова Анна Петровна на основании Устава" in text
    assert "Потребительский кооператив «ВОСХОД» (ПК «ВОСХОД»)" in text and "(далее — Оператор)" in text
    assert 'class="sign-line"' in html  # the member's signature line, empty in the preview


def test_power_of_attorney_and_a_draft_without_number():
    context = agreement_context(rep_basis="power_of_attorney", rep_poa_number="17", rep_poa_date="2026-02-01")
    del context["data"]["agreement_number"]  # the live preview of a draft has no number yet
    del context["pep_offer"]
    text = flat(re.sub(r"<[^>]+>", "", html_of(context)))
    assert "на основании доверенности № 17 от 01.02.2026" in text
    assert "о подключении к платформе «Кооперативная экономика» № " not in text and "ДП-" not in text


def test_hosting_choice_changes_the_text():
    hosted = flat(re.sub(r"<[^>]+>", "", html_of(agreement_context(hosting="hosted"))))
    own = flat(re.sub(r"<[^>]+>", "", html_of(agreement_context(hosting="self"))))
    assert "размещается на серверах Оператора (хостинг Оператора)" in hosted
    assert "Хостинг на серверах Оператора входит в базовый пакет и отдельно не оплачивается" in hosted
    assert "запись типа A" in hosted and "образ Docker" not in hosted
    assert "размещается на сервере Пайщика" in own and "образ Docker" in own and "токеном доступа к API" in own
    assert "хостинг Оператора" not in own and "запись типа A" not in own
    with pytest.raises(Exception):  # neither "hosted" nor "self": refused, never printed as either
        html_of(agreement_context(hosting="cloud"))


def test_required_values_and_the_member_type_are_checked():
    context = agreement_context()
    del context["data"]["fees"]["share_ind"]
    with pytest.raises(TypeError, match="integer kopecks, got Undefined"):  # a missing fee is never printed as 0
        html_of(context)
    context = agreement_context()
    del context["data"]["domain_ascii"]
    with pytest.raises(jinja2.UndefinedError, match="domain_ascii"):
        html_of(context)
    with pytest.raises(ValueError, match="individual"):
        html_of(agreement_context(applicant_type="individual"))
    with pytest.raises(TypeError):  # money is integer kopecks
        html_of(agreement_context() | {"data": {**agreement_context()["data"], "fees": {
            "entrance_org": 2500.0, "share_org": 750_000, "entrance_ind": 15_000, "share_ind": 45_050}}})


def test_countersignature_only_when_given():
    context = agreement_context()
    plain = flat(re.sub(r"<[^>]+>", "", html_of(context)))
    assert "Отметка оператора об одобрении подключения" not in plain and "staff@voskhod.coop" not in plain
    assert "отметка приведена ниже" not in plain
    approved = flat(re.sub(r"<[^>]+>", "", html_of(context, countersignature=APPROVAL)))
    assert "Отметка оператора об одобрении подключения" in approved and "отметка приведена ниже" in approved
    assert "стандартизационная проверка документов" in approved
    assert "staff@voskhod.coop" in approved and "№ ДП-2026-000017" in approved
    # 21:40:05 UTC on 03.12 is 00:40:05 on 04.12 in Moscow
    assert "04.12.2026 00:40:05 МСК (03.12.2026 21:40:05 UTC)" in approved
    assert "электронная печать Оператора (PAdES)" in approved
    assert flat(re.sub(r"<[^>]+>", "", html_of(context, countersignature=None))) == plain


# --------------------------------------------------------------------------- PDF


@needs_poppler
def test_pdf_shows_the_four_fees_the_domain_and_the_tariff(tmp_path):
    pdf = render.render_pdf(TEMPLATE, body_context(agreement_context()), pdf_variant=render.PDF_VARIANT)
    assert not findings(pdf)
    text = " ".join(pdf_pages(pdf, tmp_path))
    for fee in ("2 500,00 ₽ (две тысячи пятьсот рублей 00 копеек)", "7 500,00 ₽ (семь тысяч пятьсот рублей 00 копеек)",
                "150,00 ₽ (сто пятьдесят рублей 00 копеек)", "450,50 ₽ (четыреста пятьдесят рублей 50 копеек)"):
        assert fee in text, fee
    assert "на Домене кооп-рассвет.рф (xn----8sbgmvyaiklao.xn--p1ai)" in text
    assert "Базовый пакет — 1 500,00 ₽ (одна тысяча пятьсот рублей 00 копеек) в месяц" in text
    assert "регистрации пайщиков — 50, пакеты документов — 50" in text
    assert "регистрация пайщика — 2 AXON (20,00 ₽), пакет документов — 1 AXON (10,00 ₽)" in text
    assert "1 AXON = 10,00 ₽" in text
    assert "Закупки фермерских продуктов для пайщиков в Красногорске" in text


@needs_poppler
def test_pdf_follows_the_tariff_it_is_given(tmp_path):
    tariff = Tariff(base_fee_kopecks=217_300, quota_registrations=137, quota_packages=73,
                    registration_price_axon=3, package_price_axon=5, axon_rate_kopecks=1_250)
    pdf = render.render_pdf(TEMPLATE, body_context(agreement_context(tariff=tariff)))
    text = " ".join(pdf_pages(pdf, tmp_path))
    assert "Базовый пакет — 2 173,00 ₽ (две тысячи сто семьдесят три рубля 00 копеек) в месяц" in text
    assert "регистрации пайщиков — 137, пакеты документов — 73" in text
    assert "регистрация пайщика — 3 AXON (37,50 ₽), пакет документов — 5 AXON (62,50 ₽)" in text
    assert "1 AXON = 12,50 ₽" in text
    assert "1 500,00 ₽" not in text and "— 50," not in text and "2 AXON" not in text


@needs_poppler
def test_ascii_domain_is_shown_once_and_a_script_stays_text(tmp_path):
    context = agreement_context(domain="Coop.Example.RU", description="<script>alert(1)</script>")
    text = " ".join(pdf_pages(render.render_pdf(TEMPLATE, body_context(context)), tmp_path))
    assert "на Домене coop.example.ru. " in text and "coop.example.ru (" not in text
    assert "<script>alert(1)</script>" in text


@needs_poppler
def test_signed_pdf_is_pdfa_and_verifies(signed, identity, tmp_path):
    """The member's copy, sealed as the portal stores every signed PDF (the seal alone is no approval)."""
    document, record, own, _ = signed
    sealed = seal_pdf(own, identity)
    for name, pdf in (("signed", own), ("sealed", sealed)):
        found = findings(pdf)
        assert not found, f"{name}: PDF/A-3b findings:\n" + "\n".join(found)
    result = verify_pdf(sealed)
    assert result.valid, result.reason
    assert result.document_hash == document_hash(document) == record.document_hash
    pages = pdf_pages(own, tmp_path)
    assert 5 <= len(pages) <= 9, len(pages)
    assert "ЛИСТ ПОДПИСЕЙ" in pages[-1] and "Отметка оператора" not in " ".join(pages)
    assert "Соглашение о подключении к платформе «Кооперативная экономика»" in pages[-1]
    assert "Оферта о простой электронной подписи (версия 2) акцептована" in pages[-1]
    # The member's drawn signature stands at the signature line, on the page of the closing clause.
    closing = next(p for p in pages if "Представитель Пайщика" in p)
    assert "Пайщик подтверждает достоверность сведений" in closing and "/ Смирнова А. П. /" in closing
    assert "простая электронная подпись — см. лист подписей" in closing


@needs_poppler
def test_countersigned_pdf_is_sealed_pdfa_with_the_same_document(signed, identity, tmp_path):
    document, record, own, approved = signed
    sealed = seal_pdf(approved, identity)
    for name, pdf in (("approved", approved), ("sealed", sealed)):
        found = findings(pdf)
        assert not found, f"{name}: PDF/A-3b findings:\n" + "\n".join(found)
    result = verify_pdf(sealed)
    assert result.valid, result.reason
    assert result.document_hash == document_hash(document)
    # The approval is printed, not signed: the attached document is the member's, byte for byte.
    attached = PdfReader(io.BytesIO(sealed)).attachments["document.json"]
    assert attached == PdfReader(io.BytesIO(own)).attachments["document.json"] == [canonical_json(document)]
    assert b"countersignature" not in attached[0] and b"staff@voskhod.coop" not in attached[0]
    pages = pdf_pages(sealed, tmp_path)
    assert len(pages) <= 10, len(pages)
    text = " ".join(pages)
    assert "Отметка оператора об одобрении подключения" in text
    assert "04.12.2026 00:40:05 МСК" in text and "staff@voskhod.coop" in text
    mark = next(i for i, p in enumerate(pages) if "Отметка оператора" in p)
    assert "ЛИСТ ПОДПИСЕЙ" in pages[mark + 1]  # right before the signature sheet
    with pytest.raises(ValueError, match="differs"):  # the approval cannot rewrite what the member signed
        render.render_signed_pdf(TEMPLATE, document, {"countersignature": APPROVAL, "data": {}}, [record],
                                 VERIFY_URL)


@needs_poppler
def test_long_names_and_a_long_domain_stay_whole(identity, tmp_path):
    """A 43-letter double surname, a long name of the cooperative and a domain of two 40-odd-letter labels: the PDF
    is still PDF/A-3b, the domain and the signatory's name are printed whole."""
    surname = "Константинопольская-Верхнезаводская"
    label = "потребительское-общество-рассвет-красногорск"
    context = agreement_context(domain=f"{label}.кооп-рассвет.рф", rep_last_name=surname,
                                rep_first_name="Анна-Виктория",
                                org_full_name="Потребительское общество «Рассвет — Красногорские фермерские "
                                              "хозяйства & <партнёры>»")
    context["signer"]["full_name"] = f"{surname} Анна-Виктория Петровна"
    document, record = sign(context)
    sealed = seal_pdf(render.render_signed_pdf(TEMPLATE, document, {"countersignature": APPROVAL}, [record],
                                               VERIFY_URL), identity)
    assert not findings(sealed), "\n".join(findings(sealed))
    assert verify_pdf(sealed).valid
    pages = pdf_pages(sealed, tmp_path)
    text = re.sub(r"(?<=[а-я-]) (?=[а-я-])", "", " ".join(pages))  # a long domain may wrap: join its parts
    assert f"{label}.кооп-рассвет.рф" in text
    assert clean_domain(f"{label}.кооп-рассвет.рф") in text.replace(" ", "")
    # The signature line's name column wraps the surname at its hyphen, never inside a word.
    closing = next(p for p in pages if "Представитель Пайщика" in p)
    assert re.search(r"/ Константинопольская-.{0,80}Верхнезаводская А\.-В\. П\. /", closing), closing
    assert "«Рассвет — Красногорские фермерские хозяйства & <партнёры>»" in " ".join(pages)
    assert len(pages) <= 11
