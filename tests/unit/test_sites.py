"""The host of a request as the site resolution reads it (portal/sites.py), and the operator's host."""

from __future__ import annotations

from pathlib import Path

import pytest

from portal.sites import host_of
from tests.conftest import make_settings


@pytest.mark.parametrize("header, host", [
    ("Coop.Example.RU:8000", "coop.example.ru"),
    ("coop.example.ru.", "coop.example.ru"),
    ("[::1]:8000", "::1"),
    ("127.0.0.1", "127.0.0.1"),
    ("пример.рф", "xn--e1afmkfd.xn--p1ai"),
    ("xn--e1afmkfd.xn--p1ai:443", "xn--e1afmkfd.xn--p1ai"),
    ("bad host\u0000", ""),
])
def test_host_of(header, host):
    assert host_of({"headers": [(b"host", header.encode("utf-8"))]}) == host


def test_the_operators_cyrillic_host_is_compared_in_punycode(tmp_path: Path):
    settings = make_settings(tmp_path, PORTAL_BASE_URL="https://Портал.рф:8443")
    assert settings.operator_host == "xn--80awhdgm.xn--p1ai"
    assert make_settings(tmp_path, PORTAL_BASE_URL="http://127.0.0.1:8000").operator_host == "127.0.0.1"
