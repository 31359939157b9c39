"""Fees and invoices, and crediting a payment exactly once.

Business rules are pure functions (``fee_lines``, ``invoice_number``, ``invoice_number_in``, ``settlement``);
the rest stores what they decide. A payment is one row keyed by ``<cooperative>:<source>:<external id>``
(unique in the database) and it is credited to its invoice in the same transaction as it is stored: whatever
arrives twice or out of order, and wherever the server stops, the money is counted once or not at all.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any, Mapping

from portal import db
from portal.audit.service import record
from portal.clock import now
from portal.origin import SYSTEM, Origin
from portal.payments.tables import Invoice, Payment

INVOICE_PREFIX = "В"
_NUMBER = re.compile(r"(?<![\w-])" + INVOICE_PREFIX + r"-(\d{4})-(\d{6})(?!\d)")


# --------------------------------------------------------------------------- pure rules


def fee_lines(applicant_type: str, cooperative: Mapping[str, Any]) -> list[dict[str, Any]]:
    """What a new member pays (kopecks, from the cooperative's settings): the entrance fee and the minimal share,
    each on its own line — organizations pay the «org» fees, individuals and ИП the «ind» ones."""
    suffix = "org" if applicant_type == "organization" else "ind"
    lines = [
        {"title": "Вступительный взнос", "amount": int(cooperative[f"fee_entrance_{suffix}"])},
        {"title": "Минимальный паевой взнос", "amount": int(cooperative[f"fee_share_{suffix}"])},
    ]
    for line in lines:
        if line["amount"] <= 0:
            raise ValueError(f"{line['title']}: the cooperative's fee must be positive")
    return lines


def invoice_number(year: int, sequence: int) -> str:
    """«В-2026-000001»: the year and the invoice's sequence number within the cooperative."""
    return f"{INVOICE_PREFIX}-{year:04d}-{sequence:06d}"


def invoice_number_in(text: str) -> str | None:
    """The invoice number a payment's purpose names («Оплата по счёту № В-2026-000001 …»), or None.
    Letters are compared as typed by banks: a Latin «B» in place of the Cyrillic «В» is accepted."""
    found = _NUMBER.search(text.replace("B-", "В-").replace("b-", "В-").replace("в-", "В-"))
    return f"{INVOICE_PREFIX}-{found.group(1)}-{found.group(2)}" if found else None


@dataclass(frozen=True)
class Settlement:
    paid_amount: int
    status: str  # issued | paid
    kind: str  # partial | exact | over


def settlement(total: int, paid_before: int, amount: int) -> Settlement:
    """An invoice after ``amount`` more is credited: paid once the total is reached; partial and over-payments
    are named as such (staff see them; the over-paid part is returned or offset by hand)."""
    paid = paid_before + amount
    kind = "partial" if paid < total else "exact" if paid == total else "over"
    return Settlement(paid, "issued" if paid < total else "paid", kind)


def purpose_text(number: str, cooperative_short: str) -> str:
    """The purpose of payment printed on the invoice and put into the QR code."""
    return f"Вступительный и минимальный паевой взносы в {cooperative_short} по счёту № {number}. Без НДС"


# --------------------------------------------------------------------------- invoices


def invoice_lines(invoice: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The invoice's lines (the JSON column comes back as text)."""
    import json

    lines = invoice["lines"]
    return json.loads(lines) if isinstance(lines, str) else list(lines)


async def open_fees_invoice(member_id: int) -> dict | None:
    return await Invoice.select().where(
        (Invoice.member == member_id) & (Invoice.purpose == "fees") & (Invoice.status != "cancelled")
    ).order_by(Invoice.id, ascending=False).first()


async def issue_fees_invoice(member: Mapping[str, Any], applicant_type: str, cooperative: Mapping[str, Any],
                             origin: Origin = SYSTEM) -> dict:
    """The member's fees invoice; issued once (a second call returns the same invoice)."""
    existing = await open_fees_invoice(member["id"])
    if existing is not None:
        return existing
    lines = fee_lines(applicant_type, cooperative)
    issued_at = now()
    async with db.transaction():
        existing = await open_fees_invoice(member["id"])
        if existing is not None:
            return existing
        year = issued_at.year
        count = await Invoice.count().where(
            (Invoice.cooperative == cooperative["id"]) & (Invoice.number.like(f"{INVOICE_PREFIX}-{year:04d}-%")))
        number = invoice_number(year, count + 1)
        rows = await Invoice.insert(Invoice(
            cooperative=cooperative["id"], member=member["id"], number=number,
            number_key=f"{cooperative['id']}:{number}", purpose="fees", lines=lines,
            total=sum(line["amount"] for line in lines), status="issued", paid_amount=0, issued_at=issued_at,
        )).returning(Invoice.id)
        await record("invoice.issued", actor_type="member", actor_id=member["id"], actor_label=member["email"],
                     object_type="invoice", object_id=rows[0]["id"], origin=origin,
                     details={"number": number, "total": sum(line["amount"] for line in lines)})
    return await Invoice.select().where(Invoice.id == rows[0]["id"]).first()


# --------------------------------------------------------------------------- payments


@dataclass(frozen=True)
class Credited:
    payment: dict
    created: bool  # False: this payment was stored before (a repeat) and nothing changed now
    invoice: dict | None
    settlement: Settlement | None


class InvoiceChanged(RuntimeError):
    """Another payment reached the invoice between reading and crediting it (the transaction is rolled back)."""


async def record_payment(cooperative_id: int, source: str, external_id: str, amount: int, *,
                         invoice_id: int | None, paid_on: dt.date | None = None, reference: str = "",
                         payer: str = "", payer_inn: str = "", purpose: str = "",
                         actor: tuple[str, str | int, str] = ("system", "", ""),
                         origin: Origin = SYSTEM) -> Credited:
    """Store a payment and, when it names an open invoice of this cooperative, credit it — in one transaction.

    A repeat (same source and external id) changes nothing and returns the stored payment. The caller decides
    the matching (statement: number and amount; ЮKassa: its metadata; staff: the invoice they clicked).
    Concurrent calls for the same payment or invoice are tried again (PostgreSQL lets both read before either
    writes): the loser then finds the payment stored, or credits on top of the winner."""
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        raise ValueError("a payment is a positive integer of kopecks")
    for attempt in range(4):
        try:
            return await _record_payment(cooperative_id, source, external_id, amount, invoice_id=invoice_id,
                                         paid_on=paid_on, reference=reference, payer=payer, payer_inn=payer_inn,
                                         purpose=purpose, actor=actor, origin=origin)
        except Exception as exc:
            if attempt == 3 or not (isinstance(exc, InvoiceChanged) or db.is_unique_violation(exc)):
                raise
    raise AssertionError("unreachable")


async def _record_payment(cooperative_id: int, source: str, external_id: str, amount: int, *,
                          invoice_id: int | None, paid_on: dt.date | None, reference: str, payer: str,
                          payer_inn: str, purpose: str, actor: tuple[str, str | int, str],
                          origin: Origin) -> Credited:
    key = f"{cooperative_id}:{source}:{external_id}"
    actor_type, actor_id, actor_label = actor
    async with db.transaction():
        stored = await Payment.select().where(Payment.dedup_key == key).first()
        if stored is not None:
            invoice = await Invoice.select().where(Invoice.id == stored["invoice"]).first() if stored["invoice"] else None
            return Credited(stored, False, invoice, None)
        invoice = None
        if invoice_id is not None:
            invoice = await Invoice.select().where(
                (Invoice.id == invoice_id) & (Invoice.cooperative == cooperative_id)).first()
        result = None
        status = "unmatched"
        if invoice is not None and invoice["status"] != "cancelled":
            result = settlement(invoice["total"], invoice["paid_amount"], amount)
            changes = {Invoice.paid_amount: result.paid_amount, Invoice.status: result.status}
            if result.status == "paid" and invoice["paid_at"] is None:
                changes[Invoice.paid_at] = now()
            # Guarded by the amount read above: a concurrent credit makes this update miss, and the transaction
            # (SQLite IMMEDIATE / the row's unique key on PostgreSQL) keeps the two from both counting.
            updated = await Invoice.update(changes).where(
                (Invoice.id == invoice["id"]) & (Invoice.paid_amount == invoice["paid_amount"])
            ).returning(Invoice.id)
            if not updated:
                raise InvoiceChanged("the invoice changed while it was being credited")
            status = "credited"
        rows = await Payment.insert(Payment(
            cooperative=cooperative_id, invoice=invoice["id"] if status == "credited" else None, source=source,
            external_id=external_id, dedup_key=key, amount=amount, paid_on=paid_on, reference=reference[:128],
            payer=payer[:500], payer_inn=payer_inn[:12], purpose=purpose, status=status, created_at=now(),
        )).returning(Payment.id)
        payment = await Payment.select().where(Payment.id == rows[0]["id"]).first()
        await record(f"payment.{status}", actor_type=actor_type, actor_id=actor_id, actor_label=actor_label,
                     object_type="payment", object_id=payment["id"], origin=origin,
                     details={"source": source, "external_id": external_id, "amount": amount,
                              "invoice": invoice["number"] if status == "credited" else None,
                              "settlement": result.kind if result else None})
        if status == "credited":
            became_paid = result.status == "paid" and invoice["status"] != "paid"
            invoice = await Invoice.select().where(Invoice.id == invoice["id"]).first()
            if became_paid:
                await fees_credited(invoice)  # the member's e-mail, in this transaction: sent once or never
    return Credited(payment, True, invoice if status == "credited" else None, result)


# --------------------------------------------------------------------------- after crediting

FEES_CREDITED_MAIL = "mail/fees_credited.txt"


async def fees_credited(invoice: Mapping[str, Any]) -> int:
    """The member is e-mailed that the fees are credited (``mail/fees_credited.txt``, enqueued in the caller's
    transaction). ``record_payment`` calls it when a payment makes an invoice paid — callers need do nothing.

    The mail is signed by the cooperative that received the fees and links to its portal (its ``site``)."""
    import dataclasses

    from portal.accounts.tables import Member
    from portal.cooperatives.tables import Cooperative
    from portal.mail.service import send_template
    from portal.pricing.tariff import format_rub
    from portal.settings import OperatorRequisites, Settings

    member = await Member.select(Member.email, Member.display_name).where(Member.id == invoice["member"]).first()
    cooperative = await Cooperative.select(Cooperative.name_short, Cooperative.site).where(
        Cooperative.id == invoice["cooperative"]).first()
    sender = Settings(base_url=(cooperative["site"] or "").rstrip("/"),
                      operator=dataclasses.replace(OperatorRequisites(), name_short=cooperative["name_short"]))
    context = {
        "member_name": member["display_name"] or "",
        "number": invoice["number"],
        "lines": [{"title": line["title"], "amount": format_rub(int(line["amount"]))} for line in invoice_lines(invoice)],
        "total": format_rub(int(invoice["total"])),
        "paid": format_rub(int(invoice["paid_amount"])),
        "overpaid": format_rub(int(invoice["paid_amount"]) - int(invoice["total"]))
        if invoice["paid_amount"] > invoice["total"] else "",
        "paid_at": invoice["paid_at"] or now(),
    }
    return await send_template(sender, member["email"], FEES_CREDITED_MAIL, context)
