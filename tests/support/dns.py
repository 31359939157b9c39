"""A real DNS server on the loopback interface for the tests of the domain check (dnslib, UDP and TCP).

The test changes the records while the server runs, the way a member edits the zone at the registrar:

    with LocalDns() as dns:
        dns.set("coop.example.ru", a=["203.0.113.7"])
        settings = make_settings(tmp_path, PORTAL_DNS_RESOLVERS=dns.address)

Names it does not know get NXDOMAIN; a known name without records of the asked type gets an empty answer
(NODATA); ``dns.fail(name)`` makes it answer SERVFAIL. ``silent_resolver()`` gives an address that takes
queries and never answers (the timeout case).
"""

from __future__ import annotations

import contextlib
import itertools
import socket
import threading
from dataclasses import dataclass, field
from typing import Iterator

from dnslib import AAAA, QTYPE, RCODE, RR, A, CNAME, DNSRecord
from dnslib.server import DNSServer

TTL = 60
_emails = itertools.count(1)


def _name(name: str) -> str:
    return name.strip().rstrip(".").lower()


@dataclass
class _Entry:
    a: list[str] = field(default_factory=list)
    aaaa: list[str] = field(default_factory=list)
    cname: str = ""
    servfail: bool = False


class _QuietLogger:
    """dnslib's default logger prints every packet; the tests' output stays clean."""

    def __getattr__(self, name: str):
        return lambda *args, **kwargs: None


class _Resolver:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.entries: dict[str, _Entry] = {}
        self.queries: list[tuple[str, str]] = []  # (name, type) in the order they came

    def resolve(self, request: DNSRecord, handler) -> DNSRecord:
        reply = request.reply()  # authoritative answer, recursion available
        qname = _name(str(request.q.qname))
        qtype = QTYPE[request.q.qtype]
        with self.lock:
            self.queries.append((qname, qtype))
            name, seen = qname, set()
            while True:
                entry = self.entries.get(name)
                if entry is None:
                    if name == qname:
                        reply.header.rcode = RCODE.NXDOMAIN
                    return reply
                if entry.servfail:
                    reply.header.rcode = RCODE.SERVFAIL
                    return reply
                if entry.cname and name not in seen:
                    seen.add(name)
                    reply.add_answer(RR(name, QTYPE.CNAME, rdata=CNAME(entry.cname), ttl=TTL))
                    if qtype == "CNAME":
                        return reply
                    name = entry.cname
                    continue
                break
            if qtype == "A":
                for address in entry.a:
                    reply.add_answer(RR(name, QTYPE.A, rdata=A(address), ttl=TTL))
            elif qtype == "AAAA":
                for address in entry.aaaa:
                    reply.add_answer(RR(name, QTYPE.AAAA, rdata=AAAA(address), ttl=TTL))
        return reply


def _free_udp_and_tcp_port(host: str = "127.0.0.1") -> int:
    """A port free for both UDP and TCP on host (a DNS server listens on both)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind((host, 0))
            port = udp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind((host, port))
                except OSError:
                    continue
                return port
    raise RuntimeError("no port free for both UDP and TCP")


class LocalDns:
    """The server: ``address`` ("127.0.0.1:port") goes into PORTAL_DNS_RESOLVERS."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = 0
        self._resolver = _Resolver()
        self._servers: list[DNSServer] = []

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def queries(self) -> list[tuple[str, str]]:
        with self._resolver.lock:
            return list(self._resolver.queries)

    def set(self, name: str, *, a: list[str] | tuple[str, ...] = (), aaaa: list[str] | tuple[str, ...] = (),
            cname: str = "") -> None:
        """The records of ``name`` from now on (replacing what it had); no records at all — NODATA."""
        with self._resolver.lock:
            self._resolver.entries[_name(name)] = _Entry(list(a), list(aaaa), _name(cname) if cname else "")

    def remove(self, name: str) -> None:
        """``name`` no longer exists (NXDOMAIN)."""
        with self._resolver.lock:
            self._resolver.entries.pop(_name(name), None)

    def fail(self, name: str) -> None:
        """Queries for ``name`` get SERVFAIL (a broken zone, an unreachable authoritative server)."""
        with self._resolver.lock:
            self._resolver.entries[_name(name)] = _Entry(servfail=True)

    def start(self) -> "LocalDns":
        for attempt in range(5):
            self.port = _free_udp_and_tcp_port(self.host)
            try:
                udp = DNSServer(self._resolver, address=self.host, port=self.port, logger=_QuietLogger())
                try:
                    tcp = DNSServer(self._resolver, address=self.host, port=self.port, tcp=True,
                                    logger=_QuietLogger())
                except OSError:
                    udp.server.server_close()
                    raise
            except OSError:  # taken between the check and the bind: another port
                if attempt == 4:
                    raise
                continue
            self._servers = [udp, tcp]
            for server in self._servers:
                server.start_thread()
            return self
        raise RuntimeError("the local DNS server did not start")

    def stop(self) -> None:
        for server in self._servers:
            server.stop()
            server.server.server_close()
        self._servers = []

    def __enter__(self) -> "LocalDns":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


@contextlib.contextmanager
def silent_resolver(host: str = "127.0.0.1") -> Iterator[str]:
    """An "ip:port" whose UDP socket is open but never answers, and whose TCP port is closed: every query
    to it ends in a timeout, the way an unreachable or overloaded resolver behaves."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((host, 0))
        yield f"{host}:{sock.getsockname()[1]}"


async def connection_row(domain: str, *, status: str = "signed", hosting: str = "hosted",
                         email: str | None = None, **values) -> dict:
    """A member of the operator and a Connection row of theirs, inserted directly (the agreement's signing is
    not what the domain check and the TLS question are about); the row as stored."""
    from portal.accounts.tables import Member
    from portal.clock import now
    from portal.connection.tables import Connection
    from portal.cooperatives.tables import Cooperative

    operator = await Cooperative.select(Cooperative.id).where(Cooperative.is_operator == True).first()  # noqa: E712
    moment = now()
    email = email or f"member{next(_emails)}@example.org"
    member = (await Member.insert(Member(cooperative=operator["id"], email=email, email_confirmed_at=moment,
                                         created_at=moment)).returning(Member.id))[0]
    row = (await Connection.insert(Connection(member=member["id"], operator=operator["id"], status=status,
                                              domain=domain, hosting=hosting, created_at=moment, updated_at=moment,
                                              **values)).returning(Connection.id))[0]
    return await Connection.select().where(Connection.id == row["id"]).first()


