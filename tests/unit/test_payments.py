"""Business rules of fees and payments: pure functions, no database."""

from __future__ import annotations

import pytest

from portal.payments.qr import parse_payload, payment_payload
from portal.payments.service import fee_lines, invoice_number, invoice_number_in, purpose_text, settlement
from portal.settings import OperatorRequisites

OPERATOR = {**OperatorRequisites().__dict__}


def test_fees_come_from_the_cooperative_and_stand_on_their_own_lines():
    org = fee_lines("organization", OPERATOR)
    assert org == [{"title": "Вступительный взнос", "amount": 100_000},
                   {"title": "Минимальный паевой взнос", "amount": 300_000}]
    assert sum(line["amount"] for line in org) == 400_000  # 4 000 ₽
    for kind in ("individual", "entrepreneur"):
        assert [line["amount"] for line in fee_lines(kind, OPERATOR)] == [10_000, 30_000]  # 100 ₽ + 300 ₽
    other = {**OPERATOR, "fee_entrance_org": 50_000, "fee_share_org": 150_050}
    assert [line["amount"] for line in fee_lines("organization", other)] == [50_000, 150_050]
    with pytest.raises(ValueError):
        fee_lines("organization", {**OPERATOR, "fee_share_org": 0})


def test_invoice_numbers_and_finding_them_in_a_purpose():
    assert invoice_number(2026, 1) == "В-2026-000001"
    assert invoice_number_in("Оплата по счёту № В-2026-000017 вступительный взнос") == "В-2026-000017"
    assert invoice_number_in("оплата по счету B-2026-000017") == "В-2026-000017"  # a Latin B typed by a bank
    assert invoice_number_in("счёт в-2026-000017; НДС не облагается") == "В-2026-000017"
    assert invoice_number_in("Оплата по договору 12 от 01.02.2026") is None
    assert invoice_number_in("В-2026-0000171") is None  # not ours: seven digits
    assert invoice_number_in("АВ-2026-000017") is None
    assert purpose_text("В-2026-000001", "ПК «ВОСХОД»").endswith("по счёту № В-2026-000001. Без НДС")


def test_settlement_names_partial_exact_and_over_payments():
    assert settlement(400_000, 0, 400_000) == settlement(400_000, 100_000, 300_000)
    assert settlement(400_000, 0, 100_000).status == "issued" and settlement(400_000, 0, 100_000).kind == "partial"
    done = settlement(400_000, 100_000, 300_000)
    assert (done.status, done.kind, done.paid_amount) == ("paid", "exact", 400_000)
    over = settlement(400_000, 0, 500_000)
    assert (over.status, over.kind, over.paid_amount) == ("paid", "over", 500_000)


def test_the_payment_qr_follows_gost_r_56042():
    payee = {**OPERATOR, "name_full": "Потребительский кооператив «ВОСХОД» | филиал"}
    text = payment_payload(payee, purpose_text("В-2026-000001", "ПК «ВОСХОД»"), 400_000)
    assert text.startswith("ST00012|Name=")
    fields = parse_payload(text)
    assert fields == {
        "Name": "Потребительский кооператив «ВОСХОД» филиал",  # «|» removed from values
        "PersonalAcc": OPERATOR["settlement_account"], "BankName": OPERATOR["bank_name"], "BIC": OPERATOR["bik"],
        "CorrespAcc": OPERATOR["corr_account"], "PayeeINN": OPERATOR["inn"], "KPP": OPERATOR["kpp"],
        "Purpose": "Вступительный и минимальный паевой взносы в ПК «ВОСХОД» по счёту № В-2026-000001. Без НДС",
        "Sum": "400000",  # kopecks
    }
    assert text.encode("utf-8").decode("utf-8") == text
    with pytest.raises(ValueError):
        payment_payload(payee, "x", 0)
    with pytest.raises(ValueError):
        payment_payload({**payee, "bik": " "}, "x", 100)
