"""The domain check's pure parts: what a DNS answer means for the connection, and how the page says it."""

from __future__ import annotations

import datetime as dt
import time

import pytest

from portal.connection.dns import (
    DELEGATED, ELSEWHERE, ERROR_PREFIX, MISSING, DnsError, _joined, _resolver, check_error, is_due, is_localhost,
    lookup, status_label, status_of,
)

SERVER, SERVER6 = "198.51.100.10", "2001:db8::10"
OTHER, OTHER6 = "203.0.113.7", "2001:db8::7"


# --- status_of: every branch -------------------------------------------------------------------------------


def test_no_records_at_all_is_missing() -> None:
    assert status_of([], [], SERVER, "") == MISSING
    assert status_of([], [], SERVER, SERVER6) == MISSING


def test_the_a_record_on_the_server_is_delegated() -> None:
    assert status_of([SERVER], [], SERVER, "") == DELEGATED
    assert status_of([SERVER], [], SERVER, SERVER6) == DELEGATED  # AAAA is optional when the server has IPv6


def test_the_a_record_elsewhere() -> None:
    assert status_of([OTHER], [], SERVER, "") == ELSEWHERE
    assert status_of([OTHER], [SERVER6], SERVER, SERVER6) == ELSEWHERE


def test_a_leftover_second_a_record_is_elsewhere() -> None:
    """Round robin would send some visitors, and the certificate authority's check, to the old address."""
    assert status_of([SERVER, OTHER], [], SERVER, "") == ELSEWHERE


def test_aaaa_of_the_server_with_the_a_record_is_delegated() -> None:
    assert status_of([SERVER], [SERVER6], SERVER, SERVER6) == DELEGATED


def test_aaaa_elsewhere_when_the_server_has_ipv6() -> None:
    assert status_of([SERVER], [OTHER6], SERVER, SERVER6) == ELSEWHERE
    assert status_of([SERVER], [SERVER6, OTHER6], SERVER, SERVER6) == ELSEWHERE


def test_any_aaaa_when_the_server_has_no_ipv6_is_elsewhere() -> None:
    """Browsers try IPv6 first: an AAAA record left at the old hosting takes most visitors there."""
    assert status_of([SERVER], [OTHER6], SERVER, "") == ELSEWHERE


def test_only_aaaa_records() -> None:
    assert status_of([], [SERVER6], SERVER, SERVER6) == MISSING  # ours, but the A record is still needed
    assert status_of([], [OTHER6], SERVER, SERVER6) == ELSEWHERE
    assert status_of([], [OTHER6], SERVER, "") == ELSEWHERE


def test_addresses_compare_as_addresses() -> None:
    assert status_of([SERVER], ["2001:DB8:0:0::10"], SERVER, SERVER6) == DELEGATED


def test_a_local_run_on_the_loopback_address() -> None:
    """.localhost answers 127.0.0.1 and ::1; with the server on 127.0.0.1 both are the same machine."""
    assert status_of(["127.0.0.1"], ["::1"], "127.0.0.1", "") == DELEGATED
    assert status_of(["127.0.0.1"], ["::1"], SERVER, "") == ELSEWHERE
    assert status_of(["127.0.0.1"], ["::1"], "127.0.0.1", SERVER6) == ELSEWHERE  # the server's v6 is named


# --- status_label --------------------------------------------------------------------------------------------


def test_labels_in_the_words_of_the_issue() -> None:
    assert status_label("unknown", "") == "не проверен"
    assert status_label(MISSING, "") == "не делегирован"
    assert status_label(ELSEWHERE, "203.0.113.7") == "указывает на другой адрес: 203.0.113.7"
    assert status_label(ELSEWHERE, "198.51.100.10, 2001:db8::7") == \
        "указывает на другой адрес: 198.51.100.10, 2001:db8::7"
    assert status_label(DELEGATED, SERVER) == "делегирован"


def test_a_failed_check_is_said_as_such_whatever_the_status_was() -> None:
    stored = ERROR_PREFIX + "серверы DNS не ответили за 3 с; проверим ещё раз"
    for status in ("unknown", MISSING, ELSEWHERE, DELEGATED):
        label = status_label(status, stored)
        assert label == "не удалось проверить: серверы DNS не ответили за 3 с; проверим ещё раз"
    assert check_error(stored) == "серверы DNS не ответили за 3 с; проверим ещё раз"
    assert check_error("203.0.113.7") == ""


# --- lookup of .localhost (RFC 6761) ------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["localhost", "coop.localhost", "a.b.localhost.", "COOP.LocalHost"])
def test_localhost_is_the_machine_itself(name: str) -> None:
    assert is_localhost(name)


@pytest.mark.parametrize("name", ["localhost.ru", "notlocalhost", "localhost-coop.example.ru"])
def test_names_that_only_look_local(name: str) -> None:
    assert not is_localhost(name)


async def test_localhost_names_are_answered_without_asking_anyone() -> None:
    """The resolver given is an address nobody answers on (TEST-NET-1): a query would take the whole timeout."""
    started = time.monotonic()
    assert await lookup("primer.localhost", ("192.0.2.1:53",), timeout=5) == (["127.0.0.1"], ["::1"])
    assert time.monotonic() - started < 0.5


async def test_a_name_dns_cannot_carry_is_an_error() -> None:
    with pytest.raises(DnsError, match="не годится"):
        await lookup("a" * 64 + ".example.ru", ("127.0.0.1:53",))


# --- helpers -------------------------------------------------------------------------------------------------


def test_resolvers_with_ports_and_ipv6() -> None:
    resolver = _resolver(("127.0.0.1:5353", "[2001:db8::53]:53", "192.0.2.53:53"), 2.0)
    assert [(ns.address, ns.port) for ns in resolver.nameservers] == [
        ("127.0.0.1", 5353), ("2001:db8::53", 53), ("192.0.2.53", 53)]
    assert resolver.lifetime == 2.0


def test_many_addresses_fit_the_column() -> None:
    addresses = [f"2001:db8::{i:x}" for i in range(1, 60)]
    joined = _joined(addresses)
    assert len(joined) <= 500 and joined.endswith(", …") and joined.startswith("2001:db8::1, 2001:db8::2")
    assert _joined([SERVER, OTHER]) == "198.51.100.10, 203.0.113.7"
    assert _joined([]) == ""


NOW = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.timezone.utc)


def _row(status: str, seconds_ago: float | None, addresses: str = "") -> dict:
    checked = None if seconds_ago is None else NOW - dt.timedelta(seconds=seconds_ago)
    return {"dns_status": status, "dns_addresses": addresses, "dns_checked_at": checked}


def test_when_a_domain_is_looked_at_again() -> None:
    assert is_due(_row("unknown", None), NOW, 60)
    assert not is_due(_row(MISSING, 30), NOW, 60)
    assert is_due(_row(MISSING, 60), NOW, 60)
    assert is_due(_row(ELSEWHERE, 61), NOW, 60)
    assert not is_due(_row(DELEGATED, 61), NOW, 60)  # delegated: ten times less often
    assert not is_due(_row(DELEGATED, 599), NOW, 60)
    assert is_due(_row(DELEGATED, 600), NOW, 60)
    assert is_due(_row(DELEGATED, 61, ERROR_PREFIX + "таймаут"), NOW, 60)  # the last check failed: soon again


def test_a_naive_time_from_the_database_is_utc() -> None:
    row = {"dns_status": MISSING, "dns_addresses": "", "dns_checked_at": (NOW - dt.timedelta(seconds=30)).replace(
        tzinfo=None)}
    assert not is_due(row, NOW, 60)
    assert is_due(row, NOW + dt.timedelta(seconds=31), 60)
