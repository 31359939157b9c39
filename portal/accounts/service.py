"""Member registration by a link, key-based login (a signed one-time challenge), key recovery by e-mail."""

from __future__ import annotations

import datetime as dt
import secrets

from portal import db
from portal.accounts import offer
from portal.accounts.tables import AuthChallenge, Member, MemberKey, PepAcceptancePending, RecoveryLink
from portal.audit.service import record
from portal.clock import now
from portal.connect import service as connect
from portal.connect.service import hash_token
from portal.cooperatives.service import operator
from portal.documents.signing import (
    KeyFormatError,
    b64encode,
    key_fingerprint,
    public_key_from_b64,
    signature_from_b64,
    verify_signature,
)
from portal.mail.service import send_template
from portal.origin import SYSTEM, Origin
from portal.requisites import FieldError, clean_email
from portal.settings import Settings

CHALLENGE_TTL = dt.timedelta(minutes=10)
RECOVERY_TTL = dt.timedelta(hours=24)


class AccountError(Exception):
    """Refused; `field` is where the Russian message belongs."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
        self.message = message


def key_proof_message(email: str, public_key_b64: str) -> bytes:
    """What the browser signs with a new key to prove it holds it."""
    return f"coopkey:v1:{email}:{public_key_b64}".encode()


def login_message(nonce: str) -> bytes:
    return f"coopauth:v1:{nonce}".encode()


def _checked_key(email: str, public_key_b64: str, proof_b64: str) -> bytes:
    try:
        raw = public_key_from_b64(public_key_b64)
        proof = signature_from_b64(proof_b64)
    except KeyFormatError:
        raise AccountError("key", "Ключ не создан или повреждён. Создайте ключ заново.")
    if not verify_signature(raw, key_proof_message(email, public_key_b64), proof):
        raise AccountError("key", "Браузер не подтвердил владение ключом. Создайте ключ заново.")
    return raw


OFFER_REQUIRED = ("Примите оферту — Соглашение об использовании простой электронной подписи: отметьте «Я принимаю "
                  "условия оферты» и нажмите «Принять оферту». Ключ пайщика создаётся только после этого.")
OFFER_NOT_TICKED = ("Отметьте «Я принимаю условия оферты»: без этого ключ пайщика не создаётся и документы подписать "
                    "нельзя.")
OFFER_AGAIN = ("Примите оферту — Соглашение об использовании простой электронной подписи — ещё раз: её текст или "
               "реквизиты кооператива изменились после того, как вы её приняли. Затем создайте ключ заново.")


async def accept_offer_at_registration(token: str, accepted: bool, offer_sha256: str, context_sha256: str,
                                       origin: Origin = SYSTEM) -> dict:
    """«Принять оферту» on the registration page: the acceptance, pending against the link, before any key.
    Refused when the link does not work, the box is not ticked, or the text or the cooperative's values the
    page showed are not the current ones."""
    state = await connect.check_link(token)
    if state.state != "valid":
        raise AccountError("link", "Ссылка на регистрацию больше не действует.")
    if not accepted:
        raise AccountError("pep_offer", OFFER_NOT_TICKED)
    op = await operator()
    shown = await offer.shown_offer(op["id"])
    changed = offer.offer_check(shown, offer_sha256, context_sha256)
    if changed:
        raise AccountError("pep_offer", changed)
    async with db.transaction():
        return await offer.record_pending(state.link, op["id"], shown, origin)


async def registration_acceptance(link: dict) -> dict | None:
    """The offer accepted with this registration link, if it is the offer as it is now."""
    return await offer.pending_of(link["id"], await offer.shown_offer())


async def register(token: str, email: str, public_key_b64: str, proof_b64: str, saved: bool,
                   origin: Origin = SYSTEM) -> int:
    """Confirm the e-mail of a registration link and register the member's public key; the ПЭП offer must have
    been accepted with this link before (its own request, before the key was made): that acceptance becomes the
    member's, with its own time, IP and user agent. The link is used up."""
    state = await connect.check_link(token)
    if state.state != "valid":
        raise AccountError("link", "Ссылка на регистрацию больше не действует.")
    try:
        typed = clean_email(email)
    except FieldError as exc:
        raise AccountError("email", str(exc))
    if typed.casefold() != state.link["email"].casefold():
        raise AccountError("email", "Это не тот адрес, на который пришла ссылка. Введите адрес из письма.")
    pending = await registration_acceptance(state.link)
    if pending is None:
        earlier = await PepAcceptancePending.exists().where(
            PepAcceptancePending.registration_link == state.link["id"])
        raise AccountError("pep_offer", OFFER_AGAIN if earlier else OFFER_REQUIRED)
    raw = _checked_key(state.link["email"], public_key_b64, proof_b64)
    if not saved:
        raise AccountError("saved", "Подтвердите, что сохранили ключ: без него войти и подписать документы нельзя.")
    op = await operator()
    async with db.transaction():
        link = await connect.consume_link(token)
        if link is None:
            raise AccountError("link", "Ссылка на регистрацию уже использована.")
        existing = await Member.select(Member.id).where(
            (Member.email == link["email"]) & (Member.cooperative == op["id"])
        ).first()
        if existing:
            raise AccountError("email", "Пайщик с этим адресом уже зарегистрирован — войдите или восстановите ключ.")
        t = now()
        rows = await Member.insert(
            Member(cooperative=op["id"], email=link["email"], connect_request=link["connect_request"],
                   email_confirmed_at=t, created_at=t)
        ).returning(Member.id)
        member_id = rows[0]["id"]
        # The offer was accepted before the key was made: its acceptance keeps its own time, IP and user agent.
        acceptance = await offer.bind_pending(pending, member_id)
        await MemberKey.insert(
            MemberKey(member=member_id, public_key=b64encode(raw), fingerprint=key_fingerprint(raw), created_at=t)
        )
        await record("member.registered", actor_type="member", actor_id=member_id, actor_label=link["email"],
                     object_type="member", object_id=member_id, origin=origin,
                     details={"key_fingerprint": key_fingerprint(raw), "connect_request": link["connect_request"],
                              "pep_acceptance": acceptance["id"],
                              "pep_offer_accepted_at": offer.utc_iso(acceptance["accepted_at"])})
    return member_id


async def new_challenge() -> str:
    nonce = secrets.token_urlsafe(24)
    await AuthChallenge.delete().where(AuthChallenge.expires_at < now() - CHALLENGE_TTL)
    await AuthChallenge.insert(AuthChallenge(nonce_hash=hash_token(nonce), expires_at=now() + CHALLENGE_TTL))
    return nonce


async def _use_challenge(nonce: str) -> bool:
    t = now()
    rows = await AuthChallenge.update({AuthChallenge.used_at: t}).where(
        (AuthChallenge.nonce_hash == hash_token(nonce)) & AuthChallenge.used_at.is_null()
        & (AuthChallenge.expires_at > t)
    ).returning(AuthChallenge.id)
    return bool(rows)


async def member_by_email(email: str, cooperative_id: int) -> dict | None:
    """The member with this e-mail in this cooperative (the same address may be a member of several)."""
    return await Member.select().where(
        (Member.email == email.strip().lower()) & (Member.cooperative == cooperative_id)).first()


async def member_by_id(member_id: int) -> dict | None:
    return await Member.select().where(Member.id == member_id).first()


async def active_keys(member_id: int) -> list[dict]:
    return await MemberKey.select().where((MemberKey.member == member_id) & MemberKey.revoked_at.is_null())


async def login(email: str, nonce: str, public_key_b64: str, signature_b64: str, origin: Origin = SYSTEM, *,
                cooperative_id: int) -> dict:
    """Check the browser's signature of a one-time challenge against the key of the member of this cooperative
    (the site's) registered with this e-mail."""
    if not await _use_challenge(nonce):
        raise AccountError("form", "Страница входа устарела. Попробуйте ещё раз.")
    try:
        typed = clean_email(email)
    except FieldError as exc:
        raise AccountError("email", str(exc))
    member = await member_by_email(typed, cooperative_id)
    try:
        raw = public_key_from_b64(public_key_b64)
        signature = signature_from_b64(signature_b64)
    except KeyFormatError:
        raise AccountError("key", "Укажите ключ пайщика: из этого браузера, вставьте его или выберите файл ключа.")
    keys = await active_keys(member["id"]) if member else []
    key = next((k for k in keys if k["public_key"] == b64encode(raw)), None)
    if member is None or key is None or not verify_signature(raw, login_message(nonce), signature):
        await record("member.login_failed", actor_type="visitor", actor_label=typed, origin=origin)
        raise AccountError("key", "Ключ не подходит к этому адресу почты. Проверьте ключ или восстановите его.")
    await record("member.login", actor_type="member", actor_id=member["id"], actor_label=member["email"],
                 origin=origin, details={"key_fingerprint": key["fingerprint"]})
    return member


async def request_recovery(settings: Settings, email: str, origin: Origin = SYSTEM, *, cooperative_id: int) -> None:
    """E-mail a link to set a new key, if the address belongs to a member of this cooperative; says nothing either
    way."""
    member = await member_by_email(email, cooperative_id)
    if member is None:
        await record("member.recovery_unknown", actor_type="visitor", actor_label=email[:254], origin=origin)
        return
    token = secrets.token_urlsafe(32)
    expires = now() + RECOVERY_TTL
    async with db.transaction():
        await RecoveryLink.update({RecoveryLink.expires_at: now()}).where(
            (RecoveryLink.member == member["id"]) & RecoveryLink.used_at.is_null() & (RecoveryLink.expires_at > now())
        )
        await RecoveryLink.insert(RecoveryLink(member=member["id"], token_hash=hash_token(token), expires_at=expires,
                                               created_at=now()))
        await send_template(settings, member["email"], "mail/recovery_link.txt",
                            {"token": token, "expires_at": expires}, secrets=[token])
        await record("member.recovery_requested", actor_type="member", actor_id=member["id"],
                     actor_label=member["email"], origin=origin)


async def check_recovery(token: str) -> tuple[str, dict | None]:
    link = await RecoveryLink.select().where(RecoveryLink.token_hash == hash_token(token)).first()
    if link is None:
        return "unknown", None
    if link["used_at"] is not None:
        return "used", link
    if link["expires_at"] <= now():
        return "expired", link
    return "valid", link


async def replace_key(token: str, public_key_b64: str, proof_b64: str, saved: bool, origin: Origin = SYSTEM) -> int:
    state, link = await check_recovery(token)
    if state != "valid":
        raise AccountError("link", "Ссылка для восстановления больше не действует.")
    member = await Member.select().where(Member.id == link["member"]).first()
    raw = _checked_key(member["email"], public_key_b64, proof_b64)
    if await MemberKey.exists().where((MemberKey.member == member["id"]) & (MemberKey.public_key == b64encode(raw))):
        raise AccountError("key", "Это прежний ключ. Создайте новый ключ — прежний будет отозван.")
    if not saved:
        raise AccountError("saved", "Подтвердите, что сохранили новый ключ.")
    async with db.transaction():
        t = now()
        rows = await RecoveryLink.update({RecoveryLink.used_at: t}).where(
            (RecoveryLink.id == link["id"]) & RecoveryLink.used_at.is_null()
        ).returning(RecoveryLink.id)
        if not rows:
            raise AccountError("link", "Ссылка для восстановления уже использована.")
        old = await active_keys(member["id"])
        await MemberKey.update({MemberKey.revoked_at: t}).where(
            (MemberKey.member == member["id"]) & MemberKey.revoked_at.is_null()
        )
        await MemberKey.insert(MemberKey(member=member["id"], public_key=b64encode(raw),
                                         fingerprint=key_fingerprint(raw), created_at=t))
        # Whoever holds a session opened with the old key is logged out, on every process.
        await Member.update({Member.sessions_epoch: Member.sessions_epoch + 1}).where(Member.id == member["id"])
        await record("member.key_replaced", actor_type="member", actor_id=member["id"], actor_label=member["email"],
                     object_type="member", object_id=member["id"], origin=origin,
                     details={"old": [k["fingerprint"] for k in old], "new": key_fingerprint(raw)})
    return member["id"]


async def accept_offer(member: dict, accepted: bool, offer_sha256: str, context_sha256: str,
                       origin: Origin = SYSTEM) -> dict:
    """A member registered before the offer was asked for accepts it now (on the signing page, before signing
    anything); recorded the same way, with the same check of the text and the values the page showed.
    Accepting twice changes nothing."""
    from portal.cooperatives.tables import Cooperative

    if not accepted:
        raise AccountError("pep_offer", "Примите условия оферты — Соглашения об использовании простой электронной "
                                        "подписи: без этого подписать документы ключом пайщика нельзя.")
    shown = await offer.shown_offer(member["cooperative"])
    changed = offer.offer_check(shown, offer_sha256, context_sha256)
    if changed:
        raise AccountError("pep_offer", changed)
    existing = await offer.acceptance_of(member["id"])
    if existing is not None:
        return existing
    cooperative = await Cooperative.select().where(Cooperative.id == member["cooperative"]).first()
    async with db.transaction():
        return await offer.record_acceptance(member["id"], cooperative, member["email"], shown.template, origin,
                                             context=shown.context)
