"""Online check of a verified document's signing keys against the portal's key registry (/verify).

Offline, a signed PDF shows which key signed and whether it is the key the signed document names as
the signer's (``verify.SignerInfo.key_in_document``). Online the registry says more: whether the key
belonged to the member with the signature's e-mail, was registered before the signing time and was not
revoked before it (``accounts.tables.MemberKey``: a replaced key is revoked but kept).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from portal.clock import datetime_ru

REGISTERED = "registered"  # the member's key at signing time
REVOKED = "revoked"  # the member's key, revoked before the signature
NOT_YET = "not_yet"  # the member's key, registered only after the signature
OTHER_MEMBER = "other_member"  # a key of someone else
UNKNOWN = "unknown"  # not in the registry at all
NO_TIME = "no_time"  # the record gives no signing time to compare with


@dataclass(frozen=True)
class KeyRegistration:
    status: str
    text: str  # one Russian sentence for the page

    @property
    def ok(self) -> bool:
        return self.status == REGISTERED


def _aware(moment: dt.datetime | None) -> dt.datetime | None:
    """The database's times are UTC (SQLite may hand them back without the offset)."""
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=dt.timezone.utc)
    return moment


def judge(email: str, signed_at: dt.datetime | None, rows: Sequence[dict]) -> KeyRegistration:
    """The verdict for one signature from the registry rows of its key (``email``, ``created_at``,
    ``revoked_at``): registered to that e-mail, created before the signing time, not revoked before it."""
    if not rows:
        return KeyRegistration(UNKNOWN, "Ключ не зарегистрирован на портале: он не принадлежит ни одному пайщику.")
    wanted = email.strip().lower()
    own = [{**row, "created_at": _aware(row["created_at"]), "revoked_at": _aware(row["revoked_at"])}
           for row in rows if str(row["email"]).strip().lower() == wanted]
    if not own:
        return KeyRegistration(OTHER_MEMBER, f"Ключ зарегистрирован на портале не за {email}, а за другим пайщиком.")
    if signed_at is None:
        return KeyRegistration(NO_TIME, "Время подписи не указано: принадлежность ключа на тот момент не проверить.")
    for row in own:
        revoked = row["revoked_at"]
        if row["created_at"] <= signed_at and (revoked is None or revoked > signed_at):
            state = "действует и сейчас" if revoked is None else f"отозван позже, {datetime_ru(revoked)} МСК"
            return KeyRegistration(
                REGISTERED,
                f"Ключ был зарегистрированным ключом пайщика {email} в момент подписи (зарегистрирован "
                f"{datetime_ru(row['created_at'])} МСК, {state}).",
            )
    revoked_before = [row["revoked_at"] for row in own if row["revoked_at"] is not None and row["revoked_at"] <= signed_at]
    if revoked_before:
        return KeyRegistration(
            REVOKED,
            f"Ключ пайщика {email} был отозван {datetime_ru(max(revoked_before))} МСК — до подписи "
            f"({datetime_ru(signed_at)} МСК): подпись сделана недействующим ключом.",
        )
    first = min(row["created_at"] for row in own)
    return KeyRegistration(
        NOT_YET,
        f"Ключ пайщика {email} зарегистрирован {datetime_ru(first)} МСК — позже времени подписи "
        f"({datetime_ru(signed_at)} МСК).",
    )


async def key_registrations(signers: Sequence) -> list[KeyRegistration]:
    """For each ``verify.SignerInfo``: was its key the member's registered key at signing time?

    Keys are matched by fingerprint (SHA-256 of the raw key, checked against the key by ``verify``), one
    query for all signatures.
    """
    from portal.accounts.tables import MemberKey

    fingerprints = sorted({s.key_fingerprint for s in signers})
    rows: list[dict] = []
    if fingerprints:
        rows = await MemberKey.select(
            MemberKey.fingerprint, MemberKey.created_at, MemberKey.revoked_at, MemberKey.member.email.as_alias("email"),
        ).where(MemberKey.fingerprint.is_in(fingerprints))
    return [judge(s.email, s.signed_at_time, [r for r in rows if r["fingerprint"] == s.key_fingerprint])
            for s in signers]
