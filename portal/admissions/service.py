"""Admission: the council's decision on an applicant whose fees are paid (SPEC §3 J3).

«Принять в пайщики» issues the decision as a document of the engine (``admission_decision``), numbered within
the cooperative («Р-2026-0001»), rendered and sealed by the operator in the worker pool, stored as a document
of the member (package "admission"); «Отказать» records the reason and the fees to be returned. Either way the
member is e-mailed and the audit log has the decision, all in one transaction with the decision itself.

A decision is made once: ``AdmissionDecision.application`` is unique, so of two clicks (or two staff members)
at the same moment one stores its decision and the other is told it was made already. The decision PDF is
rendered before that transaction (the slow part); the number it prints is taken again if another admission
took it meanwhile (``number_key`` is unique), and the PDF rendered again with the next one.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from portal import db
from portal.accounts.offer import cooperative_context
from portal.accounts.tables import Member
from portal.admissions import decision as issued
from portal.admissions.tables import AdmissionDecision
from portal.applications.tables import Application
from portal.audit.service import record
from portal.clock import MOSCOW, now
from portal.cooperatives.tables import Cooperative
from portal.documents import store
from portal.documents.signing import canonical_document
from portal.documents.tables import Document
from portal.documents.templates import date_ru, get_template, rub, rub_words
from portal.mail.service import send_template
from portal.origin import SYSTEM, Origin
from portal.payments.service import invoice_lines
from portal.payments.tables import Invoice, Payment

PACKAGE = "admission"
NUMBER_PREFIX = "Р"
ADMITTED, REFUSED = "admitted", "refused"
DECISION_LABELS = {ADMITTED: "Принят в пайщики", REFUSED: "Отказано"}
REASON_MIN, REASON_MAX = 5, 2000

#: What the decision prints of the applicant (the signed application's values; no passport).
APPLICANT_KEYS = ("applicant_type", "org_full_name", "org_short_name", "inn", "ogrn", "kpp", "legal_address",
                  "last_name", "first_name", "patronymic", "birth_date", "address", "ogrnip", "email")

NO_REASON = "Укажите причину отказа: она уйдёт заявителю в письме (не короче 5 символов)."
LONG_REASON = f"Причина отказа слишком длинная: не больше {REASON_MAX} символов."


class AdmissionError(Exception):
    """Nothing was decided; the message is for staff, ``field`` is where it belongs."""

    def __init__(self, message: str, field: str = "form"):
        super().__init__(message)
        self.field = field


ALREADY = "Решение по этому заявителю уже принято — повторно его не принять."
NOT_READY = "Этого заявителя нельзя рассмотреть: заявление не подписано или взносы не оплачены."


def decision_number(year: int, sequence: int) -> str:
    """«Р-2026-0001»: the year and the admission's sequence number within the cooperative."""
    return f"{NUMBER_PREFIX}-{year:04d}-{sequence:04d}"


def clean_reason(raw: str | None) -> str:
    """The refusal's reason as it is stored and sent (spaces collapsed); ``AdmissionError`` when unusable."""
    reason = " ".join((raw or "").split())
    if len(reason) < REASON_MIN:
        raise AdmissionError(NO_REASON, field="reason")
    if len(reason) > REASON_MAX:
        raise AdmissionError(LONG_REASON, field="reason")
    return reason


def refund_lines(invoice: dict) -> list[dict[str, Any]]:
    """What is returned on a refusal: each fee paid, as the invoice named it, and anything paid beyond them."""
    lines = [{"title": line["title"], "amount": int(line["amount"])} for line in invoice_lines(invoice)]
    extra = int(invoice["paid_amount"]) - sum(line["amount"] for line in lines)
    if extra > 0:
        lines.append({"title": "Оплачено сверх счёта", "amount": extra})
    return lines


def _shown(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**line, "rub": rub(line["amount"])} for line in lines]


def _moscow_date(value: dt.datetime | dt.date | None) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.timezone.utc)
        return value.astimezone(MOSCOW).date().isoformat()
    return value.isoformat()


# --------------------------------------------------------------------------- the queue


@dataclass(frozen=True)
class Candidate:
    application: dict
    member: dict
    invoice: dict
    paid_on: str  # ISO date the money arrived
    documents: list[dict]
    refund: list[dict]

    @property
    def refund_total(self) -> int:
        return sum(line["amount"] for line in self.refund)


async def _paid_on(invoice: dict) -> str:
    """The date the fees arrived: the bank's date of the last credited payment, else when the invoice was paid."""
    payment = await Payment.select(Payment.paid_on, Payment.created_at).where(
        (Payment.invoice == invoice["id"]) & (Payment.status == "credited")
    ).order_by(Payment.id, ascending=False).first()
    if payment and payment["paid_on"]:
        return _moscow_date(payment["paid_on"])
    return _moscow_date(invoice["paid_at"] or (payment or {}).get("created_at"))


async def _paid_invoices(member_ids: list[int] | None = None) -> dict[int, dict]:
    """The paid fees invoice of each member (the latest), by member id."""
    q = Invoice.select().where((Invoice.purpose == "fees") & (Invoice.status == "paid"))
    if member_ids is not None:
        if not member_ids:
            return {}
        q = q.where(Invoice.member.is_in(member_ids))
    found: dict[int, dict] = {}
    for row in await q.order_by(Invoice.id):
        found[row["member"]] = row
    return found


async def candidates() -> list[Candidate]:
    """Applicants to decide on: the joining package signed, the fees invoice paid, no decision yet; oldest
    payment first. Each with its signed documents (links to the PDFs) and what a refusal would return."""
    invoices = await _paid_invoices()
    if not invoices:
        return []
    decided = {row["application"] for row in await AdmissionDecision.select(AdmissionDecision.application)}
    applications = await Application.select(
        Application.id, Application.member, Application.applicant_type, Application.signed_at,
    ).where((Application.status == "signed") & Application.member.is_in(list(invoices)))
    members = {m["id"]: m for m in await Member.select(
        Member.id, Member.email, Member.display_name, Member.cooperative).where(Member.id.is_in(list(invoices)))}
    out = []
    for application in applications:
        if application["id"] in decided:
            continue
        invoice = invoices[application["member"]]
        out.append(Candidate(application, members[application["member"]], invoice, await _paid_on(invoice),
                             await store.documents_of(application["member"]), _shown(refund_lines(invoice))))
    return sorted(out, key=lambda c: (c.invoice["paid_at"] or c.invoice["issued_at"], c.application["id"]))


async def recent_decisions(limit: int = 50) -> list[dict]:
    """The latest decisions, newest first (for the page under the queue)."""
    return await AdmissionDecision.select(
        AdmissionDecision.id, AdmissionDecision.application, AdmissionDecision.decision, AdmissionDecision.number,
        AdmissionDecision.refusal_reason, AdmissionDecision.document, AdmissionDecision.decided_at,
        AdmissionDecision.staff_email, AdmissionDecision.member.email, AdmissionDecision.member.display_name,
    ).order_by(AdmissionDecision.id, ascending=False).limit(limit)


async def decision_of(member_id: int) -> dict | None:
    """The member's decision (admitted or refused), or None while there is none."""
    return await AdmissionDecision.select().where(AdmissionDecision.member == member_id).first()


async def is_admitted(member_id: int) -> bool:
    row = await AdmissionDecision.select(AdmissionDecision.id).where(
        (AdmissionDecision.member == member_id) & (AdmissionDecision.decision == ADMITTED)).first()
    return row is not None


# --------------------------------------------------------------------------- deciding


@dataclass(frozen=True)
class _Subject:
    application: dict
    member: dict
    cooperative: dict
    invoice: dict


async def _subject(application_id: int) -> _Subject:
    """The applicant as it must be to be decided on: signed, fees paid, not decided yet."""
    application = await Application.select().where(Application.id == application_id).first()
    if application is None:
        raise AdmissionError("Такого заявления нет.")
    if await AdmissionDecision.exists().where(AdmissionDecision.application == application_id):
        raise AdmissionError(ALREADY)
    invoice = (await _paid_invoices([application["member"]])).get(application["member"])
    if application["status"] != "signed" or invoice is None:
        raise AdmissionError(NOT_READY)
    member = await Member.select().where(Member.id == application["member"]).first()
    cooperative = await Cooperative.select().where(Cooperative.id == member["cooperative"]).first()
    return _Subject(application, member, cooperative, invoice)


async def _applicant_data(subject: _Subject) -> dict[str, Any]:
    """The applicant's values as the signed application has them (what the member signed, not today's draft)."""
    for doc in await store.documents_of(subject.member["id"], package="join", with_canonical=True):
        if doc["template_id"] == "join_application":
            data = json.loads(doc["canonical_json"])["data"]["data"]
            return {k: data[k] for k in APPLICANT_KEYS if k in data}
    raise AdmissionError("У заявителя нет подписанного заявления о вступлении.")


def _fees(invoice: dict) -> dict[str, int]:
    lines = invoice_lines(invoice)
    entrance = sum(int(x["amount"]) for x in lines if "ступительн" in x["title"])
    share = sum(int(x["amount"]) for x in lines if "аев" in x["title"])
    return {"entrance": entrance, "share": share, "total": entrance + share}


async def _next_number(cooperative_id: int, year: int) -> str:
    count = await AdmissionDecision.count().where(
        AdmissionDecision.number_key.like(f"{cooperative_id}:{NUMBER_PREFIX}-{year:04d}-%"))
    return decision_number(year, count + 1)


def _actor(staff: dict) -> dict[str, Any]:
    return {"actor_type": "staff", "actor_id": staff["id"], "actor_label": staff["email"]}


async def _already_decided(application_id: int) -> bool:
    return await AdmissionDecision.exists().where(AdmissionDecision.application == application_id)


async def admit(settings, application_id: int, staff: dict, origin: Origin = SYSTEM) -> dict:
    """Admit the applicant: the decision document rendered, sealed and stored, the decision recorded, the member
    e-mailed and the audit written — the last three in one transaction. Returns the decision row."""
    subject = await _subject(application_id)
    applicant = await _applicant_data(subject)
    cooperative = cooperative_context(subject.cooperative)
    fees = _fees(subject.invoice)
    if fees["total"] <= 0:
        raise AdmissionError("В оплаченном счёте нет вступительного и паевого взносов.")
    paid_on = await _paid_on(subject.invoice)
    template = get_template(issued.TEMPLATE_ID)
    for _attempt in range(5):
        decided_at = now()
        today = _moscow_date(decided_at)
        number = await _next_number(subject.cooperative["id"], int(today[:4]))
        data = {**applicant, "document_date": today, "decision_number": number,
                "application_date": _moscow_date(subject.application["signed_at"]) or today, "fees": fees,
                "invoice_number": subject.invoice["number"], "invoice_date": _moscow_date(subject.invoice["issued_at"]),
                "paid_on": paid_on, "paid_amount": int(subject.invoice["paid_amount"])}
        document = canonical_document(template, {"data": data, "cooperative": cooperative},
                                      issued.issuer_of(cooperative))
        rendered = await issued.render_sealed(settings, document, decided_at)
        try:
            async with db.transaction():
                rows = await Document.insert(Document(
                    member=subject.member["id"], package=PACKAGE, template_id=rendered.template_id,
                    template_version=rendered.template_version, title=rendered.title,
                    canonical_json=rendered.canonical.decode(), document_hash=rendered.hash, pdf=rendered.pdf,
                    pdf_sha256=rendered.pdf_sha256, created_at=decided_at,
                )).returning(Document.id)
                document_id = rows[0]["id"]
                rows = await AdmissionDecision.insert(AdmissionDecision(
                    application=application_id, member=subject.member["id"], cooperative=subject.cooperative["id"],
                    invoice=subject.invoice["id"], decision=ADMITTED, number=number,
                    number_key=f"{subject.cooperative['id']}:{number}", document=document_id,
                    staff_email=staff["email"], decided_at=decided_at,
                )).returning(AdmissionDecision.id)
                await record("admission.admitted", **_actor(staff), object_type="application",
                             object_id=application_id, origin=origin,
                             details={"decision": rows[0]["id"], "number": number, "document": document_id,
                                      "hash": rendered.hash, "member": subject.member["id"],
                                      "invoice": subject.invoice["number"]})
                await send_template(settings, subject.member["email"], "mail/admission_decided.txt", {
                    "name": subject.member["display_name"] or subject.member["email"], "number": number,
                    "date": date_ru(today), "cooperative": cooperative["name_short"],
                    "cabinet_url": f"{settings.base_url}/cabinet", "title": rendered.title,
                })
        except Exception as exc:
            if not db.is_unique_violation(exc):
                raise
            if await _already_decided(application_id):
                raise AdmissionError(ALREADY) from None
            continue  # another admission took this number a moment ago: the next one, rendered again
        return await AdmissionDecision.select().where(AdmissionDecision.id == rows[0]["id"]).first()
    raise AdmissionError("Не удалось присвоить номер решению: попробуйте ещё раз.")


async def refuse(settings, application_id: int, reason: str, staff: dict, origin: Origin = SYSTEM) -> dict:
    """Refuse the applicant with a reason; the member is e-mailed the reason and the fees to be returned."""
    reason = clean_reason(reason)
    subject = await _subject(application_id)
    refund = refund_lines(subject.invoice)
    decided_at = now()
    try:
        async with db.transaction():
            rows = await AdmissionDecision.insert(AdmissionDecision(
                application=application_id, member=subject.member["id"], cooperative=subject.cooperative["id"],
                invoice=subject.invoice["id"], decision=REFUSED, refusal_reason=reason,
                staff_email=staff["email"], decided_at=decided_at,
            )).returning(AdmissionDecision.id)
            await record("admission.refused", **_actor(staff), object_type="application", object_id=application_id,
                         origin=origin, details={"decision": rows[0]["id"], "reason": reason,
                                                 "member": subject.member["id"], "invoice": subject.invoice["number"],
                                                 "refund": refund})
            await send_template(settings, subject.member["email"], "mail/admission_refused.txt", {
                "name": subject.member["display_name"] or subject.member["email"], "reason": reason,
                "cooperative": subject.cooperative["name_short"], "invoice": subject.invoice["number"],
                "refund": _shown(refund), "refund_total": rub(sum(x["amount"] for x in refund)),
                "refund_words": rub_words(sum(x["amount"] for x in refund)),
            })
    except Exception as exc:
        if db.is_unique_violation(exc):
            raise AdmissionError(ALREADY) from None
        raise
    return await AdmissionDecision.select().where(AdmissionDecision.id == rows[0]["id"]).first()

