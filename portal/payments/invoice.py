"""The fees invoice as a document of the engine (``pdf_templates/invoice.html``): PDF/A-3b with the payment QR code
of ГОСТ Р 56042-2014, sealed by the operator, rendered once in the worker processes and stored as a ``Document`` of
the package ``"invoice"`` (the member finds it among «Мои документы», staff download it like any document).

The invoice is issued right after the joining package is signed (``issue_after_signing``); a member who signed
before this existed gets it on the first visit of «Оплата взносов» (``ensure_invoice``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
from pathlib import Path
from typing import Any, Mapping

from portal import db
from portal.audit.service import record
from portal.clock import now
from portal.documents.tables import Document
from portal.origin import SYSTEM, Origin
from portal.payments import qr, service
from portal.payments.tables import Invoice

log = logging.getLogger("portal.payments")

TEMPLATE_ID = "invoice"
PACKAGE = "invoice"
MOSCOW = dt.timezone(dt.timedelta(hours=3))
PAYEE_KEYS = ("name_full", "name_short", "inn", "kpp", "address", "bank_name", "bik", "corr_account",
              "settlement_account", "site")
_PDF_COLUMNS = (Document.id, Document.pdf, Document.pdf_sha256, Document.template_id, Document.member,
                Document.title, Document.created_at)


def title_of(number: str) -> str:
    return f"Счёт на оплату № {number}"


def issued_on(invoice: Mapping[str, Any]) -> str:
    """The invoice's date (Moscow), ISO."""
    return invoice["issued_at"].astimezone(MOSCOW).date().isoformat()


def payee_of(cooperative: Mapping[str, Any]) -> dict[str, str]:
    """The requisites a payment goes to (what the page, the PDF and the QR code show)."""
    return {k: str(cooperative.get(k) or "") for k in PAYEE_KEYS}


def payment_qr_payload(invoice: Mapping[str, Any], cooperative: Mapping[str, Any]) -> str:
    return qr.payment_payload(payee_of(cooperative), service.purpose_text(invoice["number"], cooperative["name_short"]),
                              int(invoice["total"]))


def invoice_context(invoice: Mapping[str, Any], data: Mapping[str, Any], cooperative: Mapping[str, Any]) -> dict:
    """The template's context (JSON-native): the payer's application ``data``, the payee ``cooperative`` and the
    ``invoice`` with its QR payload (the picture, ``qr_uri``, is added when the PDF is rendered)."""
    purpose = service.purpose_text(invoice["number"], cooperative["name_short"])
    return {
        "data": dict(data),
        "cooperative": payee_of(cooperative),
        "invoice": {
            "number": invoice["number"],
            "date": issued_on(invoice),
            "lines": [{"title": str(line["title"]), "amount": int(line["amount"])}
                      for line in service.invoice_lines(invoice)],
            "total": int(invoice["total"]),
            "purpose": purpose,
            "qr_payload": qr.payment_payload(payee_of(cooperative), purpose, int(invoice["total"])),
        },
    }


def qr_png_data_uri(payload: str) -> str:
    """The payment QR code as a PNG data URI for the PDF (drawn pixelated, read by a bank app or zbar)."""
    import segno

    return segno.make(payload, error="m", micro=False).png_data_uri(scale=4, border=4)


def render_invoice_pdf(context: Mapping[str, Any], seal_dir: str | None = None, operator_name: str = "") -> bytes:
    """The invoice PDF/A-3b (in a worker process); sealed by the operator when ``seal_dir`` is given."""
    from portal.documents.render import PDF_VARIANT, render_pdf

    full = {**context, "invoice": {**context["invoice"], "qr_uri": qr_png_data_uri(context["invoice"]["qr_payload"])}}
    pdf = render_pdf(TEMPLATE_ID, full, pdf_variant=PDF_VARIANT)
    if seal_dir is None:
        return pdf
    from portal.documents.seal import ensure_seal_identity, seal_pdf

    return seal_pdf(pdf, ensure_seal_identity(Path(seal_dir), operator_name),
                    reason=f"Печать {operator_name}: счёт выдан на портале")


# --------------------------------------------------------------------------- stored


async def stored_pdf(invoice: Mapping[str, Any]) -> dict | None:
    """The invoice's stored PDF (a Document row with the bytes), if it was rendered."""
    return await Document.select(*_PDF_COLUMNS).where(
        (Document.member == invoice["member"]) & (Document.package == PACKAGE)
        & (Document.title == title_of(invoice["number"]))).first()


async def _payer_data(member_id: int) -> dict:
    """The application as the member signed it (the stored join_application's data): the payer of the invoice."""
    row = await Document.select(Document.canonical_json).where(
        (Document.member == member_id) & (Document.template_id == "join_application")
    ).order_by(Document.id, ascending=False).first()
    if row is None:
        raise LookupError("the member has no signed application")
    return json.loads(row["canonical_json"])["data"]["data"]


async def cooperative_of(invoice: Mapping[str, Any]) -> dict:
    from portal.cooperatives.tables import Cooperative

    return await Cooperative.select().where(Cooperative.id == invoice["cooperative"]).first()


async def ensure_pdf(settings, invoice: Mapping[str, Any], origin: Origin = SYSTEM) -> dict:
    """The invoice's PDF, rendered (in the worker pool), sealed and stored on the first call; the stored one after."""
    found = await stored_pdf(invoice)
    if found is not None:
        return found
    from portal.documents import store
    from portal.documents.signing import canonical_json, document_hash, sha256_hex
    from portal.documents.templates import get_template

    context = invoice_context(invoice, await _payer_data(invoice["member"]), await cooperative_of(invoice))
    template = get_template(TEMPLATE_ID)
    document = {"template_id": template.id, "template_version": template.version,
                "template_sha256": template.sha256, "data": context}
    loop = asyncio.get_running_loop()
    pdf = await loop.run_in_executor(store.render_pool(), render_invoice_pdf, context, str(settings.data_dir),
                                     settings.operator.name_short)
    async with db.transaction():
        # Takes the invoice's row lock (PostgreSQL): a concurrent first render waits here and then finds this one.
        await Invoice.update({Invoice.number: invoice["number"]}).where(Invoice.id == invoice["id"])
        found = await stored_pdf(invoice)
        if found is not None:
            return found
        rows = await Document.insert(Document(
            member=invoice["member"], package=PACKAGE, template_id=template.id, template_version=template.version,
            title=title_of(invoice["number"]), canonical_json=canonical_json(document).decode(),
            document_hash=document_hash(document), pdf=pdf, pdf_sha256=sha256_hex(pdf), created_at=now(),
        )).returning(Document.id)
        await record("invoice.document", actor_type="system", object_type="invoice", object_id=invoice["id"],
                     origin=origin, details={"number": invoice["number"], "document": rows[0]["id"],
                                             "pdf_sha256": sha256_hex(pdf)})
    return await stored_pdf(invoice)


async def ensure_invoice(member: Mapping[str, Any], applicant_type: str, origin: Origin = SYSTEM) -> dict:
    """The member's fees invoice to the member's cooperative, issued on the first call (``issue_fees_invoice``)."""
    from portal.cooperatives.tables import Cooperative

    existing = await service.open_fees_invoice(member["id"])
    if existing is not None:
        return existing
    cooperative = await Cooperative.select().where(Cooperative.id == member["cooperative"]).first()
    return await service.issue_fees_invoice(member, applicant_type, cooperative, origin)


async def issue_after_signing(settings, member: Mapping[str, Any], applicant_type: str,
                              origin: Origin = SYSTEM) -> dict | None:
    """Called once the joining package is signed (after its transaction): the invoice and its PDF. A failure here
    does not undo the signing: it is logged, and «Оплата взносов» issues what is missing on the first visit."""
    try:
        invoice = await ensure_invoice(member, applicant_type, origin)
        await ensure_pdf(settings, invoice, origin)
        return invoice
    except Exception:
        log.exception("the fees invoice of member %s was not issued after signing", member["id"])
        return None
