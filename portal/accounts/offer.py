"""The ПЭП offer of the cooperative (SPEC §5; 63-ФЗ art. 9 part 2; ГК arts. 428, 435, 438).

The Соглашение об использовании простой электронной подписи is an offer: the cooperative never signs it, the
member accepts it at registration, before the member key is made, by its own request («Принять оферту»,
POST /join/{token}/offer). That acceptance is recorded at once, pending, against the registration link
(``PepAcceptancePending``: which text — template id, version, SHA-256, the cooperative's values it was shown
with and their SHA-256 —, when, IP address, user agent); only then can the key be made, and the registration
turns it into the member's ``PepAcceptance`` with the original time, IP and user agent, so the acceptance is
provably earlier than the key. Every document the member signs later carries it as ``"pep_offer"`` beside
``"data"`` and ``"cooperative"``; the signature sheet prints it.

The page that shows the offer carries the SHA-256 of the template and of the values it was rendered with;
an acceptance is refused when either differs from what the server would show now (``offer_check``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from litestar import Response

from portal.accounts.tables import PepAcceptance, PepAcceptancePending
from portal.audit.service import record
from portal.clock import now
from portal.cooperatives.service import operator, processors_of
from portal.cooperatives.tables import Cooperative
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


def context_sha256(context: dict[str, Any]) -> str:
    """The SHA-256 of the values an offer is rendered with (canonical JSON): what the page carries."""
    from portal.documents.signing import canonical_json, sha256_hex

    return sha256_hex(canonical_json(context))


@dataclass(frozen=True)
class ShownOffer:
    """The current offer as a page shows it: the template and the cooperative's values it is rendered with."""

    template: TemplateInfo
    context: dict[str, Any]

    @property
    def title(self) -> str:
        return self.template.title

    @property
    def version(self) -> int:
        return self.template.version

    @property
    def sha256(self) -> str:
        return self.template.sha256

    @property
    def context_sha256(self) -> str:
        return context_sha256(self.context)


async def shown_offer(cooperative_id: int | None = None) -> ShownOffer:
    """The current offer of a cooperative (the operator's when none is named), with its current values."""
    if cooperative_id is None:
        cooperative = await operator()
    else:
        cooperative = await Cooperative.select().where(Cooperative.id == cooperative_id).first()
    return ShownOffer(current_offer(), offer_context(cooperative))


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
                            origin: Origin, at: dt.datetime | None = None, context: dict | None = None) -> dict:
    """Store the acceptance of a registered member and its audit event (inside the caller's transaction, if
    any); ``context`` is what the offer was shown with (the cooperative's current values by default)."""
    row = PepAcceptance(member=member_id, cooperative=cooperative["id"], template_id=template.id,
                        template_version=template.version, template_sha256=template.sha256,
                        offer_context=context if context is not None else offer_context(cooperative), email=email,
                        accepted_at=at or now(), ip=origin.ip[:64], user_agent=origin.user_agent[:1000])
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


TEXT_CHANGED = "Текст оферты обновился, пока страница была открыта. Прочитайте его ещё раз и примите условия снова."
VALUES_CHANGED = ("Реквизиты кооператива в оферте изменились, пока страница была открыта. Прочитайте оферту ещё раз "
                  "и примите условия снова.")


def offer_check(shown: ShownOffer, seen_sha256: str, seen_context_sha256: str) -> str | None:
    """A Russian error when what the page showed (the template's SHA-256 and the SHA-256 of the values it was
    rendered with) is not what the server shows now."""
    if seen_sha256 != shown.sha256:
        return TEXT_CHANGED
    if seen_context_sha256 != shown.context_sha256:
        return VALUES_CHANGED
    return None


# --- the acceptance at registration: pending against the link until the member exists ----------------------

def _is_current(row: dict | None, shown: ShownOffer) -> bool:
    return (row is not None and row["template_sha256"] == shown.sha256
            and row["context_sha256"] == shown.context_sha256)


async def pending_of(link_id: int, shown: ShownOffer) -> dict | None:
    """The latest acceptance made with this registration link, if it is of the offer as it is now."""
    row = await PepAcceptancePending.select().where(PepAcceptancePending.registration_link == link_id).order_by(
        PepAcceptancePending.id, ascending=False).first()
    return row if _is_current(row, shown) else None


async def record_pending(link: dict, cooperative_id: int, shown: ShownOffer, origin: Origin) -> dict:
    """Record the acceptance made with a registration link, before any key exists; accepting the same offer
    again changes nothing."""
    existing = await pending_of(link["id"], shown)
    if existing is not None:
        return existing
    template = shown.template
    rows = await PepAcceptancePending.insert(PepAcceptancePending(
        registration_link=link["id"], cooperative=cooperative_id, template_id=template.id,
        template_version=template.version, template_sha256=template.sha256, offer_context=shown.context,
        context_sha256=shown.context_sha256, email=link["email"], accepted_at=now(), ip=origin.ip[:64],
        user_agent=origin.user_agent[:1000])).returning(PepAcceptancePending.id)
    await record("member.pep_offer_accepted", actor_type="visitor", actor_label=link["email"],
                 object_type="registration_link", object_id=link["id"], origin=origin,
                 details={"pending_acceptance": rows[0]["id"], "template_id": template.id,
                          "template_version": template.version, "template_sha256": template.sha256,
                          "context_sha256": shown.context_sha256})
    return await PepAcceptancePending.select().where(PepAcceptancePending.id == rows[0]["id"]).first()


async def bind_pending(pending: dict, member_id: int) -> dict:
    """The registered member's PepAcceptance from the pending one: the same text, values, time, IP and user
    agent (inside the registration's transaction); the link's pending rows are gone."""
    rows = await PepAcceptance.insert(PepAcceptance(
        member=member_id, cooperative=pending["cooperative"], template_id=pending["template_id"],
        template_version=pending["template_version"], template_sha256=pending["template_sha256"],
        offer_context=_context_of(pending), email=pending["email"], accepted_at=pending["accepted_at"],
        ip=pending["ip"], user_agent=pending["user_agent"])).returning(PepAcceptance.id)
    await PepAcceptancePending.delete().where(
        PepAcceptancePending.registration_link == pending["registration_link"])
    return await PepAcceptance.select().where(PepAcceptance.id == rows[0]["id"]).first()


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


# --- the offer read in a frame of a page and downloaded as PDF (registration and cabinet alike) -------------

# The print layout (A4 margins, the addressee block on the right) on a narrow screen: same text, readable.
SCREEN_CSS = (
    "<style>@media screen { body { margin: 12px; } }"
    " @media screen and (max-width: 640px) { .addressee { margin-left: 0 !important; } }</style>"
)


def document_frame(html: str) -> Response:
    """A document's HTML to be read in a frame of a portal page: no scripts, nothing from outside."""
    return Response(html.replace("</head>", SCREEN_CSS + "</head>", 1), media_type="text/html", headers={
        "X-Frame-Options": "SAMEORIGIN",
        "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
                                   "frame-ancestors 'self'",
    })


def offer_frame_response(context: dict, version: int | None = None) -> Response:
    """The offer (``version``: as accepted; None: the current one) rendered with ``context``, for a frame."""
    return document_frame(offer_html(context, version))


async def offer_pdf_response(context: dict, version: int | None = None) -> Response:
    """The offer as a PDF/A-3b download, named after its version."""
    version = get_template(OFFER_TEMPLATE, version).version
    return Response(await offer_pdf(context, version), media_type="application/pdf", headers={
        "Content-Disposition": f'attachment; filename="oferta-pep-v{version}.pdf"',
        "Cache-Control": "private, no-cache",
    })


async def member_offer(member: dict) -> tuple[dict, int | None]:
    """What a member reads as «the offer»: as accepted (with the acceptance block), or the current one of the
    member's cooperative, still to be accepted."""
    acceptance = await acceptance_of(member["id"])
    if acceptance is None:
        return (await shown_offer(member["cooperative"])).context, None
    return accepted_context(acceptance), acceptance["template_version"]


async def delete_stale_pending() -> int:
    """Housekeeping: acceptances on the registration page whose link expired or was used without them becoming a
    member's (the worker calls it). Returns how many were deleted."""
    from portal.connect.tables import RegistrationLink

    stale = await RegistrationLink.select(RegistrationLink.id).where(
        (RegistrationLink.expires_at < now()) | (RegistrationLink.used_at.is_not_null()))
    ids = [row["id"] for row in stale]
    if not ids:
        return 0
    rows = await PepAcceptancePending.delete().where(
        PepAcceptancePending.registration_link.is_in(ids)).returning(PepAcceptancePending.id)
    return len(rows)
