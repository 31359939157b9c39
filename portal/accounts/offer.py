"""The ПЭП offer of the cooperative (SPEC §5; 63-ФЗ art. 9 part 2; ГК arts. 428, 435, 438).

The Соглашение об использовании простой электронной подписи is an offer: the cooperative never signs it, the
member accepts it at registration, before the member key is made, by ticking «Я принимаю условия оферты».
The acceptance is recorded (which text — template id, version, SHA-256 and the cooperative's values it was
shown with —, when, IP address, user agent, e-mail) and every document the member signs later carries it
as ``"pep_offer"`` beside ``"data"`` and ``"cooperative"``; the signature sheet prints it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from typing import Any

from portal.accounts.tables import PepAcceptance
from portal.audit.service import record
from portal.clock import now
from portal.cooperatives.service import processors_of
from portal.documents.templates import TemplateInfo, get_template
from portal.origin import Origin

OFFER_TEMPLATE = "pep_agreement"
OFFER_PDF_VARIANT = "pdf/a-3b"

#: The cooperative's values the documents are rendered with (portal.documents.templates contract).
COOPERATIVE_KEYS = (
    "name_full", "name_short", "inn", "ogrn", "kpp", "address", "bank_name", "bik", "corr_account",
    "settlement_account", "fee_entrance_org", "fee_share_org", "fee_entrance_ind", "fee_share_ind", "email", "phone",
    "city", "site", "charter",
)


def cooperative_context(cooperative: dict) -> dict[str, Any]:
    """The ``cooperative`` of the document templates, from a Cooperative row."""
    return {**{k: cooperative[k] for k in COOPERATIVE_KEYS}, "processors": processors_of(cooperative)}


def current_offer() -> TemplateInfo:
    return get_template(OFFER_TEMPLATE)


def offer_title(acceptance: dict | None) -> str:
    """The offer's title as accepted (or the current one)."""
    version = acceptance["template_version"] if acceptance else None
    return get_template(OFFER_TEMPLATE, version).title


def offer_context(cooperative: dict) -> dict[str, Any]:
    """What the offer is rendered with before anyone accepted it."""
    return {"cooperative": cooperative_context(cooperative)}


def utc_iso(value: dt.datetime) -> str:
    return value.astimezone(dt.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def _context_of(acceptance: dict) -> dict[str, Any]:
    context = acceptance["offer_context"]
    return json.loads(context or "{}") if isinstance(context, str) else dict(context)


def pep_offer(acceptance: dict) -> dict[str, Any]:
    """The acceptance record carried by every later signed document (and printed on its signature sheet)."""
    return {
        "template_id": acceptance["template_id"],
        "template_version": acceptance["template_version"],
        "template_sha256": acceptance["template_sha256"],
        "accepted_at": utc_iso(acceptance["accepted_at"]),
        "ip": acceptance["ip"],
        "user_agent": acceptance["user_agent"],
        "email": acceptance["email"],
    }


def accepted_context(acceptance: dict) -> dict[str, Any]:
    """The offer as it was accepted, with the acceptance block."""
    return {**_context_of(acceptance), "pep_offer": pep_offer(acceptance)}


async def record_acceptance(member_id: int, cooperative: dict, email: str, template: TemplateInfo,
                            origin: Origin, at: dt.datetime | None = None) -> dict:
    """Store the acceptance and its audit event (inside the caller's transaction, if any)."""
    row = PepAcceptance(member=member_id, cooperative=cooperative["id"], template_id=template.id,
                        template_version=template.version, template_sha256=template.sha256,
                        offer_context=offer_context(cooperative), email=email, accepted_at=at or now(),
                        ip=origin.ip[:64], user_agent=origin.user_agent[:1000])
    rows = await PepAcceptance.insert(row).returning(PepAcceptance.id)
    await record("member.pep_offer_accepted", actor_type="member", actor_id=member_id, actor_label=email,
                 object_type="member", object_id=member_id, origin=origin,
                 details={"acceptance": rows[0]["id"], "template_id": template.id,
                          "template_version": template.version, "template_sha256": template.sha256})
    return await PepAcceptance.select().where(PepAcceptance.id == rows[0]["id"]).first()


async def acceptance_of(member_id: int) -> dict | None:
    """The member's latest acceptance of the offer, or None (registered before acceptance was asked)."""
    return await PepAcceptance.select().where(PepAcceptance.member == member_id).order_by(
        PepAcceptance.id, ascending=False).first()


def offer_check(seen_sha256: str) -> str | None:
    """A Russian error when the text shown to the member is not the current offer any more."""
    if seen_sha256 != current_offer().sha256:
        return ("Текст оферты обновился, пока страница была открыта. Прочитайте его ещё раз и примите "
                "условия снова.")
    return None


def _render_pdf(template_id: str, context: dict, version: int) -> bytes:
    from portal.documents.render import render_pdf

    return render_pdf(template_id, context, pdf_variant=OFFER_PDF_VARIANT, version=version)


_pdf_cache: dict[str, bytes] = {}
_PDF_CACHE_SIZE = 32


async def offer_pdf(context: dict, version: int | None = None) -> bytes:
    """The offer as PDF/A-3b, rendered in the worker processes (the event loop stays free). The same text with
    the same values is rendered once per process (the registration page offers it to everyone)."""
    from portal.documents.signing import canonical_json, sha256_hex
    from portal.documents.store import render_pool

    template = get_template(OFFER_TEMPLATE, version)
    key = sha256_hex(canonical_json({"sha256": template.sha256, "version": template.version, "context": context}))
    cached = _pdf_cache.get(key)
    if cached is not None:
        return cached
    loop = asyncio.get_running_loop()
    pdf = await loop.run_in_executor(render_pool(), _render_pdf, template.id, context, template.version)
    if len(_pdf_cache) >= _PDF_CACHE_SIZE:
        _pdf_cache.pop(next(iter(_pdf_cache)))
    _pdf_cache[key] = pdf
    return pdf


def offer_html(context: dict, version: int | None = None) -> str:
    from portal.documents.render import render_html

    return render_html(OFFER_TEMPLATE, context, version=version)
