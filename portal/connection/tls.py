"""Caddy's on-demand TLS question (J5): may a certificate be obtained for this host name?

Caddy asks ``GET /api/v1/tls/allowed?domain=<SNI name>`` before it obtains (or loads) a certificate for a name
it meets in a TLS handshake; any answer but 2xx refuses the handshake. Without the question anyone could
point a name at the server and make it spend the certificate authority's rate limits. Allowed: the domain of
an approved connection, the domain of a cooperative whose site this portal serves (its connection may be
"replaced" by a newer agreement waiting for approval — the live site keeps its certificate meanwhile), and
the operator's own host. Caddy asks on the loopback address, which is the
operator's site (portal/sites.py); the question needs no session and no CSRF, and must be answered fast —
one indexed query.
"""

from __future__ import annotations

from litestar import MediaType, Request, Response, get

from portal.connection.forms import DomainError, clean_domain
from portal.connection.tables import Connection
from portal.cooperatives.tables import Cooperative

_HEADERS = {"cache-control": "no-store"}


def _text(body: str, status: int) -> Response:
    return Response(body, status_code=status, media_type=MediaType.TEXT, headers=_HEADERS)


@get("/api/v1/tls/allowed", name="tls_allowed", exclude_from_csrf=True,
     opt={"sites": "operator", "skip_session": True})
async def tls_allowed(request: Request) -> Response:
    """200 "ok" for an approved connection's or a served cooperative's domain (punycode or Unicode) and the
    operator's host; 404 for any other name; 400 when the parameter is missing, repeated or not a domain name."""
    values = request.query_params.getall("domain", [])
    if len(values) != 1 or not values[0].strip():
        return _text("Укажите один домен: ?domain=coop.example.ru\n", 400)
    settings = request.app.state.settings
    raw = values[0].strip().rstrip(".").lower()
    if raw == settings.operator_host:  # also when the operator's host is an address, which clean_domain refuses
        return _text("ok\n", 200)
    try:
        domain = clean_domain(raw)
    except DomainError as exc:
        return _text(f"Это не имя домена: {exc}\n", 400)
    if domain == settings.operator_host:
        return _text("ok\n", 200)
    approved = await Connection.exists().where((Connection.domain == domain) & (Connection.status == "approved"))
    if approved or await Cooperative.exists().where(
            (Cooperative.domain == domain) & (Cooperative.is_operator == False)):  # noqa: E712
        return _text("ok\n", 200)
    return _text("Для этого домена нет одобренного подключения.\n", 404)
