"""The fees invoice PDF (pdf_templates/invoice.html): every applicant type, what it says, its payment QR code read
back from the rasterized page by a real decoder (zbar), PDF/A-3b without a finding, sealed by the operator."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
from pathlib import Path

import pytest

from portal.documents.seal import ensure_seal_identity
from portal.documents.templates import SAMPLE_COOPERATIVE, get_template, rub, sample_context
from portal.payments import invoice as invoices
from portal.payments import qr, service
from tests.unit.test_pdfa import findings

ISSUED = dt.datetime(2026, 12, 1, 22, 30, tzinfo=dt.timezone.utc)  # 2 December in Moscow
FEES = {"organization": (100_000, 300_000), "individual": (10_000, 30_000), "entrepreneur": (10_000, 30_000)}
PAYER = {
    "organization": "Потребительское общество «Рассвет», ИНН 5024002119",
    "individual": "Кузнецов Иван Сергеевич",
    "entrepreneur": "Индивидуальный предприниматель Кузнецов Иван Сергеевич, ИНН 500100732259",
}
TOTAL_WORDS = {"organization": "Четыре тысячи рублей 00 копеек", "individual": "Четыреста рублей 00 копеек",
               "entrepreneur": "Четыреста рублей 00 копеек"}


def an_invoice(applicant_type: str, number: str = "В-2026-000042") -> dict:
    lines = service.fee_lines(applicant_type, SAMPLE_COOPERATIVE)
    return {"number": number, "issued_at": ISSUED, "lines": lines, "total": sum(line["amount"] for line in lines)}


def money(kopecks: int) -> str:
    return rub(kopecks).replace("\u00a0", " ")


def context_for(applicant_type: str) -> dict:
    return invoices.invoice_context(an_invoice(applicant_type), sample_context(applicant_type)["data"],
                                    SAMPLE_COOPERATIVE)


def pdf_text(path: Path) -> str:
    out = subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True, check=True).stdout
    return " ".join(out.replace("\u00a0", " ").replace("\u00ad", "").split())


def decode_qr(pdf: Path) -> list[str]:
    """Rasterize the page at 200 dpi and read every QR code on it with zbar."""
    subprocess.run(["pdftoppm", "-r", "200", "-png", str(pdf), str(pdf.with_suffix(""))], check=True)
    found = []
    for png in sorted(pdf.parent.glob(pdf.stem + "-*.png")):
        result = subprocess.run(["zbarimg", "--raw", "-q", str(png)], capture_output=True)
        found += [line for line in result.stdout.decode("utf-8").splitlines() if line]
    return found


@pytest.fixture(scope="module")
def seal_dir(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("data")
    ensure_seal_identity(path, "ПК «ВОСХОД»")
    return path


def test_the_template_is_registered_in_the_current_set():
    info = get_template("invoice")
    assert (info.version, info.directory, info.title) == (1, "", "Счёт на оплату взносов")


@pytest.mark.parametrize("applicant_type", list(FEES))
def test_the_invoice_says_who_pays_whom_what_and_why(applicant_type, tmp_path, seal_dir):
    context = context_for(applicant_type)
    pdf = invoices.render_invoice_pdf(context, str(seal_dir), "ПК «ВОСХОД»")
    path = tmp_path / "invoice.pdf"
    path.write_bytes(pdf)
    text = pdf_text(path)
    entrance, share = FEES[applicant_type]
    assert "СЧЁТ НА ОПЛАТУ № В-2026-000042" in text and "от 02.12.2026" in text
    assert f"1 Вступительный взнос {money(entrance)}" in text and f"2 Минимальный паевой взнос {money(share)}" in text
    assert f"Итого к оплате: {money(entrance + share)}" in text
    assert TOTAL_WORDS[applicant_type] + "." in text and "Без НДС" in text
    assert PAYER[applicant_type] in text
    assert "ИНН 7707083893, КПП 770701001" in text and "40703810938000000001" in text and "044525225" in text
    assert ("Назначение платежа: Вступительный и минимальный паевой взносы в ПК «ВОСХОД» по счёту № "
            "В-2026-000042. Без НДС") in text
    if applicant_type != "organization":
        assert "Рассвет" not in text
    # PDF/A-3b without a single finding, sealed by the operator, the seal valid.
    found = findings(pdf)
    assert not found, "\n".join(found)
    sig = subprocess.run(["pdfsig", str(path)], capture_output=True, text=True).stdout
    assert "Signature #1" in sig and "Signature #2" not in sig and "Signature is Valid" in sig


@pytest.mark.skipif(shutil.which("zbarimg") is None, reason="zbar-tools: scripts/ensure-system-packages.sh test")
@pytest.mark.parametrize("applicant_type", ["organization", "individual"])
def test_the_qr_code_decodes_to_the_payment_fields(applicant_type, tmp_path, seal_dir):
    context = context_for(applicant_type)
    path = tmp_path / "invoice.pdf"
    path.write_bytes(invoices.render_invoice_pdf(context, str(seal_dir), "ПК «ВОСХОД»"))
    codes = decode_qr(path)
    assert len(codes) == 1, codes
    fields = qr.parse_payload(codes[0])
    c = SAMPLE_COOPERATIVE
    assert fields == {
        "Name": c["name_full"], "PersonalAcc": c["settlement_account"], "BankName": c["bank_name"], "BIC": c["bik"],
        "CorrespAcc": c["corr_account"], "PayeeINN": c["inn"], "KPP": c["kpp"],
        "Purpose": "Вступительный и минимальный паевой взносы в ПК «ВОСХОД» по счёту № В-2026-000042. Без НДС",
        "Sum": str(sum(FEES[applicant_type])),
    }
    assert codes[0] == context["invoice"]["qr_payload"]


def test_hostile_values_are_printed_as_text(tmp_path):
    """A payer's name with markup and a «|» in the payee's name: escaped in the PDF, removed from the QR code."""
    data = {**sample_context("organization")["data"], "org_full_name": "ООО «<b>Рога</b> & Копыта»"}
    cooperative = {**SAMPLE_COOPERATIVE, "name_full": "ПК «Восход | Север»"}
    context = invoices.invoice_context(an_invoice("organization"), data, cooperative)
    assert "|Name=ПК «Восход Север»|" in context["invoice"]["qr_payload"]
    path = tmp_path / "invoice.pdf"
    path.write_bytes(invoices.render_invoice_pdf(context))
    assert "ООО «<b>Рога</b> & Копыта»" in pdf_text(path)
