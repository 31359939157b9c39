"""The domain check (J5): does the cooperative's domain point at the server that will host its site?

A member adds an A record (and AAAA when the server has IPv6) at the registrar; the portal looks the name up
with dnspython — on «Проверить сейчас» and by itself in the background — and stores what it saw on the
Connection row: ``dns_status`` (unknown | missing | elsewhere | delegated), ``dns_addresses`` (what the name
points to) and ``dns_checked_at``. Provisioning starts only for an approved connection whose domain is
delegated, so a failed look-up (timeout, SERVFAIL) must never read as «не делегирован» nor wipe a good status:
it keeps the status and leaves its message in ``dns_addresses`` behind ``ERROR_PREFIX``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import logging

import dns.asyncresolver
import dns.exception
import dns.name
import dns.nameserver
import dns.rcode
import dns.resolver

from portal import clock
from portal.connection.tables import Connection

log = logging.getLogger(__name__)

LOOKUP_TIMEOUT = 3.0  # seconds for the whole look-up (A and AAAA together, every resolver tried)
MISSING, ELSEWHERE, DELEGATED, UNKNOWN = "missing", "elsewhere", "delegated", "unknown"
#: dns_addresses of a row whose last check failed starts with this; the rest is the message for the page.
ERROR_PREFIX = "ошибка: "
#: A delegated domain rarely changes: it is looked at again this many times less often than a pending one.
DELEGATED_FACTOR = 10
CONCURRENCY = 8  # look-ups at once in the background check
_COLUMN_LENGTH = 500  # Connection.dns_addresses


class DnsError(Exception):
    """The look-up gave no answer (timeout, SERVFAIL, no resolvers): we do not know where the domain points.
    The message is Russian and is shown on the page as is."""


def is_localhost(domain_ascii: str) -> bool:
    name = domain_ascii.rstrip(".").lower()
    return name == "localhost" or name.endswith(".localhost")


def _resolver(resolvers: tuple[str, ...], timeout: float) -> dns.asyncresolver.Resolver:
    if resolvers:
        resolver = dns.asyncresolver.Resolver(configure=False)
        servers = []
        for item in resolvers:
            host, port = item, 53
            if item.startswith("["):
                host, _, rest = item[1:].partition("]")
                port = int(rest.removeprefix(":") or 53)
            elif item.count(":") == 1:
                host, raw_port = item.split(":")
                port = int(raw_port)
            servers.append(dns.nameserver.Do53Nameserver(host, port))
        resolver.nameservers = servers
    else:
        try:
            resolver = dns.asyncresolver.Resolver()  # /etc/resolv.conf, read afresh: it may have changed
        except dns.resolver.NoResolverConfiguration:
            raise DnsError("не заданы серверы DNS: укажите PORTAL_DNS_RESOLVERS или настройте /etc/resolv.conf") \
                from None
    resolver.lifetime = timeout
    resolver.timeout = min(timeout, 2.0)  # per attempt: a lost UDP packet is asked again within the lifetime
    resolver.cache = None  # the member has just changed the zone: ask every time
    return resolver


def _no_answer_message(exc: dns.resolver.NoNameservers) -> str:
    """Every resolver answered with an error or could not be reached: say which, in words."""
    rcodes = set()
    unreachable = False
    for error in exc.kwargs.get("errors") or []:
        answer = error[4] if len(error) > 4 else None
        if answer is not None and hasattr(answer, "rcode"):
            rcodes.add(dns.rcode.to_text(answer.rcode()))
        elif isinstance(error[3], OSError):
            unreachable = True
    if rcodes:
        return (f"серверы DNS ответили ошибкой ({', '.join(sorted(rcodes))}) — возможно, зона домена настроена "
                "неверно; проверим ещё раз")
    if unreachable:
        return "серверы DNS недоступны; проверим ещё раз"
    return "серверы DNS не дали ответа; проверим ещё раз"


async def _addresses(resolver: dns.asyncresolver.Resolver, name: dns.name.Name, rdtype: str,
                     timeout: float) -> list[str]:
    try:
        answer = await resolver.resolve(name, rdtype, search=False, raise_on_no_answer=False)
    except dns.resolver.NXDOMAIN:
        return []
    except dns.resolver.NoNameservers as exc:
        raise DnsError(_no_answer_message(exc)) from None
    except dns.exception.Timeout:
        raise DnsError(f"серверы DNS не ответили за {timeout:g} с; проверим ещё раз") from None
    except dns.resolver.YXDOMAIN:
        raise DnsError("имя домена слишком длинное для DNS") from None
    except dns.exception.DNSException as exc:
        raise DnsError(f"ошибка запроса DNS: {exc}") from None
    if answer.rrset is None:  # the name exists, no records of this type (NODATA)
        return []
    return sorted({rdata.address for rdata in answer.rrset}, key=_address_key)


def _address_key(address: str):
    parsed = ipaddress.ip_address(address)
    return parsed.version, parsed


async def lookup(domain_ascii: str, resolvers: tuple[str, ...], timeout: float = LOOKUP_TIMEOUT,
                 ) -> tuple[list[str], list[str]]:
    """The IPv4 (A) and IPv6 (AAAA) addresses of a punycode name, CNAMEs followed.

    Names under ``.localhost`` are the machine itself (RFC 6761 §6.3): answered 127.0.0.1 and ::1 without
    asking anyone. No such name, or no records — empty lists. A look-up that got no answer raises DnsError.
    ``resolvers`` are "ip:port" (settings.dns_resolvers); empty — the system's."""
    if is_localhost(domain_ascii):
        return ["127.0.0.1"], ["::1"]
    try:
        name = dns.name.from_text(domain_ascii.rstrip(".") + ".")
    except dns.exception.DNSException:
        raise DnsError("имя домена не годится для запроса DNS") from None
    resolver = _resolver(resolvers, timeout)
    v4, v6 = await asyncio.gather(_addresses(resolver, name, "A", timeout),
                                  _addresses(resolver, name, "AAAA", timeout))
    return v4, v6


def _same(address: str, ours: str) -> bool:
    try:
        return ipaddress.ip_address(address) == ipaddress.ip_address(ours)
    except ValueError:
        return False


def status_of(v4: list[str], v6: list[str], server_ip: str, server_ipv6: str) -> str:
    """Where the domain points, from what DNS answered:

    - "missing": no A record (nothing, or only AAAA of our own server — a browser on IPv4 would not get here);
    - "elsewhere": some record points at another machine. Every record counts, not only one of them: a
      leftover A record of the old hosting sends a share of visitors (and the certificate authority's check)
      there, and an AAAA record elsewhere is what most browsers try first;
    - "delegated": every A record is ``server_ip`` and every AAAA record is ``server_ipv6``. AAAA is optional
      when the server has IPv6 and must be absent when it has none — except ::1 when the server itself is
      the loopback address (a local run: names under .localhost answer both 127.0.0.1 and ::1).
    """
    if not v4 and not v6:
        return MISSING
    ours_v6 = server_ipv6
    if not ours_v6 and _is_loopback(server_ip):
        ours_v6 = "::1"
    foreign = [a for a in v4 if not _same(a, server_ip)]
    foreign += [a for a in v6 if not (ours_v6 and _same(a, ours_v6))]
    if foreign:
        return ELSEWHERE
    if not v4:
        return MISSING
    return DELEGATED


def _is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def check_error(addresses: str) -> str:
    """The message of the last check when it failed, else ""."""
    return addresses[len(ERROR_PREFIX):] if (addresses or "").startswith(ERROR_PREFIX) else ""


def status_label(status: str, addresses: str) -> str:
    """The status in the words of the page and the staff console."""
    error = check_error(addresses)
    if error:
        return f"не удалось проверить: {error}"
    if status == MISSING:
        return "не делегирован"
    if status == ELSEWHERE:
        shown = ", ".join(a.strip() for a in (addresses or "").split(",") if a.strip())
        return f"указывает на другой адрес: {shown}" if shown else "указывает на другой адрес"
    if status == DELEGATED:
        return "делегирован"
    return "не проверен"


def _joined(addresses: list[str]) -> str:
    """Addresses comma-separated, as many as fit the column (a zone may list dozens)."""
    out = ""
    for address in addresses:
        candidate = f"{out}, {address}" if out else address
        if len(candidate) > _COLUMN_LENGTH - 2:
            return f"{out}, …" if out else "…"
        out = candidate
    return out


async def check_connection(settings, connection_id: int, *, timeout: float = LOOKUP_TIMEOUT) -> dict | None:
    """Look the connection's domain up now and store the result on its row; the row as it is after.

    None when there is no such connection. A row without a domain is returned unchanged. A failed look-up
    keeps ``dns_status`` (a delegated domain stays delegated through a resolver's bad minute) and stores the
    time and ``ERROR_PREFIX`` + the message in ``dns_addresses``. The row is written only if its domain is
    still the one looked up (a draft may be edited meanwhile)."""
    row = await Connection.select(Connection.id, Connection.domain).where(Connection.id == connection_id).first()
    if row is None:
        return None
    domain = row["domain"]
    if domain:
        try:
            v4, v6 = await lookup(domain, settings.dns_resolvers, timeout)
        except DnsError as exc:
            values = {Connection.dns_addresses: (ERROR_PREFIX + str(exc))[:_COLUMN_LENGTH]}
        else:
            values = {Connection.dns_status: status_of(v4, v6, settings.server_ip, settings.server_ipv6),
                      Connection.dns_addresses: _joined(v4 + v6)}
        values[Connection.dns_checked_at] = clock.now()
        await Connection.update(values).where((Connection.id == connection_id) & (Connection.domain == domain))
    return await Connection.select().where(Connection.id == connection_id).first()


def is_due(row: dict, now: dt.datetime, interval: float) -> bool:
    """Whether a connection's domain should be looked at again: never checked, or checked longer ago than the
    interval (DELEGATED_FACTOR times it for a delegated domain whose last check succeeded)."""
    checked = row.get("dns_checked_at")
    if checked is None:
        return True
    if checked.tzinfo is None:
        checked = checked.replace(tzinfo=dt.timezone.utc)
    delegated = row.get("dns_status") == DELEGATED and not check_error(row.get("dns_addresses") or "")
    return now - checked >= dt.timedelta(seconds=interval * (DELEGATED_FACTOR if delegated else 1))


async def check_pending(settings, now: dt.datetime | None = None, *,
                        timeout: float = LOOKUP_TIMEOUT) -> list[dict]:
    """The background check: every hosted connection that is signed or approved and due (``is_due`` with
    settings.dns_check_seconds), looked up at most CONCURRENCY at a time; the updated rows.

    One connection's failure (other than DNS, which check_connection records) is logged and does not stop the
    others."""
    now = now or clock.now()
    rows = await Connection.select(
        Connection.id, Connection.dns_status, Connection.dns_addresses, Connection.dns_checked_at,
    ).where(
        (Connection.hosting == "hosted") & Connection.status.is_in(["signed", "approved"]) & (Connection.domain != "")
    ).order_by(Connection.id)
    due = [row["id"] for row in rows if is_due(row, now, settings.dns_check_seconds)]
    if not due:
        return []
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(connection_id: int) -> dict | None:
        async with gate:
            try:
                return await check_connection(settings, connection_id, timeout=timeout)
            except Exception:
                log.exception("DNS check of connection %s failed", connection_id)
                return None

    results = await asyncio.gather(*(one(connection_id) for connection_id in due))
    return [row for row in results if row is not None]
