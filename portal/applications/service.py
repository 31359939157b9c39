"""The joining application: draft; the personal-data consent, given by its own signed action (152-ФЗ art. 9 as
amended from 01.09.2025: separately from other documents); then the joining package (the application and the
user agreement) signed in one transaction. Both need the ПЭП offer accepted first (portal.accounts.offer)."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from typing import Any

from portal import db
from portal.accounts import offer
from portal.accounts.offer import COOPERATIVE_KEYS, cooperative_context  # noqa: F401 (COOPERATIVE_KEYS: re-export)
from portal.accounts.service import active_keys
from portal.accounts.tables import Member
from portal.applications import forms
from portal.applications.tables import Application
from portal.audit.service import record
from portal.origin import SYSTEM, Origin
from portal.payments.invoice import issue_after_signing
from portal.clock import MOSCOW, now
from portal.cooperatives.tables import Cooperative
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

#: Signed together by «Подписать».
JOIN_PACKAGE = ("join_application", "user_agreement")
#: Signed on its own, before the package, by «Дать согласие».
CONSENT = "pd_consent"
#: What the member signs to join, in order: the consent first, then the package. (The ПЭП agreement is an
#: offer accepted at registration, not signed.)
JOIN_DOCUMENTS = (CONSENT, *JOIN_PACKAGE)


class SigningError(Exception):
    """Nothing was signed or stored. The message is for the signer; `field` is where it belongs."""

    def __init__(self, message: str, field: str = "form"):
        super().__init__(message)
        self.field = field


NO_OFFER = ("Сначала примите условия оферты — Соглашения об использовании простой электронной подписи: без неё "
            "подпись ключом пайщика не имеет силы.")
NO_CONSENT = ("Сначала дайте согласие на обработку персональных данных (шаг 1): без него кооператив не может "
              "рассмотреть заявление.")
CONSENT_UNTICKED = "Отметьте, что даёте согласие на обработку персональных данных на условиях, изложенных выше."


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
    draft = {k: str(v) for k, v in draft.items()}
    # Drafts saved when the passport was one field «серия и номер»: its parts go to the fields of today.
    old = re.sub(r"\D", "", draft.get("passport", ""))
    if len(old) == 10 and not draft.get("passport_series") and not draft.get("passport_number"):
        draft.update(passport_series=old[:4], passport_number=old[4:])
    # … and when the power of attorney was one field «№ 12 от 15.01.2025»: its number and date.
    poa = re.fullmatch(r"\s*(?:№\s*)?(.+?)\s+от\s+(\d{1,2})\.(\d{1,2})\.(\d{4})\s*", draft.get("rep_poa_number_date", ""))
    if poa and not draft.get("rep_poa_number") and not draft.get("rep_poa_date"):
        number, day, month, year = poa.groups()
        draft.update(rep_poa_number=number, rep_poa_date=f"{year}-{int(month):02d}-{int(day):02d}")
    return draft


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


def _PASSPORT_KEYS(prefix: str) -> tuple[str, ...]:
    return tuple(f"{prefix}passport_{k}" for k in ("series", "number", "issued_by", "issue_date", "division_code"))


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
                    rep_basis=c["rep_basis"], union_member=c.get("union_member_confirmed") == "on",
                    **{k: c[k] for k in _PASSPORT_KEYS("rep_")},
                    rep_address=c["rep_address"],
                    join_decision_body=c["join_decision_body"], join_decision_date=c["join_decision_date"],
                    join_decision_number=c["join_decision_number"])
        if c["rep_basis"] == "power_of_attorney":
            data.update(rep_poa_number=c["rep_poa_number"], rep_poa_date=c["rep_poa_date"])
        return data
    data.update(last_name=c["surname"], first_name=c["name"], patronymic=c.get("patronymic", ""),
                birth_date=c["birth_date"], address=c["address"], **{k: c[k] for k in _PASSPORT_KEYS("")})
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
    documents: list[PreparedDocument]  # the joining package, signed by «Подписать»
    context: dict  # data + cooperative (+ pep_offer), for previews
    consent: PreparedDocument  # the personal-data consent, signed on its own by «Дать согласие»
    acceptance: dict | None  # the member's acceptance of the ПЭП offer; None — not accepted yet

    def by_id(self, template_id: str) -> PreparedDocument | None:
        return next((d for d in (self.consent, *self.documents) if d.template_id == template_id), None)


def today_moscow() -> str:
    return now().astimezone(MOSCOW).date().isoformat()


async def prepare(member: dict, application: dict, today: str | None = None) -> Package | forms.ApplicationForm:
    """The consent and the package from the current application (dated `today`); the invalid form when it is not
    complete. Every document carries the member's acceptance of the ПЭП offer as "pep_offer" (once accepted)."""
    applicant_type = application["applicant_type"]
    form = forms.validate(applicant_type, draft_of(application))
    if not form.valid:
        return form
    keys = await active_keys(member["id"])
    op = await Cooperative.select().where(Cooperative.id == member["cooperative"]).first()  # the member's own
    acceptance = await offer.acceptance_of(member["id"])
    today = today or today_moscow()
    data = document_data(applicant_type, form.clean, today)
    context: dict[str, Any] = {"data": data, "cooperative": cooperative_context(op)}
    if acceptance is not None:
        context["pep_offer"] = offer.pep_offer(acceptance)
    signer = {
        "full_name": forms.signer_full_name(applicant_type, form.clean),
        "email": member["email"],
        "role": "Представитель заявителя" if applicant_type == "organization" else "Заявитель",
        "public_key": keys[0]["public_key"] if keys else "",
    }
    docs = []
    for template_id in JOIN_DOCUMENTS:
        template = get_template(template_id)
        document = canonical_document(template, context, signer)
        docs.append(PreparedDocument(template_id, template.title, document, document_hash(document)))
    return Package(applicant_type, form.clean, signer, docs[1:], {**context, "signer": signer}, docs[0], acceptance)


async def new_signing_nonce(application: dict, today: str) -> str:
    """One signing attempt; it carries the date the documents were shown with, so midnight changes nothing."""
    nonce = f"{today}.{secrets.token_urlsafe(24)}"
    await Application.update({Application.signing_nonce: nonce}).where(
        (Application.id == application["id"]) & (Application.status == "draft")
    )
    return nonce


def _consent_subject(document: dict) -> str:
    """What a consent is about, whatever the date: the text (template and its version), the application's data,
    the cooperative's values (the operator, its address, the processors entrusted with the data) and the signer.
    A consent given to other text or to other processors does not cover the data now (152-ФЗ art. 9 part 4)."""
    from portal.documents.signing import canonical_json

    data = {k: v for k, v in document["data"]["data"].items() if k != "document_date"}
    signer = {k: v for k, v in document["signer"].items() if k != "public_key"}  # a replaced key changes nothing
    text = {k: document[k] for k in ("template_id", "template_version", "template_sha256")}
    return canonical_json({**text, "data": data, "cooperative": document["data"]["cooperative"],
                           "signer": signer}).decode()


async def current_consent(member_id: int, package: Package) -> dict | None:
    """The member's signed consent that covers the application as it is now (a consent given before the
    application was changed covers other data: it must be given again), or None."""
    import json

    want = _consent_subject(package.consent.document)
    for doc in reversed(await store.documents_of(member_id, package=CONSENT, with_canonical=True)):
        if _consent_subject(json.loads(doc["canonical_json"])) == want:
            return doc
    return None


@dataclass(frozen=True)
class _Checked:
    package: Package
    key: dict
    image_sha256: str
    records: list[store.NewSignature]


async def _check_signatures(member: dict, application: dict, nonce: str, image_png: bytes,
                            hashes: dict[str, str], signatures: dict[str, str], template_ids: tuple[str, ...],
                            origin: Origin) -> _Checked:
    """The common checks of a signing request, in the order the signer should hear about them; nothing is
    stored here. The package (anything but the consent alone) needs the consent given before."""
    if application["status"] != "draft":
        raise SigningError("Заявление уже подписано — повторно подписывать не нужно.")
    if not nonce or nonce != application["signing_nonce"]:
        raise SigningError("Страница подписания устарела или запрос повторён. Обновите страницу и подпишите снова.")
    try:
        image_sha256 = validate_signature_png(image_png)
    except SignatureImageError as exc:
        raise SigningError(str(exc), field="signature")
    package = await prepare(member, application, today=nonce.split(".", 1)[0])
    if isinstance(package, forms.ApplicationForm):
        raise SigningError("В заявлении есть ошибки — исправьте их перед подписанием.")
    if package.acceptance is None:
        raise SigningError(NO_OFFER, field="pep_offer")
    consent_given = await current_consent(member["id"], package) is not None
    if template_ids == (CONSENT,) and consent_given:
        raise SigningError("Согласие на обработку персональных данных уже дано.")
    if template_ids != (CONSENT,) and not consent_given:
        raise SigningError(NO_CONSENT, field="consent")
    keys = await active_keys(member["id"])
    key = next((k for k in keys if k["public_key"] == package.signer["public_key"]), None)
    if key is None:
        raise SigningError("Ключ пайщика не найден. Войдите заново.")
    public_key = public_key_from_b64(key["public_key"])
    signed_at = now()
    records = []
    for template_id in template_ids:
        doc = package.by_id(template_id)
        if hashes.get(doc.template_id) != doc.hash:
            raise SigningError(f"Документ «{doc.title}» изменился после открытия страницы. Обновите страницу, "
                               "проверьте документы и подпишите снова.")
        try:
            signature = signature_from_b64(signatures.get(doc.template_id, ""))
        except KeyFormatError:
            raise SigningError(f"Нет подписи документа «{doc.title}». Подпишите снова.")
        if not verify_signature(public_key, signed_message(doc.hash, image_sha256), signature):
            raise SigningError(f"Подпись документа «{doc.title}» не сходится с вашим ключом пайщика. "
                               "Проверьте, что в браузере ваш ключ, и подпишите снова.")
        records.append(store.NewSignature(
            full_name=package.signer["full_name"], role=package.signer["role"], email=member["email"],
            member_id=member["id"], member_key=key, signature_b64=signatures[doc.template_id],
            signed_at=signed_at, ip=origin.ip, user_agent=origin.user_agent[:500]))
    return _Checked(package, key, image_sha256, records)


async def sign_consent(
    settings, member: dict, application: dict, *, nonce: str, consent: bool, image_png: bytes, hash: str,
    signature: str, origin: Origin = SYSTEM,
) -> int:
    """The personal-data consent, given by its own explicit action: a ticked box and a signature of its own
    (152-ФЗ art. 9 part 1 as amended from 01.09.2025 — separately from any other document). Stored as a
    signed document of the package "pd_consent"."""
    if application["status"] == "draft" and not consent:
        raise SigningError(CONSENT_UNTICKED, field="consent")
    checked = await _check_signatures(member, application, nonce, image_png, {CONSENT: hash}, {CONSENT: signature},
                                      (CONSENT,), origin)
    doc = checked.package.consent
    rendered = await store.render_package(settings, [(doc.template_id, doc.title, doc.document)], checked.records,
                                          image_png, checked.image_sha256)
    async with db.transaction():
        used = await Application.update({Application.signing_nonce: None}).where(
            (Application.id == application["id"]) & (Application.status == "draft")
            & (Application.signing_nonce == nonce)
        ).returning(Application.id)
        if not used:
            raise SigningError("Этот запрос уже обработан.")
        [doc_id] = await store.save_package(member["id"], CONSENT, rendered, checked.records, image_png,
                                            checked.image_sha256)
        await record("application.pd_consent_given", actor_type="member", actor_id=member["id"],
                     actor_label=member["email"], object_type="application", object_id=application["id"],
                     details={"document": doc_id, "hash": doc.hash, "key_fingerprint": checked.key["fingerprint"]},
                     origin=origin)
    return doc_id


async def sign_package(
    settings, member: dict, application: dict, *, nonce: str, image_png: bytes, hashes: dict[str, str],
    signatures: dict[str, str], origin: Origin = SYSTEM,
) -> list[int]:
    """Verify every signature of the package and store all documents at once, or nothing. The ПЭП offer must be
    accepted and the personal-data consent given (for the application as it is) before."""
    checked = await _check_signatures(member, application, nonce, image_png, hashes, signatures, JOIN_PACKAGE,
                                      origin)
    package, records = checked.package, checked.records
    rendered = await store.render_package(settings, [(d.template_id, d.title, d.document) for d in package.documents],
                                          records, image_png, checked.image_sha256)
    async with db.transaction():
        used = await Application.update(
            {Application.status: "signed", Application.signing_nonce: None, Application.signed_at: records[0].signed_at,
             Application.updated_at: records[0].signed_at}
        ).where(
            (Application.id == application["id"]) & (Application.status == "draft")
            & (Application.signing_nonce == nonce)
        ).returning(Application.id)
        if not used:
            raise SigningError("Этот запрос на подписание уже обработан.")
        ids = await store.save_package(member["id"], "join", rendered, records, image_png, checked.image_sha256)
        await Member.update({Member.display_name: forms.display_name(package.applicant_type, package.clean)}).where(
            Member.id == member["id"])
        await record("application.signed", actor_type="member", actor_id=member["id"], actor_label=member["email"],
                     object_type="application", object_id=application["id"],
                     details={"documents": ids, "hashes": {d.template_id: d.hash for d in package.documents},
                              "key_fingerprint": checked.key["fingerprint"]}, origin=origin)
    await issue_after_signing(settings, member, package.applicant_type, origin)  # the fees invoice and its PDF
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
    acceptance: dict | None = None  # the member's acceptance of the ПЭП offer


def _staff_label(field: forms.Field) -> str:
    """A field's label where staff read it without the form's headings: the passports and the decision named."""
    return f"{field.section}: {field.label}" if field.section.startswith(("Паспорт", "Решение")) else field.label


async def view_for_staff(application_id: int) -> StaffView | None:
    """One application as staff read it: the values in words, the documents with their signatures."""
    application = await Application.select().where(Application.id == application_id).first()
    if application is None:
        return None
    member = await Member.select().where(Member.id == application["member"]).first()
    draft = draft_of(application)
    rows = [(_staff_label(f), f.shown(draft[f.name])) for f in forms.fields_for(application["applicant_type"])
            if draft.get(f.name) and f.applies(draft)]
    documents = await store.documents_of(member["id"])
    signatures = await store.signatures_by_document([d["id"] for d in documents])
    return StaffView(application, member, rows, documents, signatures, await offer.acceptance_of(member["id"]))
