"""«Оплата взносов» in the member's cabinet: what is to be paid and why, how, and whether it has arrived."""

from __future__ import annotations

from typing import Any, Mapping

from litestar import Controller, Request, Response, get
from litestar.di import NamedDependency, Provide
from markupsafe import Markup

from portal.accounts.guards import current_member, member_guard
from portal.applications.tables import Application
from portal.clock import datetime_ru
from portal.documents.download import pdf_response
from portal.origin import origin_of
from portal.payments import invoice as invoices
from portal.payments import qr, service
from portal.pricing.tariff import format_rub
from portal.web import redirect, render

POLL = "every 4s"  # how often the page asks whether the payment has arrived, while it waits


def date_msk(value) -> str:
    """«02.12.2026»: the date in Moscow of a stored moment."""
    return datetime_ru(value).split(" ")[0]


def status_text(invoice: Mapping[str, Any]) -> str:
    """«ожидает оплаты», «оплачено частично: 1 000,00 ₽ из 4 000,00 ₽», «оплачено — зачислено 02.12.2026» (the day
    the portal credited the fees; the bank's own date of the payment may be earlier and is what the decision says)."""
    if invoice["status"] == "paid":
        text = "оплачено"
        if invoice["paid_at"] is not None:
            text += f" — зачислено {date_msk(invoice['paid_at'])}"
        if invoice["paid_amount"] > invoice["total"]:
            text += f" (поступило {format_rub(invoice['paid_amount'])} — больше суммы счёта)"
        return text
    if invoice["status"] == "cancelled":
        return "счёт отменён"
    if invoice["paid_amount"] > 0:
        return f"оплачено частично: {format_rub(invoice['paid_amount'])} из {format_rub(invoice['total'])}"
    return "ожидает оплаты"


async def signed_application(member: Mapping[str, Any]) -> dict | None:
    """The member's application once signed (None while it is a draft)."""
    return await Application.select(Application.id, Application.status, Application.applicant_type).where(
        (Application.member == member["id"]) & (Application.status != "draft")).first()


class CabinetPaymentController(Controller):
    path = "/cabinet/payment"
    guards = [member_guard]
    dependencies = {"member": Provide(current_member)}

    async def _invoice(self, request: Request, member: dict) -> dict | None:
        application = await signed_application(member)
        if application is None:
            return None
        return await invoices.ensure_invoice(member, application["applicant_type"], origin_of(request))

    @get("/")
    async def page(self, request: Request, member: NamedDependency[dict]) -> object:
        """The page; on htmx's polling only its status block (the page itself reads the same without JavaScript)."""
        invoice = await self._invoice(request, member)
        if invoice is None:  # nothing to pay before the application is signed
            return redirect("/cabinet")
        settings = request.app.state.settings
        cooperative = await invoices.cooperative_of(invoice)
        payee = invoices.payee_of(cooperative)
        purpose = service.purpose_text(invoice["number"], cooperative["name_short"])
        waiting = invoice["status"] == "issued"
        context = {
            "member": member, "invoice": invoice, "lines": service.invoice_lines(invoice), "payee": payee,
            "purpose": purpose, "rub": format_rub, "status_text": status_text(invoice), "waiting": waiting,
            "poll": POLL, "issued_on": date_msk(invoice["issued_at"]),
            "qr_svg": Markup(qr.qr_svg(invoices.payment_qr_payload(invoice, cooperative))) if waiting else None,
            "card": bool(settings.yookassa_shop_id and settings.yookassa_secret_key) and waiting,
        }
        if context["card"]:  # the last card attempt: waiting for ЮKassa, or cancelled with ЮKassa's reason
            from portal.payments.yookassa import card_status

            context["card_attempt"] = await card_status(invoice["id"])
        return render(request, "payments/cabinet.html", context, block="status")

    @get("/invoice.pdf")
    async def invoice_pdf(self, request: Request, member: NamedDependency[dict]) -> Response:
        """«Скачать счёт»: the stored PDF (rendered and sealed on the first download if it was not yet)."""
        invoice = await self._invoice(request, member)
        if invoice is None:
            return redirect("/cabinet")
        doc = await invoices.ensure_pdf(request.app.state.settings, invoice, origin_of(request))
        return pdf_response(request, doc)
