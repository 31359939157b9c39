"""Invoices and crediting, on SQLite and PostgreSQL: a payment counts once, whatever is repeated."""

from __future__ import annotations

import asyncio
import datetime as dt

from portal.accounts.tables import Member
from portal.audit.tables import AuditEvent
from portal.clock import now
from portal.cooperatives.service import operator
from portal.payments import service
from portal.payments.tables import Invoice, Payment


async def new_member(email: str) -> dict:
    op = await operator()
    rows = await Member.insert(Member(cooperative=op["id"], email=email, email_confirmed_at=now(),
                                      created_at=now())).returning(Member.id)
    return await Member.select().where(Member.id == rows[0]["id"]).first()


async def test_the_fees_invoice_is_issued_once_with_numbers_in_sequence(client):
    op = await operator()
    anna, boris = await new_member("anna@example.org"), await new_member("boris@example.org")
    first = await service.issue_fees_invoice(anna, "organization", op)
    again = await service.issue_fees_invoice(anna, "organization", op)
    assert again["id"] == first["id"] and first["total"] == 400_000 and first["status"] == "issued"
    assert first["number"] == service.invoice_number(first["issued_at"].year, 1)
    second = await service.issue_fees_invoice(boris, "individual", op)
    assert second["number"] == service.invoice_number(first["issued_at"].year, 2) and second["total"] == 40_000
    assert [line["title"] for line in service.invoice_lines(second)] == ["Вступительный взнос", "Минимальный паевой взнос"]


async def test_a_payment_is_credited_exactly_once(client):
    op = await operator()
    invoice = await service.issue_fees_invoice(await new_member("anna@example.org"), "organization", op)
    part = await service.record_payment(op["id"], "statement", "line-1", 100_000, invoice_id=invoice["id"],
                                        paid_on=dt.date(2026, 12, 1), reference="17")
    assert part.created and part.settlement.kind == "partial" and part.invoice["status"] == "issued"
    repeat = await service.record_payment(op["id"], "statement", "line-1", 100_000, invoice_id=invoice["id"])
    assert not repeat.created and repeat.payment["id"] == part.payment["id"]
    # The same payment arriving twice at the same moment is still one payment.
    results = await asyncio.gather(*[
        service.record_payment(op["id"], "yookassa", "pay-2", 300_000, invoice_id=invoice["id"]) for _ in range(2)
    ], return_exceptions=True)
    created = [r for r in results if not isinstance(r, BaseException) and r.created]
    assert len(created) == 1
    paid = await Invoice.select().where(Invoice.id == invoice["id"]).first()
    assert (paid["status"], paid["paid_amount"]) == ("paid", 400_000) and paid["paid_at"] is not None
    assert await Payment.count() == 2
    assert await AuditEvent.count().where(AuditEvent.action == "payment.credited") == 2


async def test_a_payment_without_a_known_invoice_waits_for_staff(client):
    op = await operator()
    unmatched = await service.record_payment(op["id"], "statement", "line-9", 5_000, invoice_id=None,
                                             purpose="Оплата по договору 12")
    assert unmatched.created and unmatched.payment["status"] == "unmatched" and unmatched.invoice is None
    over = await service.record_payment(
        op["id"], "manual", "ref-1", 500_000,
        invoice_id=(await service.issue_fees_invoice(await new_member("c@example.org"), "organization", op))["id"])
    assert over.settlement.kind == "over" and over.invoice["paid_amount"] == 500_000


async def test_concurrent_payments_of_one_invoice_both_count_and_a_repeat_does_not(client):
    """Two different payments for one invoice at the same moment are both credited (the loser tries again on
    top of the winner); the same payment twice at once is one payment — on PostgreSQL too, without an error."""
    op = await operator()
    invoice = await service.issue_fees_invoice(await new_member("anna@example.org"), "organization", op)
    results = await asyncio.gather(
        service.record_payment(op["id"], "statement", "a", 100_000, invoice_id=invoice["id"]),
        service.record_payment(op["id"], "statement", "b", 300_000, invoice_id=invoice["id"]),
        service.record_payment(op["id"], "manual", "c", 50_000, invoice_id=invoice["id"]),
        service.record_payment(op["id"], "manual", "c", 50_000, invoice_id=invoice["id"]),
    )
    assert sorted(r.created for r in results) == [False, True, True, True]
    paid = await Invoice.select().where(Invoice.id == invoice["id"]).first()
    assert (paid["status"], paid["paid_amount"]) == ("paid", 450_000)


async def test_a_failure_in_the_middle_of_crediting_leaves_nothing_half_done(client, monkeypatch):
    """The invoice is updated before the payment row and the audit event are written: a failure after the update
    (here the audit write; a killed server is the same to the database) rolls the whole credit back."""
    op = await operator()
    invoice = await service.issue_fees_invoice(await new_member("anna@example.org"), "organization", op)

    async def broken_audit(*args, **kwargs):
        raise RuntimeError("the server went away")

    monkeypatch.setattr(service, "record", broken_audit)
    try:
        await service.record_payment(op["id"], "statement", "line-1", 400_000, invoice_id=invoice["id"])
    except RuntimeError as exc:
        assert "went away" in str(exc)
    else:
        raise AssertionError("the failure was swallowed")
    unchanged = await Invoice.select().where(Invoice.id == invoice["id"]).first()
    assert (unchanged["status"], unchanged["paid_amount"]) == ("issued", 0)
    assert await Payment.count() == 0
    monkeypatch.undo()
    done = await service.record_payment(op["id"], "statement", "line-1", 400_000, invoice_id=invoice["id"])
    assert done.created and done.invoice["status"] == "paid"  # the same line imported again is credited once
