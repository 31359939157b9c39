"""The installation wizard of a cooperative's site (J6): the installation key, the council, the invitations.

The wizard belongs to one cooperative (the request's site); every function here takes that cooperative's
Installation row, never an id typed by a visitor alone. The council's signatures and the activation (J7) use
``invitation_for_token``, ``use_invitation`` and ``council_of``.
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from portal import db
from portal.accounts.tables import AuthChallenge, Member, MemberKey
from portal.audit.service import record
from portal.clock import MOSCOW, now
from portal.connect.service import hash_token
from portal.connection.tables import Connection
from portal.cooperatives.tables import Cooperative
from portal.documents.signing import (
    KeyFormatError,
    b64encode,
    public_key_from_b64,
    signature_from_b64,
    verify_signature,
)
from portal.installation.tables import CouncilMember, Installation, Invitation
from portal.mail.service import send_template
from portal.origin import SYSTEM, Origin
from portal.requisites import FieldError, clean_birth_date, clean_email, clean_person_name, clean_phone

KEY, COUNCIL, INVITED, ACTIVE = "key", "council", "invited", "active"
REGULATIONS_PACKAGE = "regulations"
#: The regulations every council member signs (J7), by template id.
REGULATIONS = ("coop_wallet_program", "coop_pep_regulation", "coop_pd_policy", "coop_user_agreement")
CHALLENGE_TTL = dt.timedelta(minutes=10)
INVITATION_TTL = dt.timedelta(hours=24)
MAX_COUNCIL = 25
CHAIRMAN, MEMBER = "chairman", "member"
ROLES = {CHAIRMAN: "Председатель совета", MEMBER: "Член совета"}
FIELDS = ("role", "last_name", "first_name", "patronymic", "birth_date", "email", "phone")
LABELS = {"role": "Роль", "last_name": "Фамилия", "first_name": "Имя", "patronymic": "Отчество",
          "birth_date": "Дата рождения", "email": "Электронная почта", "phone": "Телефон"}


class InstallError(Exception):
    """Refused; ``field`` says where the Russian message belongs ("form" — above the form)."""

    def __init__(self, message: str, field: str = "form"):
        super().__init__(message)
        self.field = field


# --- addresses -------------------------------------------------------------------------------------------


def site_url(settings, domain: str) -> str:
    """The cooperative's own site as its visitors open it: base_url's scheme and port with the cooperative's
    domain (punycode, so the link works in every mail client). Ends with "/"."""
    parts = urlsplit(settings.base_url)
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{domain}{port}/"


def install_message(domain: str, nonce: str) -> bytes:
    """What the representative's key signs to prove it: bound to this domain, so a signature made for one
    cooperative's site opens no other."""
    return f"coopinstall:v1:{domain}:{nonce}".encode()


# --- the installation row ----------------------------------------------------------------------------------


async def connection_of(cooperative_id: int) -> dict | None:
    """The approved connection agreement that provisioned this cooperative's site."""
    return await Connection.select().where(
        (Connection.cooperative == cooperative_id) & (Connection.status == "approved")
    ).order_by(Connection.id, ascending=False).first()


async def installation_of(cooperative: dict) -> dict | None:
    """The cooperative's wizard, made on the first visit while the site is installing (provisioning may have
    made it already). None when the site has no approved connection (nothing to install from)."""
    row = await Installation.select().where(Installation.cooperative == cooperative["id"]).order_by(
        Installation.id).first()
    if row is not None or cooperative.get("status") != "installing":
        return row
    connection = await connection_of(cooperative["id"])
    if connection is None:
        return None
    t = now()
    await Installation.insert(Installation(cooperative=cooperative["id"], connection=connection["id"],
                                           representative=connection["member"], status=KEY, created_at=t,
                                           updated_at=t))
    # Two first visits at once may both insert: the lowest id is the wizard, the other row goes.
    rows = await Installation.select().where(Installation.cooperative == cooperative["id"]).order_by(Installation.id)
    for extra in rows[1:]:
        await Installation.delete().where(Installation.id == extra["id"])
    return rows[0]


async def installation_by_id(installation_id: int) -> dict | None:
    return await Installation.select().where(Installation.id == installation_id).first()


async def representative_of(installation: dict) -> dict | None:
    return await Member.select().where(Member.id == installation["representative"]).first()


# --- the installation key ----------------------------------------------------------------------------------


def _challenge_hash(domain: str, nonce: str) -> str:
    """The stored hash binds the nonce to the domain: a login nonce is no installation challenge (and back)."""
    return hash_token(f"coopinstall:{domain}:{nonce}")


async def new_key_challenge(domain: str) -> str:
    nonce = secrets.token_urlsafe(24)
    t = now()
    await AuthChallenge.delete().where(AuthChallenge.expires_at < t - CHALLENGE_TTL)
    await AuthChallenge.insert(AuthChallenge(nonce_hash=_challenge_hash(domain, nonce), expires_at=t + CHALLENGE_TTL))
    return nonce


async def challenge_open(domain: str, nonce: str) -> bool:
    """The challenge is there, unused and in time (the operator's hop checks it before signing)."""
    if not nonce or len(nonce) > 64:
        return False
    return await AuthChallenge.exists().where(
        (AuthChallenge.nonce_hash == _challenge_hash(domain, nonce)) & AuthChallenge.used_at.is_null()
        & (AuthChallenge.expires_at > now()))


async def _use_challenge(domain: str, nonce: str) -> bool:
    t = now()
    rows = await AuthChallenge.update({AuthChallenge.used_at: t}).where(
        (AuthChallenge.nonce_hash == _challenge_hash(domain, nonce)) & AuthChallenge.used_at.is_null()
        & (AuthChallenge.expires_at > t)
    ).returning(AuthChallenge.id)
    return bool(rows)


WRONG_KEY = ("Ключ не подходит: установку подтверждает ключ пайщика, который подписал соглашение о подключении этого "
             "домена. Проверьте, что выбран его файл ключа или вставлен его ключ.")
NOT_SIGNED = "Подпись не сошлась с ключом. Попробуйте ещё раз: страница выдала новый одноразовый код."
STALE = "Страница устарела: одноразовый код уже использован или истёк. Подтвердите ключ ещё раз."


async def matching_key(member_id: int, message: bytes, signature_b64: str,
                       public_key_b64: str = "") -> tuple[dict | None, str]:
    """The member's active key that made ``signature_b64`` of ``message``, or None and the reason in Russian.
    With ``public_key_b64`` (the browser says which key it used) a key of someone else is told apart from a
    signature that does not verify."""
    try:
        signature = signature_from_b64(signature_b64)
    except KeyFormatError:
        return None, "Подписи нет: укажите ключ — файл ключа или вставленный ключ — и подтвердите ещё раз."
    keys = await MemberKey.select().where((MemberKey.member == member_id) & MemberKey.revoked_at.is_null())
    if public_key_b64:
        try:
            raw = public_key_from_b64(public_key_b64)
        except KeyFormatError:
            return None, "Ключ не распознан. Проверьте файл ключа или вставленный ключ."
        keys = [k for k in keys if k["public_key"] == b64encode(raw)]
        if not keys:
            return None, WRONG_KEY
    for key in keys:
        if verify_signature(public_key_from_b64(key["public_key"]), message, signature):
            return key, ""
    return None, NOT_SIGNED if public_key_b64 else WRONG_KEY


async def prove_key(installation: dict, domain: str, nonce: str, signature_b64: str, public_key_b64: str = "",
                    origin: Origin = SYSTEM) -> dict:
    """«Ключ установки»: the browser signed this domain's one-time challenge with the representative's member
    key (the connection's signer). The challenge is used up whatever the outcome; on success the wizard moves
    on to the council (a representative who comes back later proves the key again and stays where they were)."""
    if not nonce or not await _use_challenge(domain, nonce):
        raise InstallError(STALE)
    representative = await representative_of(installation)
    key, reason = await matching_key(installation["representative"], install_message(domain, nonce), signature_b64,
                                     public_key_b64)
    if key is None:
        await record("installation.key_refused", actor_type="visitor", object_type="installation",
                     object_id=installation["id"], origin=origin, details={"domain": domain})
        raise InstallError(reason, "key")
    t = now()
    async with db.transaction():
        await Installation.update({Installation.status: COUNCIL, Installation.key_proved_at: t,
                                   Installation.updated_at: t}).where(
            (Installation.id == installation["id"]) & (Installation.status == KEY))
        await record("installation.key_proved", actor_type="member", actor_id=installation["representative"],
                     actor_label=representative["email"] if representative else "", object_type="installation",
                     object_id=installation["id"], origin=origin,
                     details={"domain": domain, "key_fingerprint": key["fingerprint"]})
    return await installation_by_id(installation["id"])


async def signed_nonce(installation: dict, domain: str, nonces: list[str], signature_b64: str) -> str:
    """Which of this browser's challenges the operator's hop signed (the hop returns the signature alone, and the
    page may have been opened again meanwhile, giving a newer challenge); "" when none of them."""
    for nonce in reversed(nonces):
        key, _reason = await matching_key(installation["representative"], install_message(domain, nonce),
                                          signature_b64)
        if key is not None:
            return nonce
    return ""


async def hop_connection(member_id: int, domain: str) -> dict | None:
    """For the operator's signing hop: the approved, provisioned connection of ``domain`` whose signer is this
    member (anyone else's is None: the hop signs nothing for them)."""
    return await Connection.select().where(
        (Connection.domain == domain) & (Connection.member == member_id) & (Connection.status == "approved")
        & Connection.cooperative.is_not_null()
    ).first()


async def cooperative_by_id(cooperative_id: int) -> dict | None:
    return await Cooperative.select().where(Cooperative.id == cooperative_id).first()


# --- the council ---------------------------------------------------------------------------------------------


@dataclass
class PersonForm:
    values: dict[str, str]
    cleaned: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def valid(self) -> bool:
        return not self.errors


def min_council(settings) -> int:
    """A chairman and at least two members in production (SPEC J6); one person is enough in dev."""
    return 3 if settings.production else 1


def _adult(birth_iso: str) -> None:
    born = dt.date.fromisoformat(birth_iso)
    today = now().astimezone(MOSCOW).date()
    age = today.year - born.year - ((today.month, today.day) < (born.month, born.day))
    if age < 18:
        raise FieldError("Член совета должен быть совершеннолетним: ему должно исполниться 18 лет.")


def check_person(values: dict[str, str], others: list[dict]) -> PersonForm:
    """One council member as typed: each field checked on its own, the e-mail unique within the council
    (``others`` — the rest of it)."""
    typed = {name: (values.get(name) or "").strip() for name in FIELDS}
    form = PersonForm(values=typed)
    checks = {
        "last_name": lambda v: clean_person_name(v, "Фамилия"),
        "first_name": lambda v: clean_person_name(v, "Имя"),
        "birth_date": clean_birth_date,
        "email": clean_email,
        "phone": clean_phone,
    }
    for name, check in checks.items():
        try:
            form.cleaned[name] = check(typed[name])
        except FieldError as exc:
            form.errors[name] = str(exc)
    if typed["patronymic"]:
        try:
            form.cleaned["patronymic"] = clean_person_name(typed["patronymic"], "Отчество")
        except FieldError as exc:
            form.errors["patronymic"] = str(exc)
    else:
        form.cleaned["patronymic"] = ""
    if "birth_date" in form.cleaned:
        try:
            _adult(form.cleaned["birth_date"])
        except FieldError as exc:
            form.errors["birth_date"] = str(exc)
    if typed["role"] not in ROLES:
        form.errors["role"] = "Выберите роль: председатель совета или член совета."
    else:
        form.cleaned["role"] = typed["role"]
    email = form.cleaned.get("email")
    if email and any(o["email"] == email for o in others):
        form.errors["email"] = "Этот адрес уже указан у другого члена совета: у каждого должен быть свой."
    return form


async def council_rows(installation_id: int) -> list[dict]:
    return await CouncilMember.select().where(CouncilMember.installation == installation_id).order_by(
        CouncilMember.position).order_by(CouncilMember.id)


def _editable(installation: dict) -> None:
    if installation["status"] != COUNCIL:
        raise InstallError("Приглашения уже отправлены — состав совета больше не меняется."
                           if installation["status"] in (INVITED, ACTIVE) else
                           "Сначала подтвердите установку ключом установки.")


async def _reorder(installation_id: int) -> None:
    """The chairman first, then the members in the order they were entered."""
    rows = await council_rows(installation_id)
    rows.sort(key=lambda r: (r["role"] != CHAIRMAN, r["position"], r["id"]))
    for i, row in enumerate(rows):
        if row["position"] != i:
            await CouncilMember.update({CouncilMember.position: i}).where(CouncilMember.id == row["id"])


async def _one_chairman(installation_id: int, chairman_id: int) -> None:
    """A new chairman makes the previous one a member: the council has one chairman."""
    await CouncilMember.update({CouncilMember.role: MEMBER}).where(
        (CouncilMember.installation == installation_id) & (CouncilMember.role == CHAIRMAN)
        & (CouncilMember.id != chairman_id))


async def add_person(installation: dict, values: dict[str, str], origin: Origin = SYSTEM) -> PersonForm:
    _editable(installation)
    rows = await council_rows(installation["id"])
    form = check_person(values, rows)
    if len(rows) >= MAX_COUNCIL:
        form.errors["form"] = f"В совете не больше {MAX_COUNCIL} человек."
    if not form.valid:
        return form
    async with db.transaction():
        inserted = await CouncilMember.insert(CouncilMember(
            installation=installation["id"], position=len(rows) + 1, created_at=now(),
            **{k: form.cleaned[k] for k in FIELDS})).returning(CouncilMember.id)
        if form.cleaned["role"] == CHAIRMAN:
            await _one_chairman(installation["id"], inserted[0]["id"])
        await _reorder(installation["id"])
        await record("installation.council_added", actor_type="member", actor_id=installation["representative"],
                     object_type="installation", object_id=installation["id"], origin=origin,
                     details={"council_member": inserted[0]["id"], "role": form.cleaned["role"]})
    return form


async def person_of(installation: dict, person_id: int) -> dict | None:
    return await CouncilMember.select().where(
        (CouncilMember.id == person_id) & (CouncilMember.installation == installation["id"])).first()


async def change_person(installation: dict, person_id: int, values: dict[str, str],
                        origin: Origin = SYSTEM) -> PersonForm:
    _editable(installation)
    person = await person_of(installation, person_id)
    if person is None:
        raise InstallError("Такого члена совета нет — возможно, его уже удалили.", "missing")
    others = [r for r in await council_rows(installation["id"]) if r["id"] != person_id]
    form = check_person(values, others)
    if not form.valid:
        return form
    async with db.transaction():
        await CouncilMember.update({getattr(CouncilMember, k): form.cleaned[k] for k in FIELDS}).where(
            CouncilMember.id == person_id)
        if form.cleaned["role"] == CHAIRMAN:
            await _one_chairman(installation["id"], person_id)
        await _reorder(installation["id"])
        await record("installation.council_changed", actor_type="member", actor_id=installation["representative"],
                     object_type="installation", object_id=installation["id"], origin=origin,
                     details={"council_member": person_id})
    return form


async def remove_person(installation: dict, person_id: int, origin: Origin = SYSTEM) -> None:
    _editable(installation)
    async with db.transaction():
        deleted = await CouncilMember.delete().where(
            (CouncilMember.id == person_id) & (CouncilMember.installation == installation["id"])
        ).returning(CouncilMember.id)
        if deleted:
            await _reorder(installation["id"])
            await record("installation.council_removed", actor_type="member",
                         actor_id=installation["representative"], object_type="installation",
                         object_id=installation["id"], origin=origin, details={"council_member": person_id})


def council_problem(settings, rows: list[dict]) -> str | None:
    """Why the invitations cannot go out yet (None: they can)."""
    need = min_council(settings)
    if len(rows) < need:
        if settings.production:
            return (f"В совете должно быть не меньше {need} человек — председатель и хотя бы два члена совета; "
                    f"сейчас {len(rows)}.")
        return "Добавьте хотя бы одного члена совета."
    chairmen = [r for r in rows if r["role"] == CHAIRMAN]
    if len(chairmen) != 1:
        return "Укажите председателя совета: отметьте роль «Председатель совета» у одного человека."
    return None


# --- invitations ---------------------------------------------------------------------------------------------


def full_name(person: dict) -> str:
    return " ".join(p for p in (person["last_name"], person["first_name"], person["patronymic"]) if p)


async def _invite(settings, installation: dict, cooperative: dict, person: dict) -> None:
    """A new single-use link for one person (inside the caller's transaction): only its hash is stored."""
    token = secrets.token_urlsafe(32)
    t = now()
    expires = t + INVITATION_TTL
    await Invitation.insert(Invitation(council_member=person["id"], token_hash=hash_token(token), expires_at=expires,
                                       created_at=t))
    url = f"{site_url(settings, cooperative['domain'])}install/invite/{token}"
    await send_template(settings, person["email"], "mail/council_invitation.txt", {
        "name": " ".join(p for p in (person["first_name"], person["patronymic"]) if p),
        "role": ROLES.get(person["role"], "Член совета").lower(), "cooperative": cooperative["name_short"],
        "cooperative_full": cooperative["name_full"], "url": url, "expires_at": expires,
        "regulations": REGULATION_TITLES}, secrets=[token])


REGULATION_TITLES = ("Положение о ЦПП «Цифровой кошелёк»", "Положение о простой электронной подписи",
                     "Политика обработки персональных данных", "Пользовательское соглашение")


async def send_invitations(settings, installation: dict, cooperative: dict, origin: Origin = SYSTEM) -> int:
    """«Отправить приглашения»: every council member gets a link by e-mail (through the outbox, in the same
    transaction); the council is frozen from now on. Sent once — a second press changes nothing."""
    _editable(installation)
    rows = await council_rows(installation["id"])
    problem = council_problem(settings, rows)
    if problem:
        raise InstallError(problem)
    t = now()
    async with db.transaction():
        moved = await Installation.update({Installation.status: INVITED, Installation.invitations_sent_at: t,
                                           Installation.updated_at: t}).where(
            (Installation.id == installation["id"]) & (Installation.status == COUNCIL)
        ).returning(Installation.id)
        if not moved:
            raise InstallError("Приглашения уже отправлены.")
        for person in rows:
            await _invite(settings, installation, cooperative, person)
        await record("installation.invitations_sent", actor_type="member", actor_id=installation["representative"],
                     object_type="installation", object_id=installation["id"], origin=origin,
                     details={"council": [r["id"] for r in rows]})
    return len(rows)


async def resend_invitation(settings, installation: dict, cooperative: dict, person_id: int,
                            origin: Origin = SYSTEM) -> dict:
    """«Отправить ещё раз»: the person's earlier links stop working, a new one goes out."""
    if installation["status"] != INVITED:
        raise InstallError("Приглашения ещё не отправлены." if installation["status"] in (KEY, COUNCIL)
                           else "Установка завершена — приглашения больше не нужны.")
    person = await person_of(installation, person_id)
    if person is None:
        raise InstallError("Такого члена совета нет.", "missing")
    if person["member"] is not None:
        raise InstallError(f"{full_name(person)} уже принял(а) приглашение и получил(а) ключ — новая ссылка не нужна.")
    t = now()
    async with db.transaction():
        await Invitation.update({Invitation.voided_at: t}).where(
            (Invitation.council_member == person_id) & Invitation.used_at.is_null() & Invitation.voided_at.is_null())
        await _invite(settings, installation, cooperative, person)
        await record("installation.invitation_resent", actor_type="member", actor_id=installation["representative"],
                     object_type="installation", object_id=installation["id"], origin=origin,
                     details={"council_member": person_id})
    return person


async def invitation_for_token(token: str, *, cooperative_id: int | None = None) -> tuple[str, dict | None]:
    """The state of an invitation link: "valid" | "used" | "expired" | "voided" | "unknown", and (but for
    "unknown") {"invitation", "council_member", "installation"}. With ``cooperative_id`` a link of another
    cooperative's wizard is "unknown" (each site sees its own only)."""
    if not token or len(token) > 200:
        return "unknown", None
    invitation = await Invitation.select().where(Invitation.token_hash == hash_token(token)).first()
    if invitation is None:
        return "unknown", None
    person = await CouncilMember.select().where(CouncilMember.id == invitation["council_member"]).first()
    installation = await installation_by_id(person["installation"]) if person else None
    if installation is None or (cooperative_id is not None and installation["cooperative"] != cooperative_id):
        return "unknown", None
    found = {"invitation": invitation, "council_member": person, "installation": installation}
    if invitation["used_at"] is not None:
        return "used", found
    if invitation["voided_at"] is not None:
        return "voided", found
    if invitation["expires_at"] <= now():
        return "expired", found
    return "valid", found


async def use_invitation(token: str) -> dict | None:
    """Use the link up, atomically: the invitation row if it was valid just now, else None (someone else used
    it a moment before, it expired or was voided)."""
    t = now()
    rows = await Invitation.update({Invitation.used_at: t}).where(
        (Invitation.token_hash == hash_token(token or "")) & Invitation.used_at.is_null()
        & Invitation.voided_at.is_null() & (Invitation.expires_at > t)
    ).returning(*Invitation.all_columns())
    return rows[0] if rows else None


INVITATION_LABELS = {"none": "не приглашён", "valid": "приглашён", "used": "приглашение принято",
                     "expired": "ссылка истекла", "voided": "ссылка заменена"}


async def council_of(installation_id: int) -> list[dict]:
    """The council with each person's progress: the latest invitation's state, whether their key is received
    (the invitation accepted: ``member`` set) and how many of the regulations (package "regulations") they
    signed (``signed`` of ``total``)."""
    rows = await council_rows(installation_id)
    if not rows:
        return []
    ids = [r["id"] for r in rows]
    invitations = await Invitation.select().where(Invitation.council_member.is_in(ids)).order_by(Invitation.id)
    latest = {i["council_member"]: i for i in invitations}
    signed: dict[int, int] = {}
    if any(r["member"] is not None for r in rows):
        # Counted the way the council's signing counts them (portal.installation.council.progress): signatures
        # on the latest issue of each regulation, as it reads now.
        from portal.installation import council

        installation = await installation_by_id(installation_id)
        progress = await council.progress(installation, await cooperative_by_id(installation["cooperative"]))
        signed = progress.signed
    t = now()
    out = []
    for row in rows:
        invitation = latest.get(row["id"])
        if invitation is None:
            state = "none"
        elif invitation["used_at"] is not None:
            state = "used"
        elif invitation["voided_at"] is not None:
            state = "voided"
        elif invitation["expires_at"] <= t:
            state = "expired"
        else:
            state = "valid"
        count = signed.get(row["id"], 0) if row["member"] is not None else 0
        total = len(REGULATIONS)
        if row["member"] is None:
            status = INVITATION_LABELS[state]
        elif count == 0:
            status = "ключ получен"
        else:
            status = f"подписано {count} из {total}"
        out.append({**row, "full_name": full_name(row), "role_label": ROLES.get(row["role"], "Член совета"),
                    "invitation": invitation, "invitation_state": state, "key_received": row["member"] is not None,
                    "signed": count, "total": total, "done": count == total, "status_label": status,
                    "can_resend": row["member"] is None})
    return out
