"""Connect requests: store, notify, review (send a registration link or reject), registration links."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass

from portal import db
from portal.audit.service import record
from portal.clock import now
from portal.connect.tables import ConnectRequest, RegistrationLink
from portal.mail.service import send_template
from portal.origin import SYSTEM, Origin
from portal.requisites import domain_display
from portal.settings import Settings

LINK_TTL = dt.timedelta(days=7)
STATUS_LABELS = {"new": "Новая", "invited": "Ссылка отправлена", "rejected": "Отклонена"}


def search_key(*parts: str) -> str:
    return " ".join(p for p in parts if p).casefold()


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Submitted:
    request_id: int
    duplicate: bool


async def submit(settings: Settings, clean: dict[str, str], ip: str) -> Submitted:
    """Store a valid request and its two e-mails in one transaction; a pending one with the same ИНН is not doubled."""
    try:
        return await _submit(settings, clean, ip)
    except Exception as exc:  # a concurrent request with the same ИНН won (unique index on pending ИНН)
        if not db.is_unique_violation(exc):
            raise
        pending = await ConnectRequest.select(ConnectRequest.id).where(
            (ConnectRequest.inn == clean["inn"]) & ConnectRequest.status.is_in(["new", "invited"])).first()
        return Submitted(pending["id"], duplicate=True)


async def _submit(settings: Settings, clean: dict[str, str], ip: str) -> Submitted:
    async with db.transaction():
        pending = await ConnectRequest.select(ConnectRequest.id).where(
            (ConnectRequest.inn == clean["inn"]) & ConnectRequest.status.is_in(["new", "invited"])
        ).first()
        if pending:
            return Submitted(pending["id"], duplicate=True)
        rows = await ConnectRequest.insert(
            ConnectRequest(
                **{k: clean[k] for k in ("coop_name", "inn", "contact_name", "email", "phone", "domain",
                                         "union_member", "message")},
                status="new",
                search_text=search_key(clean["coop_name"], clean["inn"], clean["contact_name"], clean["email"],
                                       clean["phone"], domain_display(clean["domain"]), clean["domain"]),
                ip=ip,
                created_at=now(),
            )
        ).returning(ConnectRequest.id)
        request_id = rows[0]["id"]
        mail = {"request_id": request_id, "request": clean}
        await send_template(settings, clean["email"], "mail/connect_received.txt", mail)
        await send_template(settings, settings.staff_email, "mail/connect_staff_notice.txt", mail)
        await record("connect.submitted", actor_type="visitor", actor_label=clean["email"],
                     object_type="connect_request", object_id=request_id, details={"inn": clean["inn"]})
    return Submitted(request_id, duplicate=False)


async def list_requests(status: str | None = None, query: str = "") -> list[dict]:
    q = ConnectRequest.select().order_by(ConnectRequest.id, ascending=False)
    if status in STATUS_LABELS:
        q = q.where(ConnectRequest.status == status)
    if query.strip():
        q = q.where(ConnectRequest.search_text.like(f"%{query.strip().casefold()}%"))
    return await q.limit(500)


async def counts() -> dict[str, int]:
    from piccolo.query.functions.aggregate import Count

    rows = await ConnectRequest.select(ConnectRequest.status, Count(alias="n")).group_by(ConnectRequest.status)
    found = {row["status"]: row["n"] for row in rows}
    return {s: found.get(s, 0) for s in STATUS_LABELS}


async def get(request_id: int) -> dict | None:
    return await ConnectRequest.select().where(ConnectRequest.id == request_id).first()


class ReviewError(Exception):
    """The action does not fit the request's state; the message is for the staff member."""


async def send_registration_link(settings: Settings, request_id: int, staff: dict, origin: Origin = SYSTEM) -> str:
    """Create a single-use link valid 7 days and e-mail it; returns the token (only its hash is stored)."""
    token = secrets.token_urlsafe(32)
    async with db.transaction():
        row = await get(request_id)
        if row is None:
            raise ReviewError("Заявка не найдена.")
        if row["status"] == "rejected":
            raise ReviewError("Заявка отклонена — ссылку на регистрацию отправить нельзя.")
        # A new link replaces the earlier unused ones.
        await RegistrationLink.update({RegistrationLink.expires_at: now()}).where(
            (RegistrationLink.connect_request == request_id) & RegistrationLink.used_at.is_null()
            & (RegistrationLink.expires_at > now())
        )
        expires = now() + LINK_TTL
        await RegistrationLink.insert(
            RegistrationLink(connect_request=request_id, token_hash=hash_token(token), email=row["email"],
                             expires_at=expires, created_at=now())
        )
        await ConnectRequest.update({ConnectRequest.status: "invited", ConnectRequest.decided_at: now()}).where(
            ConnectRequest.id == request_id
        )
        await send_template(settings, row["email"], "mail/registration_link.txt",
                            {"request": row, "token": token, "expires_at": expires}, secrets=[token])
        await record("connect.link_sent", actor_type="staff", actor_id=staff["id"], actor_label=staff["email"],
                     object_type="connect_request", object_id=request_id, origin=origin,
                     details={"expires_at": expires.isoformat()})
    return token


async def reject(request_id: int, reason: str, staff: dict, origin: Origin = SYSTEM,
                 settings: Settings | None = None) -> None:
    async with db.transaction():
        row = await get(request_id)
        if row is None:
            raise ReviewError("Заявка не найдена.")
        if row["status"] == "rejected":
            raise ReviewError("Заявка уже отклонена.")
        await ConnectRequest.update(
            {ConnectRequest.status: "rejected", ConnectRequest.reject_reason: reason, ConnectRequest.decided_at: now()}
        ).where(ConnectRequest.id == request_id)
        await RegistrationLink.update({RegistrationLink.expires_at: now()}).where(
            (RegistrationLink.connect_request == request_id) & RegistrationLink.used_at.is_null()
        )
        # Without settings from the caller, the default operator name (as before the mail templates).
        await send_template(settings or Settings(), row["email"], "mail/connect_rejected.txt",
                            {"request": row, "reason": reason})
        await record("connect.rejected", actor_type="staff", actor_id=staff["id"], actor_label=staff["email"],
                     object_type="connect_request", object_id=request_id, origin=origin,
                     details={"reason": reason})


@dataclass(frozen=True)
class LinkState:
    state: str  # valid | expired | used | unknown
    link: dict | None = None
    request: dict | None = None


async def check_link(token: str) -> LinkState:
    link = await RegistrationLink.select().where(RegistrationLink.token_hash == hash_token(token)).first()
    if link is None:
        return LinkState("unknown")
    if link["used_at"] is not None:
        return LinkState("used", link)
    if link["expires_at"] <= now():
        return LinkState("expired", link)
    return LinkState("valid", link, await get(link["connect_request"]))


async def consume_link(token: str) -> dict | None:
    """Mark the link used; only one caller wins. Returns the link, or None when it is not valid."""
    t = now()
    rows = await RegistrationLink.update({RegistrationLink.used_at: t}).where(
        (RegistrationLink.token_hash == hash_token(token)) & RegistrationLink.used_at.is_null()
        & (RegistrationLink.expires_at > t)
    ).returning(*RegistrationLink.all_columns())
    return rows[0] if rows else None
