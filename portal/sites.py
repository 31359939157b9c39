"""Whose site a request is for (SPEC §9): the host decides, once per request, before anything else runs.

- The operator's site: the host of PORTAL_BASE_URL, and the loopback names (monitors, the reverse proxy's TLS
  question, `make run` opened as localhost). On a self-hosted instance (PORTAL_OPERATOR_URL) the same hosts give
  the instance's one cooperative instead.
- A connected cooperative's site: its domain (stored in punycode) once provisioning has made it.
- Any other host: a plain 404 that names no cooperative; no route, no session, no database row of anyone's.

Each route says on which sites it exists (``opt={"sites": …}``; the operator's alone when it says nothing), so
the operator's cabinet and staff console are simply not there on a cooperative's host.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import idna
from litestar import Request
from litestar.exceptions import NotFoundException
from litestar.types import ASGIApp, Receive, Scope, Send

from portal.cooperatives.tables import Cooperative

SCOPE_KEY = "portal_site"
_HOST = re.compile(r"[a-z0-9._:-]{1,253}")
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
OPERATOR, COOPERATIVE, ANY = "operator", "cooperative", "any"
#: ``opt`` of a route that exists on every site (health, static files, /verify) or on cooperatives' sites only.
ON_ANY_SITE = {"sites": ANY}
ON_COOPERATIVE_SITES = {"sites": COOPERATIVE}


@dataclass(frozen=True)
class Site:
    cooperative_id: int
    is_operator: bool
    name: str  # the cooperative's short name
    name_full: str
    host: str  # punycode
    status: str  # the cooperative's: installing | active | suspended

    @property
    def kind(self) -> str:
        return OPERATOR if self.is_operator else COOPERATIVE


def host_of(scope: Scope) -> str:
    """The request's host in punycode, lower case, without port and trailing dot ("" when unusable)."""
    raw = ""
    for name, value in scope.get("headers", []):
        if name == b"host":
            try:
                raw = value.decode("utf-8")
            except UnicodeDecodeError:
                return ""
            break
    if not raw and scope.get("server"):
        raw = str(scope["server"][0])
    raw = raw.strip().lower()
    if raw.startswith("["):  # [::1]:8000
        return raw[1:].partition("]")[0]
    host = raw.rpartition(":")[0] if raw.count(":") == 1 else raw
    host = host.rstrip(".")
    if host.isascii():
        return host if _HOST.fullmatch(host) else ""
    try:
        return idna.encode(host, uts46=True).decode("ascii")
    except (idna.IDNAError, UnicodeError):
        return ""


def _site(row: dict, host: str) -> Site:
    return Site(row["id"], bool(row["is_operator"]), row["name_short"], row["name_full"], host,
                row.get("status") or "active")


_COLUMNS = (Cooperative.id, Cooperative.is_operator, Cooperative.name_short, Cooperative.name_full,
            Cooperative.status)


async def resolve(settings, host: str) -> Site | None:
    """The site ``host`` serves, or None (unknown host)."""
    if not host:
        return None
    if host == settings.operator_host or host in LOOPBACK:
        if settings.operator_url:  # a self-hosted instance: its own cooperative, fetched from the operator
            row = await Cooperative.select(*_COLUMNS).where(
                (Cooperative.domain == settings.operator_host) & (Cooperative.is_operator == False)  # noqa: E712
            ).first()
        else:
            row = await Cooperative.select(*_COLUMNS).where(Cooperative.is_operator == True).first()  # noqa: E712
        return _site(row, host) if row else None
    row = await Cooperative.select(*_COLUMNS).where(
        (Cooperative.domain == host) & (Cooperative.is_operator == False)  # noqa: E712
    ).first()
    return _site(row, host) if row else None


def site_of(connection) -> Site:
    """The current site of a request (resolved at the entry; every request that reached a handler has one)."""
    return connection.scope[SCOPE_KEY]


def site_or_none(connection) -> Site | None:
    return connection.scope.get(SCOPE_KEY) if connection is not None else None


async def site_cooperative(request: Request) -> dict:
    """The Cooperative row of the request's site (a dependency: ``Provide(site_cooperative)``)."""
    return await Cooperative.select().where(Cooperative.id == site_of(request).cooperative_id).first()


UNKNOWN_HOST_PAGE = """<!doctype html>
<html lang="ru"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Сайт не найден</title></head>
<body style="font-family: sans-serif; max-width: 40rem; margin: 3rem auto; padding: 0 1rem">
<h1>Сайт не найден</h1>
<p>По этому адресу нет сайта: домен не подключён к платформе «Кооперативная экономика» или ещё не готов.
Проверьте адрес.</p>
</body></html>
""".encode()


async def unknown_host(send: Send) -> None:
    await send({"type": "http.response.start", "status": 404, "headers": [
        (b"content-type", b"text/html; charset=utf-8"), (b"content-length", str(len(UNKNOWN_HOST_PAGE)).encode()),
        (b"cache-control", b"no-store"), (b"x-content-type-options", b"nosniff"),
        (b"content-security-policy", b"default-src 'none'; style-src 'unsafe-inline'")]})
    await send({"type": "http.response.body", "body": UNKNOWN_HOST_PAGE})


class SiteRouteMiddleware:
    """Before guards and sessions: a route exists only on the sites its ``opt["sites"]`` names."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        site: Site | None = scope.get(SCOPE_KEY)
        handler = scope.get("route_handler")
        if site is not None and handler is not None:
            wanted = handler.opt.get("sites", OPERATOR)
            if wanted != ANY and wanted != site.kind:
                raise NotFoundException()
        await self.app(scope, receive, send)
