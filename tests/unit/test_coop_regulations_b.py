"""The cooperative's Политика обработки персональных данных (coop_pd_policy v1) and Пользовательское соглашение
(coop_user_agreement v1): regulations its council adopts on its own site. Rendered through the engine with the
new cooperative's names, requisites, fees and processors, the platform operator, the council's decision and three
council members signing the same document; «ещё не подписали» only while someone has not signed; the signed PDFs
are PDF/A-3b without a validator finding and verify."""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import subprocess
from html import unescape
from pathlib import Path

import jinja2
import pytest

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from portal.documents import render
from portal.documents.render import SignatureRecord
from portal.documents.seal import ensure_seal_identity, seal_pdf
from portal.documents.signing import (
    b64encode,
    canonical_document,
    document_hash,
    key_fingerprint,
    public_key_raw,
    sign,
    signed_message,
    validate_signature_png,
)
from portal.documents.templates import SAMPLE_COOPERATIVE, SAMPLE_PEP_OFFER, get_template
from portal.documents.verify import verify_pdf
from tests.unit.test_pdfa import findings
from tests.unit.test_signing import scribble_png

TEMPLATES = ("coop_pd_policy", "coop_user_agreement")
TITLES = {"coop_pd_policy": "Политика обработки персональных данных",
          "coop_user_agreement": "Пользовательское соглашение"}
WHEN = dt.datetime(2026, 12, 2, 10, 15, 30, tzinfo=dt.timezone.utc)
VERIFY_URL = "https://rassvet.example.ru/verify"

needs_poppler = pytest.mark.skipif(shutil.which("pdftotext") is None, reason="poppler-utils missing")

COUNCIL = [
    {"role": "chairman", "last_name": "Смирнова", "first_name": "Анна", "patronymic": "Петровна",
     "email": "smirnova@example.ru"},
    {"role": "member", "last_name": "Кузнецов", "first_name": "Иван", "patronymic": "Сергеевич",
     "email": "kuznetsov@example.ru"},
    {"role": "member", "last_name": "Орлова", "first_name": "Мария", "patronymic": "",
     "email": "orlova@example.ru"},
]


def full(member: dict) -> str:
    return " ".join(p for p in (member["last_name"], member["first_name"], member["patronymic"]) if p)


def regulation_context(**cooperative_changes) -> dict:
    """What the installation renders a regulation with: the new cooperative (its own fees and processors), the
    operator, the council (without e-mails: the document names people, not addresses) and its decision."""
    cooperative = {
        "name_full": "Потребительское общество «Рассвет»", "name_short": "ПО «Рассвет»",
        "inn": "5024002119", "ogrn": "1025002864710", "kpp": "502401001",
        "address": "143401, Московская обл., г. Красногорск, ул. Лесная, д. 5",
        "bank_name": "АО «Альфа-Банк»", "bik": "044525593", "corr_account": "30101810200000000593",
        "settlement_account": "40702810401300000001",
        "fee_entrance_org": 250_000, "fee_share_org": 750_000, "fee_entrance_ind": 15_000, "fee_share_ind": 45_050,
        "email": "rassvet@example.ru", "phone": "+7 900 123-45-67", "city": "г. Красногорск",
        "site": "https://rassvet.example.ru",
        "charter": "Устав ПО «Рассвет» в редакции № 1, утверждённой общим собранием пайщиков 01.10.2026",
        "processors": [{"name": "ООО «Ферма-Банк Эквайринг»", "address": "125009, г. Москва, ул. Тверская, д. 3",
                        "purpose": "приём взносов банковской картой"}],
        **cooperative_changes,
    }
    operator = {**SAMPLE_COOPERATIVE, "processors": [dict(p) for p in SAMPLE_COOPERATIVE["processors"]]}
    data = {
        "document_date": "2026-12-02",
        "council": [{k: v for k, v in m.items() if k != "email"} for m in COUNCIL],
        "decision": {"number": "1", "date": "2026-12-01"},
    }
    return {"data": data, "cooperative": cooperative, "operator": operator, "pep_offer": dict(SAMPLE_PEP_OFFER)}


def flat(text: str) -> str:
    text = re.sub(r"\u2010\n\s*", "", text.replace("\u00ad", ""))
    return re.sub(r"[\s\u00a0\u202f]+", " ", text)


def html_text(template_id: str, context: dict) -> str:
    html = render.render_html(template_id, context, inline_css=False)
    return flat(unescape(re.sub(r"<[^>]+>", "", html)))


def pdf_pages(pdf: bytes, tmp_path: Path) -> list[str]:
    path = tmp_path / f"regulation-{os.urandom(4).hex()}.pdf"
    path.write_bytes(pdf)
    out = subprocess.run(["pdftotext", "-layout", "-enc", "UTF-8", str(path), "-"], capture_output=True,
                         check=True).stdout.decode("utf-8")
    return [flat(p) for p in out.split("\f") if p.strip()]


def council_signatures(template_id: str, context: dict, members=COUNCIL):
    """Every council member signs the same canonical document (the council named as its signer) with a key and a
    drawn signature of their own, as the installation will: one document, one SignatureRecord per member."""
    document = canonical_document(get_template(template_id), context,
                                  {"full_name": "Совет " + context["cooperative"]["name_short"],
                                   "email": COUNCIL[0]["email"], "role": "Совет кооператива"})
    doc_hash = document_hash(document)
    records = []
    for n, member in enumerate(members):
        seed = os.urandom(32)
        public = public_key_raw(Ed25519PrivateKey.from_private_bytes(seed))
        png = scribble_png()
        image_hash = validate_signature_png(png)
        records.append(SignatureRecord(
            full_name=full(member),
            role="Председатель Совета" if member["role"] == "chairman" else "Член Совета",
            email=member["email"],
            key_fingerprint=key_fingerprint(public),
            public_key_b64=b64encode(public),
            signature_b64=b64encode(sign(seed, signed_message(doc_hash, image_hash))),
            image_sha256=image_hash,
            image_png=png,
            signed_at=WHEN + dt.timedelta(minutes=7 * n),
            ip=f"203.0.113.{10 + n}",
            user_agent="Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/156.0 Safari/537.36",
            document_hash=doc_hash,
        ))
    return document, records


@pytest.fixture(scope="module")
def identity(tmp_path_factory):
    return ensure_seal_identity(tmp_path_factory.mktemp("seal"), "ПО «Рассвет»")


@pytest.fixture(scope="module")
def signed():
    """Each regulation signed by the three council members: the full copy and the copy of the first signer alone
    (the other two listed as pending)."""
    result = {}
    for template_id in TEMPLATES:
        document, records = council_signatures(template_id, regulation_context())
        full_pdf = render.render_signed_pdf(template_id, document, None, records, VERIFY_URL)
        pending = [{"full_name": full(m), "role": m["role"]} for m in COUNCIL[1:]]
        partial = render.render_signed_pdf(template_id, document, {"pending": pending}, records[:1], VERIFY_URL)
        result[template_id] = (document, records, full_pdf, partial)
    return result


# --------------------------------------------------------------------------- registry and HTML


@pytest.mark.parametrize("template_id", TEMPLATES)
def test_registered_with_its_title(template_id):
    info = get_template(template_id)
    assert (info.version, info.directory, info.title) == (1, "", TITLES[template_id])
    assert info.path.name == f"{template_id}.html" and re.fullmatch(r"[0-9a-f]{64}", info.sha256)


@pytest.mark.parametrize("template_id", TEMPLATES)
def test_html_names_the_cooperative_the_operator_and_the_decision(template_id):
    text = html_text(template_id, regulation_context())
    assert "УТВЕРЖДЕНО решением Совета ПО «Рассвет» от 01.12.2026 № 1" in text
    assert "Потребительское общество «Рассвет» (ПО «Рассвет»), ИНН 5024002119, ОГРН 1025002864710" in text
    assert "Потребительский кооператив «ВОСХОД» (ПК «ВОСХОД»)" in text  # the platform operator
    assert "https://rassvet.example.ru" in text and "г. Красногорск" in text
    for label in ("Председатель Совета / Смирнова А. П. /", "Член Совета / Кузнецов И. С. /",
                  "Член Совета / Орлова М. /"):
        assert label in text, label
    assert "ещё не подписали" not in text


def test_policy_names_its_processors_storage_and_rights():
    text = html_text("coop_pd_policy", regulation_context())
    assert "пунктом 2 части 1 статьи 18.1" in text
    # ВОСХОД first, then the cooperative's own processors, then the operator's with the cooperative's consent
    assert "ПК «ВОСХОД»), ИНН 7707083893, адрес: г. Москва, ул. Примерная, д. 1, — Оператор платформы" in text
    assert ("ООО «Ферма-Банк Эквайринг», адрес: 125009, г. Москва, ул. Тверская, д. 3, — приём взносов банковской "
            "картой") in text
    assert "ООО НКО «ЮМани» (115035, г. Москва, ул. Садовническая, д. 82, стр. 2)" in text
    assert "Трансграничная передача персональных данных не осуществляется" in text
    assert "С 01.09.2025 согласие на обработку персональных данных оформляется отдельно" in text
    assert "Председатель Совета Смирнова Анна Петровна" in text  # responsible for the processing
    assert "в течение 10 (десяти) рабочих дней" in text and "rassvet@example.ru" in text
    assert "в течение срока членства и 5 (пяти) лет после его прекращения" in text
    # without processors of its own: ВОСХОД alone is named
    bare = regulation_context(processors=[])
    bare["operator"]["processors"] = []
    text = html_text("coop_pd_policy", bare)
    assert "Ферма-Банк" not in text and "ЮМани" not in text and "— Оператор платформы" in text


def test_user_agreement_prints_the_four_fees_and_the_payment_ways():
    text = html_text("coop_user_agreement", regulation_context())
    for fee in ("2 500,00 ₽ (две тысячи пятьсот рублей 00 копеек)", "7 500,00 ₽ (семь тысяч пятьсот рублей 00 копеек)",
                "150,00 ₽ (сто пятьдесят рублей 00 копеек)", "450,50 ₽ (четыреста пятьдесят рублей 50 копеек)"):
        assert fee in text, fee
    assert "юридическим лицом — 10 000,00 ₽" in text and "индивидуальным предпринимателем — 600,50 ₽" in text
    assert "QR-кодом для оплаты по ГОСТ Р 56042-2014" in text and "банковской картой" in text
    assert "40702810401300000001" in text and "БИК 044525593" in text
    assert "достигшие 16 (шестнадцати) лет" in text and "в течение 30 (тридцати) дней" in text
    assert "Вступительный взнос не входит в паевой фонд Кооператива" in text
    assert "1 000,00 ₽" not in text  # the operator's own fees are not this cooperative's


@pytest.mark.parametrize("template_id", TEMPLATES)
def test_pending_shows_only_when_given(template_id):
    context = regulation_context()
    plain = html_text(template_id, context)
    assert html_text(template_id, {**context, "pending": []}) == plain
    text = html_text(template_id, {**context, "pending": [{"full_name": "Кузнецов Иван Сергеевич", "role": "member"},
                                                          {"full_name": "Смирнова Анна Петровна",
                                                           "role": "chairman"}]})
    assert ("Документ подписан не всеми членами Совета: ещё не подписали — Кузнецов Иван Сергеевич (член Совета), "
            "Смирнова Анна Петровна (председатель Совета).") in text


@pytest.mark.parametrize("template_id", TEMPLATES)
def test_hostile_values_stay_text(template_id):
    context = regulation_context(name_short="<script>alert(1)</script>", name_full="ПО «Рассвет & <b>Ко</b>»")
    context["data"]["council"][1]["last_name"] = "<img src=x onerror=alert(1)>"
    html = render.render_html(template_id, {**context, "pending": [{"full_name": "<i>Злой</i>", "role": "member"}]})
    assert "<script>alert" not in html and "<b>Ко" not in html and "<img src=x" not in html and "<i>Злой" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "&lt;i&gt;Злой&lt;/i&gt;" in html


@pytest.mark.parametrize("template_id", TEMPLATES)
def test_the_council_and_its_decision_are_required(template_id):
    context = regulation_context()
    context["data"]["council"] = list(reversed(context["data"]["council"]))  # the chairman not first
    with pytest.raises(jinja2.UndefinedError, match="council_must_start_with_its_chairman"):
        render.render_html(template_id, context)
    context = regulation_context()
    context["data"]["council"][1]["role"] = "secretary"
    with pytest.raises(jinja2.UndefinedError):
        render.render_html(template_id, context)
    context = regulation_context()
    del context["data"]["decision"]
    with pytest.raises(jinja2.UndefinedError, match="decision"):
        render.render_html(template_id, context)
    context = regulation_context()
    del context["operator"]
    with pytest.raises(jinja2.UndefinedError, match="operator"):
        render.render_html(template_id, context)


def test_user_agreement_fees_must_be_kopecks():
    with pytest.raises(TypeError, match="integer kopecks"):
        render.render_html("coop_user_agreement", regulation_context(fee_share_ind=450.5))


# --------------------------------------------------------------------------- signed PDF


@needs_poppler
@pytest.mark.parametrize("template_id", TEMPLATES)
def test_signed_pdf_carries_every_council_signature(signed, identity, template_id, tmp_path):
    document, records, pdf, _ = signed[template_id]
    sealed = seal_pdf(pdf, identity)
    for name, candidate in (("signed", pdf), ("sealed", sealed)):
        found = findings(candidate)
        assert not found, f"{template_id} {name}: PDF/A-3b findings:\n" + "\n".join(found)
    result = verify_pdf(sealed)
    assert result.valid, result.reason
    assert result.document_hash == document_hash(document) == records[0].document_hash
    pages = pdf_pages(pdf, tmp_path)
    assert 4 <= len(pages) <= 10, len(pages)
    text = " ".join(pages)
    assert "УТВЕРЖДЕНО решением Совета ПО «Рассвет» от 01.12.2026 № 1" in pages[0]
    assert "ПО «Рассвет»" in text and "ИНН 5024002119" in text
    assert "ещё не подписали" not in text
    sheet = " ".join(p for p in pages if "ЛИСТ ПОДПИСЕЙ" in p or "Подпись № " in p)
    assert f"к электронному документу «{TITLES[template_id]}»" in sheet
    for n, member in enumerate(COUNCIL, start=1):
        assert f"Подпись № {n}" in sheet and full(member) in sheet and member["email"] in sheet
    assert "Оферта о простой электронной подписи (версия 2) акцептована" in sheet
    closing = next(p for p in pages if "Председатель Совета / Смирнова А. П. /" in p)
    assert "Член Совета / Кузнецов И. С. /" in closing and "Член Совета / Орлова М. /" in closing
    assert closing.count("простая электронная подпись — см. лист подписей") == 3


@needs_poppler
@pytest.mark.parametrize("template_id", TEMPLATES)
def test_partly_signed_pdf_says_who_has_not_signed(signed, identity, template_id, tmp_path):
    document, records, _, partial = signed[template_id]
    sealed = seal_pdf(partial, identity)
    assert not findings(sealed), "\n".join(findings(sealed))
    result = verify_pdf(sealed)
    assert result.valid and result.document_hash == document_hash(document)
    pages = pdf_pages(partial, tmp_path)
    notice = next(i for i, p in enumerate(pages) if "ещё не подписали" in p)
    assert ("Документ подписан не всеми членами Совета: ещё не подписали — Кузнецов Иван Сергеевич (член Совета), "
            "Орлова Мария (член Совета).") in pages[notice]
    assert "ЛИСТ ПОДПИСЕЙ" in " ".join(pages[notice:notice + 2])  # right before the signature sheet
    text = " ".join(pages)
    assert "Подпись № 1" in text and "Подпись № 2" not in text
    closing = " ".join(pages[notice - 1:notice + 1])  # the signature lines, on the notice's page or the one before
    assert closing.count("простая электронная подпись — см. лист подписей") == 1


@needs_poppler
def test_long_and_hostile_names_stay_whole(identity, tmp_path):
    surname = "Константинопольская-Верхнезаводская"
    context = regulation_context(name_full="Потребительское общество «Рассвет — Красногорские фермерские хозяйства "
                                           "& <партнёры>»")
    context["data"]["council"][0].update(last_name=surname, first_name="Анна-Виктория")
    members = [dict(COUNCIL[0], last_name=surname, first_name="Анна-Виктория"), *COUNCIL[1:]]
    for template_id in TEMPLATES:
        document, records = council_signatures(template_id, context, members)
        sealed = seal_pdf(render.render_signed_pdf(template_id, document, None, records, VERIFY_URL), identity)
        assert not findings(sealed), "\n".join(findings(sealed))
        assert verify_pdf(sealed).valid
        text = " ".join(pdf_pages(sealed, tmp_path))
        assert "«Рассвет — Красногорские фермерские хозяйства & <партнёры>»" in text
        assert re.search(r"/ Константинопольская-.{0,80}Верхнезаводская А\.-В\. П\. /", text)
