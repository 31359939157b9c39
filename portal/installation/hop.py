"""The signing hop on the operator's site («Подписать ключом из кабинета ВОСХОДа»).

The member key a member keeps in the browser belongs to the operator's origin; the cooperative's site (another
origin) cannot read it. The wizard sends the representative here with its challenge; the member, logged in on
the operator's site, sees which domain asks, confirms, the browser signs that domain's challenge with the key kept
here (or pasted), and the operator sends the browser back to the cooperative's site with the signature alone.

The way back is built from the connection's own domain (never from a parameter), and only for the member who
signed that domain's connection agreement: no open redirect, no signature for anyone else.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

import idna
from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency, Provide
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath

from portal.accounts.guards import current_member, member_guard
from portal.audit.service import record
from portal.connection.forms import shown_domain
from portal.installation import service
from portal.origin import origin_of
from portal.web import HTMX_URL, SIGNATURE_PAD_URL, PageError, post_rate_limit, render

Form = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]
HOP_LIMIT = post_rate_limit("install_hop", 10)
NOT_YOURS = ("Подтвердить установку этого сайта может только пайщик, подписавший соглашение о подключении его домена. "
             "Войдите под его адресом почты.")


def _domain(raw: str) -> str:
    raw = (raw or "").strip().lower().rstrip(".")
    if raw.isascii():
        return raw
    try:
        return idna.encode(raw, uts46=True).decode("ascii")
    except (idna.IDNAError, UnicodeError):
        return ""


def return_url(settings, domain: str, signature: str = "") -> str:
    """The wizard's key step on the cooperative's own domain (the connection's), with the signature."""
    url = f"{service.site_url(settings, domain)}install/key"
    return f"{url}?signature={quote(signature, safe='')}" if signature else url


def hop_csp(site_origin: str) -> str:
    """The page's policy as everywhere (portal.web.security_headers), but its form may be answered by a redirect
    to the one cooperative's site it names (browsers apply form-action to the redirect after a POST)."""
    return ("default-src 'self'; "
            f"script-src 'self' {HTMX_URL} {SIGNATURE_PAD_URL}; "
            "style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; font-src 'self' data:; "
            "connect-src 'self'; "
            f"form-action 'self' {site_origin}; "
            "frame-ancestors 'none'; base-uri 'self'; object-src 'none'")


class InstallHopController(Controller):
    path = "/cabinet/install-hop"
    guards = [member_guard]
    dependencies = {"member": Provide(current_member)}

    async def _context(self, member: dict, raw_domain: str, nonce: str) -> tuple[dict, dict, str]:
        domain = _domain(raw_domain)
        connection = await service.hop_connection(member["id"], domain) if domain else None
        if connection is None:
            raise PageError(status_code=403, detail=NOT_YOURS)
        cooperative = await service.cooperative_by_id(connection["cooperative"])
        if cooperative is None or cooperative["status"] != "installing":
            raise PageError(status_code=409, detail="Установка этого сайта уже завершена — подтверждать нечего.")
        return connection, cooperative, domain

    def _page(self, request: Request, member: dict, cooperative: dict, domain: str, nonce: str, *,
              open_: bool, error: str | None = None, status_code: int = 200) -> Response:
        settings = request.app.state.settings
        site = service.site_url(settings, domain).rstrip("/")
        response = render(request, "installation/hop.html", {
            "member": member, "cooperative": cooperative, "domain": domain, "domain_shown": shown_domain(domain),
            "nonce": nonce, "message": service.install_message(domain, nonce).decode(), "open": open_,
            "error": error, "back_url": return_url(settings, domain), "site_url": site}, status_code=status_code)
        response.headers["content-security-policy"] = hop_csp(site)
        return response

    @get("/{domain:str}/{nonce:str}")
    async def confirm(self, request: Request, member: NamedDependency[dict], domain: FromPath[str],
                      nonce: FromPath[str]) -> Response:
        """Which site asks, and «Подтвердить»: nothing is signed before the member says so."""
        _connection, cooperative, domain = await self._context(member, domain, nonce)
        return self._page(request, member, cooperative, domain, nonce,
                          open_=await service.challenge_open(domain, nonce))

    @post("/{domain:str}/{nonce:str}", middleware=[HOP_LIMIT.middleware])
    async def sign(self, request: Request, member: NamedDependency[dict], domain: FromPath[str],
                   nonce: FromPath[str], data: Form) -> Response:
        """The browser's signature of that domain's challenge, checked here against the member's key, goes back
        to the cooperative's site; the site itself uses the challenge up."""
        settings = request.app.state.settings
        _connection, cooperative, domain = await self._context(member, domain, nonce)
        if not await service.challenge_open(domain, nonce):
            return self._page(request, member, cooperative, domain, nonce, open_=False, status_code=422)
        key, reason = await service.matching_key(member["id"], service.install_message(domain, nonce),
                                                 data.get("signature", ""), data.get("public_key", ""))
        if key is None:
            return self._page(request, member, cooperative, domain, nonce, open_=True, error=reason, status_code=422)
        await record("installation.hop_signed", actor_type="member", actor_id=member["id"],
                     actor_label=member["email"], object_type="cooperative", object_id=cooperative["id"],
                     origin=origin_of(request), details={"domain": domain, "key_fingerprint": key["fingerprint"]})
        return Response("", status_code=303,
                        headers={"location": return_url(settings, domain, data.get("signature", ""))})
