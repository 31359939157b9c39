"""The domain check against a real DNS server (dnslib on the loopback), on SQLite and PostgreSQL: the status
moves as the member edits the zone, a resolver that does not answer never reads as «не делегирован», and the
background check takes exactly the connections that are due."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Iterator

import dns.asyncquery
import dns.message
import idna
import pytest

from portal.clock import now
from portal.connection import dns as domain_check
from portal.connection.tables import Connection
from portal.settings import Settings
from tests.conftest import make_settings
from tests.support.dns import LocalDns, connection_row, silent_resolver

SERVER_IP = "198.51.100.10"
SERVER_IPV6 = "2001:db8::10"
DOMAIN = "coop.example.ru"


@pytest.fixture
def local_dns() -> Iterator[LocalDns]:
    with LocalDns() as server:
        yield server


@pytest.fixture
def settings(settings: Settings, local_dns: LocalDns) -> Settings:
    """The shared fixture's database, the settings read from the environment with the local DNS server as the
    resolver and a server address of TEST-NET-2."""
    return make_settings(settings.data_dir, settings.database_url, PORTAL_DNS_RESOLVERS=local_dns.address,
                         PORTAL_SERVER_IP=SERVER_IP, PORTAL_DNS_CHECK_SECONDS="60")


def label(row: dict) -> str:
    return domain_check.status_label(row["dns_status"], row["dns_addresses"])


async def test_the_check_follows_the_zone_from_nothing_to_delegated(client, settings, local_dns) -> None:
    assert settings.dns_resolvers == (local_dns.address,)
    row = await connection_row(DOMAIN)
    assert label(row) == "не проверен"

    checked = await domain_check.check_connection(settings, row["id"])  # no record at all: NXDOMAIN
    assert (checked["dns_status"], label(checked)) == ("missing", "не делегирован")
    assert checked["dns_checked_at"] is not None and checked["dns_addresses"] == ""
    assert (DOMAIN, "A") in local_dns.queries and (DOMAIN, "AAAA") in local_dns.queries

    local_dns.set(DOMAIN)  # the name exists, no address yet (NODATA)
    checked = await domain_check.check_connection(settings, row["id"])
    assert label(checked) == "не делегирован"

    local_dns.set(DOMAIN, a=["203.0.113.7"])  # still at the old hosting
    checked = await domain_check.check_connection(settings, row["id"])
    assert (checked["dns_status"], label(checked)) == ("elsewhere", "указывает на другой адрес: 203.0.113.7")
    assert checked["dns_addresses"] == "203.0.113.7"

    local_dns.set(DOMAIN, a=[SERVER_IP])
    checked = await domain_check.check_connection(settings, row["id"])
    assert (checked["dns_status"], label(checked)) == ("delegated", "делегирован")
    assert checked["dns_addresses"] == SERVER_IP
    stored = await Connection.select().where(Connection.id == row["id"]).first()
    assert (stored["dns_status"], stored["dns_addresses"]) == ("delegated", SERVER_IP)

    local_dns.set(DOMAIN, a=[SERVER_IP], aaaa=["2001:db8::7"])  # an AAAA record left elsewhere; no IPv6 here
    checked = await domain_check.check_connection(settings, row["id"])
    assert label(checked) == f"указывает на другой адрес: {SERVER_IP}, 2001:db8::7"


async def test_a_cname_to_the_server_and_ipv6(client, settings, local_dns) -> None:
    with_v6 = dataclasses.replace(settings, server_ipv6=SERVER_IPV6)
    row = await connection_row(DOMAIN)
    local_dns.set("hosting.example.net", a=[SERVER_IP], aaaa=[SERVER_IPV6])
    local_dns.set(DOMAIN, cname="hosting.example.net")
    checked = await domain_check.check_connection(with_v6, row["id"])
    assert (label(checked), checked["dns_addresses"]) == ("делегирован", f"{SERVER_IP}, {SERVER_IPV6}")
    local_dns.set("hosting.example.net", a=[SERVER_IP], aaaa=["2001:db8::7"])
    checked = await domain_check.check_connection(with_v6, row["id"])
    assert label(checked) == f"указывает на другой адрес: {SERVER_IP}, 2001:db8::7"


async def test_a_cyrillic_domain_is_asked_in_punycode(client, settings, local_dns) -> None:
    domain = idna.encode("кооп.рф").decode()
    row = await connection_row(domain)
    local_dns.set(domain, a=[SERVER_IP])
    checked = await domain_check.check_connection(settings, row["id"])
    assert label(checked) == "делегирован"
    assert (domain, "A") in local_dns.queries


async def test_a_resolver_that_does_not_answer_is_not_checked_never_missing(client, settings, local_dns) -> None:
    row = await connection_row(DOMAIN)
    with silent_resolver() as address:
        silent = make_settings(settings.data_dir, settings.database_url, PORTAL_DNS_RESOLVERS=address,
                               PORTAL_SERVER_IP=SERVER_IP)
        checked = await domain_check.check_connection(silent, row["id"], timeout=0.5)
    assert checked["dns_status"] == "unknown"
    assert label(checked) == "не удалось проверить: серверы DNS не ответили за 0.5 с; проверим ещё раз"
    assert "не делегирован" not in label(checked)
    assert checked["dns_checked_at"] is not None

    # A delegated domain stays delegated through a resolver's bad minute (provisioning goes by the status) …
    local_dns.set(DOMAIN, a=[SERVER_IP])
    assert (await domain_check.check_connection(settings, row["id"]))["dns_status"] == "delegated"
    with silent_resolver() as address:
        silent = dataclasses.replace(settings, dns_resolvers=(address,))
        checked = await domain_check.check_connection(silent, row["id"], timeout=0.5)
    assert checked["dns_status"] == "delegated"
    assert label(checked).startswith("не удалось проверить: серверы DNS не ответили")
    # … and the next good answer replaces the message.
    checked = await domain_check.check_connection(settings, row["id"])
    assert (label(checked), checked["dns_addresses"]) == ("делегирован", SERVER_IP)


async def test_servfail_is_an_error_not_missing(client, settings, local_dns) -> None:
    row = await connection_row(DOMAIN)
    local_dns.fail(DOMAIN)
    checked = await domain_check.check_connection(settings, row["id"])
    assert checked["dns_status"] == "unknown"
    assert label(checked).startswith("не удалось проверить: серверы DNS ответили ошибкой (SERVFAIL)")


async def test_localhost_domains_are_the_machine_itself(client, settings, local_dns) -> None:
    """`make run` on one computer: the portal on 127.0.0.1 and a cooperative at primer.localhost."""
    local_run = dataclasses.replace(settings, server_ip="127.0.0.1")
    row = await connection_row("primer.localhost")
    checked = await domain_check.check_connection(local_run, row["id"])
    assert (label(checked), checked["dns_addresses"]) == ("делегирован", "127.0.0.1, ::1")
    assert local_dns.queries == []  # RFC 6761: nobody is asked
    checked = await domain_check.check_connection(settings, row["id"])  # the server elsewhere: not here
    assert checked["dns_status"] == "elsewhere"


async def test_unknown_connection_and_no_domain(client, settings, local_dns) -> None:
    assert await domain_check.check_connection(settings, 10**9) is None
    row = await connection_row("", status="draft")
    checked = await domain_check.check_connection(settings, row["id"])
    assert (checked["dns_status"], checked["dns_checked_at"]) == ("unknown", None)
    assert local_dns.queries == []


async def test_the_background_check_takes_the_due_connections(client, settings, local_dns) -> None:
    moment = now()
    long_ago = moment - dt.timedelta(seconds=120)  # two intervals
    very_long_ago = moment - dt.timedelta(seconds=700)  # more than ten intervals
    rows = {
        "signed-new": await connection_row("signed-new.example.ru", status="signed"),
        "approved-new": await connection_row("approved-new.example.ru", status="approved"),
        "approved-old": await connection_row("approved-old.example.ru", status="approved", dns_status="missing",
                                             dns_checked_at=long_ago),
        "approved-fresh": await connection_row("approved-fresh.example.ru", status="approved",
                                               dns_status="missing", dns_checked_at=moment),
        "delegated-recent": await connection_row("delegated-recent.example.ru", status="approved",
                                                 dns_status="delegated", dns_addresses=SERVER_IP,
                                                 dns_checked_at=long_ago),
        "delegated-old": await connection_row("delegated-old.example.ru", status="approved",
                                              dns_status="delegated", dns_addresses=SERVER_IP,
                                              dns_checked_at=very_long_ago),
        "delegated-failed": await connection_row("delegated-failed.example.ru", status="approved",
                                                 dns_status="delegated",
                                                 dns_addresses=domain_check.ERROR_PREFIX + "таймаут",
                                                 dns_checked_at=long_ago),
        "self-hosted": await connection_row("self-hosted.example.ru", status="approved", hosting="self"),
        "draft": await connection_row("draft.example.ru", status="draft"),
        "returned": await connection_row("returned.example.ru", status="returned"),
        "replaced": await connection_row("replaced.example.ru", status="replaced"),
    }
    for key in ("approved-new", "delegated-old", "delegated-failed"):
        local_dns.set(f"{key}.example.ru", a=[SERVER_IP])
    local_dns.set("approved-old.example.ru", a=["203.0.113.7"])

    checked = await domain_check.check_pending(settings, now=moment)
    by_id = {row["id"]: row for row in checked}
    names = {key for key, row in rows.items() if row["id"] in by_id}
    assert names == {"signed-new", "approved-new", "approved-old", "delegated-old", "delegated-failed"}
    assert {name for name, _ in local_dns.queries} == {f"{key}.example.ru" for key in names}
    assert label(by_id[rows["signed-new"]["id"]]) == "не делегирован"
    assert label(by_id[rows["approved-new"]["id"]]) == "делегирован"
    assert label(by_id[rows["approved-old"]["id"]]) == "указывает на другой адрес: 203.0.113.7"
    assert label(by_id[rows["delegated-failed"]["id"]]) == "делегирован"
    # What the lead's loop acts on: approved and delegated.
    ready = {row["domain"] for row in checked if row["status"] == "approved" and row["dns_status"] == "delegated"}
    assert ready == {"approved-new.example.ru", "delegated-old.example.ru", "delegated-failed.example.ru"}

    assert await domain_check.check_pending(settings) == []  # all just checked: nothing is due
    later = now() + dt.timedelta(seconds=61)
    again = {row["domain"] for row in await domain_check.check_pending(settings, now=later)}
    assert again == {"signed-new.example.ru", "approved-old.example.ru", "approved-fresh.example.ru"}


async def test_the_local_server_answers_over_tcp_too(local_dns) -> None:
    local_dns.set(DOMAIN, a=[SERVER_IP])
    query = dns.message.make_query(DOMAIN, "A")
    response = await dns.asyncquery.tcp(query, "127.0.0.1", port=local_dns.port, timeout=2)
    assert [rdata.address for rdata in response.answer[0]] == [SERVER_IP]
