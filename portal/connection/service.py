"""The connection agreement (J4): the member's draft, the document it makes, signing, the staff's decision.

A connection is one row per agreement. The draft keeps what was typed between visits; «Подписать соглашение»
freezes it (status "signed") and, in the same transaction, replaces the member's earlier agreement (status
"replaced") and takes the domain for the member (DomainClaim: one member per domain, kept by the database).
Staff approve it — the operator's seal countersigns a copy that carries the approval — or return it with a
reason; a returned agreement is changed by signing a new one.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from portal import db
from portal.accounts import offer
from portal.accounts.offer import cooperative_context
from portal.accounts.service import active_keys
from portal.accounts.tables import Member
from portal.admissions import service as admissions
from portal.audit.service import record
from portal.clock import MOSCOW, now
from portal.connection import forms
from portal.connection.tables import Connection, DomainClaim
from portal.cooperatives.service import operator
from portal.cooperatives.tables import Cooperative
from portal.documents import store
from portal.documents.render import SignatureRecord
from portal.documents.signing import (
    KeyFormatError, canonical_document, document_hash, key_fingerprint, public_key_from_b64, signature_from_b64,
    signed_message, verify_signature,
)
from portal.documents.tables import Document, Signature, SignatureImage
from portal.documents.templates import get_template
from portal.mail.service import send_template
from portal.origin import SYSTEM, Origin

TEMPLATE_ID = "connection_agreement"
PACKAGE = "connection"
SIGNED, APPROVED, RETURNED, REPLACED, DRAFT = "signed", "approved", "returned", "replaced", "draft"
CURRENT = (SIGNED, APPROVED, RETURNED)
STATUS_LABELS = {DRAFT: "черновик", SIGNED: "подписано, ждёт одобрения", APPROVED: "одобрено",
                 RETURNED: "возвращено на доработку", REPLACED: "заменено новым соглашением"}
# What the agreement says of the connecting cooperative: its signed application's values, no passport data.
MEMBER_KEYS = ("applicant_type", "org_full_name", "org_short_name", "inn", "ogrn", "kpp", "legal_address",
               "actual_address", "phone", "email", "bank_name", "bik", "corr_account", "settlement_account",
               "rep_last_name", "rep_first_name", "rep_patronymic", "rep_position", "rep_basis", "rep_poa_number",
               "rep_poa_date")
TAKEN = "Этот домен уже занят другим кооперативом. Укажите другой домен или поддомен."
REASON_MIN, REASON_MAX = 5, 2000


class AgreementError(Exception):
    """Nothing was changed; ``field`` is where the message belongs ("form" — above the form)."""

    def __init__(self, message: str, field: str = "form"):
        super().__init__(message)
        self.field = field


# --------------------------------------------------------------------------- reading


async def can_connect(member: dict) -> str | None:
    """Why the member cannot open «Подключение» (a Russian sentence), or None when it can."""
    decision = await admissions.decision_of(member["id"])
    if not decision or decision["decision"] != admissions.ADMITTED:
        return "«Подключение» открывается после решения Совета о приёме в пайщики."
    applicant = await signed_application(member["id"])
    if applicant.get("applicant_type") != "organization":
        return ("К платформе подключаются кооперативы — юридические лица: «Подключение» доступно пайщику, "
                "вступившему как организация.")
    return None


async def signed_application(member_id: int) -> dict[str, Any]:
    """The data of the member's signed joining application (what the member signed, not today's draft)."""
    for doc in await store.documents_of(member_id, package="join", with_canonical=True):
        if doc["template_id"] == "join_application":
            return json.loads(doc["canonical_json"])["data"]["data"]
    return {}


async def current(member_id: int) -> dict | None:
    """The member's agreement in force or under review (signed, approved or returned), or None."""
    return await Connection.select().where(
        (Connection.member == member_id) & Connection.status.is_in(list(CURRENT))
    ).order_by(Connection.id, ascending=False).first()


async def get(connection_id: int) -> dict | None:
    return await Connection.select().where(Connection.id == connection_id).first()


def values_of(connection: dict) -> dict[str, str]:
    """The form's values as a person reads them, from a row's cleaned columns (rubles, Unicode domain)."""
    from portal.documents.templates import rub

    out = {name: rub(connection[name]).replace("\u00a0₽", "").replace(" ₽", "") if connection[name] else ""
           for name, _ in forms.FEES}
    out.update(domain=forms.shown_domain(connection["domain"]) if connection["domain"] else "",
               hosting=connection["hosting"] or "hosted", description=connection["description"] or "")
    return out


async def draft_of(member: dict) -> dict:
    """The member's draft, made on first visit — filled with the current agreement's values when there is one,
    so a change starts from what was signed."""
    row = await Connection.select().where(
        (Connection.member == member["id"]) & (Connection.status == DRAFT)).first()
    if row:
        return row
    base = await current(member["id"])
    op = await operator()
    moment = now()
    values: dict[str, Any] = {}
    if base:
        values = {name: base[name] for name in (*(n for n, _ in forms.FEES), "domain", "hosting", "description")}
        values["draft"] = json.dumps(values_of(base), ensure_ascii=False)
    rows = await Connection.insert(Connection(member=member["id"], operator=op["id"], status=DRAFT, created_at=moment,
                                              updated_at=moment, **values)).returning(Connection.id)
    return await get(rows[0]["id"])


def typed(connection: dict) -> dict[str, str]:
    raw = connection["draft"]
    data = json.loads(raw) if isinstance(raw, str) else (raw or {})
    return {name: str(data.get(name, "")) for name in forms.FIELDS}


def validate(settings, values: dict[str, str]) -> forms.ConnectionForm:
    return forms.validate(values, operator_host=settings.operator_host)


async def domain_taken(domain: str, member_id: int) -> bool:
    """Another member's signed agreement or another cooperative's site has this domain."""
    if await DomainClaim.exists().where((DomainClaim.domain == domain) & (DomainClaim.member != member_id)):
        return True
    sites = await Cooperative.select(Cooperative.id).where(Cooperative.domain == domain)
    if not sites:
        return False
    own = await Connection.select(Connection.cooperative).where(
        (Connection.member == member_id) & Connection.cooperative.is_not_null())
    return not {s["id"] for s in sites} <= {o["cooperative"] for o in own}


async def check(settings, member: dict, values: dict[str, str]) -> forms.ConnectionForm:
    """The form checked as a whole, the domain also against other cooperatives."""
    form = validate(settings, values)
    if "domain" in form.clean and await domain_taken(form.clean["domain"], member["id"]):
        form.errors["domain"] = TAKEN
        del form.clean["domain"]
    return form


async def save_draft(settings, member: dict, values: dict[str, str]) -> tuple[dict, forms.ConnectionForm]:
    """Keep what was typed (also the invalid values) and the valid values in their columns."""
    row = await draft_of(member)
    form = await check(settings, member, values)
    update: dict = {Connection.draft: json.dumps(form.values, ensure_ascii=False), Connection.updated_at: now(),
                    Connection.signing_nonce: None}
    for name, _ in forms.FEES:
        update[getattr(Connection, name)] = form.clean.get(name, 0)
    update[Connection.domain] = form.clean.get("domain", "")
    update[Connection.hosting] = form.clean.get("hosting", "hosted")
    update[Connection.description] = form.clean.get("description", "")
    await Connection.update(update).where(Connection.id == row["id"])
    return await get(row["id"]), form


# --------------------------------------------------------------------------- the document


def agreement_number(connection: dict, year: int) -> str:
    return f"ДП-{year:04d}-{connection['id']:06d}"


def tariff_data(settings) -> dict[str, int]:
    t = settings.tariff
    return {"base_fee_kopecks": t.base_fee_kopecks, "quota_registrations": t.quota_registrations,
            "quota_packages": t.quota_packages, "registration_price_axon": t.registration_price_axon,
            "package_price_axon": t.package_price_axon, "axon_rate_kopecks": t.axon_rate_kopecks}


def signer_of(member: dict, applicant: dict, public_key: str) -> dict[str, str]:
    name = " ".join(x for x in (applicant.get("rep_last_name"), applicant.get("rep_first_name"),
                                applicant.get("rep_patronymic")) if x)
    return {"full_name": name or member["email"], "email": member["email"], "public_key": public_key,
            "role": f"Представитель {applicant.get('org_short_name') or 'кооператива'}"}


@dataclass(frozen=True)
class Prepared:
    document: dict
    hash: str
    signer: dict
    context: dict  # what the preview renders with


async def prepare(settings, member: dict, connection: dict, form: forms.ConnectionForm, today: str) -> Prepared:
    """The agreement as it would be signed today with the form's values (the form must be valid)."""
    applicant = await signed_application(member["id"])
    keys = await active_keys(member["id"])
    op = await operator()
    clean = form.clean
    data = {
        "document_date": today,
        "agreement_number": agreement_number(connection, int(today[:4])),
        "member": {k: applicant[k] for k in MEMBER_KEYS if k in applicant},
        "fees": {"entrance_org": clean["fee_entrance_org"], "share_org": clean["fee_share_org"],
                 "entrance_ind": clean["fee_entrance_ind"], "share_ind": clean["fee_share_ind"]},
        "domain": forms.shown_domain(clean["domain"]), "domain_ascii": clean["domain"],
        "hosting": clean["hosting"], "description": clean["description"],
        "tariff": tariff_data(settings),
    }
    context: dict[str, Any] = {"data": data, "cooperative": cooperative_context(op)}
    acceptance = await offer.acceptance_of(member["id"])
    if acceptance is not None:
        context["pep_offer"] = offer.pep_offer(acceptance)
    signer = signer_of(member, applicant, keys[0]["public_key"] if keys else "")
    document = canonical_document(get_template(TEMPLATE_ID), context, signer)
    return Prepared(document, document_hash(document), signer, {**context, "signer": signer})


def today_moscow() -> str:
    return now().astimezone(MOSCOW).date().isoformat()


async def new_nonce(connection: dict, today: str) -> str:
    nonce = f"{today}.{secrets.token_urlsafe(24)}"
    await Connection.update({Connection.signing_nonce: nonce}).where(
        (Connection.id == connection["id"]) & (Connection.status == DRAFT))
    return nonce


async def drawn_signature(member_id: int) -> dict | None:
    """The member's latest drawn signature (from the joining package): the agreement carries it too."""
    row = await Signature.select(Signature.image).where(Signature.member == member_id).order_by(
        Signature.id, ascending=False).first()
    if row is None:
        return None
    return await SignatureImage.select().where(SignatureImage.id == row["image"]).first()


# --------------------------------------------------------------------------- signing


async def sign(settings, member: dict, *, nonce: str, hash: str, signature: str, origin: Origin = SYSTEM) -> dict:
    """Verify the member's signature of the agreement as the page showed it and store it signed, frozen; the
    earlier agreement is replaced and the domain taken in the same transaction. Returns the signed row."""
    reason = await can_connect(member)
    if reason:
        raise AgreementError(reason)
    connection = await draft_of(member)
    if not nonce or nonce != connection["signing_nonce"]:
        raise AgreementError("Страница устарела или запрос повторён. Обновите страницу, проверьте соглашение и "
                               "подпишите снова.")
    form = await check(settings, member, typed(connection))
    if not form.valid:
        raise AgreementError("В форме есть ошибки — исправьте их перед подписанием.")
    prepared = await prepare(settings, member, connection, form, nonce.split(".", 1)[0])
    if hash != prepared.hash:
        raise AgreementError("Соглашение изменилось после открытия страницы. Проверьте его и подпишите снова.")
    image = await drawn_signature(member["id"])
    if image is None:
        raise AgreementError("Нет вашей собственноручной подписи: сначала подпишите заявление о вступлении.")
    key = next((k for k in await active_keys(member["id"]) if k["public_key"] == prepared.signer["public_key"]), None)
    if key is None:
        raise AgreementError("Ключ пайщика не найден. Войдите заново.")
    try:
        raw_signature = signature_from_b64(signature)
    except KeyFormatError:
        raise AgreementError("Нет подписи соглашения: подпишите снова ключом пайщика.", field="key")
    if not verify_signature(public_key_from_b64(key["public_key"]), signed_message(prepared.hash, image["sha256"]),
                            raw_signature):
        raise AgreementError("Подпись не сходится с вашим ключом пайщика. Проверьте, что в браузере ваш ключ, и "
                               "подпишите снова.", field="key")
    signed_at = now()
    new = store.NewSignature(full_name=prepared.signer["full_name"], role=prepared.signer["role"],
                             email=member["email"], member_id=member["id"], member_key=key, signature_b64=signature,
                             signed_at=signed_at, ip=origin.ip, user_agent=origin.user_agent[:500])
    title = get_template(TEMPLATE_ID).title
    rendered = await store.render_package(settings, [(TEMPLATE_ID, title, prepared.document)], [new], image["png"],
                                          image["sha256"])
    domain = form.clean["domain"]
    try:
        async with db.transaction():
            used = await Connection.update({
                Connection.status: SIGNED, Connection.signing_nonce: None, Connection.signed_at: signed_at,
                Connection.updated_at: signed_at,
            }).where((Connection.id == connection["id"]) & (Connection.status == DRAFT)
                     & (Connection.signing_nonce == nonce)).returning(Connection.id)
            if not used:
                raise AgreementError("Этот запрос на подписание уже обработан.")
            await Connection.update({Connection.status: REPLACED, Connection.updated_at: signed_at}).where(
                (Connection.member == member["id"]) & Connection.status.is_in(list(CURRENT))
                & (Connection.id != connection["id"]))
            await DomainClaim.delete().where((DomainClaim.member == member["id"]) & (DomainClaim.domain != domain))
            claim = await DomainClaim.select(DomainClaim.member).where(DomainClaim.domain == domain).first()
            if claim is None:  # two members signing the same domain at once: the unique index lets one through
                await DomainClaim.insert(DomainClaim(domain=domain, member=member["id"], created_at=signed_at))
            elif claim["member"] != member["id"]:
                raise AgreementError(TAKEN, field="domain")
            [doc_id] = await store.save_package(member["id"], PACKAGE, rendered, [new], image["png"], image["sha256"])
            await Connection.update({Connection.document: doc_id}).where(Connection.id == connection["id"])
            await record("connection.signed", actor_type="member", actor_id=member["id"], actor_label=member["email"],
                         object_type="connection", object_id=connection["id"], origin=origin,
                         details={"document": doc_id, "hash": prepared.hash, "domain": domain,
                                  "key_fingerprint": key["fingerprint"]})
            await send_template(settings, settings.staff_email, "mail/connection_signed_staff.txt", {
                "member": member["display_name"] or member["email"], "domain": forms.shown_domain(domain),
                "url": f"{settings.base_url}/staff/connections/{connection['id']}"})
    except Exception as exc:
        if db.is_unique_violation(exc):
            raise AgreementError(TAKEN, field="domain") from None
        raise
    return await get(connection["id"])


# --------------------------------------------------------------------------- staff


async def for_staff(status: str | None = None) -> list[dict]:
    q = Connection.select(Connection.all_columns(), Connection.member.email, Connection.member.display_name).where(
        Connection.status != DRAFT).order_by(Connection.id, ascending=False)
    if status in STATUS_LABELS:
        q = q.where(Connection.status == status)
    return await q.limit(500)


def clean_reason(raw: str | None) -> str:
    reason = " ".join((raw or "").split())
    if len(reason) < REASON_MIN:
        raise AgreementError("Укажите, что нужно исправить: это уйдёт пайщику в письме (не короче 5 символов).",
                               field="reason")
    if len(reason) > REASON_MAX:
        raise AgreementError(f"Слишком длинно: не больше {REASON_MAX} символов.", field="reason")
    return reason


def _countersign(template_id: str, document: dict, record_: SignatureRecord, url: str, countersignature: dict,
                 seal_dir: str, operator_name: str) -> bytes:
    """In a worker process: the agreement with the operator's approval on it, sealed by the operator."""
    from portal.documents.render import render_signed_pdf
    from portal.documents.seal import ensure_seal_identity, seal_pdf

    pdf = render_signed_pdf(template_id, document, {"countersignature": countersignature}, [record_], url)
    return seal_pdf(pdf, ensure_seal_identity(Path(seal_dir), operator_name),
                    reason=f"Подключение одобрено: соглашение № {countersignature['number']} принято оператором")


async def _signature_record(document: dict) -> tuple[SignatureRecord, dict]:
    sig = await Signature.select(Signature.all_columns(), Signature.member_key.public_key).where(
        Signature.document == document["id"]).first()
    image = await SignatureImage.select().where(SignatureImage.id == sig["image"]).first()
    public_key = sig["member_key.public_key"]
    return SignatureRecord(
        full_name=sig["full_name"], role=sig["role"], email=sig["email"],
        key_fingerprint=key_fingerprint(public_key_from_b64(public_key)), public_key_b64=public_key,
        signature_b64=sig["signature_b64"], image_sha256=image["sha256"], image_png=image["png"],
        signed_at=sig["signed_at"], ip=sig["ip"], user_agent=sig["user_agent"], document_hash=document["document_hash"],
    ), {**sig, "png": image["png"], "sha256": image["sha256"]}


async def approve(settings, connection_id: int, staff: dict, origin: Origin = SYSTEM) -> dict:
    """«Одобрить подключение»: the operator's seal countersigns a copy of the agreement that names the approval;
    the member is e-mailed; provisioning may start (the caller starts it). Returns the approved row."""
    connection = await get(connection_id)
    if connection is None or connection["status"] != SIGNED:
        raise AgreementError("Одобрить можно только подписанное соглашение, которое ещё не рассмотрено.")
    document = await Document.select().where(Document.id == connection["document"]).first()
    canonical = json.loads(document["canonical_json"])
    record_, sig = await _signature_record(document)
    approved_at = now()
    number = canonical["data"]["data"]["agreement_number"]
    countersignature = {"operator": canonical["data"]["cooperative"]["name_full"], "staff_email": staff["email"],
                        "approved_at": approved_at.astimezone(dt.timezone.utc).isoformat(), "number": number}
    loop = asyncio.get_running_loop()
    pdf = await loop.run_in_executor(store.render_pool(), _countersign, TEMPLATE_ID, canonical, record_,
                                     store.verify_url(settings, document["document_hash"]), countersignature,
                                     str(settings.data_dir), settings.operator.name_short)
    member = await Member.select().where(Member.id == connection["member"]).first()
    async with db.transaction():
        used = await Connection.update({Connection.status: APPROVED, Connection.decided_by: staff["email"],
                                        Connection.decided_at: approved_at, Connection.updated_at: approved_at}).where(
            (Connection.id == connection_id) & (Connection.status == SIGNED)).returning(Connection.id)
        if not used:
            raise AgreementError("Соглашение уже рассмотрено.")
        rows = await Document.insert(Document(
            member=connection["member"], package=PACKAGE, template_id=TEMPLATE_ID,
            template_version=document["template_version"], title=f"{document['title']} (одобрено оператором)",
            canonical_json=document["canonical_json"], document_hash=document["document_hash"], pdf=pdf,
            pdf_sha256=store.sha256_hex(pdf), created_at=approved_at)).returning(Document.id)
        await Signature.insert(Signature(
            document=rows[0]["id"], member=sig["member"], member_key=sig["member_key"], full_name=sig["full_name"],
            role=sig["role"], email=sig["email"], signature_b64=sig["signature_b64"], image=sig["image"],
            signed_at=sig["signed_at"], ip=sig["ip"], user_agent=sig["user_agent"]))
        await Connection.update({Connection.approved_document: rows[0]["id"]}).where(Connection.id == connection_id)
        await record("connection.approved", actor_type="staff", actor_id=staff["id"], actor_label=staff["email"],
                     object_type="connection", object_id=connection_id, origin=origin,
                     details={"document": rows[0]["id"], "hash": document["document_hash"], "number": number})
        await send_template(settings, member["email"], "mail/connection_approved.txt", {
            "name": member["display_name"] or member["email"], "number": number,
            "domain": forms.shown_domain(connection["domain"]), "hosting": connection["hosting"],
            "url": f"{settings.base_url}/cabinet/connection"})
    return await get(connection_id)


async def return_for_rework(settings, connection_id: int, reason: str, staff: dict, origin: Origin = SYSTEM) -> dict:
    """«Вернуть на доработку» with a reason the member reads in the cabinet and the e-mail."""
    reason = clean_reason(reason)
    connection = await get(connection_id)
    if connection is None or connection["status"] != SIGNED:
        raise AgreementError("Вернуть можно только подписанное соглашение, которое ещё не рассмотрено.")
    member = await Member.select().where(Member.id == connection["member"]).first()
    moment = now()
    async with db.transaction():
        used = await Connection.update({Connection.status: RETURNED, Connection.return_reason: reason,
                                        Connection.decided_by: staff["email"], Connection.decided_at: moment,
                                        Connection.updated_at: moment}).where(
            (Connection.id == connection_id) & (Connection.status == SIGNED)).returning(Connection.id)
        if not used:
            raise AgreementError("Соглашение уже рассмотрено.")
        await record("connection.returned", actor_type="staff", actor_id=staff["id"], actor_label=staff["email"],
                     object_type="connection", object_id=connection_id, origin=origin, details={"reason": reason})
        await send_template(settings, member["email"], "mail/connection_returned.txt", {
            "name": member["display_name"] or member["email"], "reason": reason,
            "url": f"{settings.base_url}/cabinet/connection"})
    return await get(connection_id)
