"""J2 + J3 in a real browser, from a signed joining package to an admitted member (issue #9, «Accepted when»):
the member signs, downloads the invoice (its QR code read back from the PDF with zbar and parsed field by field);
staff import a 1C statement in windows-1251 holding the matching payment, one naming an unknown invoice and the
matching one repeated — exactly the right one is credited, once; the member's page turns «оплачено» by itself;
staff admit the applicant; «Подключение» appears in the cabinet and the council's decision among «Мои документы»,
a PDF that passes the verifier with the operator's seal fingerprint, `pdfsig`, `portal verify` and the PDF/A-3b
validator. Then J4 + J5 (issue #10): the connection agreement signed, approved, the `.localhost` domain provisioned
and answering with the cooperative's site (tests/e2e/connection_steps.py)."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import shot, staff_page, wait_for_mail
from tests.e2e.connection_steps import connect_and_provision
from tests.e2e.test_join_flow import draw_signature
from tests.e2e.test_mobile_signing import DESKTOP, on_the_signing_page, sign_with
from tests.e2e.test_staff_payments import in_database
from tests.unit.test_invoice import decode_qr
from tests.unit.test_pdfa import findings
from tests.unit.test_statement import document, statement

CASE = {"inn": "7701215046", "email": "journey@example.org", "coop": "Потребительский кооператив «Путь»"}
STAFF = ("journey-staff@example.org", "journey staff password")
PAYMENTS = {"matching": "9101", "unknown": "9102"}  # the statement's payment order numbers


def operator_and_invoice(live_server, email: str) -> tuple[dict, dict]:
    """The operator cooperative (the payee) and the member's fees invoice, as the database has them."""

    async def work():
        from portal.accounts.tables import Member
        from portal.cooperatives.service import operator
        from portal.payments import service

        member = await Member.select().where(Member.email == email).first()
        return await operator(), await service.open_fees_invoice(member["id"])

    return in_database(live_server, work)


def statement_payments(live_server, invoice_id: int) -> tuple[list[dict], dict, list[dict]]:
    """This test's statement payments, the invoice, and every payment credited to it."""

    async def work():
        from portal.payments.tables import Invoice, Payment

        ours = await Payment.select().where(
            (Payment.source == "statement") & Payment.reference.is_in(list(PAYMENTS.values()))
        ).order_by(Payment.reference)
        invoice = await Invoice.select().where(Invoice.id == invoice_id).first()
        credited = await Payment.select().where(Payment.invoice == invoice_id)
        return ours, invoice, credited

    return in_database(live_server, work)


def rubles(kopecks: int) -> str:
    """«4000.00», as banks write the sum in a 1C statement."""
    return f"{kopecks // 100}.{kopecks % 100:02d}"


@pytest.mark.skipif(any(shutil.which(t) is None for t in ("zbarimg", "pdftoppm", "pdfsig")),
                    reason="zbar-tools, poppler-utils: scripts/ensure-system-packages.sh test")
def test_from_signed_package_to_admitted_member(live_server, new_page, tmp_path):
    from portal.documents.seal import certificate_sha256_in
    from portal.documents.verify import verify_pdf
    from portal.payments.qr import parse_payload

    # The member signs the joining package: the cabinet leads to «Оплата взносов».
    page, key = on_the_signing_page(live_server, new_page, CASE, DESKTOP)
    page.context.set_default_timeout(30_000)
    draw_signature(page, touch=False)
    sign_with(page, key)
    expect(page.locator(".stepper li[aria-current=step]")).to_contain_text("Оплата взносов")
    expect(page.locator("#menu-connection")).to_have_count(0)
    page.click(".next-step a:has-text('Оплата взносов')")
    page.wait_for_url("**/cabinet/payment")
    expect(page.locator("#payment-status-text")).to_have_text("ожидает оплаты")
    op, invoice = operator_and_invoice(live_server, CASE["email"])
    number, total = invoice["number"], invoice["total"]
    assert total == op["fee_entrance_org"] + op["fee_share_org"] == 400_000
    expect(page.locator("#payment-status")).to_contain_text(f"Счёт № {number}")
    expect(page.locator(".invoice-lines tfoot")).to_contain_text("4\u00a0000,00\u00a0₽")
    purpose = page.locator("#payment-purpose").inner_text()
    assert number in purpose
    shot(page, "journey-payment-waiting")

    # «Скачать счёт»: the PDF's QR code, read by zbar, carries the payee's requisites, the purpose and the total.
    with page.expect_download() as dl:
        page.click("text=Скачать счёт")
    invoice_pdf = tmp_path / "invoice.pdf"
    dl.value.save_as(invoice_pdf)
    codes = decode_qr(invoice_pdf)
    assert len(codes) == 1, codes
    assert codes[0].startswith("ST00012|")
    fields = parse_payload(codes[0])
    assert fields == {
        "Name": op["name_full"],
        "PersonalAcc": op["settlement_account"],
        "BankName": op["bank_name"],
        "BIC": op["bik"],
        "CorrespAcc": op["corr_account"],
        "PayeeINN": op["inn"],
        "KPP": op["kpp"],
        "Purpose": purpose,
        "Sum": str(total),
    }
    assert fields["Name"] == "Потребительский кооператив «ВОСХОД»"
    assert re.fullmatch(r"\d{20}", fields["PersonalAcc"]) and re.fullmatch(r"\d{20}", fields["CorrespAcc"])
    assert re.fullmatch(r"\d{9}", fields["BIC"]) and re.fullmatch(r"\d{10}", fields["PayeeINN"])
    assert re.fullmatch(r"\d{9}", fields["KPP"]) and f"№ {number}" in fields["Purpose"]
    requisites = page.locator("dl.requisites")
    for value in (fields["Name"], fields["PersonalAcc"], fields["BIC"], fields["CorrespAcc"], fields["BankName"]):
        expect(requisites).to_contain_text(value)
    page.evaluate("window.__not_reloaded = true")

    # Staff import a 1C statement (windows-1251, CRLF): the payment naming the invoice with its exact sum, one naming
    # an invoice that is not ours, and the first one again (the same document twice).
    year = number.split("-")[1]
    account = fields["PersonalAcc"]
    matching = document(PAYMENTS["matching"], rubles(total), recipient_account=account, payer=CASE["coop"],
                        purpose=f"Вступительный и паевой взносы по счёту № {number}. Без НДС")
    unknown = document(PAYMENTS["unknown"], rubles(total), recipient_account=account, payer="ООО «Посторонний»",
                       purpose=f"Оплата по счёту № В-{year}-999999. Без НДС")
    text = statement(matching, unknown, matching, account=account)
    data = text.replace("\n", "\r\n").encode("cp1251")
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")
    upload = tmp_path / "kl_to_1c.txt"
    upload.write_bytes(data)

    staff = staff_page(live_server, new_page, *STAFF)
    staff.context.set_default_timeout(30_000)
    staff.click(".staff-bar >> text=Платежи")
    staff.wait_for_url("**/staff/payments")
    expect(staff.locator(f"#invoices tr[data-invoice='{number}']")).to_contain_text("Ожидает оплаты")
    staff.set_input_files("#f-statement", str(upload))
    staff.click("button:has-text('Загрузить выписку')")
    staff.wait_for_url("**/staff/payments/import")
    expect(staff.locator("#sum-credited")).to_have_text("1")
    expect(staff.locator("#sum-unmatched")).to_have_text("1")
    expect(staff.locator("#sum-repeat")).to_have_text("1")
    rows = staff.locator("#import-rows tbody tr")
    expect(rows).to_have_count(3)
    expect(rows.nth(0)).to_have_attribute("data-outcome", "credited")
    expect(rows.nth(0)).to_contain_text(f"зачтён в счёт № {number}")
    expect(rows.nth(1)).to_have_attribute("data-outcome", "unmatched")
    expect(rows.nth(1)).to_contain_text("Посторонний")
    expect(rows.nth(2)).to_have_attribute("data-outcome", "repeat")
    expect(rows.nth(2)).to_contain_text(f"№ {PAYMENTS['matching']}")
    shot(staff, "journey-statement-import")

    # In the database: one payment credited to the invoice (once), the unknown one waiting; the invoice is paid.
    payments, paid_invoice, credited = statement_payments(live_server, invoice["id"])
    assert [(p["reference"], p["status"], p["invoice"], p["amount"]) for p in payments] == [
        (PAYMENTS["matching"], "credited", invoice["id"], total),
        (PAYMENTS["unknown"], "unmatched", None, total),
    ]
    assert [p["id"] for p in credited] == [payments[0]["id"]]
    assert paid_invoice["status"] == "paid" and paid_invoice["paid_amount"] == total
    staff.goto(live_server.url + "/staff/payments?status=paid")
    expect(staff.locator(f"#invoices tr[data-invoice='{number}']")).to_contain_text("Оплачен")
    expect(staff.locator("#unmatched-list tr", has_text="Посторонний")).to_have_count(1)

    # The member's page, never reloaded, says «оплачено» by itself (htmx polling) and stops asking.
    expect(page.locator("#payment-status-text")).to_contain_text(re.compile(r"^оплачено — зачислено \d\d\.\d\d\.\d{4}"),
                                                                  timeout=30_000)
    assert page.evaluate("window.__not_reloaded") is True
    expect(page.locator("#payment-status")).not_to_have_attribute("hx-trigger", re.compile(".+"))
    expect(page.locator("#pay-by-transfer")).to_have_count(0)  # no more invitation to pay, as after a reload
    expect(page.locator("#fees-verb")).to_have_text("вы внесли")
    shot(page, "journey-payment-paid")
    mail = wait_for_mail(live_server.smtp, CASE["email"], "Взносы зачислены")
    assert number in mail["Subject"]

    # Staff admit the applicant on «Приём в пайщики».
    staff.goto(live_server.url + "/staff/admissions")
    applicant = staff.locator("section.admission", has_text=CASE["email"])
    expect(applicant).to_have_count(1)
    expect(applicant).to_contain_text(f"счёт № {number}")
    shot(staff, "journey-admissions")
    applicant.locator("button:has-text('Принять в пайщики')").click()
    staff.wait_for_url("**/staff/admissions?done=admitted")
    expect(staff.locator(".notice")).to_contain_text("Решение о приёме принято")
    expect(staff.locator("section.admission", has_text=CASE["email"])).to_have_count(0)
    decided = staff.locator("#decisions tr", has_text=CASE["coop"].split("«")[1].rstrip("»"))
    expect(decided).to_contain_text(re.compile(r"решение № Р-\d{4}-\d{4}"))
    decision_number = re.search(r"Р-\d{4}-\d{4}", decided.inner_text()).group(0)
    mail = wait_for_mail(live_server.smtp, CASE["email"], "приняты в пайщики")
    assert decision_number in mail.get_content()

    # The member's cabinet: «Подключение» is the step and in the menu; the decision is among «Мои документы».
    page.goto(live_server.url + "/cabinet")
    expect(page.locator("#menu-connection")).to_have_text("Подключение")
    expect(page.locator(".stepper li[aria-current=step]")).to_contain_text("Подключение")
    expect(page.locator(".next-step")).to_contain_text(decision_number)
    decision_item = page.locator(".documents li", has_text="Решение Совета о приёме в пайщики")
    expect(decision_item).to_have_count(1)
    expect(decision_item).to_contain_text("скреплено печатью кооператива")
    shot(page, "journey-admitted")
    with page.expect_download() as dl:
        decision_item.locator("a").first.click()
    decision_pdf = tmp_path / "decision.pdf"
    dl.value.save_as(decision_pdf)
    pdf = decision_pdf.read_bytes()

    # The decision: numbered, sealed by the operator, verifiable offline, PDF/A-3b without a finding.
    layout = subprocess.run(["pdftotext", "-layout", str(decision_pdf), "-"], capture_output=True, text=True,
                            check=True).stdout
    assert decision_number in layout and number in layout
    assert "01.12.2026" in layout  # paid on the bank's date of the statement's payment order
    fingerprint = certificate_sha256_in(live_server.data_dir)
    assert fingerprint
    result = verify_pdf(pdf, seal_certificates=[fingerprint])
    assert result.valid, result.reason
    assert "выдан кооперативом" in result.reason
    info = subprocess.run(["pdfsig", str(decision_pdf)], capture_output=True, text=True, check=True).stdout
    assert "Signature Field Name: OperatorSeal" in info and "Signature is Valid" in info, info
    assert "Total document signed" in info, info
    verified = live_server.portal("verify", str(decision_pdf), "--seal-sha256", fingerprint)
    assert verified.returncode == 0 and "ДЕЙСТВИТЕЛЕН" in verified.stdout, verified.stderr
    found = findings(pdf)
    assert not found, "PDF/A-3b findings:\n" + "\n".join(found)

    page.click("#menu-connection")
    page.wait_for_url("**/cabinet/connection")
    expect(page.locator("main")).to_contain_text(decision_number)
    connect_and_provision(live_server, page, staff, tmp_path, key, domain="put.localhost", coop_name=CASE["coop"],
                          email=CASE["email"])
    for p in (page, staff):
        assert [e for e in p.errors if "status of 422" not in e] == []
