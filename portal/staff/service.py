"""Staff accounts: creation and password check (argon2)."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from portal.clock import now
from portal.staff.tables import StaffUser

_hasher = PasswordHasher()
# Verified when the e-mail is unknown, so that timing does not tell which e-mails exist.
_DUMMY_HASH = _hasher.hash("not-a-real-password")


def normalize_email(email: str) -> str:
    return email.strip().lower()


async def create_staff(email: str, password: str) -> int:
    email = normalize_email(email)
    if "@" not in email:
        raise ValueError("Некорректный адрес электронной почты")
    if len(password) < 8:
        raise ValueError("Пароль должен быть не короче 8 символов")
    existing = await StaffUser.select(StaffUser.id).where(StaffUser.email == email).first()
    if existing:
        await StaffUser.update({StaffUser.password_hash: _hasher.hash(password), StaffUser.is_active: True}).where(
            StaffUser.id == existing["id"]
        )
        return existing["id"]
    rows = await StaffUser.insert(
        StaffUser(email=email, password_hash=_hasher.hash(password), is_active=True, created_at=now())
    ).returning(StaffUser.id)
    return rows[0]["id"]


async def authenticate(email: str, password: str) -> dict | None:
    row = await StaffUser.select().where(StaffUser.email == normalize_email(email)).first()
    try:
        _hasher.verify(row["password_hash"] if row else _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        return None
    if not row or not row["is_active"]:
        return None
    await StaffUser.update({StaffUser.last_login_at: now()}).where(StaffUser.id == row["id"])
    return row


QUEUES = {
    "connect_requests": ("connect_request", ("new", "invited", "rejected")),
    "applications": ("application", ("draft", "signed")),
    "invoices": ("invoice", ("issued", "paid")),
    "payments": ("payment", ("unmatched", "credited")),
    "connections": ("connection", ("signed", "approved", "returned")),
    "deployments": ("provision_job", ("queued", "running", "done", "failed")),
    "installations": ("installation", ("key", "council", "invited", "active")),
}


async def queue_counts() -> dict[str, dict[str, int]]:
    """The console's counts of every queue by status, in one query."""
    parts = " UNION ALL ".join(
        f"SELECT '{queue}' AS queue, status, COUNT(*) AS n FROM {table} GROUP BY status"
        for queue, (table, _) in QUEUES.items())
    counts = {queue: dict.fromkeys(statuses, 0) for queue, (_, statuses) in QUEUES.items()}
    for row in await StaffUser.raw(parts):
        if row["status"] in counts[row["queue"]]:
            counts[row["queue"]][row["status"]] = row["n"]
    return counts
