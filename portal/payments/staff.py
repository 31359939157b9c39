"""Staff: /staff/payments — invoices waiting for money, «Отметить оплаченным», a bank statement's import, and the
payments nobody could match, to be matched by hand.

Matching rule of a statement (stated on the page too): a payment is credited by itself when its purpose names
an open invoice of the cooperative (``invoice_number_in``) and its amount equals what is left to pay on that
invoice. Everything else — a part of the sum, more than the sum, an invoice already paid, a number that is not
ours, no number at all — is stored as «не сопоставлен» with the reason, and staff credit it by hand («Зачесть»)
or return it. Every payment goes through ``record_payment`` (one transaction, keyed by its source and id): a
repeated statement, a double click or two staff at once count each payment once.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Annotated, Any

from litestar import Controller, Request, get, post
from litestar.datastructures import UploadFile
from litestar.di import NamedDependency, Provide
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath

from portal import db
from portal.audit.service import events_of, record
from portal.clock import MOSCOW, now
from portal.cooperatives.service import operator
from portal.origin import Origin, origin_of
from portal.payments import service
from portal.payments.statement import StatementError, parse_amount, parse_date, parse_statement
from portal.payments.tables import Invoice, Payment
from portal.pricing.tariff import format_rub
from portal.staff.guards import current_staff, staff_guard
from portal.web import PageError, redirect, render

Form = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]

FILTERS = {
    "waiting": "Ожидают оплаты",
    "partial": "Оплачены частично",
    "over": "С переплатой",
    "paid": "Оплачены",
    "all": "Все",
}
SOURCES = {"statement": "выписка", "manual": "вручную", "yookassa": "ЮKassa"}
PAYMENT_STATUSES = {"credited": "зачтён", "unmatched": "не сопоставлен", "pending": "ожидает", "cancelled": "отменён"}
MATCH_RULE = ("Платёж из выписки зачитывается сам, когда в назначении указан номер нашего счёта и сумма равна "
              "остатку к оплате по этому счёту. Частичные оплаты, переплаты, платежи по уже оплаченным и "
              "неизвестным счетам не зачитываются сами: они попадают в список «Платежи без счёта» с причиной — "
              "зачтите их вручную или верните плательщику. Повторная загрузка той же выписки ничего не зачитывает "
              "дважды.")
REPEATED = "Платёж с этой ссылкой уже учтён"


def rub(kopecks: int | None) -> str:
    return format_rub(int(kopecks or 0))


def today_moscow() -> dt.date:
    return now().astimezone(MOSCOW).date()


def staff_actor(staff: dict) -> tuple[str, int, str]:
    return ("staff", staff["id"], staff["email"])


# --------------------------------------------------------------------------- reading


def invoice_state(invoice: dict) -> tuple[str, str]:
    """(kind, words) of an invoice: waiting | partial | paid | over | cancelled."""
    total, paid = invoice["total"], invoice["paid_amount"]
    if invoice["status"] == "cancelled":
        return "cancelled", "Аннулирован"
    if paid <= 0:
        return "waiting", "Ожидает оплаты"
    if paid < total:
        return "partial", f"Оплачен частично: {rub(paid)} из {rub(total)}, осталось {rub(total - paid)}"
    if paid == total:
        return "paid", "Оплачен"
    return "over", f"Оплачен с переплатой {rub(paid - total)}"


def remaining(invoice: dict) -> int:
    return max(invoice["total"] - invoice["paid_amount"], 0)


_INVOICE_COLUMNS = (*Invoice.all_columns(), Invoice.member.email, Invoice.member.display_name)


async def list_invoices(cooperative_id: int, kind: str, query: str = "") -> list[dict]:
    """Invoices of the cooperative by what is paid on them, newest first; ``query`` looks in the number, the
    member's e-mail and name (any case, Cyrillic too — compared here, not by the database's LIKE)."""
    q = Invoice.select(*_INVOICE_COLUMNS).where(Invoice.cooperative == cooperative_id)
    if kind == "waiting":
        q = q.where(Invoice.status == "issued")
    elif kind == "partial":
        q = q.where((Invoice.status == "issued") & (Invoice.paid_amount > 0))
    elif kind == "over":
        q = q.where(Invoice.paid_amount > Invoice.total)
    elif kind == "paid":
        q = q.where(Invoice.status == "paid")
    rows = await q.order_by(Invoice.id, ascending=False).limit(2000)
    needle = " ".join(query.split()).casefold()
    if needle:
        rows = [r for r in rows if needle in " ".join(
            [r["number"], r["member.email"], r["member.display_name"]]).casefold()]
    for r in rows[:500]:
        r["state"], r["state_text"] = invoice_state(r)
    return rows[:500]


async def open_invoices(cooperative_id: int) -> list[dict]:
    rows = await Invoice.select(*_INVOICE_COLUMNS).where(
        (Invoice.cooperative == cooperative_id) & (Invoice.status == "issued")).order_by(Invoice.id)
    return rows


@dataclass
class Hint:
    """Why a payment was not credited by itself, and the invoice it seems to be for."""

    kind: str  # no_number | unknown | cancelled | paid | partial | over | exact
    text: str
    invoice_id: int | None = None


def hint_for(payment: dict, invoice: dict | None, number: str | None) -> Hint:
    if number is None:
        return Hint("no_number", "В назначении нет номера счёта")
    if invoice is None:
        return Hint("unknown", f"Счёта № {number} у кооператива нет")
    if invoice["status"] == "cancelled":
        return Hint("cancelled", f"Счёт № {number} аннулирован")
    if invoice["status"] == "paid":
        return Hint("paid", f"Счёт № {number} уже оплачен — возможно, платёж повторный: верните его или "
                            "зачтите в другой счёт")
    left = remaining(invoice)
    if payment["amount"] < left:
        return Hint("partial", f"Частичная оплата счёта № {number}: {rub(payment['amount'])} из {rub(left)}",
                    invoice["id"])
    if payment["amount"] > left:
        return Hint("over", f"Переплата по счёту № {number}: пришло {rub(payment['amount'])}, к оплате {rub(left)}",
                    invoice["id"])
    return Hint("exact", f"Сумма равна остатку по счёту № {number}", invoice["id"])


async def _invoice_by_number(cooperative_id: int, number: str | None) -> dict | None:
    if number is None:
        return None
    return await Invoice.select().where(
        (Invoice.cooperative == cooperative_id) & (Invoice.number == number)).first()


async def unmatched_payments(cooperative_id: int) -> list[dict]:
    rows = await Payment.select().where(
        (Payment.cooperative == cooperative_id) & (Payment.status == "unmatched")).order_by(Payment.id).limit(500)
    for r in rows:
        number = service.invoice_number_in(r["purpose"])
        r["hint"] = hint_for(r, await _invoice_by_number(cooperative_id, number), number)
    return rows


async def recent_payments(cooperative_id: int, limit: int = 50) -> list[dict]:
    return await Payment.select(*Payment.all_columns(), Payment.invoice.number).where(
        Payment.cooperative == cooperative_id).order_by(Payment.id, ascending=False).limit(limit)


# --------------------------------------------------------------------------- «Отметить оплаченным»


def normalise_reference(text: str) -> str:
    """The bank's reference as a key: spaces collapsed, «№» dropped, capitals — «№ 17 » and «17» are one."""
    return " ".join(text.replace("№", " ").split()).upper()


@dataclass
class MarkForm:
    values: dict[str, str]
    errors: dict[str, str] = field(default_factory=dict)
    clean: dict[str, Any] = field(default_factory=dict)


MARK_LABELS = {"paid_on": "Дата оплаты", "reference": "Ссылка банка", "amount": "Сумма"}


def mark_form_defaults(invoice: dict) -> MarkForm:
    return MarkForm({"paid_on": today_moscow().isoformat(), "reference": "",
                     "amount": f"{remaining(invoice) / 100:.2f}".replace(".", ",")})


def validate_mark(data: dict[str, str]) -> MarkForm:
    values = {k: (data.get(k) or "").strip() for k in MARK_LABELS}
    form = MarkForm(values)
    raw_date = values["paid_on"]
    if not raw_date:
        form.errors["paid_on"] = "Укажите дату, когда деньги пришли на счёт."
    else:
        try:
            paid_on = dt.date.fromisoformat(raw_date) if "-" in raw_date else parse_date(raw_date)
        except ValueError:
            form.errors["paid_on"] = f"Дата «{raw_date}» не распознана: укажите её как ДД.ММ.ГГГГ."
        else:
            if paid_on > today_moscow():
                form.errors["paid_on"] = "Дата оплаты не может быть в будущем."
            elif paid_on.year < 2000:
                form.errors["paid_on"] = "Проверьте год даты оплаты."
            else:
                form.clean["paid_on"] = paid_on
    reference = normalise_reference(values["reference"])
    if not reference:
        form.errors["reference"] = "Укажите ссылку банка: номер платёжного поручения или операции из выписки."
    elif len(reference) > 100:
        form.errors["reference"] = "Ссылка банка — не длиннее 100 символов."
    else:
        form.clean["reference"] = reference
    if not values["amount"]:
        form.errors["amount"] = "Укажите сумму, которая пришла."
    else:
        try:
            form.clean["amount"] = parse_amount(values["amount"])
        except ValueError as exc:
            message = str(exc)
            form.errors["amount"] = message[0].upper() + message[1:] + "."
    return form


class MarkRefused(Exception):
    """A Russian sentence for the form: why the invoice is not marked paid."""

    def __init__(self, message: str, field_name: str | None = None):
        super().__init__(message)
        self.field_name = field_name


async def _stored(cooperative_id: int, source: str, external_id: str) -> dict | None:
    return await Payment.select(*Payment.all_columns(), Payment.invoice.number).where(
        Payment.dedup_key == f"{cooperative_id}:{source}:{external_id}").first()


def _repeat_words(stored: dict) -> str:
    when = stored["paid_on"].strftime("%d.%m.%Y") if stored["paid_on"] else ""
    where = f"счёт № {stored['invoice.number']}" if stored.get("invoice.number") else "без счёта"
    return f"{REPEATED} ({where}, {rub(stored['amount'])}{', ' + when if when else ''})."


async def mark_paid(invoice: dict, clean: dict[str, Any], staff: dict, origin: Origin) -> bool:
    """Credit a payment staff saw in the bank to ``invoice``. True: credited now; False: this very payment (same
    reference, same invoice) was credited before — a double click. MarkRefused otherwise."""
    coop_id = invoice["cooperative"]
    reference = clean["reference"]
    stored = await _stored(coop_id, "manual", reference)
    if stored is not None:
        if stored["invoice"] == invoice["id"]:
            return False
        raise MarkRefused(_repeat_words(stored), "reference")
    if invoice["status"] == "paid":
        when = f" {invoice['paid_at'].astimezone(MOSCOW):%d.%m.%Y}" if invoice["paid_at"] else ""
        raise MarkRefused(f"Счёт № {invoice['number']} уже оплачен{when} — отмечать его оплаченным не нужно.")
    if invoice["status"] != "issued":
        raise MarkRefused(f"Счёт № {invoice['number']} аннулирован — оплату по нему не принять.")
    try:
        result = await service.record_payment(
            coop_id, "manual", reference, clean["amount"], invoice_id=invoice["id"], paid_on=clean["paid_on"],
            reference=reference, actor=staff_actor(staff), origin=origin,
            purpose=f"Отмечено оплаченным сотрудником {staff['email']}")
    except Exception as exc:
        # Two clicks at once: the other one stored this reference first (unique key), or credited the invoice
        # while this one was reading it. Whatever the database refused, nothing of this attempt was stored.
        stored = await _stored(coop_id, "manual", reference)
        if stored is not None:
            if stored["invoice"] == invoice["id"]:
                return False
            raise MarkRefused(_repeat_words(stored), "reference") from None
        if isinstance(exc, RuntimeError) or db.is_unique_violation(exc):
            raise MarkRefused("Счёт изменился, пока его отмечали (его зачли в другом окне?). Обновите страницу "
                              "и проверьте, нужно ли отмечать его ещё раз.") from None
        raise
    if not result.created:
        if result.payment["invoice"] == invoice["id"]:
            return False
        raise MarkRefused(_repeat_words(await _stored(coop_id, "manual", reference)), "reference")
    return True


# --------------------------------------------------------------------------- matching by hand


class MatchRefused(Exception):
    pass


async def match_payment(cooperative_id: int, payment_id: int, invoice_id: int | None, staff: dict,
                        origin: Origin) -> service.Settlement:
    """Credit an unmatched payment to an open invoice staff chose — once: the payment is claimed (unmatched →
    credited) and the invoice credited in one transaction, each guarded by what was read, so two staff
    matching the same payment at once credit it once."""
    async with db.transaction():
        payment = await Payment.select().where(
            (Payment.id == payment_id) & (Payment.cooperative == cooperative_id)).first()
        if payment is None:
            raise MatchRefused("Такого платежа нет.")
        if payment["status"] != "unmatched":
            invoice = await Invoice.select(Invoice.number).where(Invoice.id == payment["invoice"]).first()
            raise MatchRefused(f"Платёж уже зачтён{' в счёт № ' + invoice['number'] if invoice else ''}.")
        if invoice_id is None:
            raise MatchRefused("Выберите счёт, в который зачесть платёж.")
        invoice = await Invoice.select().where(
            (Invoice.id == invoice_id) & (Invoice.cooperative == cooperative_id)).first()
        if invoice is None:
            raise MatchRefused("Такого счёта нет — выберите счёт из списка.")
        if invoice["status"] == "paid":
            raise MatchRefused(f"Счёт № {invoice['number']} уже оплачен — выберите другой счёт или верните платёж.")
        if invoice["status"] != "issued":
            raise MatchRefused(f"Счёт № {invoice['number']} аннулирован.")
        result = service.settlement(invoice["total"], invoice["paid_amount"], payment["amount"])
        claimed = await Payment.update({Payment.status: "credited", Payment.invoice: invoice["id"]}).where(
            (Payment.id == payment_id) & (Payment.status == "unmatched")).returning(Payment.id)
        if not claimed:
            raise MatchRefused("Платёж уже зачтён (в другом окне).")
        changes: dict = {Invoice.paid_amount: result.paid_amount, Invoice.status: result.status}
        if result.status == "paid" and invoice["paid_at"] is None:
            changes[Invoice.paid_at] = now()
        updated = await Invoice.update(changes).where(
            (Invoice.id == invoice["id"]) & (Invoice.paid_amount == invoice["paid_amount"])).returning(Invoice.id)
        if not updated:
            raise MatchRefused("Счёт изменился, пока платёж зачитывали; обновите страницу и повторите.")
        if result.status == "paid":  # the invoice was open (checked above): it becomes paid now
            # The member's e-mail, enqueued in this transaction as record_payment does: sent once or never.
            await service.fees_credited(await Invoice.select().where(Invoice.id == invoice["id"]).first())
        actor_type, actor_id, actor_label = staff_actor(staff)
        await record("payment.matched", actor_type=actor_type, actor_id=actor_id, actor_label=actor_label,
                     object_type="payment", object_id=payment_id, origin=origin,
                     details={"source": payment["source"], "external_id": payment["external_id"],
                              "amount": payment["amount"], "invoice": invoice["number"],
                              "settlement": result.kind})
    return result


# --------------------------------------------------------------------------- statement import


OUTCOMES = {"credited": "зачтён", "unmatched": "не сопоставлен", "repeat": "уже был учтён"}


async def import_statement(cooperative: dict, data: bytes, staff: dict, origin: Origin) -> dict:
    """Parse the whole file first (StatementError: nothing stored), then store each incoming payment in its own
    transaction through ``record_payment`` — credited when it names an open invoice with exactly the sum left to
    pay. A payment stored before (this statement again, or another statement with the same payment order) is
    counted as «уже был» and changes nothing. The summary is plain data (it is kept in the session)."""
    statement = parse_statement(data, cooperative["settlement_account"])
    summary: dict[str, Any] = {"credited": 0, "unmatched": 0, "repeat": 0, "partial": 0, "over": 0,
                               "outgoing": statement.outgoing, "other": statement.other,
                               "incoming": len(statement.incoming), "rows": [],
                               "start": statement.start.strftime("%d.%m.%Y") if statement.start else "",
                               "end": statement.end.strftime("%d.%m.%Y") if statement.end else ""}
    for doc in statement.incoming:
        number = service.invoice_number_in(doc.purpose)
        outcome, hint = None, None
        for attempt in range(3):
            invoice = await _invoice_by_number(cooperative["id"], number)
            matched = invoice if (invoice is not None and invoice["status"] == "issued"
                                  and doc.amount == remaining(invoice)) else None
            try:
                result = await service.record_payment(
                    cooperative["id"], "statement", doc.external_id, doc.amount,
                    invoice_id=matched["id"] if matched else None, paid_on=doc.paid_on, reference=doc.number,
                    payer=doc.payer, payer_inn=doc.payer_inn, purpose=doc.purpose, actor=staff_actor(staff),
                    origin=origin)
            except Exception as exc:
                # Another import of the same statement stored it first, or the invoice was credited meanwhile.
                if await _stored(cooperative["id"], "statement", doc.external_id) is not None:
                    outcome = "repeat"
                    break
                if attempt < 2 and (isinstance(exc, RuntimeError) or db.is_unique_violation(exc)):
                    continue
                raise
            if not result.created:
                outcome = "repeat"
            elif result.payment["status"] == "credited":
                outcome = "credited"
                if result.settlement is not None and result.settlement.kind != "exact":
                    # Another payment reached the invoice between reading it and crediting this one.
                    words = "частичная оплата" if result.settlement.kind == "partial" else "переплата"
                    hint = Hint(result.settlement.kind, f"Счёт изменился во время загрузки: зачтено как {words}")
            else:
                outcome = "unmatched"
                hint = hint_for(result.payment, invoice, number)
            break
        summary[outcome] += 1
        if hint is not None and hint.kind in ("partial", "over"):
            summary[hint.kind] += 1
        summary["rows"].append({
            "number": doc.number, "date": doc.paid_on.strftime("%d.%m.%Y"), "payer": doc.payer,
            "payer_inn": doc.payer_inn, "amount": doc.amount, "purpose": doc.purpose, "outcome": outcome,
            "invoice": number or "", "hint": hint.text if hint else "",
            "hint_kind": hint.kind if hint else ""})
    summary["rows"] = summary["rows"][:300]
    return summary


# --------------------------------------------------------------------------- pages


class StaffPaymentsController(Controller):
    path = "/staff/payments"
    guards = [staff_guard]
    dependencies = {"staff": Provide(current_staff, sync_to_thread=False)}

    async def _index(self, request: Request, *, statement_error: str | None = None,
                     match_errors: dict[int, str] | None = None, status_code: int = 200) -> object:
        coop = await operator()
        kind = request.query_params.get("status", "waiting")
        kind = kind if kind in FILTERS else "waiting"
        query = request.query_params.get("q", "")
        matched = request.query_params.get("matched")
        unmatched = await unmatched_payments(coop["id"])
        match_errors = match_errors or {}
        listed = {p["id"] for p in unmatched}
        context = {
            "invoices": await list_invoices(coop["id"], kind, query), "status": kind, "q": query,
            "filters": FILTERS, "unmatched": unmatched,
            # A refusal about a payment no longer in the list (matched meanwhile) is said above the list.
            "other_match_errors": [m for pid, m in match_errors.items() if pid not in listed],
            "open_invoices": await open_invoices(coop["id"]), "recent": await recent_payments(coop["id"]),
            "sources": SOURCES, "payment_statuses": PAYMENT_STATUSES, "rub": rub, "rule": MATCH_RULE,
            "statement_error": statement_error, "match_errors": match_errors,
            "matched": int(matched) if matched and matched.isdigit() else None,
            "account": coop["settlement_account"],
        }
        return render(request, "payments/staff_list.html", context, block="invoices", status_code=status_code)

    @get("/")
    async def index(self, request: Request) -> object:
        return await self._index(request)

    @post("/statement")
    async def upload_statement(self, request: Request, staff: NamedDependency[dict]) -> object:
        form = await request.form()
        upload = form.get("statement")
        if not isinstance(upload, UploadFile) or not upload.filename:
            return await self._index(request, statement_error="Выберите файл выписки (формат 1С, *.txt).",
                                     status_code=422)
        data = await upload.read()
        coop = await operator()
        try:
            summary = await import_statement(coop, data, staff, origin_of(request))
        except StatementError as exc:
            return await self._index(request, statement_error=f"Выписка «{upload.filename}» не принята, ничего "
                                     f"не зачтено. {exc}", status_code=422)
        summary["filename"] = upload.filename
        request.session["payments_import"] = summary
        return redirect("/staff/payments/import")

    @get("/import")
    async def import_result(self, request: Request) -> object:
        summary = request.session.get("payments_import")
        if not summary:
            return redirect("/staff/payments")
        return render(request, "payments/staff_import.html", {"s": summary, "rub": rub, "outcomes": OUTCOMES,
                                                               "rule": MATCH_RULE})

    @post("/{payment_id:int}/match")
    async def match(self, request: Request, payment_id: FromPath[int], data: Form,
                    staff: NamedDependency[dict]) -> object:
        coop = await operator()
        raw = (data.get("invoice") or "").strip()
        try:
            await match_payment(coop["id"], payment_id, int(raw) if raw.isdigit() else None, staff,
                                origin_of(request))
        except MatchRefused as exc:
            if await Payment.count().where((Payment.id == payment_id) & (Payment.cooperative == coop["id"])) == 0:
                raise PageError(status_code=404, detail="Такого платежа нет.") from None
            return await self._index(request, match_errors={payment_id: str(exc)}, status_code=422)
        return redirect(f"/staff/payments?matched={payment_id}")

    async def _invoice(self, request: Request, invoice_id: int, *, form: MarkForm | None = None,
                       error: str | None = None, status_code: int = 200) -> object:
        coop = await operator()
        invoice = await Invoice.select(*_INVOICE_COLUMNS).where(
            (Invoice.id == invoice_id) & (Invoice.cooperative == coop["id"])).first()
        if invoice is None:
            raise PageError(status_code=404, detail="Такого счёта нет.")
        invoice["state"], invoice["state_text"] = invoice_state(invoice)
        payments = await Payment.select().where(Payment.invoice == invoice_id).order_by(Payment.id)
        events = await events_of("invoice", invoice_id)
        payment_events = []
        for p in payments:
            payment_events += await events_of("payment", p["id"])
        context = {
            "invoice": invoice, "lines": service.invoice_lines(invoice), "payments": payments,
            "events": sorted([*events, *payment_events], key=lambda e: e["id"]),
            "form": form or mark_form_defaults(invoice), "labels": MARK_LABELS, "error": error,
            "remaining": remaining(invoice), "rub": rub, "sources": SOURCES, "payment_statuses": PAYMENT_STATUSES,
            "done": request.query_params.get("done"), "today": today_moscow().isoformat(),
        }
        return render(request, "payments/staff_invoice.html", context, block="mark_form", status_code=status_code)

    @get("/invoices/{invoice_id:int}")
    async def invoice(self, request: Request, invoice_id: FromPath[int]) -> object:
        return await self._invoice(request, invoice_id)

    @post("/invoices/{invoice_id:int}/paid")
    async def mark(self, request: Request, invoice_id: FromPath[int], data: Form,
                   staff: NamedDependency[dict]) -> object:
        coop = await operator()
        invoice = await Invoice.select().where(
            (Invoice.id == invoice_id) & (Invoice.cooperative == coop["id"])).first()
        if invoice is None:
            raise PageError(status_code=404, detail="Такого счёта нет.")
        form = validate_mark(data)
        if form.errors:
            return await self._invoice(request, invoice_id, form=form, status_code=422)
        try:
            created = await mark_paid(invoice, form.clean, staff, origin_of(request))
        except MarkRefused as exc:
            if exc.field_name:
                form.errors[exc.field_name] = str(exc)
                return await self._invoice(request, invoice_id, form=form, status_code=422)
            return await self._invoice(request, invoice_id, form=form, error=str(exc), status_code=422)
        return redirect(f"/staff/payments/invoices/{invoice_id}?done={'paid' if created else 'repeat'}")
