"""The joining application: draft, the joining package of four documents, signing it in one transaction."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from typing import Any

from portal import db
from portal.accounts.service import active_keys
from portal.accounts.tables import Member
from portal.applications import forms
from portal.applications.tables import Application
from portal.audit.service import record
from portal.origin import SYSTEM, Origin
from portal.clock import MOSCOW, now
from portal.cooperatives.service import operator, processors_of
from portal.documents import store
from portal.documents.signing import (
    KeyFormatError,
    SignatureImageError,
    canonical_document,
    document_hash,
    public_key_from_b64,
    signature_from_b64,
    signed_message,
    validate_signature_png,
    verify_signature,
)
from portal.documents.templates import get_template

JOIN_PACKAGE = ("join_application", "pep_agreement", "pd_consent", "user_agreement")
COOPERATIVE_KEYS = (
    "name_full", "name_short", "inn", "ogrn", "kpp", "address", "bank_name", "bik", "corr_account",
    "settlement_account", "fee_entrance_org", "fee_share_org", "fee_entrance_ind", "fee_share_ind", "email", "phone",
    "city", "site", "charter",
)


class SigningError(Exception):
    """The package was not signed; nothing was stored. The message is for the signer."""


async def get_or_create(member: dict) -> dict:
    row = await Application.select().where(Application.member == member["id"]).first()
    if row:
        return row
    t = now()
    try:
        await Application.insert(Application(member=member["id"], applicant_type=forms.DEFAULT_APPLICANT_TYPE,
                                             draft={"email": member["email"]}, created_at=t, updated_at=t))
    except Exception as exc:  # another request created it a moment ago (unique index on member)
        if not db.is_unique_violation(exc):
            raise
    return await Application.select().where(Application.member == member["id"]).first()


def draft_of(application: dict) -> dict[str, str]:
    draft = application["draft"]
    if isinstance(draft, str):
        import json

        draft = json.loads(draft or "{}")
    return {k: str(v) for k, v in draft.items()}


async def save_draft(application: dict, applicant_type: str, values: dict[str, str]) -> None:
    """Keep what was typed (every field of every type), so nothing is lost between visits or type changes.

    Read and write under a row lock: concurrent inline checks each add their field without losing another's.
    """
    async with db.transaction():
        q = Application.select(Application.draft, Application.status).where(Application.id == application["id"])
        if db.engine().engine_type == "postgres":
            q = q.lock_rows()
        row = await q.first()
        if row["status"] != "draft":
            return
        draft = {**draft_of(row), **{k: v[:2000] for k, v in values.items() if k in _ALL_FIELDS}}
        await Application.update({Application.draft: draft, Application.applicant_type: applicant_type,
                                  Application.updated_at: now()}).where(Application.id == application["id"])


_ALL_FIELDS = {f.name for t in forms.APPLICANT_TYPES for f in forms.fields_for(t)}


def document_data(applicant_type: str, clean: dict[str, str], today: str) -> dict[str, Any]:
    """The application as the document templates expect it (portal.documents.templates contract)."""
    c = clean
    data: dict[str, Any] = {"applicant_type": applicant_type, "document_date": today, "phone": c["phone"],
                            "email": c["email"]}
    bank = {k: c[k] for k in ("bank_name", "bik", "corr_account", "settlement_account") if k in c}
    if applicant_type == "organization":
        data.update(bank, org_full_name=c["full_name"], org_short_name=c["short_name"], inn=c["inn"], ogrn=c["ogrn"],
                    kpp=c["kpp"], legal_address=c["legal_address"], actual_address=c["actual_address"],
                    rep_last_name=c["rep_surname"], rep_first_name=c["rep_name"],
                    rep_patronymic=c.get("rep_patronymic", ""), rep_position=c["rep_position"],
                    rep_basis=c["rep_basis"], union_member=c.get("union_member_confirmed") == "on")
        if c["rep_basis"] == "power_of_attorney":
            data["rep_poa_number"] = re.sub(r"^№\s*", "", c.get("rep_poa_number_date", ""))
        return data
    data.update(last_name=c["surname"], first_name=c["name"], patronymic=c.get("patronymic", ""),
                birth_date=c["birth_date"], address=c["address"])
    if c.get("passport"):
        series, _, number = c["passport"].partition(" ")
        data.update(passport_series=series, passport_number=number)
    if applicant_type == "entrepreneur":
        data.update(bank, inn=c["inn"], ogrnip=c["ogrnip"])
    return data


@dataclass(frozen=True)
class PreparedDocument:
    template_id: str
    title: str
    document: dict
    hash: str


@dataclass(frozen=True)
class Package:
    applicant_type: str
    clean: dict[str, str]
    signer: dict
    documents: list[PreparedDocument]
    context: dict  # data + cooperative, for previews


def today_moscow() -> str:
    return now().astimezone(MOSCOW).date().isoformat()


async def prepare(member: dict, application: dict, today: str | None = None) -> Package | forms.ApplicationForm:
    """The four documents from the current application (dated `today`); the invalid form when it is not complete."""
    applicant_type = application["applicant_type"]
    form = forms.validate(applicant_type, draft_of(application))
    if not form.valid:
        return form
    keys = await active_keys(member["id"])
    op = await operator()
    today = today or today_moscow()
    data = document_data(applicant_type, form.clean, today)
    cooperative = {**{k: op[k] for k in COOPERATIVE_KEYS}, "processors": processors_of(op)}
    signer = {
        "full_name": forms.signer_full_name(applicant_type, form.clean),
        "email": member["email"],
        "role": "Представитель заявителя" if applicant_type == "organization" else "Заявитель",
        "public_key": keys[0]["public_key"] if keys else "",
    }
    docs = []
    for template_id in JOIN_PACKAGE:
        template = get_template(template_id)
        document = canonical_document(template, {"data": data, "cooperative": cooperative}, signer)
        docs.append(PreparedDocument(template_id, template.title, document, document_hash(document)))
    return Package(applicant_type, form.clean, signer, docs, {"data": data, "cooperative": cooperative,
                                                             "signer": signer})


async def new_signing_nonce(application: dict, today: str) -> str:
    """One signing attempt; it carries the date the documents were shown with, so midnight changes nothing."""
    nonce = f"{today}.{secrets.token_urlsafe(24)}"
    await Application.update({Application.signing_nonce: nonce}).where(
        (Application.id == application["id"]) & (Application.status == "draft")
    )
    return nonce


async def sign_package(
    settings, member: dict, application: dict, *, nonce: str, image_png: bytes, hashes: dict[str, str],
    signatures: dict[str, str], origin: Origin = SYSTEM,
) -> list[int]:
    """Verify every signature of the package and store all documents at once, or nothing."""
    if application["status"] != "draft":
        raise SigningError("Заявление уже подписано — повторно подписывать не нужно.")
    if not nonce or nonce != application["signing_nonce"]:
        raise SigningError("Страница подписания устарела или запрос повторён. Обновите страницу и подпишите снова.")
    try:
        image_sha256 = validate_signature_png(image_png)
    except SignatureImageError as exc:
        raise SigningError(str(exc))
    package = await prepare(member, application, today=nonce.split(".", 1)[0])
    if isinstance(package, forms.ApplicationForm):
        raise SigningError("В заявлении есть ошибки — исправьте их перед подписанием.")
    keys = await active_keys(member["id"])
    key = next((k for k in keys if k["public_key"] == package.signer["public_key"]), None)
    if key is None:
        raise SigningError("Ключ пайщика не найден. Войдите заново.")
    public_key = public_key_from_b64(key["public_key"])
    signed_at = now()
    records = []
    for doc in package.documents:
        if hashes.get(doc.template_id) != doc.hash:
            raise SigningError(f"Документ «{doc.title}» изменился после открытия страницы. Обновите страницу, "
                               "проверьте документы и подпишите снова.")
        try:
            signature = signature_from_b64(signatures.get(doc.template_id, ""))
        except KeyFormatError:
            raise SigningError(f"Нет подписи документа «{doc.title}». Подпишите пакет снова.")
        if not verify_signature(public_key, signed_message(doc.hash, image_sha256), signature):
            raise SigningError(f"Подпись документа «{doc.title}» не сходится с вашим ключом пайщика. "
                               "Проверьте, что в браузере ваш ключ, и подпишите снова.")
        records.append(store.NewSignature(
            full_name=package.signer["full_name"], role=package.signer["role"], email=member["email"],
            member_id=member["id"], member_key=key, signature_b64=signatures[doc.template_id],
            signed_at=signed_at, ip=origin.ip, user_agent=origin.user_agent[:500]))
    rendered = await store.render_package(settings, [(d.template_id, d.title, d.document) for d in package.documents],
                                    records, image_png, image_sha256)
    async with db.transaction():
        used = await Application.update(
            {Application.status: "signed", Application.signing_nonce: None, Application.signed_at: signed_at,
             Application.updated_at: signed_at}
        ).where(
            (Application.id == application["id"]) & (Application.status == "draft")
            & (Application.signing_nonce == nonce)
        ).returning(Application.id)
        if not used:
            raise SigningError("Этот запрос на подписание уже обработан.")
        ids = await store.save_package(member["id"], "join", rendered, records, image_png, image_sha256)
        await Member.update({Member.display_name: forms.display_name(package.applicant_type, package.clean)}).where(
            Member.id == member["id"])
        await record("application.signed", actor_type="member", actor_id=member["id"], actor_label=member["email"],
                     object_type="application", object_id=application["id"],
                     details={"documents": ids, "hashes": {d.template_id: d.hash for d in package.documents},
                              "key_fingerprint": key["fingerprint"]}, origin=origin)
    return ids


STAFF_STATUS_LABELS = {"draft": "Заполняется", "signed": "Подписано"}


async def list_for_staff(status: str | None) -> list[dict]:
    """The applications queue: newest first, with the member's e-mail and name (one query)."""
    q = Application.select(
        Application.id, Application.status, Application.applicant_type, Application.updated_at,
        Application.signed_at, Application.member.email, Application.member.display_name, Application.member.id,
    ).order_by(Application.id, ascending=False)
    if status in STAFF_STATUS_LABELS:
        q = q.where(Application.status == status)
    return await q.limit(500)


@dataclass(frozen=True)
class StaffView:
    application: dict
    member: dict
    rows: list[tuple[str, str]]  # (label, value as a person reads it)
    documents: list[dict]
    signatures: dict[int, list[dict]]


async def view_for_staff(application_id: int) -> StaffView | None:
    """One application as staff read it: the values in words, the documents with their signatures."""
    application = await Application.select().where(Application.id == application_id).first()
    if application is None:
        return None
    member = await Member.select().where(Member.id == application["member"]).first()
    draft = draft_of(application)
    rows = [(f.label, f.shown(draft[f.name])) for f in forms.fields_for(application["applicant_type"])
            if draft.get(f.name) and f.applies(draft)]
    documents = await store.documents_of(member["id"])
    signatures = await store.signatures_by_document([d["id"] for d in documents])
    return StaffView(application, member, rows, documents, signatures)
