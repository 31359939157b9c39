"""The council's signatures of the regulations (J7) and the cooperative's activation.

A council member comes by the invitation link on the cooperative's own site, accepts the cooperative's ПЭП offer,
makes a member key in the browser (a ``Member`` of the new cooperative, the e-mail confirmed by the link) and signs
the four regulations as one package.

Each regulation is ONE canonical document for the whole council: the signer is the council as a body (no public
key), so every member signs the same hash and the signatures add up on one document. Each time a member signs, a
new PDF of every regulation is issued (a new ``Document`` row of the package "regulations"; the older stays) that
carries every signature so far and, while some are missing, names who has not signed yet (``pending``: outside the
hash, it is the state of the sheet, not of the text). The PDFs are sealed by the cooperative's own seal, whose
certificate the operator's seal certificate issued at provisioning, so the operator's one published fingerprint
verifies them offline; the verification link printed on them is the operator's /verify (the page exists on the
operator's site).

Signing is serialized per installation (the Installation row locked on PostgreSQL; SQLite's write transactions are
IMMEDIATE): a signing whose renders were made from a state another member changed meanwhile is rendered again, so
no signature is ever missing from the latest PDF. When the last signature is stored the cooperative becomes
active, decided by one conditional UPDATE (the mails go out once).

The ПЭП offer accepted on the invitation page is kept in the session until the key is made (the pending table of
registration is tied to registration links); the acceptance is written to the audit log at once, and becomes the
member's ``PepAcceptance`` with its own time, IP and user agent when the member is made.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from portal import db
from portal.accounts import offer
from portal.accounts.tables import Member, MemberKey, PepAcceptance
from portal.audit.service import record
from portal.clock import MOSCOW, now
from portal.cooperatives.service import operator
from portal.cooperatives.tables import Cooperative
from portal.documents import store
from portal.documents.render import SignatureRecord
from portal.documents.signing import (
    KeyFormatError,
    SignatureImageError,
    b64encode,
    canonical_document,
    canonical_json,
    document_hash,
    key_fingerprint,
    public_key_from_b64,
    sha256_hex,
    signature_from_b64,
    signed_message,
    validate_signature_png,
    verify_signature,
)
from portal.documents.tables import Document, Signature, SignatureImage
from portal.documents.templates import get_template
from portal.installation.tables import CouncilMember, Installation
from portal.mail.service import send_template
from portal.origin import SYSTEM, Origin

from portal.installation import service as wizard
from portal.installation.service import REGULATIONS

PACKAGE = "regulations"
COUNCIL_ROLE = "Совет кооператива"
ROLE_TITLES = {"chairman": "Председатель совета", "member": "Член совета"}
SESSION_OFFER = "council_offer"  # the offer accepted on the invitation page, until the key is made
RENDER_ATTEMPTS = 5


class CouncilError(Exception):
    """Refused; ``field`` is where the Russian message belongs."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
        self.message = message


# --- the invitation -------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class InvitationState:
    state: str  # valid | unknown | used | expired | voided
    invitation: dict | None = None
    council_member: dict | None = None
    installation: dict | None = None


async def check_invitation(token: str, cooperative_id: int) -> InvitationState:
    """What the link ``token`` is worth on this cooperative's site (the wizard's ``invitation_for_token``: an
    invitation of another cooperative is «unknown» here — its site is the only one that knows it)."""
    state, found = await wizard.invitation_for_token(token, cooperative_id=cooperative_id)
    if found is None:
        return InvitationState("unknown")
    return InvitationState(state, found["invitation"], found["council_member"], found["installation"])


def full_name(person: dict) -> str:
    return " ".join(p for p in (person["last_name"], person["first_name"], person.get("patronymic") or "") if p)


# --- the ПЭП offer, accepted before the key ---------------------------------------------------------------------

OFFER_NOT_TICKED = ("Отметьте «Я принимаю условия оферты»: без этого ключ не создаётся и подписать положения "
                    "кооператива нельзя.")
OFFER_REQUIRED = ("Примите оферту — Соглашение об использовании простой электронной подписи: отметьте «Я принимаю "
                  "условия оферты» и нажмите «Принять оферту». Ключ создаётся только после этого.")
OFFER_AGAIN = ("Примите оферту ещё раз: её текст или реквизиты кооператива изменились после того, как вы её "
               "приняли. Затем создайте ключ заново.")


async def accept_offer(state: InvitationState, accepted: bool, offer_sha256: str, context_sha256: str,
                       origin: Origin = SYSTEM) -> dict:
    """«Принять оферту» on the invitation page: the acceptance (to be kept in the session until the key is made),
    written to the audit log now. Refused when the box is not ticked or the page showed another text or values."""
    if state.state != "valid":
        raise CouncilError("link", "Приглашение больше не действует.")
    if not accepted:
        raise CouncilError("pep_offer", OFFER_NOT_TICKED)
    cooperative_id = state.installation["cooperative"]
    shown = await offer.shown_offer(cooperative_id)
    changed = offer.offer_check(shown, offer_sha256, context_sha256)
    if changed:
        raise CouncilError("pep_offer", changed)
    at = now()
    email = state.council_member["email"]
    await record("member.pep_offer_accepted", actor_type="visitor", actor_label=email,
                 object_type="council_invitation", object_id=state.invitation["id"], origin=origin,
                 details={"template_id": shown.template.id, "template_version": shown.version,
                          "template_sha256": shown.sha256, "context_sha256": shown.context_sha256,
                          "accepted_at": offer.utc_iso(at)})
    return {"invitation": state.invitation["id"], "cooperative": cooperative_id, "template_id": shown.template.id,
            "template_version": shown.version, "template_sha256": shown.sha256,
            "context_sha256": shown.context_sha256, "offer_context": shown.context, "email": email,
            "accepted_at": at.isoformat(), "ip": origin.ip[:64], "user_agent": origin.user_agent[:1000]}


async def pending_offer(session_value: Any, state: InvitationState) -> dict | None:
    """The acceptance kept in the session, if it was made with this invitation for the offer as it is now."""
    if not isinstance(session_value, dict) or state.invitation is None:
        return None
    if session_value.get("invitation") != state.invitation["id"]:
        return None
    shown = await offer.shown_offer(state.installation["cooperative"])
    if (session_value.get("template_sha256"), session_value.get("context_sha256")) != (shown.sha256,
                                                                                       shown.context_sha256):
        return None
    return session_value


def key_proof_message(email: str, public_key_b64: str) -> bytes:
    from portal.accounts.service import key_proof_message as message

    return message(email, public_key_b64)


async def register(token: str, cooperative_id: int, pending: Any, public_key_b64: str, proof_b64: str, saved: bool,
                   origin: Origin = SYSTEM) -> int:
    """The council member's key from the invitation: a Member of the cooperative (its e-mail confirmed by the
    link), the offer's acceptance as it was made (time, IP, user agent), the key, CouncilMember.member; the
    invitation is used up in the same transaction. Returns the member's id."""
    state = await check_invitation(token, cooperative_id)
    if state.state != "valid":
        raise CouncilError("link", "Приглашение больше не действует.")
    accepted = await pending_offer(pending, state)
    if accepted is None:
        earlier = isinstance(pending, dict) and pending.get("invitation") == state.invitation["id"]
        raise CouncilError("pep_offer", OFFER_AGAIN if earlier else OFFER_REQUIRED)
    email = state.council_member["email"]
    try:
        raw = public_key_from_b64(public_key_b64)
        proof = signature_from_b64(proof_b64)
    except KeyFormatError:
        raise CouncilError("key", "Ключ не создан или повреждён. Создайте ключ заново.")
    if not verify_signature(raw, key_proof_message(email, public_key_b64), proof):
        raise CouncilError("key", "Браузер не подтвердил владение ключом. Создайте ключ заново.")
    if not saved:
        raise CouncilError("saved", "Подтвердите, что сохранили ключ: без него войти и подписать положения нельзя.")
    person = state.council_member
    async with db.transaction():
        t = now()
        used = await wizard.use_invitation(token)
        if used is None or used["id"] != state.invitation["id"]:
            raise CouncilError("link", "Приглашение уже использовано.")
        if await Member.exists().where((Member.email == email) & (Member.cooperative == cooperative_id)):
            raise CouncilError("form", f"Пайщик с адресом {email} в кооперативе уже есть — подписывайте положения "
                                       "с его ключом.")
        rows = await Member.insert(Member(cooperative=cooperative_id, email=email, display_name=full_name(person),
                                          email_confirmed_at=t, created_at=t)).returning(Member.id)
        member_id = rows[0]["id"]
        acceptance = await PepAcceptance.insert(PepAcceptance(
            member=member_id, cooperative=cooperative_id, template_id=accepted["template_id"],
            template_version=accepted["template_version"], template_sha256=accepted["template_sha256"],
            offer_context=accepted["offer_context"], email=email,
            accepted_at=dt.datetime.fromisoformat(accepted["accepted_at"]), ip=accepted["ip"],
            user_agent=accepted["user_agent"])).returning(PepAcceptance.id)
        await MemberKey.insert(MemberKey(member=member_id, public_key=b64encode(raw), fingerprint=key_fingerprint(raw),
                                         created_at=t))
        await CouncilMember.update({CouncilMember.member: member_id}).where(CouncilMember.id == person["id"])
        await record("council.member_registered", actor_type="member", actor_id=member_id, actor_label=email,
                     object_type="council_member", object_id=person["id"], origin=origin,
                     details={"installation": state.installation["id"], "invitation": state.invitation["id"],
                              "key_fingerprint": key_fingerprint(raw), "pep_acceptance": acceptance[0]["id"],
                              "pep_offer_accepted_at": accepted["accepted_at"]})
    return member_id


# --- the regulations -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Regulation:
    template_id: str
    title: str
    document: dict
    hash: str


def _moscow_date(value: dt.datetime) -> str:
    return value.astimezone(MOSCOW).date().isoformat()


async def regulations(installation: dict, cooperative: dict, council: list[dict] | None = None) -> list[Regulation]:
    """The four regulations as the council signs them: the same canonical documents for every member (dated the
    day the invitations went out, the council as entered, the council's decision № 1 of that day)."""
    council = council if council is not None else await wizard.council_rows(installation["id"])
    day = _moscow_date(installation["invitations_sent_at"] or installation["created_at"])
    data = {
        "cooperative": offer.cooperative_context(cooperative),
        "operator": offer.cooperative_context(await operator()),
        "data": {
            "document_date": day,
            "council": [{"role": p["role"], "last_name": p["last_name"], "first_name": p["first_name"],
                         "patronymic": p["patronymic"] or ""} for p in council],
            "decision": {"number": "1", "date": day},
        },
    }
    signer = {"full_name": cooperative["name_full"], "role": COUNCIL_ROLE, "email": cooperative["email"]}
    out = []
    for template_id in REGULATIONS:
        template = get_template(template_id)
        document = canonical_document(template, data, signer)
        out.append(Regulation(template_id, template.title, document, document_hash(document)))
    return out


async def seat_of(member: dict) -> tuple[dict, dict] | None:
    """The member's place on the council of their cooperative's installation: (CouncilMember, Installation)."""
    person = await CouncilMember.select().where(CouncilMember.member == member["id"]).first()
    if person is None:
        return None
    installation = await Installation.select().where(Installation.id == person["installation"]).first()
    if installation is None or installation["cooperative"] != member["cooperative"]:
        return None
    return person, installation


async def latest_documents(installation_id: int) -> dict[str, dict]:
    """The latest issued PDF of each regulation of this installation (by template id), without the bytes."""
    council = await wizard.council_rows(installation_id)
    members = [p["member"] for p in council if p["member"]]
    if not members:
        return {}
    rows = await Document.select(*store.LIST_COLUMNS).where(
        (Document.package == PACKAGE) & Document.member.is_in(members)).order_by(Document.id)
    return {row["template_id"]: row for row in rows}


async def _signature_rows(document_id: int) -> list[dict]:
    return await Signature.select().where(Signature.document == document_id).order_by(Signature.id)


@dataclass(frozen=True)
class Progress:
    council: list[dict]
    signed: dict[int, int]  # council member id → how many regulations they signed (latest PDFs)
    documents: dict[str, dict]  # template id → latest document
    total: int

    @property
    def complete(self) -> bool:
        return bool(self.council) and all(self.signed.get(p["id"], 0) == self.total for p in self.council)

    def pending(self) -> list[dict]:
        return [p for p in self.council if self.signed.get(p["id"], 0) < self.total]


async def progress(installation: dict, cooperative: dict) -> Progress:
    """Who has signed the current regulations: counted on the latest PDFs, by the documents' hashes."""
    council = await wizard.council_rows(installation["id"])
    wanted = {r.template_id: r.hash for r in await regulations(installation, cooperative, council)}
    documents = await latest_documents(installation["id"])
    by_member = {p["member"]: p["id"] for p in council if p["member"]}
    signed: dict[int, int] = {}
    for template_id, doc in documents.items():
        if wanted.get(template_id) != doc["document_hash"]:
            continue
        for sig in await _signature_rows(doc["id"]):
            person = by_member.get(sig["member"])
            if person is not None:
                signed[person] = signed.get(person, 0) + 1
    return Progress(council, signed, documents, len(REGULATIONS))


# --- signing ---------------------------------------------------------------------------------------------------

def _render_sealed(template_id: str, document: dict, records: list[SignatureRecord], pending: list[dict], url: str,
                   data_dir: str, operator_name: str, seal_dir: str, name: str, inn: str) -> bytes:
    """In a worker process: the regulation with every signature so far, sealed by the cooperative's own seal."""
    from portal.documents.render import render_signed_pdf
    from portal.documents.seal import ensure_seal_identity, issue_cooperative_identity, seal_pdf

    pdf = render_signed_pdf(template_id, document, {"pending": pending} if pending else None, records, url)
    identity = issue_cooperative_identity(ensure_seal_identity(Path(data_dir), operator_name), Path(seal_dir),
                                          name, inn)
    return seal_pdf(pdf, identity)


def seal_directory(settings, inn: str) -> Path:
    from portal.connection.provisioners import seal_directory as directory

    return directory(settings, inn)


def site_url(settings, cooperative: dict) -> str:
    from portal.connection.provisioners import site_url as url

    return url(settings, cooperative["domain"])


@dataclass(frozen=True)
class _Signed:
    """One signature as it goes on the sheet: the stored row's values and the drawn image."""

    member: int
    member_key: int
    full_name: str
    role: str
    email: str
    signature_b64: str
    image: int
    image_png: bytes
    image_sha256: str
    public_key_b64: str
    signed_at: dt.datetime
    ip: str
    user_agent: str

    def record(self, doc_hash: str) -> SignatureRecord:
        raw = public_key_from_b64(self.public_key_b64)
        return SignatureRecord(full_name=self.full_name, role=self.role, email=self.email,
                               key_fingerprint=key_fingerprint(raw), public_key_b64=self.public_key_b64,
                               signature_b64=self.signature_b64, image_sha256=self.image_sha256,
                               image_png=self.image_png, signed_at=self.signed_at, ip=self.ip,
                               user_agent=self.user_agent, document_hash=doc_hash)


async def _earlier_signatures(document_id: int | None) -> list[_Signed]:
    if document_id is None:
        return []
    out = []
    for row in await _signature_rows(document_id):
        key = await MemberKey.select().where(MemberKey.id == row["member_key"]).first()
        image = await SignatureImage.select().where(SignatureImage.id == row["image"]).first()
        out.append(_Signed(row["member"], row["member_key"], row["full_name"], row["role"], row["email"],
                           row["signature_b64"], row["image"], bytes(image["png"]), image["sha256"],
                           key["public_key"], row["signed_at"], row["ip"], row["user_agent"]))
    return out


def _base_of(documents: dict[str, dict], regulation: Regulation) -> int | None:
    """The latest PDF of this very text the new one adds to (None: the first signature of it)."""
    doc = documents.get(regulation.template_id)
    return doc["id"] if doc is not None and doc["document_hash"] == regulation.hash else None


async def sign(settings, member: dict, cooperative: dict, *, image_png: bytes, hashes: dict[str, str],
               signatures: dict[str, str], origin: Origin = SYSTEM) -> list[int]:
    """Verify the member's signature of every regulation, then issue each regulation's PDF anew with every
    signature so far and store them all at once, or nothing. The last signature activates the cooperative.
    Returns the new documents' ids."""
    seat = await seat_of(member)
    if seat is None:
        raise CouncilError("package", "Подписывать положения кооператива могут только члены его совета.")
    person, installation = seat
    if installation["status"] == "active":
        raise CouncilError("package", "Все положения уже подписаны всем советом — кооператив работает.")
    if await offer.acceptance_of(member["id"]) is None:
        raise CouncilError("package", OFFER_REQUIRED)
    try:
        image_sha256 = validate_signature_png(image_png)
    except SignatureImageError as exc:
        raise CouncilError("signature", str(exc))
    council = await wizard.council_rows(installation["id"])
    package = await regulations(installation, cooperative, council)
    keys = await MemberKey.select().where((MemberKey.member == member["id"]) & MemberKey.revoked_at.is_null()).order_by(
        MemberKey.id)
    if not keys:
        raise CouncilError("package", "Ключ не найден. Войдите заново.")
    key = keys[-1]
    raw = public_key_from_b64(key["public_key"])
    for doc in package:  # every signature checked before anything is rendered or stored
        if hashes.get(doc.template_id) != doc.hash:
            raise CouncilError("package", f"Документ «{doc.title}» изменился после открытия страницы. Обновите "
                                          "страницу, проверьте документы и подпишите снова.")
        try:
            signature = signature_from_b64(signatures.get(doc.template_id, ""))
        except KeyFormatError:
            raise CouncilError("package", f"Нет подписи документа «{doc.title}». Подпишите снова.")
        if not verify_signature(raw, signed_message(doc.hash, image_sha256), signature):
            raise CouncilError("package", f"Подпись документа «{doc.title}» не сходится с вашим ключом. Проверьте, "
                                          "что в браузере ваш ключ, и подпишите снова.")
    signed_at = now()
    role = ROLE_TITLES.get(person["role"], ROLE_TITLES["member"])
    for _attempt in range(RENDER_ATTEMPTS):
        documents = await latest_documents(installation["id"])
        bases = {d.template_id: _base_of(documents, d) for d in package}
        earlier = {d.template_id: await _earlier_signatures(bases[d.template_id]) for d in package}
        if any(s.member == member["id"] for sigs in earlier.values() for s in sigs):
            raise CouncilError("package", "Вы уже подписали положения кооператива.")
        mine = _Signed(member["id"], key["id"], full_name(person), role, member["email"],
                       signatures[package[0].template_id], 0, image_png, image_sha256, key["public_key"], signed_at,
                       origin.ip[:64], origin.user_agent[:500])
        states = {d.template_id: [*earlier[d.template_id],
                                  _Signed(**{**mine.__dict__, "signature_b64": signatures[d.template_id]})]
                  for d in package}
        rendered = await _render(settings, cooperative, council, package, states)
        async with db.transaction():
            q = Installation.select(Installation.id, Installation.status).where(Installation.id == installation["id"])
            if db.engine().engine_type == "postgres":
                q = q.lock_rows()
            current = await q.first()
            if current["status"] == "active":
                raise CouncilError("package", "Все положения уже подписаны всем советом — кооператив работает.")
            now_documents = await latest_documents(installation["id"])
            if {d.template_id: _base_of(now_documents, d) for d in package} != bases:
                continue  # another member signed meanwhile: render again from the new state
            ids = await _store(member, package, rendered, states, image_png, image_sha256)
            await record("council.regulations_signed", actor_type="member", actor_id=member["id"],
                         actor_label=member["email"], object_type="installation", object_id=installation["id"],
                         origin=origin, details={"documents": ids, "hashes": {d.template_id: d.hash for d in package},
                                                 "key_fingerprint": key["fingerprint"]})
            done = await progress(installation, cooperative)
            if done.complete:
                await _activate(settings, installation, cooperative, done)
            return ids
    raise CouncilError("package", "Положения сейчас подписывают другие члены совета. Подпишите ещё раз через минуту.")


async def _render(settings, cooperative: dict, council: list[dict], package: list[Regulation],
                  states: dict[str, list[_Signed]]) -> list[store.Rendered]:
    """Every regulation's PDF for its new state, in the worker processes (outside any transaction)."""
    loop = asyncio.get_running_loop()
    seal_dir = str(seal_directory(settings, cooperative["inn"]))
    jobs = []
    for doc in package:
        signed_members = {s.member for s in states[doc.template_id]}
        pending = [{"full_name": full_name(p), "role": p["role"]}  # chairman | member, as the templates name them
                   for p in council if not p["member"] or p["member"] not in signed_members]
        records = [s.record(doc.hash) for s in states[doc.template_id]]
        jobs.append((doc, loop.run_in_executor(
            store.render_pool(), _render_sealed, doc.template_id, doc.document, records, pending,
            store.verify_url(settings, doc.hash), str(settings.data_dir), settings.operator.name_short, seal_dir,
            cooperative["name_short"], cooperative["inn"])))
    out = []
    for doc, job in jobs:
        pdf = await job
        out.append(store.Rendered(doc.template_id, doc.document["template_version"], doc.title,
                                  canonical_json(doc.document), doc.hash, pdf, sha256_hex(pdf)))
    return out


async def _store(member: dict, package: list[Regulation], rendered: list[store.Rendered],
                 states: dict[str, list[_Signed]], image_png: bytes, image_sha256: str) -> list[int]:
    """A new Document of each regulation with all its signatures so far (inside the signing transaction)."""
    image_id = await store.save_image(image_png, image_sha256)
    ids = []
    for doc, pdf in zip(package, rendered):
        rows = await Document.insert(Document(
            member=member["id"], package=PACKAGE, template_id=pdf.template_id, template_version=pdf.template_version,
            title=pdf.title, canonical_json=pdf.canonical.decode(), document_hash=pdf.hash, pdf=pdf.pdf,
            pdf_sha256=pdf.pdf_sha256, created_at=now())).returning(Document.id)
        doc_id = rows[0]["id"]
        for s in states[doc.template_id]:
            await Signature.insert(Signature(
                document=doc_id, member=s.member, member_key=s.member_key, full_name=s.full_name, role=s.role,
                email=s.email, signature_b64=s.signature_b64, image=s.image or image_id, signed_at=s.signed_at,
                ip=s.ip, user_agent=s.user_agent))
        ids.append(doc_id)
    return ids


async def _activate(settings, installation: dict, cooperative: dict, done: Progress) -> bool:
    """The cooperative becomes active — once: the conditional UPDATE that changes the row sends the mails
    (inside the last signature's transaction)."""
    t = now()
    rows = await Installation.update({Installation.status: "active", Installation.activated_at: t,
                                      Installation.updated_at: t}).where(
        (Installation.id == installation["id"]) & (Installation.status != "active")).returning(Installation.id)
    if not rows:
        return False
    await Cooperative.update({Cooperative.status: "active"}).where(Cooperative.id == cooperative["id"])
    url = site_url(settings, cooperative)
    context = {"cooperative": cooperative["name_short"], "cooperative_full": cooperative["name_full"],
               "domain": shown_domain(cooperative["domain"]), "url": f"{url}/",
               "titles": [get_template(t).title for t in REGULATIONS],
               "council": [{"name": full_name(p), "role": ROLE_TITLES.get(p["role"], ROLE_TITLES["member"])}
                           for p in done.council]}
    representative = await Member.select(Member.email, Member.display_name).where(
        Member.id == installation["representative"]).first()
    recipients = [(p["email"], full_name(p), True) for p in done.council]
    if representative:
        recipients.insert(0, (representative["email"], representative["display_name"] or "", False))
    seen: set[str] = set()
    for email, name, on_council in recipients:
        if email.casefold() in seen:
            continue
        seen.add(email.casefold())
        await send_template(settings, email, "mail/cooperative_activated.txt",
                            {**context, "name": name, "council_member": on_council})
    await send_template(settings, settings.staff_email, "mail/cooperative_activated_staff.txt",
                        {**context, "staff_url": f"{settings.base_url}/staff/connections"})
    await record("installation.activated", actor_type="system", object_type="installation",
                 object_id=installation["id"], details={"cooperative": cooperative["id"],
                                                        "council": [p["id"] for p in done.council]})
    return True


def shown_domain(domain: str) -> str:
    from portal.connection.forms import shown_domain as shown

    return shown(domain)


async def document_for(member: dict, document_id: int) -> dict | None:
    """A regulation's PDF, for a member of the council of the same cooperative only."""
    seat = await seat_of(member)
    if seat is None:
        return None
    doc = await Document.select(Document.id, Document.pdf, Document.pdf_sha256, Document.template_id,
                                Document.member, Document.package).where(
        (Document.id == document_id) & (Document.package == PACKAGE)).first()
    if doc is None:
        return None
    council = await wizard.council_rows(seat[1]["id"])
    return doc if doc["member"] in {p["member"] for p in council if p["member"]} else None
